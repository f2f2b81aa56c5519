//! Host services on pathname UNIX sockets: where the session's own sockets live, and which
//! environment variables would point the agent at a host socket.
//!
//! The threat: the Docker socket is root on the host, the D-Bus session bus starts any
//! command outside the sandbox and hands out Secret Service secrets, ssh-agent and gpg-agent
//! use the user's keys. The kernel refuses connects to any of them unless the policy allows the
//! path (kernel/unix_programs.rs); the variables that name them are not passed on either, so
//! that well-behaved tools do not even try.
use std::{
    ffi::{OsStr, OsString},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use crate::agent_api;

/// The session's socket directory: a private tmpfs in the agent's mount namespace (symbolic
/// links are not followed in it, so a name there cannot lead to a socket elsewhere), which is
/// the agent's `$XDG_RUNTIME_DIR`.
pub fn socket_dir(session_id: &str) -> PathBuf {
    Path::new(agent_api::SOCKET_DIR).join(format!("{session_id}-sockets"))
}

pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";

/// The mount point of the socket directory on the host: an empty directory that only
/// root may change, removed when dropped.
pub struct MountPoint(PathBuf);

impl MountPoint {
    pub fn create(path: PathBuf) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&path)?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for MountPoint {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.0) {
            tracing::warn!("removing {}: {e}", self.0.display());
        }
    }
}

/// The user's runtime directory, hidden from the agent unless the policy allows a socket in
/// it (then the kernel's check alone decides).
pub fn hidden_dirs(uid: u32, allowed: &[PathBuf]) -> Vec<PathBuf> {
    let runtime = PathBuf::from(format!("/run/user/{uid}"));
    if runtime.is_dir() && !allowed.iter().any(|p| p.starts_with(&runtime)) {
        vec![runtime]
    } else {
        Vec::new()
    }
}

/// How a variable names a socket.
#[derive(Clone, Copy)]
enum Names {
    /// The value is the path.
    Path,
    /// `path:pid:version` (GPG_AGENT_INFO), or `path,pid,index` (TMUX).
    PathThen(u8),
    /// A D-Bus address list: `unix:path=/run/...,guid=...;...` (abstract addresses are left to
    /// Landlock's scoping).
    DBus,
    /// `unix:/path` or `unix:///path` (PULSE_SERVER, DOCKER_HOST); other schemes are network
    /// addresses, which the network allowlist decides.
    UnixUrl,
    /// An X11 display: `:N` or `unix:N` is /tmp/.X11-unix/XN; `host:N` is TCP.
    X11,
    /// A Wayland display: a name in `$XDG_RUNTIME_DIR`, or an absolute path.
    Wayland,
}

/// Variables that name host sockets.
const VARIABLES: &[(&str, Names)] = &[
    ("SSH_AUTH_SOCK", Names::Path),
    ("GPG_AGENT_INFO", Names::PathThen(b':')),
    ("DBUS_SESSION_BUS_ADDRESS", Names::DBus),
    ("DBUS_SYSTEM_BUS_ADDRESS", Names::DBus),
    ("DISPLAY", Names::X11),
    ("WAYLAND_DISPLAY", Names::Wayland),
    ("PULSE_SERVER", Names::UnixUrl),
    ("DOCKER_HOST", Names::UnixUrl),
    ("CONTAINER_HOST", Names::UnixUrl),
    ("TMUX", Names::PathThen(b',')),
    ("SWAYSOCK", Names::Path),
    ("I3SOCK", Names::Path),
];

/// The sockets a variable's value names (None: it names none, leave it).
fn sockets(names: Names, value: &OsStr, runtime_dir: Option<&OsStr>) -> Option<Vec<PathBuf>> {
    let v = value.as_bytes();
    let path = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
    match names {
        Names::Path => Some(vec![path(v)]),
        Names::PathThen(sep) => Some(vec![path(v.split(|&b| b == sep).next()?)]),
        Names::DBus => {
            let mut found = Vec::new();
            for address in v.split(|&b| b == b';') {
                let Some(params) = address.strip_prefix(b"unix:") else {
                    continue;
                };
                for kv in params.split(|&b| b == b',') {
                    if let Some(p) = kv.strip_prefix(b"path=") {
                        found.push(path(p));
                    }
                }
            }
            Some(found)
        }
        Names::UnixUrl => {
            let rest = v
                .strip_prefix(b"unix://")
                .or_else(|| v.strip_prefix(b"unix:"))?;
            Some(vec![path(rest)])
        }
        Names::X11 => {
            let display = v.strip_prefix(b"unix").unwrap_or(v).strip_prefix(b":")?;
            let number: Vec<u8> = display
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect();
            let mut p = b"/tmp/.X11-unix/X".to_vec();
            p.extend_from_slice(&number);
            Some(vec![path(&p)])
        }
        Names::Wayland => {
            if v.first() == Some(&b'/') {
                Some(vec![path(v)])
            } else {
                Some(vec![Path::new(runtime_dir?).join(OsStr::from_bytes(v))])
            }
        }
    }
}

/// What the agent's environment becomes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AgentEnv {
    /// Set (or replaced) for the agent.
    pub set: Vec<(String, OsString)>,
    /// Not passed on: they name sockets the session may not reach (names only, sorted).
    pub removed: Vec<String>,
}

/// The environment changes for a session whose socket directory is `dir` and whose policy
/// allows `allowed`: a variable naming only allowed sockets is kept (a relative Wayland name
/// is made absolute, since `$XDG_RUNTIME_DIR` moves); any other that names a socket is removed.
pub fn agent_env(
    env: impl Iterator<Item = (OsString, OsString)>,
    dir: &Path,
    allowed: &[PathBuf],
) -> AgentEnv {
    let env: Vec<(OsString, OsString)> = env.collect();
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_os_str())
    };
    let runtime_dir = get(XDG_RUNTIME_DIR);
    let mut out = AgentEnv {
        set: vec![(XDG_RUNTIME_DIR.into(), dir.as_os_str().to_owned())],
        removed: Vec::new(),
    };
    for (name, names) in VARIABLES {
        let Some(value) = get(name) else { continue };
        let Some(paths) = sockets(*names, value, runtime_dir) else {
            continue;
        };
        if !paths.is_empty() && paths.iter().all(|p| allowed.contains(p)) {
            if let (Names::Wayland, [absolute]) = (names, paths.as_slice()) {
                out.set
                    .push((name.to_string(), absolute.as_os_str().to_owned()));
            }
        } else {
            out.removed.push(name.to_string());
        }
    }
    out.removed.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(env: &[(&str, &str)], allowed: &[&str]) -> AgentEnv {
        agent_env(
            env.iter().map(|(k, v)| (k.into(), v.into())),
            Path::new("/run/warden-agent/s-sockets"),
            &allowed.iter().map(PathBuf::from).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn variables_naming_host_sockets_are_removed_unless_allowed() {
        let host = [
            ("SSH_AUTH_SOCK", "/tmp/ssh-x/agent.1"),
            ("GPG_AGENT_INFO", "/run/user/1000/gnupg/S.gpg-agent:0:1"),
            (
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/run/user/1000/bus,guid=abc",
            ),
            ("DISPLAY", ":0"),
            ("WAYLAND_DISPLAY", "wayland-0"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("DOCKER_HOST", "unix:///var/run/docker.sock"),
            ("TMUX", "/tmp/tmux-1000/default,123,0"),
            ("PATH", "/usr/bin"),
        ];
        // (allowed sockets, variables removed, variables set besides XDG_RUNTIME_DIR)
        type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                &[],
                &[
                    "DBUS_SESSION_BUS_ADDRESS",
                    "DISPLAY",
                    "DOCKER_HOST",
                    "GPG_AGENT_INFO",
                    "SSH_AUTH_SOCK",
                    "TMUX",
                    "WAYLAND_DISPLAY",
                ],
                &[],
            ),
            (
                &[
                    "/run/user/1000/bus",
                    "/tmp/.X11-unix/X0",
                    "/run/user/1000/wayland-0",
                    "/var/run/docker.sock",
                ],
                &["GPG_AGENT_INFO", "SSH_AUTH_SOCK", "TMUX"],
                &[("WAYLAND_DISPLAY", "/run/user/1000/wayland-0")],
            ),
        ];
        for (allowed, removed, extra) in cases {
            let out = run(&host, allowed);
            assert_eq!(out.removed, *removed, "allowed {allowed:?}");
            let mut set = vec![(
                "XDG_RUNTIME_DIR".to_string(),
                OsString::from("/run/warden-agent/s-sockets"),
            )];
            set.extend(
                extra
                    .iter()
                    .map(|(k, v)| (k.to_string(), OsString::from(v))),
            );
            assert_eq!(out.set, set, "allowed {allowed:?}");
        }
    }

    #[test]
    fn addresses_that_are_not_pathname_sockets_are_left_alone() {
        let out = run(
            &[
                ("DISPLAY", "remote.example.test:0"),
                ("DOCKER_HOST", "tcp://127.0.0.1:2375"),
                ("DBUS_SESSION_BUS_ADDRESS", "unix:abstract=/tmp/dbus-x"),
            ],
            &[],
        );
        // An abstract D-Bus address names no path: Landlock's scoping decides it; an
        // empty list is not "all allowed".
        assert_eq!(out.removed, ["DBUS_SESSION_BUS_ADDRESS"]);
    }

    #[test]
    fn x11_display_spellings() {
        for (value, path) in [
            (":0", "/tmp/.X11-unix/X0"),
            (":1.0", "/tmp/.X11-unix/X1"),
            ("unix:2", "/tmp/.X11-unix/X2"),
        ] {
            assert_eq!(
                sockets(Names::X11, OsStr::new(value), None),
                Some(vec![PathBuf::from(path)]),
                "{value}"
            );
        }
        assert_eq!(sockets(Names::X11, OsStr::new("host:0"), None), None);
    }
}
