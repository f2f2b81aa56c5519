//! The bpf_lsm tier's denial layer (`ebpf/programs/src/lsm.rs`): loading and attaching the
//! LSM programs, proving that the kernel runs them, and registering the protected files.
//!
//! An LSM program loads and attaches on a kernel built with BPF LSM even where `bpf` is not
//! in the active LSM list, and then never runs: the tier is only trusted after the file_open
//! program has been seen running (the self-test). Protected files are registered the same
//! way: the supervisor opens each one while the program watches its thread, so the program
//! records the file by the identity it will check later (the address of its inode; device and
//! inode numbers collide on overlayfs), and keeps it open so that the address stays its own.
use std::{
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use aya::{Btf, Ebpf, maps::Array, programs::Lsm};
use warden_common::{CALIBRATION_COUNT_ONLY, Calibration};

use super::{
    hook_tier::{self, HookTier},
    programs::{Attached, TierFailure, load_err, prog_err, program},
    unix_programs,
};

/// The programs and the hooks they attach to.
const PROGRAMS: [(&str, &str); 12] = [
    ("warden_lsm_file_open", "file_open"),
    ("warden_lsm_inode_create", "inode_create"),
    ("warden_lsm_inode_mkdir", "inode_mkdir"),
    ("warden_lsm_inode_mknod", "inode_mknod"),
    ("warden_lsm_inode_symlink", "inode_symlink"),
    ("warden_lsm_inode_rmdir", "inode_rmdir"),
    ("warden_lsm_inode_link", "inode_link"),
    ("warden_lsm_inode_unlink", "inode_unlink"),
    ("warden_lsm_inode_rename", "inode_rename"),
    ("warden_lsm_task_kill", "task_kill"),
    ("warden_lsm_ptrace", "ptrace_access_check"),
    ("warden_lsm_bpf", "bpf"),
];

/// On kernels without the cgroup UNIX socket hooks: the same decisions from the socket hooks.
const UNIX_PROGRAMS: [(&str, &str); 2] = [
    ("warden_lsm_socket_connect", "socket_connect"),
    ("warden_lsm_socket_sendmsg", "socket_sendmsg"),
];

/// Whether the LSM programs decide UNIX socket addresses on `tier` (they do where the cgroup
/// hooks, which are pinned and so outlive the supervisor, do not exist).
pub fn decides_unix_sockets(tier: HookTier) -> bool {
    tier == HookTier::BpfLsm && !unix_programs::kernel_has_hooks()
}

/// The programs this kernel gets.
fn programs() -> Vec<(&'static str, &'static str)> {
    let mut v = PROGRAMS.to_vec();
    if decides_unix_sockets(HookTier::BpfLsm) {
        v.extend(UNIX_PROGRAMS);
    }
    v
}

/// Attaches the LSM programs and registers `protected` (by index). Errors are reasons the
/// tier is not available, as `warden doctor` and `session.start` show them.
pub(super) fn attach(
    ebpf: &mut Ebpf,
    btf: &Btf,
    protected: &[PathBuf],
    log_dir: &Path,
) -> Result<Vec<Attached>, TierFailure> {
    let active = hook_tier::active_lsms()
        .map_err(|e| format!("reading the kernel's active LSM list: {e}"))?;
    if !active.iter().any(|l| l == "bpf") {
        return Err(TierFailure::Unavailable(format!(
            "`bpf` is not in the kernel's active LSM list ({})",
            active.join(",")
        )));
    }
    let attached = attach_programs(ebpf, btf, protected, log_dir, &active);
    if attached.is_err() {
        // Not left loaded (unused) beside the tier that takes over.
        for (name, _) in programs() {
            if let Ok(p) = program::<Lsm>(ebpf, name) {
                let _ = p.unload();
            }
        }
    }
    attached
}

fn attach_programs(
    ebpf: &mut Ebpf,
    btf: &Btf,
    protected: &[PathBuf],
    log_dir: &Path,
    active: &[String],
) -> Result<Vec<Attached>, TierFailure> {
    let mut links: Vec<Attached> = Vec::new();
    for (name, hook) in programs() {
        let p: &mut Lsm = program(ebpf, name)?;
        p.load(hook, btf).map_err(load_err(name, log_dir))?;
        let id = p.attach().map_err(prog_err(name))?;
        links.push(Box::new(p.take_link(id).map_err(prog_err(name))?));
    }
    let mut calibration: Array<_, Calibration> = Array::try_from(
        ebpf.map_mut("CALIBRATION")
            .ok_or("map CALIBRATION missing from the eBPF object")?,
    )
    .map_err(|e| format!("map CALIBRATION: {e}"))?;
    if opened_while_watched(&mut calibration, Path::new("/"), CALIBRATION_COUNT_ONLY)?.is_none() {
        return Err(TierFailure::Unavailable(format!(
            "the BPF LSM programs attach, but the kernel does not run them (self-test: an \
             open was not seen; active LSMs: {})",
            active.join(",")
        )));
    }
    for (index, path) in protected.iter().enumerate() {
        match opened_while_watched(&mut calibration, path, index as u32)? {
            // Kept open for the session: the inode stays in memory, so its address (the key)
            // names this file alone until the programs are gone.
            Some(file) => links.push(Box::new(file)),
            // Landlock still holds it; missing files cannot be opened anyway.
            None => tracing::debug!("{}: not registered with the LSM layer", path.display()),
        }
    }
    calibration
        .set(0, Calibration::default(), 0)
        .map_err(|e| format!("map CALIBRATION: {e}"))?;
    Ok(links)
}

/// Opens `path` while the file_open program watches this thread; the file, if the program
/// saw it opened.
fn opened_while_watched(
    calibration: &mut Array<&mut aya::maps::MapData, Calibration>,
    path: &Path,
    rule: u32,
) -> Result<Option<std::fs::File>, String> {
    let map_err = |e: aya::maps::MapError| format!("map CALIBRATION: {e}");
    let watch = Calibration {
        tid: nix::unistd::gettid().as_raw() as u32,
        rule,
        seen: 0,
        _pad: 0,
    };
    calibration.set(0, watch, 0).map_err(map_err)?;
    // Without following a final link: the canonical path is what Landlock protects too. A
    // FIFO must not block, a terminal must not become ours.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let seen = calibration.get(&0, 0).map_err(map_err)?.seen;
    Ok(opened.ok().filter(|_| seen > 0))
}
