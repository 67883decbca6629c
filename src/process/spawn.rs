//! The child runner: spawn in a new process group, pump both pipes with
//! poll(2) on the calling thread, honour deadlines and cancellation.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use process_wrap::std::{ProcessGroup, StdChildWrapper, StdCommandWrap};

use super::{CommandSpec, LineSplitter, Outcome, ProcessError, Tail};
use crate::events::{EventKind, Location, Stream};
use crate::services::{frame, Services};

/// How often a blocked wait looks at deadlines and whether the child exited
/// while a grandchild still holds its pipes.
const TICK: Duration = Duration::from_millis(50);
/// Chunks read from one pipe before looking at deadlines again.
const READS_PER_WAKE: usize = 16;

/// Run a command to completion, streaming its output as events.
pub fn execute(services: &Services, spec: &CommandSpec) -> Result<Outcome, ProcessError> {
    let start = Instant::now();
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
    let mut wrapped = StdCommandWrap::from(command);
    wrapped.wrap(ProcessGroup::leader());
    let mut child = wrapped.spawn().map_err(|source| ProcessError::Spawn {
        program: spec.program.clone(),
        cwd: spec.cwd.clone(),
        source,
    })?;
    let pgid = child.id() as i32;
    services.track_group(pgid);
    frame::record_group(pgid);

    let feeder = spec.stdin.clone().and_then(|input| {
        let mut pipe = child.stdin().take()?;
        Some(std::thread::spawn(move || {
            // A child that does not read its stdin is not an error.
            let _ = pipe.write_all(input.as_bytes());
        }))
    });

    let mut pump = Pump::new(services, spec);
    let result = pump.run(&mut *child, spec, start);
    if result.is_err() {
        super::kill_group(pgid);
    }
    let status = match &result {
        Ok(Finish::Exited(status)) => Some(*status),
        Ok(Finish::Killed) | Err(_) => child.wait().ok(),
    };
    services.untrack_group(pgid);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    services.bus.flush();
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

enum Finish {
    Exited(ExitStatus),
    /// The command's own timeout expired; the group was killed.
    Killed,
}

struct Pump<'a> {
    services: &'a Services,
    at: Location,
    quiet: bool,
    splitters: [LineSplitter; 2],
    tails: [Tail; 2],
}

impl<'a> Pump<'a> {
    fn new(services: &'a Services, spec: &CommandSpec) -> Self {
        Self {
            services,
            at: frame::location(),
            quiet: spec.quiet,
            splitters: Default::default(),
            tails: [Tail::new(spec.capture), Tail::new(spec.capture)],
        }
    }

    fn run(
        &mut self,
        child: &mut dyn StdChildWrapper,
        spec: &CommandSpec,
        start: Instant,
    ) -> Result<Finish, ProcessError> {
        let mut pipes = [
            child.stdout().take().map(|p| Box::new(p) as Box<dyn ReadFd>),
            child.stderr().take().map(|p| Box::new(p) as Box<dyn ReadFd>),
        ];
        for p in pipes.iter().flatten() {
            set_nonblocking(p.raw_fd());
        }
        let deadline = spec.timeout.and_then(|t| start.checked_add(t));
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_reap_check = Instant::now();
        let mut exited = None;

        while pipes.iter().any(Option::is_some) {
            let now = Instant::now();
            let mut wait = TICK;
            for limit in [deadline, frame::next_deadline(self.services)].into_iter().flatten() {
                wait = wait.min(limit.saturating_duration_since(now));
            }
            let ready = Self::wait_readable(&pipes, wait)?;
            let mut read_any = false;
            for (index, is_ready) in ready.into_iter().enumerate() {
                if is_ready {
                    read_any |= self.drain(&mut pipes, index, &mut buf, READS_PER_WAKE)?;
                }
            }
            if read_any {
                self.services.bus.flush();
            }
            if let Some(reason) = frame::check(self.services) {
                return Err(ProcessError::Interrupted(reason));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                kill(child);
                return Ok(Finish::Killed);
            }
            // The child may have exited while a background grandchild keeps
            // the pipes open: stop reading then, do not wait for the grandchild.
            if last_reap_check.elapsed() >= TICK {
                last_reap_check = Instant::now();
                if let Some(status) = child.try_wait().map_err(ProcessError::Io)? {
                    for index in 0..2 {
                        self.drain(&mut pipes, index, &mut buf, usize::MAX)?;
                    }
                    exited = Some(status);
                    break;
                }
            }
        }
        self.finish_lines();
        if let Some(status) = exited {
            return Ok(Finish::Exited(status));
        }
        // Both pipes are closed; the child is exiting or has exited.
        let mut pause = Duration::from_micros(20);
        loop {
            if let Some(status) = child.try_wait().map_err(ProcessError::Io)? {
                return Ok(Finish::Exited(status));
            }
            if let Some(reason) = frame::check(self.services) {
                return Err(ProcessError::Interrupted(reason));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                kill(child);
                return Ok(Finish::Killed);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Which pipes have data or hang-up, after waiting at most `wait`.
    fn wait_readable(pipes: &[Option<Box<dyn ReadFd>>; 2], wait: Duration) -> Result<[bool; 2], ProcessError> {
        let mut fds = Vec::with_capacity(2);
        let mut which = Vec::with_capacity(2);
        for (i, p) in pipes.iter().enumerate() {
            if let Some(p) = p {
                fds.push(PollFd::new(p.borrowed(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(ProcessError::Io(e.into())),
        }
        let mut ready = [false; 2];
        for (fd, i) in fds.iter().zip(which) {
            ready[i] = fd.revents().is_some_and(|r| !r.is_empty());
        }
        Ok(ready)
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
        let Self { services, at, quiet, splitters, tails } = self;
        let redactor = &services.redactor;
        splitters[index]
            .push(chunk, redactor, |line, nl| emit_line(services, at, *quiet, index, &mut tails[index], line, nl));
    }

    fn finish_lines(&mut self) {
        let Self { services, at, quiet, splitters, tails } = self;
        for index in 0..2 {
            splitters[index].finish(|line, nl| emit_line(services, at, *quiet, index, &mut tails[index], line, nl));
        }
    }

    fn into_captured(self) -> (String, String, bool) {
        let [out, err] = self.tails;
        let truncated = out.truncated() || err.truncated();
        (out.into_string(), err.into_string(), truncated)
    }
}

fn emit_line(
    services: &Services,
    at: &Location,
    quiet: bool,
    index: usize,
    tail: &mut Tail,
    line: &[u8],
    newline: bool,
) {
    let line = String::from_utf8_lossy(line).into_owned();
    tail.push_line(&line, newline);
    let stream = if index == 0 { Stream::Stdout } else { Stream::Stderr };
    services.bus.emit(EventKind::Output { at: at.clone(), stream, line, quiet });
}

fn kill(child: &mut dyn StdChildWrapper) {
    let _ = child.start_kill();
}

fn set_nonblocking(fd: i32) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

/// A child pipe we can poll and read.
trait ReadFd: Read + Send {
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
