//! The sandbox side of Warden: `warden-launcher` runs inside the session cgroup, confines
//! itself (Landlock, seccomp), drops to the invoking user and execs the agent command.
//!
//! The supervisor hands it a `LaunchSpec` on fd 3 and receives the seccomp notification
//! listener back on fd 4, through which it decides every exec (and sees every denied call).
//!
//! The agent API client (how the agent reports its prompts and tool calls) is the
//! `warden-agent-api` crate, so that an agent linking it does not pull in Landlock and seccomp.
pub mod capabilities;
pub mod fd_passing;
pub mod fs_confinement;
pub mod mount_ns;
pub mod sockets;
pub mod spec;
pub mod syscall_filter;
pub mod test_layers;
