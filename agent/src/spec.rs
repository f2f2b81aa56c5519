//! What the supervisor tells the launcher.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The launcher reads its `LaunchSpec` (JSON) from this descriptor.
pub const SPEC_FD: i32 = 3;
/// The launcher sends the seccomp notification listener back over this Unix socket.
pub const NOTIFY_SOCKET_FD: i32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Reads allowed (except denied paths), no writes but to devices like /dev/null.
    ReadOnly,
    /// ReadOnly plus writes beneath the write roots (workspace, temp dirs...).
    WorkspaceWrite,
    /// No file-system confinement (still observed; syscall filter and exec rules still hold).
    DangerFullAccess,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub mode: SandboxMode,
    /// Writable (with everything beneath) in `WorkspaceWrite` mode.
    pub write_roots: Vec<PathBuf>,
    /// Neither readable nor writable, even beneath a write root.
    pub denied_paths: Vec<PathBuf>,
    /// Readable, not writable, even beneath a write root.
    #[serde(default)]
    pub read_only_paths: Vec<PathBuf>,
    /// Signals to it, and tracing it, are refused.
    pub supervisor_pid: u32,
    /// The session's socket directory, mounted in the agent's own mount namespace (an
    /// existing, empty directory on the host).
    #[serde(default)]
    pub socket_dir: Option<PathBuf>,
    /// Covered with an empty read-only tmpfs in that namespace (the user's runtime directory).
    #[serde(default)]
    pub hidden_dirs: Vec<PathBuf>,
}
