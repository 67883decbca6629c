//! The child runner: spawn in a new process group with a tree tag, feed
//! stdin and pump both output pipes with poll(2) on the calling thread,
//! honour deadlines and cancellation in every wait.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::command::{CommandSpec, Outcome, ProcessError};
use super::lines::{LineSplitter, Tail};
use super::observer::{Observer, OutputSink};
use super::tree;
use super::tree::Tree;
use crate::events::Stream;

/// How often a blocked wait looks at deadlines and whether the child exited
/// while a grandchild still holds its pipes.
const TICK: Duration = Duration::from_millis(50);
/// Chunks read from one pipe before looking at deadlines again.
const READS_PER_WAKE: usize = 16;
/// How often, at most, finished commands look for exited orphans to reap.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// Run a command to completion, streaming its output as events.
pub fn execute(observer: &dyn Observer, spec: &CommandSpec) -> Result<Outcome, ProcessError> {
    let start = Instant::now();
    let tag = tree::new_tag(observer.detached());
    observer.starting(&tag);
    let mut command = Command::new(&spec.program);
    command.args(&spec.args).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    command.env(tree::TAG_VAR, tree::env_value(&tag)).process_group(0);
    let mut child = tree::spawn(&mut command).map_err(|source| ProcessError::Spawn {
        program: spec.program.clone(),
        cwd: spec.cwd.clone(),
        source,
    })?;
    let group = Tree { pgid: child.id() as i32, tag };
    observer.started(&group);

    let feeder = spec
        .stdin
        .as_ref()
        .and_then(|input| Some(Feeder::new(File::from(OwnedFd::from(child.stdin.take()?)), input.as_bytes())));
    let pipes = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
    ];
    let mut running = Spawned { child, group: &group };
    let outcome = pump(observer, spec, start, &mut running, pipes, feeder);
    tree::forget(group.pgid);
    observer.finished(&group);
    reap_now_and_then();
    outcome
}

/// Pump a started command's outputs (and feed its stdin) until it ends,
/// then say how it ended. Kills it when the wait fails or is interrupted.
pub(super) fn pump(
    observer: &dyn Observer,
    spec: &CommandSpec,
    start: Instant,
    running: &mut dyn Running,
    pipes: [Option<Box<dyn ReadFd>>; 2],
    feeder: Option<Feeder>,
) -> Result<Outcome, ProcessError> {
    let mut pump = Pump::new(observer, spec);
    let result = pump.run(running, pipes, feeder, spec, start);
    if result.is_err() {
        running.kill();
    }
    let status = match &result {
        Ok(Finish::Exited(status)) => Some(*status),
        Ok(Finish::Killed) | Err(_) => running.wait(),
    };
    observer.flush();
    let finish = result?;
    let (stdout, stderr, truncated) = pump.into_captured();
    Ok(Outcome {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout,
        stderr,
        truncated,
        duration: start.elapsed(),
        timed_out: matches!(finish, Finish::Killed),
    })
}

/// What the pump waits for: a child process, or a session on an SSH master.
pub(super) trait Running {
    /// The exit status, if it has ended (without blocking).
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>>;
    /// After a kill: wait for the end, if there is one to wait for.
    fn wait(&mut self) -> Option<ExitStatus>;
    /// Kill it (and what it started).
    fn kill(&mut self);
    /// Once it has ended, how long its outputs may still bring lines.
    fn linger(&self) -> Duration {
        Duration::ZERO
    }
}

/// A spawned child, the leader of its process group.
struct Spawned<'a> {
    child: Child,
    group: &'a Tree,
}

impl Running for Spawned<'_> {
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    fn wait(&mut self) -> Option<ExitStatus> {
        self.child.wait().ok()
    }

    fn kill(&mut self) {
        self.group.kill();
    }
}

/// Reap orphans adopted since the last look, at most once a `REAP_EVERY`,
/// so a run that leaves many short-lived background processes does not
/// collect zombies, and a fast command does not pay for a /proc scan.
fn reap_now_and_then() {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_none_or(|t| t.elapsed() >= REAP_EVERY) {
        *last = Some(Instant::now());
        drop(last);
        tree::reap_adopted();
    }
}

/// Writes a step's `stdin` to the child without ever blocking: the child
/// (or a grandchild holding the pipe) may never read it.
pub(super) struct Feeder {
    pipe: Option<File>,
    data: Vec<u8>,
    written: usize,
}

impl Feeder {
    pub(super) fn new(pipe: File, data: &[u8]) -> Self {
        set_nonblocking(pipe.as_raw_fd());
        let mut feeder = Self { pipe: Some(pipe), data: data.to_vec(), written: 0 };
        if data.is_empty() {
            feeder.pipe = None;
        }
        feeder
    }

    /// Write what the pipe takes now; closes it when all is written or the
    /// reader went away (a child that does not read its stdin is not an error).
    fn write(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else { return };
        while self.written < self.data.len() {
            match pipe.write(&self.data[self.written..]) {
                Ok(0) => break,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.pipe = None;
    }

    fn open(&self) -> bool {
        self.pipe.is_some()
    }

    /// The child is gone: what it did not read is dropped.
    fn close(&mut self) {
        if self.pipe.take().is_some() && self.written < self.data.len() {
            tracing::debug!("the child exited with {} bytes of its stdin unread", self.data.len() - self.written);
        }
    }
}

enum Finish {
    Exited(ExitStatus),
    /// The command's own timeout expired; the group was killed.
    Killed,
}

struct Pump<'a> {
    observer: &'a dyn Observer,
    output: OutputSink<'a>,
    quiet: bool,
    splitters: [LineSplitter; 2],
    tails: [Tail; 2],
}

impl<'a> Pump<'a> {
    fn new(observer: &'a dyn Observer, spec: &CommandSpec) -> Self {
        Self {
            observer,
            output: observer.output(),
            quiet: spec.quiet,
            splitters: Default::default(),
            tails: [Tail::new(spec.capture), Tail::new(spec.capture)],
        }
    }

    fn run(
        &mut self,
        running: &mut dyn Running,
        mut pipes: [Option<Box<dyn ReadFd>>; 2],
        mut feeder: Option<Feeder>,
        spec: &CommandSpec,
        start: Instant,
    ) -> Result<Finish, ProcessError> {
        for p in pipes.iter().flatten() {
            set_nonblocking(p.raw_fd());
        }
        let deadline = spec.timeout.and_then(|t| start.checked_add(t));
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_reap_check = Instant::now();
        let mut exited: Option<(ExitStatus, Instant)> = None;

        // Until the child exits or closes its outputs and has all its stdin.
        while pipes.iter().any(Option::is_some) || feeder.as_ref().is_some_and(Feeder::open) {
            let now = Instant::now();
            let mut wait = TICK;
            let lingering = exited.map(|(_, at)| at + running.linger());
            for limit in [deadline, self.observer.next_deadline(), lingering].into_iter().flatten() {
                wait = wait.min(limit.saturating_duration_since(now));
            }
            let stdin = feeder.as_ref().and_then(|f| f.pipe.as_ref());
            let (ready, writable) = Self::wait_ready(&pipes, stdin, wait)?;
            if writable {
                if let Some(f) = feeder.as_mut() {
                    f.write();
                }
            }
            let mut read_any = false;
            for (index, is_ready) in ready.into_iter().enumerate() {
                if is_ready {
                    read_any |= self.drain(&mut pipes, index, &mut buf, READS_PER_WAKE)?;
                }
            }
            if read_any {
                self.observer.flush();
            }
            if let Some(reason) = self.observer.interrupted() {
                return Err(ProcessError::Interrupted(reason));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                running.kill();
                return Ok(Finish::Killed);
            }
            // The child may have exited while a background grandchild keeps
            // the pipes open: stop reading and feeding then (after the
            // linger of what runs elsewhere), do not wait for the grandchild.
            if exited.is_none() && last_reap_check.elapsed() >= TICK {
                last_reap_check = Instant::now();
                if let Some(status) = running.try_wait().map_err(ProcessError::Io)? {
                    if let Some(f) = feeder.as_mut() {
                        f.close();
                    }
                    exited = Some((status, Instant::now()));
                }
            }
            if exited.is_some_and(|(_, at)| at.elapsed() >= running.linger()) {
                for index in 0..2 {
                    self.drain(&mut pipes, index, &mut buf, usize::MAX)?;
                }
                break;
            }
        }
        drop(feeder);
        self.finish_lines();
        if let Some((status, _)) = exited {
            return Ok(Finish::Exited(status));
        }
        // Both pipes are closed; the child is exiting or has exited.
        let mut pause = Duration::from_micros(20);
        loop {
            if let Some(status) = running.try_wait().map_err(ProcessError::Io)? {
                return Ok(Finish::Exited(status));
            }
            if let Some(reason) = self.observer.interrupted() {
                return Err(ProcessError::Interrupted(reason));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                running.kill();
                return Ok(Finish::Killed);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Which output pipes have data or hang-up, and whether stdin takes
    /// more, after waiting at most `wait`.
    fn wait_ready(
        pipes: &[Option<Box<dyn ReadFd>>; 2],
        stdin: Option<&File>,
        wait: Duration,
    ) -> Result<([bool; 2], bool), ProcessError> {
        let mut fds = Vec::with_capacity(3);
        let mut which = Vec::with_capacity(3);
        for (i, p) in pipes.iter().enumerate() {
            if let Some(p) = p {
                fds.push(PollFd::new(p.borrowed(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        if let Some(stdin) = stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLOUT));
            which.push(2);
        }
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(ProcessError::Io(e.into())),
        }
        let mut ready = [false; 3];
        for (fd, i) in fds.iter().zip(which) {
            ready[i] = fd.revents().is_some_and(|r| !r.is_empty());
        }
        Ok(([ready[0], ready[1]], ready[2]))
    }

    /// Read what is available from one pipe; `true` if anything was read.
    fn drain(
        &mut self,
        pipes: &mut [Option<Box<dyn ReadFd>>; 2],
        index: usize,
        buf: &mut [u8],
        max_reads: usize,
    ) -> Result<bool, ProcessError> {
        let mut read_any = false;
        for _ in 0..max_reads {
            let Some(pipe) = pipes[index].as_mut() else { break };
            match pipe.read(buf) {
                Ok(0) => {
                    pipes[index] = None;
                    break;
                }
                Ok(n) => {
                    read_any = true;
                    self.lines(index, &buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ProcessError::Io(e)),
            }
        }
        Ok(read_any)
    }

    fn lines(&mut self, index: usize, chunk: &[u8]) {
        let Self { observer, output, quiet, splitters, tails } = self;
        let redactor = observer.redactor();
        splitters[index]
            .push(chunk, redactor, |line, nl| emit_line(output, *quiet, index, &mut tails[index], line, nl));
    }

    fn finish_lines(&mut self) {
        let Self { output, quiet, splitters, tails, .. } = self;
        for index in 0..2 {
            splitters[index].finish(|line, nl| emit_line(output, *quiet, index, &mut tails[index], line, nl));
        }
    }

    fn into_captured(self) -> (String, String, bool) {
        let [out, err] = self.tails;
        let truncated = out.truncated() || err.truncated();
        (out.into_string(), err.into_string(), truncated)
    }
}

fn emit_line(output: &OutputSink<'_>, quiet: bool, index: usize, tail: &mut Tail, line: &[u8], newline: bool) {
    let line = String::from_utf8_lossy(line).into_owned();
    tail.push_line(&line, newline);
    let stream = if index == 0 { Stream::Stdout } else { Stream::Stderr };
    output(stream, line, quiet);
}

fn set_nonblocking(fd: i32) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

/// A child pipe we can poll and read.
pub(super) trait ReadFd: Read + Send {
    fn raw_fd(&self) -> i32;
    fn borrowed(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl<T: Read + AsFd + AsRawFd + Send> ReadFd for T {
    fn raw_fd(&self) -> i32 {
        self.as_raw_fd()
    }
    fn borrowed(&self) -> std::os::fd::BorrowedFd<'_> {
        self.as_fd()
    }
}

/// Open `/dev/null` on any of stdin, stdout and stderr that is closed
/// (`capstan run 2>&-`). Otherwise the next file capstan opens (the
/// journal) would get that number, and terminal text would land in it.
pub fn ensure_standard_fds() {
    use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
    use nix::sys::stat::Mode;
    for fd in 0..=2 {
        if fcntl(fd, FcntlArg::F_GETFD) == Err(nix::errno::Errno::EBADF) {
            let flags = if fd == 0 { OFlag::O_RDONLY } else { OFlag::O_WRONLY };
            // open() takes the lowest free number: this one. It stays open
            // for the life of the process on purpose.
            let _ = open("/dev/null", flags, Mode::empty());
        }
    }
}
