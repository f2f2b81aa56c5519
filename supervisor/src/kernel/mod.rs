//! Everything that touches the kernel's eBPF machinery: discovering layouts (BTF, tracefs),
//! loading and attaching Warden's programs, and reading their maps.
pub mod agent_guard;
pub mod bpffs;
pub mod btf;
pub mod file_hooks;
pub mod hook_tier;
pub mod lsm;
mod mount_once;
pub mod programs;
pub mod tracefs;
pub mod unix_programs;
pub mod verifier;
