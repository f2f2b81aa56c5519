//! Attaching file observation at a hook tier: fexit programs on the file system calls' own
//! functions, or their syscall tracepoints. Both write the same record
//! (`ebpf/programs/src/files.rs`), described by the same table of call shapes.
use aya::{
    Btf, Ebpf,
    programs::{FExit, TracePoint},
};
use warden_common::FileShape;

use super::{
    hook_tier::syscall_function,
    programs::{Attached, KernelError, load_err, prog_err, program},
};

/// One observed file system call: its number, its name, the fexit program that observes it,
/// and which arguments are what.
pub struct FileSyscall {
    pub nr: libc::c_long,
    pub name: &'static str,
    pub program: &'static str,
    pub shape: FileShape,
}

macro_rules! file_syscall {
    ($nr:expr, $name:literal, $op:expr, dfd: $dfd:expr, path: $path:expr, path2: $path2:expr,
     flags: $flags:expr, flags_deref: $deref:expr) => {
        FileSyscall {
            nr: $nr,
            name: $name,
            program: concat!("warden_fexit_", $name),
            shape: FileShape {
                op: $op as u8,
                dfd: $dfd,
                path: $path,
                path2: $path2,
                flags: $flags,
                flags_deref: $deref,
                _pad: [0; 2],
            },
        }
    };
}

/// The file system calls observed, and which arguments are what.
pub fn file_syscalls() -> Vec<FileSyscall> {
    use warden_common::{
        ARG_CREAT_FLAGS as CREAT, ARG_NONE as N, FILE_OP_LINK as LINK, FILE_OP_OPEN as OPEN,
        FILE_OP_RENAME as RENAME, FILE_OP_SYMLINK as SYMLINK, FILE_OP_TRUNCATE as TRUNCATE,
        FILE_OP_UNLINK as UNLINK,
    };
    #[rustfmt::skip]
    let mut v = vec![
        file_syscall!(libc::SYS_openat, "openat", OPEN, dfd: 0, path: 1, path2: N, flags: 2, flags_deref: 0),
        file_syscall!(libc::SYS_openat2, "openat2", OPEN, dfd: 0, path: 1, path2: N, flags: 2, flags_deref: 1),
        file_syscall!(libc::SYS_linkat, "linkat", LINK, dfd: 0, path: 1, path2: 3, flags: 4, flags_deref: 0),
        file_syscall!(libc::SYS_renameat2, "renameat2", RENAME, dfd: 0, path: 1, path2: 3, flags: 4, flags_deref: 0),
        file_syscall!(libc::SYS_unlinkat, "unlinkat", UNLINK, dfd: 0, path: 1, path2: N, flags: 2, flags_deref: 0),
        // symlinkat(target, newdirfd, linkpath): the new name is the path.
        file_syscall!(libc::SYS_symlinkat, "symlinkat", SYMLINK, dfd: 1, path: 2, path2: 0, flags: N, flags_deref: 0),
        file_syscall!(libc::SYS_truncate, "truncate", TRUNCATE, dfd: N, path: 0, path2: N, flags: N, flags_deref: 0),
    ];
    // Legacy calls that newer architectures do not have.
    #[cfg(target_arch = "x86_64")]
    #[rustfmt::skip]
    v.extend([
        file_syscall!(libc::SYS_open, "open", OPEN, dfd: N, path: 0, path2: N, flags: 1, flags_deref: 0),
        // creat(path, mode) is open(path, O_CREAT|O_WRONLY|O_TRUNC, mode).
        file_syscall!(libc::SYS_creat, "creat", OPEN, dfd: N, path: 0, path2: N, flags: CREAT, flags_deref: 0),
        file_syscall!(libc::SYS_link, "link", LINK, dfd: N, path: 0, path2: 1, flags: N, flags_deref: 0),
        file_syscall!(libc::SYS_rename, "rename", RENAME, dfd: N, path: 0, path2: 1, flags: N, flags_deref: 0),
        file_syscall!(libc::SYS_renameat, "renameat", RENAME, dfd: 0, path: 1, path2: 3, flags: N, flags_deref: 0),
        file_syscall!(libc::SYS_unlink, "unlink", UNLINK, dfd: N, path: 0, path2: N, flags: N, flags_deref: 0),
        file_syscall!(libc::SYS_symlink, "symlink", SYMLINK, dfd: N, path: 1, path2: 0, flags: N, flags_deref: 0),
    ]);
    v
}

/// Fills `FILE_SHAPES`, which both tiers read.
pub fn describe_calls(ebpf: &mut Ebpf) -> Result<(), KernelError> {
    let map_err = |source| KernelError::Map {
        name: "FILE_SHAPES",
        source,
    };
    let mut shapes: aya::maps::Array<_, FileShape> = aya::maps::Array::try_from(
        ebpf.map_mut("FILE_SHAPES")
            .ok_or(KernelError::MissingMap("FILE_SHAPES"))?,
    )
    .map_err(map_err)?;
    for call in file_syscalls() {
        shapes.set(call.nr as u32, call.shape, 0).map_err(map_err)?;
    }
    Ok(())
}

/// Loads and attaches one fexit program per observed call. All or nothing: on an error the
/// links made so far are dropped (detached), so that a fallback tier never doubles records.
pub fn attach_fexit(
    ebpf: &mut Ebpf,
    btf: &Btf,
    log_dir: &std::path::Path,
) -> Result<Vec<Attached>, KernelError> {
    let mut links: Vec<Attached> = Vec::new();
    let mut attach_all = || -> Result<(), KernelError> {
        for call in file_syscalls() {
            let name = call.program;
            let p: &mut FExit = program(ebpf, name)?;
            p.load(&syscall_function(call.name), btf)
                .map_err(load_err(name, log_dir))?;
            let id = p.attach().map_err(prog_err(name))?;
            links.push(Box::new(p.take_link(id).map_err(prog_err(name))?));
        }
        Ok(())
    };
    if let Err(e) = attach_all() {
        drop(links);
        for call in file_syscalls() {
            if let Ok(p) = program::<FExit>(ebpf, call.program) {
                let _ = p.unload();
            }
        }
        return Err(e);
    }
    Ok(links)
}

/// Loads and attaches the syscall tracepoint programs, to the observed calls' own
/// `syscalls:sys_enter_NAME`/`sys_exit_NAME` tracepoints (CONFIG_FTRACE_SYSCALLS).
pub fn attach_tracepoints(
    ebpf: &mut Ebpf,
    log_dir: &std::path::Path,
) -> Result<Vec<Attached>, KernelError> {
    let mut links: Vec<Attached> = Vec::new();
    for (name, prefix) in [
        ("warden_sysenter_file", "sys_enter_"),
        ("warden_sysexit_file", "sys_exit_"),
    ] {
        let p: &mut TracePoint = program(ebpf, name)?;
        p.load().map_err(load_err(name, log_dir))?;
        for call in file_syscalls() {
            let id = p
                .attach("syscalls", &format!("{prefix}{}", call.name))
                .map_err(prog_err(name))?;
            links.push(Box::new(p.take_link(id).map_err(prog_err(name))?));
        }
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every observed call has its fexit program in the compiled object, and no program is
    /// left without a call.
    #[test]
    fn every_call_has_its_program() {
        let obj = aya_obj::Object::parse(super::super::programs::PROGRAMS_OBJECT).unwrap();
        let mut in_object: Vec<&str> = obj
            .programs
            .keys()
            .map(String::as_str)
            .filter(|n| n.starts_with("warden_fexit_"))
            .collect();
        in_object.sort();
        let mut wanted: Vec<&str> = file_syscalls().iter().map(|c| c.program).collect();
        wanted.sort();
        assert_eq!(in_object, wanted);
    }

    #[test]
    fn numbers_are_distinct_and_fit_the_shape_table() {
        let calls = file_syscalls();
        let mut nrs: Vec<_> = calls.iter().map(|c| c.nr).collect();
        nrs.sort();
        nrs.dedup();
        assert_eq!(nrs.len(), calls.len());
        assert!(
            calls
                .iter()
                .all(|c| (c.nr as u32) < warden_common::MAX_SYSCALL_NR)
        );
    }
}
