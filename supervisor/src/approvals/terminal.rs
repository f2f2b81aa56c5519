//! The terminal prompt: requests for a person are shown, one at a time, on the terminal that
//! ran `warden run`, which answers with a key: approve once, approve for the session, deny.
//!
//! The agent shares that terminal and may be reading it. So the prompt runs in a helper
//! process (`warden approvals prompt`) in a process group of its own, which takes the
//! terminal's foreground for the question: the agent's reads then stop it (SIGTTIN) instead
//! of stealing the answer, and keystrokes it injects (TIOCSTI) are refused by its seccomp
//! filter. Afterwards the helper gives the foreground back and Warden resumes the agent's
//! process group (SIGCONT). Line editing is on and terminal signals off while it asks, so
//! Ctrl-C is an answer (deny), whatever mode the agent had left the terminal in.
//!
//! A session the service started has no controlling terminal: its client passed its terminal
//! as the standard streams, and the agent, in another process session, is not stopped by the
//! terminal when it reads. There the helper asks on that terminal while the whole session is
//! frozen (its cgroup), so that nothing of the agent runs, reads or types until the answer.
//!
//! Holding the foreground, the helper is also what learns that the terminal hung up (its read
//! ends, or the SIGHUP meant for the foreground reaches it, not Warden): it says so, and the
//! session ends as it would on that SIGHUP.
use std::{
    io::{self, Read, Write},
    os::fd::{AsFd, AsRawFd, OwnedFd},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicI32, Ordering},
    },
};

use nix::{
    errno::Errno,
    fcntl::OFlag,
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::{
        signal::{SigHandler, SigSet, Signal, signal},
        stat::Mode,
        termios::{self, LocalFlags, SetArg},
    },
    unistd::{Pid, getpgrp, tcgetpgrp, tcsetpgrp},
};
use serde::{Deserialize, Serialize};
use tokio::{
    io::AsyncReadExt,
    sync::{Notify, mpsc},
};

use super::{Broker, PendingView, Reply};
use crate::{
    events::{Scope, escape::for_terminal, render},
    freezer::{Freezer, Hold},
};

const TTY: &str = "/dev/tty";

/// What the helper prints: the person's answer, or that the terminal hung up.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered(Reply),
    HungUp,
}

/// [`Outcome::HungUp`] as printed, written as is by the helper's SIGHUP handler.
const HUNG_UP_LINE: &[u8] = b"\"hung_up\"\n";

/// Opening the terminal failed because there is none any more: it hung up (ENXIO: the
/// session lost its controlling terminal; EIO: the terminal is hung up).
fn gone(e: Errno) -> bool {
    matches!(e, Errno::ENXIO | Errno::EIO)
}

/// Where the prompt asks.
pub enum Terminal {
    /// Warden's controlling terminal: the helper takes its foreground.
    Controlling,
    /// The terminal a client of the service passed: the session is frozen while asking.
    Passed {
        path: std::path::PathBuf,
        freezer: Arc<Freezer>,
    },
}

impl Terminal {
    /// Warden's controlling terminal when it is in its foreground; else, for a session the
    /// service started (`passed`), the client's terminal on standard input.
    pub fn find(passed: bool, freezer: Arc<Freezer>) -> Option<Self> {
        if available() {
            return Some(Self::Controlling);
        }
        if !passed || !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
            return None;
        }
        let path = std::fs::read_link("/proc/self/fd/0").ok()?;
        Some(Self::Passed { path, freezer })
    }

    fn path(&self) -> &std::path::Path {
        match self {
            Self::Controlling => std::path::Path::new(TTY),
            Self::Passed { path, .. } => path,
        }
    }
}

/// Whether Warden can ask at its terminal: it has one, and is in its foreground.
fn available() -> bool {
    let Ok(tty) = nix::fcntl::open(TTY, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) else {
        return false;
    };
    tcgetpgrp(&tty).is_ok_and(|fg| fg == getpgrp())
}

/// Shows queued requests one at a time until the queue closes or the terminal hangs up;
/// then every request waiting for a person is denied and `hangup` is woken.
pub async fn serve(
    broker: Arc<Broker>,
    mut queue: mpsc::UnboundedReceiver<String>,
    hangup: Arc<Notify>,
    terminal: Terminal,
) {
    while let Some(id) = queue.recv().await {
        // Answered elsewhere (or timed out) while it waited for its turn.
        let Some((view, answered)) = broker.watch(&id) else {
            continue;
        };
        let frozen = match &terminal {
            Terminal::Passed { freezer, .. } => Some(freezer),
            Terminal::Controlling => None,
        };
        if let Some(f) = frozen {
            f.hold(Hold::TerminalPrompt);
        }
        let outcome = ask(&view, &answered, terminal.path()).await;
        if let Some(f) = frozen {
            f.release(Hold::TerminalPrompt);
        }
        match outcome {
            Ok(Some(Outcome::Answered(reply))) => {
                let _ = broker.answer(&id, &reply, "the terminal".into());
            }
            Ok(Some(Outcome::HungUp)) => {
                tracing::warn!("the terminal hung up while asking about {id}");
                broker.terminal_hung_up();
                hangup.notify_one();
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("approval prompt at the terminal: {e}"),
        }
    }
}

/// Runs the helper for one request; `None` when the request was answered elsewhere first.
async fn ask(
    view: &PendingView,
    answered: &Notify,
    tty: &std::path::Path,
) -> io::Result<Option<Outcome>> {
    // Not current_exe(): after a package upgrade its path names the new binary (or none);
    // /proc/self/exe is still this process's own.
    let exe = std::path::PathBuf::from("/proc/self/exe");
    let saved = match nix::fcntl::open(tty, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(tty) => tty,
        Err(e) if gone(e) => return Ok(Some(Outcome::HungUp)),
        Err(e) => return Err(e.into()),
    };
    let saved_attrs = termios::tcgetattr(&saved).ok();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["approvals", "prompt", "--tty"])
        .arg(tty)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(crate::signals::unblock_in_child);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &serde_json::to_vec(view)?).await?;
    drop(stdin);
    let mut out = Vec::new();
    let outcome = tokio::select! {
        r = stdout.read_to_end(&mut out) => {
            r?;
            let status = child.wait().await?;
            Some(serde_json::from_slice::<Outcome>(&out).map_err(|_| {
                io::Error::other(format!("the prompt helper gave no answer ({status})"))
            }))
        }
        _ = answered.notified() => {
            tracing::debug!("approval {} answered elsewhere: taking the prompt down", view.id);
            // The helper puts the terminal back on SIGTERM.
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            child.wait().await?;
            None
        }
    };
    tracing::debug!(
        "approval {}: prompt helper done, giving the terminal back",
        view.id
    );
    give_back(&saved, saved_attrs.as_ref());
    outcome.transpose()
}

/// Whatever became of the helper: the terminal's foreground and modes are the agent's
/// again, and the agent's processes stopped for reading meanwhile go on.
fn give_back(tty: &OwnedFd, attrs: Option<&termios::Termios>) {
    // SIGTTOU would stop us for changing the foreground from the background: ignore it.
    // SAFETY: setting a disposition; nothing else handles SIGTTOU in Warden.
    unsafe {
        let _ = signal(Signal::SIGTTOU, SigHandler::SigIgn);
    }
    if tcgetpgrp(tty).is_ok_and(|fg| fg != getpgrp()) {
        let _ = tcsetpgrp(tty, getpgrp());
    }
    if let Some(attrs) = attrs {
        let _ = termios::tcsetattr(tty, SetArg::TCSADRAIN, attrs);
    }
    let _ = nix::sys::signal::killpg(getpgrp(), Signal::SIGCONT);
}

/// The terminal, its modes and foreground group before the prompt, for the signal handler.
static TTY_FD: AtomicI32 = AtomicI32::new(-1);
static PREVIOUS_FG: AtomicI32 = AtomicI32::new(-1);
static mut PREVIOUS_ATTRS: Option<libc::termios> = None;

extern "C" fn restore_and_exit(signal: libc::c_int) {
    let fd = TTY_FD.load(Ordering::SeqCst);
    // SAFETY: tcsetattr, tcsetpgrp, write and _exit are async-signal-safe; PREVIOUS_ATTRS
    // was written before this handler was installed and is not written again. On a hung-up
    // terminal the first two fail, harmlessly.
    unsafe {
        if let Some(attrs) = &*std::ptr::addr_of!(PREVIOUS_ATTRS) {
            libc::tcsetattr(fd, libc::TCSADRAIN, attrs);
        }
        libc::tcsetpgrp(fd, PREVIOUS_FG.load(Ordering::SeqCst));
        if signal == libc::SIGHUP {
            libc::write(1, HUNG_UP_LINE.as_ptr().cast(), HUNG_UP_LINE.len());
            libc::_exit(0);
        }
        libc::_exit(1);
    }
}

/// `warden approvals prompt --tty PATH`: the helper. Reads the request (JSON) on stdin, asks
/// at the terminal, prints the [`Outcome`] (JSON) on stdout. It takes the terminal's
/// foreground when the terminal is its controlling one (otherwise Warden froze the session).
pub fn prompt_main(tty: &std::path::Path) -> anyhow::Result<()> {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input)?;
    let view: PendingView = serde_json::from_str(&input)?;
    let tty = match nix::fcntl::open(tty, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(tty) => tty,
        Err(e) if gone(e) => return print_outcome(&Outcome::HungUp),
        Err(e) => return Err(e.into()),
    };
    // SAFETY: dispositions set before anything else runs in this small process.
    unsafe {
        signal(Signal::SIGTTOU, SigHandler::SigIgn)?;
    }
    // None: not our controlling terminal (the service's client's), whose foreground no
    // process of ours can take.
    let previous_fg = tcgetpgrp(&tty).ok();
    let previous = termios::tcgetattr(&tty)?;
    TTY_FD.store(tty.as_raw_fd(), Ordering::SeqCst);
    PREVIOUS_FG.store(previous_fg.map_or(-1, |p| p.as_raw()), Ordering::SeqCst);
    // SAFETY: written once, before the handlers that read it exist.
    unsafe {
        PREVIOUS_ATTRS = Some(previous.clone().into());
        for s in [Signal::SIGTERM, Signal::SIGHUP] {
            signal(s, SigHandler::Handler(restore_and_exit))?;
        }
    }
    if previous_fg.is_some() {
        tcsetpgrp(&tty, getpgrp())?;
    }
    let mut asking = previous.clone();
    asking.local_flags |= LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ECHOE;
    asking.local_flags &= !LocalFlags::ISIG;
    asking.input_flags |= termios::InputFlags::ICRNL;
    termios::tcsetattr(&tty, SetArg::TCSADRAIN, &asking)?;
    let outcome = question(&tty, &view);
    // Best effort: a hung-up terminal refuses both, and Warden gives the terminal back too.
    let _ = termios::tcsetattr(&tty, SetArg::TCSADRAIN, &previous);
    if let Some(fg) = previous_fg {
        let _ = tcsetpgrp(&tty, fg);
    }
    // From here the handlers must not add their line to the outcome.
    let mut handled = SigSet::empty();
    handled.add(Signal::SIGTERM);
    handled.add(Signal::SIGHUP);
    handled.thread_block()?;
    print_outcome(&outcome?)
}

fn print_outcome(outcome: &Outcome) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(outcome)?);
    Ok(())
}

/// Whether the terminal hung up: the kernel says so to poll (POLLHUP), or a read or write
/// failed with EIO.
fn hung_up(tty: &OwnedFd, error: Option<&io::Error>) -> bool {
    if error.is_some_and(|e| e.raw_os_error() == Some(libc::EIO)) {
        return true;
    }
    let mut fds = [PollFd::new(tty.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

fn describe(view: &PendingView) -> String {
    let s = &view.subject;
    let what = match (&s.name, &s.program) {
        (Some(name), _) => format!(
            "look up and connect to {} ({})",
            for_terminal(name),
            s.qtype.as_deref().unwrap_or("")
        ),
        (None, _) => format!("run {} (pid {})", render::command_line(&s.argv), s.pid),
    };
    let mut text = format!(
        "\r\nwarden: approval needed [{}]\r\n  the agent wants to {what}\r\n  why:  {}\r\n",
        view.id,
        for_terminal(&view.why)
    );
    if let Some(r) = &view.risk {
        text.push_str(&format!(
            "  risk: {}: {}\r\n",
            r.level,
            for_terminal(&r.reasons.join("; "))
        ));
    }
    text
}

/// Asks until the person answers or the terminal hangs up.
fn question(tty: &OwnedFd, view: &PendingView) -> io::Result<Outcome> {
    match ask_at(tty, view) {
        Ok(Some(reply)) => Ok(Outcome::Answered(reply)),
        Ok(None) if hung_up(tty, None) => Ok(Outcome::HungUp),
        Err(e) if hung_up(tty, Some(&e)) => Ok(Outcome::HungUp),
        Err(e) => Err(e),
        // End of input (Ctrl-D) on a terminal still there.
        Ok(None) => Ok(Outcome::Answered(Reply {
            approve: false,
            scope: Scope::Once,
            reason: None,
        })),
    }
}

/// The question and its answer; `None` at the end of input.
fn ask_at(tty: &OwnedFd, view: &PendingView) -> io::Result<Option<Reply>> {
    let mut out = std::fs::File::from(tty.try_clone()?);
    let mut input = std::fs::File::from(tty.try_clone()?);
    out.write_all(describe(view).as_bytes())?;
    loop {
        write!(
            out,
            "  [y] approve once  [s] approve for this session  [n] deny  (denied in {} s): ",
            view.expires_in_ms / 1000
        )?;
        let mut line = [0u8; 256];
        let n = input.read(&mut line)?;
        let deny = Reply {
            approve: false,
            scope: Scope::Once,
            reason: None,
        };
        if n == 0 {
            return Ok(None);
        }
        let answer = String::from_utf8_lossy(&line[..n])
            .trim()
            .to_ascii_lowercase();
        let approve = |scope| Reply {
            approve: true,
            scope,
            reason: None,
        };
        match answer.as_str() {
            "y" | "yes" => return Ok(Some(approve(Scope::Once))),
            "s" | "session" => return Ok(Some(approve(Scope::Session))),
            // Ctrl-C arrives as a plain character while terminal signals are off.
            "n" | "no" | "\u{3}" => return Ok(Some(deny)),
            _ => out.write_all(b"  please answer y, s or n\r\n")?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_handlers_line_is_the_hang_up_outcome() {
        let line: Outcome = serde_json::from_slice(HUNG_UP_LINE).unwrap();
        assert_eq!(line, Outcome::HungUp);
        let answered = Outcome::Answered(Reply {
            approve: true,
            scope: Scope::Session,
            reason: None,
        });
        let text = serde_json::to_string(&answered).unwrap();
        assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), answered);
    }
}
