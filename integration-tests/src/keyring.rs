//! Real keyrings for the credential tests: gnome-keyring's Secret Service on a private D-Bus
//! (`dbus-run-session`), each test with a home of its own; and what a test checks afterwards:
//! that a value is in no file.
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::{private_dir, warden_bin};

/// A gnome-keyring home of its own: its keyrings live in `dir/data/keyrings`.
pub struct SecretService {
    pub dir: tempfile::TempDir,
}

pub const PASSWORD: &str = "w4rd3n-keyring-password";

impl SecretService {
    pub fn new() -> Option<Self> {
        for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
            if !on_path(tool) {
                eprintln!("skipped: {tool} is not installed (Debian packages dbus, gnome-keyring)");
                return None;
            }
        }
        Some(Self { dir: private_dir() })
    }

    /// Runs `script` in a new bus with a new daemon; `unlock` says whether the daemon is given
    /// the password (else the login keyring, once made, stays locked).
    pub fn run(&self, unlock: bool, script: &str) -> Output {
        let mut sh = Command::new("sh");
        sh.args(["-c", script]);
        self.wrap(unlock, &sh).output().expect("dbus-run-session")
    }

    /// `inner` (program, arguments, environment) run in a new bus with a new daemon.
    pub fn wrap(&self, unlock: bool, inner: &Command) -> Command {
        let start_daemon = if unlock {
            format!(
                "printf %s '{PASSWORD}' | gnome-keyring-daemon --unlock --components=secrets >/dev/null"
            )
        } else {
            "gnome-keyring-daemon --start --components=secrets >/dev/null".to_string()
        };
        let home = self.dir.path();
        std::fs::create_dir_all(home.join("run")).unwrap();
        let mut c = Command::new("timeout");
        c.args(["120", "dbus-run-session", "--", "sh", "-c"])
            .arg(format!("{start_daemon}; exec \"$@\""))
            .arg("sh")
            .arg(inner.get_program())
            .args(inner.get_args())
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env("W", warden_bin());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }
}

pub fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(p);
            }
        }
    }
    found
}
