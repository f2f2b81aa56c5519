//! `wardend`: takes requests on its socket and starts each session as a `warden run` of its
//! own (a root process, not a thread of the daemon), handing it the client's connection and
//! standard streams. A session therefore outlives a restart or a crash of the daemon, stays
//! confined and goes on talking to its client; the daemon keeps no state a restart would lose:
//! the live sessions are the registrations in RUN_DIR (`warden status`), and orphans (their
//! supervisor died) are ended at start (`recovery`).
use std::{
    ffi::OsString,
    io::{Seek as _, Write as _},
    os::{
        fd::{AsFd as _, AsRawFd as _, OwnedFd},
        unix::{
            net::{UnixListener, UnixStream},
            process::CommandExt as _,
        },
    },
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
};

use super::{
    authorize::{self, Asker},
    protocol::{self, Reply, Request, SessionView, StartRequest},
    quota::Quota,
};
use crate::{peer::Peer, recovery, settings};

/// What the daemon needs besides its socket.
pub struct DaemonOptions {
    /// The `warden` executable that runs each session.
    pub exe: PathBuf,
    pub run_dir: PathBuf,
    /// Where the requirements come from (the user config is the client's).
    pub requirements: settings::Sources,
    /// The same sources as flags of `warden run`, so that each session obeys the very
    /// requirements its start was authorised against.
    pub requirement_flags: Vec<OsString>,
    /// Checks a user's `warden` arguments and returns those of the session's `warden run`,
    /// or the message that refuses them. The binary knows its command line; the daemon not.
    pub check_args: Box<CheckArgs>,
}

/// See [`DaemonOptions::check_args`].
pub type CheckArgs = dyn Fn(&StartArgs) -> Result<Vec<OsString>, String> + Send + Sync;

/// The user's command line, with what the daemon adds.
pub struct StartArgs {
    /// As the user typed them after `warden`.
    pub args: Vec<OsString>,
    /// To go right after `run`: who the session runs as, its link to the client.
    pub inserted: Vec<OsString>,
}

/// How long a client has to send its request (and its descriptors).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The descriptors a session gets: its client's connection and the hand-off.
pub const CLIENT_FD: i32 = 3;
pub const HANDOFF_FD: i32 = 4;

/// What the daemon hands a session besides its command line (read once from [`HANDOFF_FD`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    pub env: Vec<(protocol::Bytes, protocol::Bytes)>,
    pub user_config: Option<protocol::UserConfigText>,
}

/// Ends the sessions whose supervisor died (while the daemon was down, or with it) and counts
/// the live ones, which need nothing from the daemon: before it listens, so that nobody sees
/// an orphan as live.
pub fn take_back(run_dir: &std::path::Path) {
    for r in recovery::recover(run_dir) {
        tracing::warn!(
            "ended session {} whose supervisor had died ({} processes killed{})",
            r.id,
            r.killed,
            r.error.map(|e| format!(", {e}")).unwrap_or_default()
        );
    }
    let live = recovery::live(run_dir);
    tracing::info!("{} live sessions taken back", live.len());
}

pub fn serve(listener: UnixListener, opts: DaemonOptions) -> anyhow::Result<()> {
    let opts = Arc::new(opts);
    let quota = Arc::new(Quota::default());
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                continue;
            }
        };
        let (opts, quota) = (opts.clone(), quota.clone());
        std::thread::spawn(move || {
            if let Err(e) = connection(stream, &opts, &quota) {
                tracing::info!("a client: {e}");
            }
        });
    }
    Ok(())
}

fn connection(stream: UnixStream, opts: &DaemonOptions, quota: &Arc<Quota>) -> anyhow::Result<()> {
    let peer = Peer::of(&stream)?;
    // A client that connects and says nothing does not hold a thread for ever.
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let request: Request = protocol::read_frame(&mut &stream)?;
    match request {
        Request::Status => {
            let sessions = recovery::live(&opts.run_dir)
                .into_iter()
                .filter(|s| peer.uid == 0 || s.uid == peer.uid)
                .map(view)
                .collect();
            protocol::write_frame(&mut &stream, &Reply::Sessions { sessions })?;
        }
        Request::Start(req) => {
            let fds = agent_fds(&stream)?;
            // The session reads its client's signals for as long as it runs.
            stream.set_read_timeout(None)?;
            if let Err(message) = start(&peer, *req, fds, &stream, opts, quota) {
                tracing::info!("refused uid {} (pid {}): {message}", peer.uid, peer.pid);
                protocol::write_frame(&mut &stream, &Reply::Refused { message })?;
            }
        }
    }
    Ok(())
}

fn agent_fds(stream: &UnixStream) -> std::io::Result<Vec<OwnedFd>> {
    warden_agent::fd_passing::recv_fds(stream.as_fd()).map_err(std::io::Error::from)
}

pub fn view(s: recovery::SessionInfo) -> SessionView {
    SessionView {
        id: s.id,
        user: s.user,
        uid: s.uid,
        supervisor_pid: s.supervisor_pid,
        started: s.started,
        command: s.command,
        workspace: s.workspace,
    }
}

/// Checks the request and starts its session; the message says why not.
fn start(
    peer: &Peer,
    req: StartRequest,
    fds: Vec<OwnedFd>,
    stream: &UnixStream,
    opts: &DaemonOptions,
    quota: &Arc<Quota>,
) -> Result<(), String> {
    if req.version != protocol::VERSION {
        return Err(format!(
            "this wardend speaks protocol {}, the client {}: use the warden of the same version",
            protocol::VERSION,
            req.version
        ));
    }
    if peer.in_a_session()? {
        return Err("a process of a Warden session cannot start another session".into());
    }
    let user =
        crate::target_user::resolve(Some(&peer.uid.to_string())).map_err(|e| e.to_string())?;
    let mut warnings = Vec::new();
    let layers =
        settings::layers(&opts.requirements, &mut warnings).map_err(|e| format!("{e:#}"))?;
    let effective = warden_requirements::merge(&layers);
    let groups = peer.groups();
    let asker = Asker {
        uid: peer.uid,
        name: &user.name,
        groups: &groups,
    };
    authorize::may_start(&asker, &effective, &authorize::SystemGroups)?;
    let [stdin, stdout, stderr]: [OwnedFd; 3] = fds
        .try_into()
        .map_err(|fds: Vec<OwnedFd>| format!("expected 3 standard streams, got {}", fds.len()))?;
    let mut inserted: Vec<OsString> = ["--user", &peer.uid.to_string()]
        .iter()
        .map(OsString::from)
        .collect();
    inserted.extend(opts.requirement_flags.iter().cloned());
    inserted.extend(
        [
            "--client-fd".to_string(),
            CLIENT_FD.to_string(),
            "--handoff-fd".to_string(),
            HANDOFF_FD.to_string(),
        ]
        .map(OsString::from),
    );
    let args = StartArgs {
        args: req.args.into_iter().map(OsString::from).collect(),
        inserted,
    };
    let argv = (opts.check_args)(&args)?;
    let handoff = handoff(&Handoff {
        env: req.env,
        user_config: req.user_config,
    })
    .map_err(|e| format!("handing the session its environment: {e}"))?;
    // The directory the client is in, not the one it names: root enters it for the user.
    let (cwd_fd, cwd) = peer.cwd()?;
    let claimed = PathBuf::from(OsString::from(req.cwd));
    if claimed != cwd {
        return Err(format!(
            "the client names {} as its current directory, but it is in {}",
            claimed.display(),
            cwd.display()
        ));
    }
    quota.admit(
        peer.uid,
        &user.name,
        effective.service_max_sessions_per_user.as_ref(),
        &opts.run_dir,
        || {
            spawn(
                &opts.exe,
                &argv,
                &cwd_fd,
                [stdin, stdout, stderr],
                stream,
                &handoff,
                quota.clone(),
            )
            .map_err(|e| format!("starting the session in {}: {e}", cwd.display()))
        },
    )
}

/// The hand-off as a sealed memory file the session reads.
fn handoff(h: &Handoff) -> std::io::Result<OwnedFd> {
    let fd =
        nix::sys::memfd::memfd_create(c"warden-handoff", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&serde_json::to_vec(h)?)?;
    file.rewind()?;
    Ok(file.into())
}

fn spawn(
    exe: &std::path::Path,
    argv: &[OsString],
    cwd: &OwnedFd,
    [stdin, stdout, stderr]: [OwnedFd; 3],
    client: &UnixStream,
    handoff: &OwnedFd,
    quota: Arc<Quota>,
) -> std::io::Result<u32> {
    // Numbered 10 or more, so that moving one to 3 or 4 cannot clobber the other.
    let (client, handoff) = (crate::launch::high(client)?, crate::launch::high(handoff)?);
    let (client_raw, handoff_raw) = (client.as_raw_fd(), handoff.as_raw_fd());
    let cwd_raw = cwd.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.args(argv)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    if let Some(log) = std::env::var_os("WARDEN_LOG") {
        cmd.env("WARDEN_LOG", log);
    }
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, fchdir, dup2).
    unsafe {
        cmd.pre_exec(move || {
            // Its own session: signals to the daemon (a restart) do not reach it. The
            // directory is entered before dup2 can reuse its descriptor's number.
            if libc::setsid() < 0
                || libc::fchdir(cwd_raw) < 0
                || libc::dup2(client_raw, CLIENT_FD) < 0
                || libc::dup2(handoff_raw, HANDOFF_FD) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop((client, handoff));
    let pid = child.id();
    // Reaped here while this daemon lives; after a restart, by init.
    std::thread::spawn(move || {
        let _ = child.wait();
        quota.ended(pid);
    });
    Ok(pid)
}
