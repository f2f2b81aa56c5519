//! A `warden daemon` (wardend) of a test's own: private state, run directory, requirements
//! and socket, killed when dropped; and `warden run` as an ordinary user through it.
use std::{
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command},
    time::Duration,
};

use crate::{private_dir, require_root, requirements_file, wait_for, warden_bin};

pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
    pub state: tempfile::TempDir,
    pub run: tempfile::TempDir,
    pub requirements: String,
    activated: bool,
    flags: Vec<String>,
    _config: tempfile::TempDir,
    _socket_dir: tempfile::TempDir,
}

impl Daemon {
    /// A daemon obeying `requirements` (a requirements file's text).
    pub fn start(requirements: &str) -> Self {
        Self::start_with(requirements, false, &[])
    }

    /// With more `warden daemon` flags.
    pub fn start_with_flags(requirements: &str, flags: &[&str]) -> Self {
        Self::start_with(requirements, false, flags)
    }

    /// As systemd's socket unit starts it: `systemd-socket-activate` listens on the socket and
    /// starts the daemon with it (LISTEN_FDS) at the first connection. None when that tool
    /// is missing.
    pub fn start_activated(requirements: &str) -> Option<Self> {
        let tool = Path::new("/usr/bin/systemd-socket-activate");
        tool.exists()
            .then(|| Self::start_with(requirements, true, &[]))
    }

    fn start_with(requirements: &str, activated: bool, flags: &[&str]) -> Self {
        require_root();
        let config = private_dir();
        let requirements = requirements_file(config.path(), requirements);
        // Users must reach the socket: a directory of its own, open to all, outside /tmp.
        std::fs::create_dir_all("/run/warden-tests").unwrap();
        let socket_dir = tempfile::tempdir_in("/run/warden-tests").unwrap();
        std::fs::set_permissions(socket_dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let mut d = Self {
            child: None,
            socket: socket_dir.path().join("wardend.sock"),
            state: private_dir(),
            run: private_dir(),
            requirements,
            _config: config,
            _socket_dir: socket_dir,
            activated,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let mut command = if self.activated {
            let mut c = Command::new("/usr/bin/systemd-socket-activate");
            c.arg("--listen").arg(&self.socket).arg(warden_bin());
            c
        } else {
            Command::new(warden_bin())
        };
        // The socket the daemon would bind without systemd: nowhere anyone connects.
        let own = if self.activated {
            self.socket.with_file_name("not-activated.sock")
        } else {
            self.socket.clone()
        };
        let child = command
            .arg("daemon")
            .arg("--socket")
            .arg(&own)
            .arg("--state-dir")
            .arg(self.state.path())
            .arg("--run-dir")
            .arg(self.run.path())
            .args(["--requirements", &self.requirements])
            .arg("--managed-dir")
            .arg(self._config.path().join("managed.d"))
            .args(&self.flags)
            .spawn()
            .expect("starting warden daemon");
        self.child = Some(child);
        assert!(
            wait_for(Duration::from_secs(10), || {
                std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
            }),
            "the daemon did not listen on {}",
            self.socket.display()
        );
        if self.activated {
            // What the socket unit's SocketMode=0666 does.
            std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
    }

    /// Kills the daemon (SIGKILL: a crash) and leaves its sessions to themselves.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon as systemd does (SIGTERM), then starts it again on the same files.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Starts it again after [`Daemon::crash`].
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// `warden ARGS` as `uid`/`gid` in `cwd`, talking to this daemon.
    pub fn as_user(&self, uid: u32, gid: u32, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(warden_bin());
        c.args(args)
            .env("WARDEN_SOCKET", &self.socket)
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID")
            .env_remove("WARDEN_STATE_DIR")
            .env_remove("WARDEN_RUN_DIR")
            .current_dir(cwd)
            .uid(uid)
            .gid(gid);
        c
    }

    /// `warden run ARGS -- CMD` as `uid`, with the tests' usual network and approval flags.
    pub fn run_as(&self, uid: u32, gid: u32, cwd: &Path, args: &[&str], cmd: &[&str]) -> Command {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend(["--dns-upstream", "127.0.0.1:9", "--unattended", "--"]);
        all.extend_from_slice(cmd);
        self.as_user(uid, gid, cwd, &all)
    }

    /// The session logs recorded so far.
    pub fn logs(&self) -> Vec<PathBuf> {
        let Ok(dirs) = std::fs::read_dir(self.state.path().join("sessions")) else {
            return Vec::new();
        };
        dirs.filter_map(Result::ok)
            .map(|d| d.path().join("events.jsonl"))
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.crash();
    }
}
