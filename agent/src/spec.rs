//! What the supervisor tells the launcher.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The launcher reads its `LaunchSpec` (JSON) from this descriptor.
pub const SPEC_FD: i32 = 3;
/// The launcher sends the seccomp notification listener back over this Unix socket.
pub const NOTIFY_SOCKET_FD: i32 = 4;

pub use warden_wire::SandboxMode;

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
    /// The network policy allows ICMP echo (ping sockets; the kernel decides destinations).
    #[serde(default)]
    pub allow_icmp: bool,
    /// Mounts made in the command's private mount namespace, in this order, before Landlock
    /// and before privileges are dropped (see `mount_ns`). Empty: no namespace of its own.
    #[serde(default)]
    pub mounts: Vec<MountOp>,
}

/// One operation of the launcher's mount plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum MountOp {
    /// `path` bound onto itself: a mount point, which cannot be renamed or removed
    /// (EBUSY); with `read_only`, nothing beneath it can be changed either (EROFS).
    BindSelf { path: PathBuf, read_only: bool },
    /// The session's socket directory at `path` (an empty directory only root may change): a
    /// tmpfs of the user's, where symbolic links are not followed (see `mount_ns`).
    SocketDir { path: PathBuf, uid: u32, gid: u32 },
    /// `path` covered with an empty read-only tmpfs (the user's runtime directory).
    Hide { path: PathBuf },
}
