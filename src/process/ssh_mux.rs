//! A remote command as a session of a running OpenSSH `ControlMaster`,
//! asked for over its control socket in the multiplexing protocol that
//! `ssh -o ControlPath=SOCKET host command` speaks (OpenSSH's PROTOCOL.mux):
//! the same session, the same exit status, without starting an ssh client
//! process for every command. The command's stdin, stdout and stderr are
//! pipes of ours handed to the master (`SCM_RIGHTS`), pumped like a child's.
//!
//! Before the master has opened the session nothing has run remotely, so a
//! master that cannot be used (gone, refusing, another protocol) makes the
//! command run through the ssh client instead, exactly as before.

use std::fs::File;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::command::{CommandSpec, Outcome, ProcessError};
use super::observer::Observer;
use super::spawn::{self, Feeder, ReadFd, Running};

const MUX_MSG_HELLO: u32 = 0x0000_0001;
const MUX_C_NEW_SESSION: u32 = 0x1000_0002;
const MUX_S_PERMISSION_DENIED: u32 = 0x8000_0002;
const MUX_S_FAILURE: u32 = 0x8000_0003;
const MUX_S_EXIT_MESSAGE: u32 = 0x8000_0004;
const MUX_S_SESSION_OPENED: u32 = 0x8000_0006;
/// The protocol version OpenSSH has spoken since 5.x.
const VERSION: u32 = 4;
/// The request id of the one request a connection makes.
const REQUEST: u32 = 1;
/// What ssh exits with when the session ends without an exit status.
const NO_STATUS: u32 = 255;
/// The largest packet a master sends (its own limit is 256 KiB).
const MAX_PACKET: usize = 256 * 1024;
/// How long the master may take to answer the hello (it answers at once).
const HELLO_LIMIT: Duration = Duration::from_secs(10);
/// How often a wait for the master looks at cancellation.
const TICK: Duration = Duration::from_millis(50);
/// Once the master said the session ended, how long the output pipes may
/// still bring what it had not written yet.
const LINGER: Duration = Duration::from_millis(200);

/// A remote command for [`execute_via_master`].
pub struct Remote<'a> {
    /// The master's control socket.
    pub socket: &'a Path,
    /// A connection to it already made (else one is made now).
    pub control: Option<UnixStream>,
    /// The remote shell's text.
    pub command: &'a str,
    /// `NAME=VALUE`s sent with the session, as the client's `SendEnv`/`SetEnv`.
    pub env: &'a [String],
}

/// Run a command as a session of the master at `remote.socket`; `spec` is
/// the same command as an ssh client invocation through that master, run
/// instead when the master cannot be used.
pub fn execute_via_master(
    observer: &dyn Observer,
    spec: &CommandSpec,
    remote: Remote<'_>,
) -> Result<Outcome, ProcessError> {
    let socket = remote.socket;
    let start = Instant::now();
    match session(observer, spec, remote, start) {
        Ok(outcome) => Ok(outcome),
        Err(Setup::Process(e)) => Err(e),
        Err(Setup::TimedOut) => Ok(Outcome {
            code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
            duration: start.elapsed(),
            timed_out: true,
        }),
        Err(Setup::Unavailable(why)) => {
            tracing::debug!("the ssh master at {} cannot be used ({why}); running the ssh client", socket.display());
            spawn::execute(observer, spec)
        }
    }
}

enum Setup {
    /// Nothing ran: the ssh client may do it instead (as it does itself).
    Unavailable(String),
    /// The command's own timeout expired before the master opened the session.
    TimedOut,
    Process(ProcessError),
}

impl From<std::io::Error> for Setup {
    fn from(e: std::io::Error) -> Self {
        Setup::Unavailable(e.to_string())
    }
}

fn session(observer: &dyn Observer, spec: &CommandSpec, remote: Remote<'_>, start: Instant) -> Result<Outcome, Setup> {
    let deadline = spec.timeout.and_then(|t| start.checked_add(t));
    let mut control = match remote.control {
        Some(stream) => Control::over(stream),
        None => Control::over(UnixStream::connect(remote.socket)?),
    };
    control.send(&Packet::new(MUX_MSG_HELLO).u32(VERSION))?;
    let mut hello = control.next(observer, Some(Instant::now() + HELLO_LIMIT), None)?;
    if hello.u32()? != MUX_MSG_HELLO || hello.u32()? != VERSION {
        return Err(Setup::Unavailable("the master speaks another multiplexing protocol".into()));
    }

    let (stdin, feeder) = match &spec.stdin {
        Some(input) => {
            let (read, write) = pipe()?;
            (read, Some(Feeder::new(File::from(write), input.as_bytes())))
        }
        None => (OwnedFd::from(File::open("/dev/null")?), None),
    };
    let (stdout, stdout_w) = pipe()?;
    let (stderr, stderr_w) = pipe()?;
    let mut request = Packet::new(MUX_C_NEW_SESSION)
        .u32(REQUEST)
        .string(b"") // reserved
        .u32(0) // no tty
        .u32(0) // no X11 forwarding
        .u32(0) // no agent forwarding
        .u32(0) // not a subsystem
        .u32(0xffff_ffff) // no escape character
        .string(b"") // terminal type
        .string(remote.command.as_bytes());
    for pair in remote.env {
        request = request.string(pair.as_bytes());
    }
    control.send(&request)?;
    for fd in [&stdin, &stdout_w, &stderr_w] {
        control.send_fd(fd)?;
    }
    // The master holds its own copies now: the pipes end when it closes them.
    drop((stdin, stdout_w, stderr_w));

    // Opening the session is a round trip to the host: as long as it takes
    // (ssh waits too), within the command's own timeout.
    let mut reply = control.next(observer, None, deadline)?;
    match (reply.u32()?, reply.u32()?) {
        (MUX_S_SESSION_OPENED, REQUEST) => {}
        (MUX_S_PERMISSION_DENIED | MUX_S_FAILURE, REQUEST) => {
            return Err(Setup::Unavailable(format!("the master refused the session: {}", reply.text())));
        }
        (kind, id) => return Err(Setup::Unavailable(format!("unexpected reply {kind:#010x} to request {id}"))),
    }
    let pipes = [Some(Box::new(File::from(stdout)) as Box<dyn ReadFd>), Some(Box::new(File::from(stderr)) as _)];
    let mut running = Session { control, exit: None, ended: false };
    spawn::pump(observer, spec, start, &mut running, pipes, feeder).map_err(Setup::Process)
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    // Close-on-exec: a child spawned meanwhile by another step must not
    // hold a write end, or the reader would never see the end.
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// The session once open: it has ended when the master closes the control
/// connection, having sent the exit status first (or not: 255, as ssh).
struct Session {
    control: Control,
    exit: Option<u32>,
    ended: bool,
}

impl Running for Session {
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        while let Some(mut packet) = self.control.poll_packet()? {
            if packet.u32().ok() == Some(MUX_S_EXIT_MESSAGE) {
                let _session = packet.u32();
                self.exit = packet.u32().ok();
            }
        }
        if !self.control.closed {
            return Ok(None);
        }
        self.ended = true;
        let code = self.exit.unwrap_or(NO_STATUS) & 0xff;
        Ok(Some(ExitStatus::from_raw((code as i32) << 8)))
    }

    fn wait(&mut self) -> Option<ExitStatus> {
        None
    }

    /// Closing the control connection closes the session's channel; the
    /// remote command gets no more input and its outputs go nowhere.
    fn kill(&mut self) {
        if !self.ended {
            let _ = self.control.stream.shutdown(std::net::Shutdown::Both);
            self.ended = true;
        }
    }

    fn linger(&self) -> Duration {
        LINGER
    }
}

/// The control connection: length-prefixed packets both ways.
struct Control {
    stream: UnixStream,
    inbox: Vec<u8>,
    closed: bool,
}

impl Control {
    fn over(stream: UnixStream) -> Self {
        Self { stream, inbox: Vec::new(), closed: false }
    }

    fn send(&mut self, packet: &Packet) -> std::io::Result<()> {
        let body = &packet.0;
        let mut framed = Vec::with_capacity(4 + body.len());
        framed.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        framed.extend_from_slice(body);
        self.stream.write_all(&framed)
    }

    /// One descriptor, with the one byte of data the master reads with it.
    fn send_fd(&self, fd: &OwnedFd) -> std::io::Result<()> {
        let fds = [fd.as_raw_fd()];
        let data = [0u8];
        loop {
            match sendmsg::<()>(
                self.stream.as_raw_fd(),
                &[IoSlice::new(&data)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            ) {
                Ok(1) => return Ok(()),
                Ok(_) => return Err(std::io::Error::new(ErrorKind::WriteZero, "the descriptor was not sent")),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next whole packet if one has arrived, without blocking.
    fn poll_packet(&mut self) -> std::io::Result<Option<Reader>> {
        loop {
            if self.inbox.len() >= 4 {
                let len = u32::from_be_bytes([self.inbox[0], self.inbox[1], self.inbox[2], self.inbox[3]]) as usize;
                if len > MAX_PACKET {
                    return Err(std::io::Error::new(ErrorKind::InvalidData, "oversized packet from the ssh master"));
                }
                if self.inbox.len() >= 4 + len {
                    let packet = self.inbox[4..4 + len].to_vec();
                    self.inbox.drain(..4 + len);
                    return Ok(Some(Reader(packet, 0)));
                }
            }
            if self.closed || !self.readable(Duration::ZERO)? {
                return Ok(None);
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => self.closed = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next packet during setup, waiting for it while the run goes on,
    /// until `give_up` (the master is no use) or `deadline` (the command's
    /// timeout).
    fn next(
        &mut self,
        observer: &dyn Observer,
        give_up: Option<Instant>,
        deadline: Option<Instant>,
    ) -> Result<Reader, Setup> {
        loop {
            if let Some(packet) = self.poll_packet()? {
                return Ok(packet);
            }
            if self.closed {
                return Err(Setup::Unavailable("the master closed the connection".into()));
            }
            if let Some(reason) = observer.interrupted() {
                return Err(Setup::Process(ProcessError::Interrupted(reason)));
            }
            if give_up.is_some_and(|t| Instant::now() >= t) {
                return Err(Setup::Unavailable("the master did not answer".into()));
            }
            if deadline.is_some_and(|t| Instant::now() >= t) {
                return Err(Setup::TimedOut);
            }
            self.readable(TICK)?;
        }
    }

    fn readable(&self, wait: Duration) -> std::io::Result<bool> {
        let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// A packet being written: SSH wire encoding (big-endian u32, strings with
/// their length in front).
struct Packet(Vec<u8>);

impl Packet {
    fn new(kind: u32) -> Self {
        Self(kind.to_be_bytes().to_vec())
    }

    fn u32(mut self, value: u32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn string(self, value: &[u8]) -> Self {
        let mut packet = self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        packet.0.extend_from_slice(value);
        packet
    }
}

/// A packet being read.
struct Reader(Vec<u8>, usize);

impl Reader {
    fn u32(&mut self) -> std::io::Result<u32> {
        let bytes = self
            .0
            .get(self.1..self.1 + 4)
            .ok_or_else(|| std::io::Error::new(ErrorKind::UnexpectedEof, "short packet from the ssh master"))?;
        self.1 += 4;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The rest as a string (an error message), or nothing.
    fn text(&mut self) -> String {
        let Ok(len) = self.u32() else { return String::new() };
        let end = (self.1 + len as usize).min(self.0.len());
        String::from_utf8_lossy(&self.0[self.1..end]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_ssh_wire_encoded() {
        let packet = Packet::new(MUX_C_NEW_SESSION).u32(7).string(b"echo hi");
        assert_eq!(packet.0, [&[0x10, 0, 0, 2][..], &[0, 0, 0, 7], &[0, 0, 0, 7], b"echo hi"].concat(),);
        let mut reader = Reader(Packet::new(MUX_S_FAILURE).u32(1).string(b"no").0, 0);
        assert_eq!(reader.u32().unwrap(), MUX_S_FAILURE);
        assert_eq!(reader.u32().unwrap(), 1);
        assert_eq!(reader.text(), "no");
        assert!(reader.u32().is_err(), "reading past the end is an error, not a panic");
    }
}
