//! `warden run` without root: asks the Warden service for the session, hands it the
//! terminal (the standard streams, by descriptor), passes on the signals a terminal sends,
//! and exits with the session's status.
use std::{
    ffi::OsString,
    io,
    os::{fd::AsFd as _, unix::net::UnixStream},
    path::Path,
};

use anyhow::{Context as _, anyhow};
use nix::{
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::{
        signal::{SigSet, Signal},
        signalfd::{SfdFlags, SignalFd},
    },
};

use super::protocol::{
    self, Bytes, ClientSignal, Forwarded, Reply, Request, StartRequest, UserConfigText,
};

/// The status Warden exits with for its own errors.
const OWN_ERROR: i32 = 125;

const PASSED_ON: [(Signal, Forwarded); 7] = [
    (Signal::SIGINT, Forwarded::Interrupt),
    (Signal::SIGQUIT, Forwarded::Quit),
    (Signal::SIGWINCH, Forwarded::Resize),
    (Signal::SIGTSTP, Forwarded::Suspend),
    (Signal::SIGCONT, Forwarded::Resume),
    (Signal::SIGHUP, Forwarded::Hangup),
    (Signal::SIGTERM, Forwarded::Terminate),
];

pub fn connect(socket: &Path) -> anyhow::Result<UnixStream> {
    UnixStream::connect(socket).map_err(|e| {
        anyhow!(
            "without root, sessions are started by the Warden service, and {} does not answer \
             ({e}): is it installed and running (`systemctl status wardend.socket`)? Root can \
             run sessions directly: sudo warden run -- ...",
            socket.display()
        )
    })
}

/// Runs `args` (the command line after `warden`) as a session of the service at `socket`;
/// `config` is the user configuration file to send (read here, as the user).
pub fn run(socket: &Path, args: Vec<OsString>, config: &Path) -> anyhow::Result<i32> {
    let stream = connect(socket)?;
    let user_config = read_config(config)?;
    let mut signals = SigSet::empty();
    for (s, _) in PASSED_ON {
        signals.add(s);
    }
    signals.thread_block().context("blocking signals")?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC)?;
    let request = Request::Start(Box::new(StartRequest {
        version: protocol::VERSION,
        args: args.iter().map(|a| Bytes::from(a.as_os_str())).collect(),
        cwd: Bytes::from(std::env::current_dir()?.as_os_str()),
        env: std::env::vars_os()
            .map(|(k, v)| (Bytes::from(k.as_os_str()), Bytes::from(v.as_os_str())))
            .collect(),
        user_config,
    }));
    protocol::write_frame(&mut &stream, &request)?;
    warden_agent::fd_passing::send_fds(stream.as_fd(), &[0, 1, 2])?;
    follow(&stream, &signal_fd)
}

/// Until the session says how it ended.
fn follow(stream: &UnixStream, signal_fd: &SignalFd) -> anyhow::Result<i32> {
    loop {
        let mut fds = [
            PollFd::new(stream.as_fd(), PollFlags::POLLIN),
            PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other?,
        };
        let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
        if ready(&fds[1]) {
            pass_on(stream, signal_fd)?;
        }
        if ready(&fds[0]) {
            match protocol::read_frame::<Reply>(&mut &*stream) {
                Ok(Reply::Started { session }) => tracing::debug!("session {session} started"),
                Ok(Reply::Exited { status }) => return Ok(status),
                Ok(Reply::Refused { message }) => {
                    eprintln!("warden: {message}");
                    return Ok(OWN_ERROR);
                }
                Ok(Reply::Sessions { .. }) => {}
                Err(protocol::FrameError::Closed) => {
                    eprintln!(
                        "warden: the session ended without saying how (its supervisor died?)"
                    );
                    return Ok(OWN_ERROR);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn pass_on(stream: &UnixStream, signal_fd: &SignalFd) -> anyhow::Result<()> {
    let Some(info) = signal_fd.read_signal()? else {
        return Ok(());
    };
    let Some(&(signal, forwarded)) = PASSED_ON.iter().find(|(s, _)| *s as u32 == info.ssi_signo)
    else {
        return Ok(());
    };
    // A session already gone has nothing to pass on to: its exit status follows.
    let _ = protocol::write_frame(&mut &*stream, &ClientSignal { signal: forwarded });
    if signal == Signal::SIGTSTP {
        // Stopped like any job, so that the shell gets the terminal back; SIGCONT resumes
        // the command with us.
        nix::sys::signal::raise(Signal::SIGSTOP)?;
    }
    Ok(())
}

/// The user configuration, read as the user (never by root on the user's behalf: a link in
/// the user's home could name a file only root may read).
fn read_config(path: &Path) -> anyhow::Result<Option<UserConfigText>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("reading {}: {e}", path.display())),
        Ok(bytes) => Ok(Some(UserConfigText {
            path: path.display().to_string(),
            text: String::from_utf8(bytes)
                .map_err(|_| anyhow!("{} is not UTF-8", path.display()))?,
        })),
    }
}

/// `warden status` through the service: the sessions it shows this user.
pub fn status(socket: &Path) -> anyhow::Result<Vec<protocol::SessionView>> {
    let stream = connect(socket)?;
    protocol::write_frame(&mut &stream, &Request::Status)?;
    match protocol::read_frame::<Reply>(&mut &stream)? {
        Reply::Sessions { sessions } => Ok(sessions),
        Reply::Refused { message } => Err(anyhow!(message)),
        _ => Err(anyhow!(
            "the service answered something else than the sessions"
        )),
    }
}
