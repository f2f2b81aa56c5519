//! The cgroup connect_unix and sendmsg_unix programs (Linux 6.7 and later).
//!
//! aya 0.14 has no attach type for these hooks. The programs are compiled into sections aya
//! parses as IPv4 ones (and never loads); here the same object is parsed again with aya-obj,
//! relocated against the maps aya created (so both sets of programs share them), and loaded
//! and attached with the bpf system call.
use std::{
    collections::HashSet,
    ffi::CString,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
};

use aya::{Ebpf, maps::Map};
use aya_obj::generated::{
    bpf_attach_type::{BPF_CGROUP_UNIX_CONNECT, BPF_CGROUP_UNIX_SENDMSG},
    bpf_cmd, bpf_insn,
    bpf_prog_type::BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
};

use super::verifier::Refusal;

/// Program name and the hook it is for.
const PROGRAMS: [(&str, u32); 2] = [
    ("warden_connect_unix", BPF_CGROUP_UNIX_CONNECT as u32),
    ("warden_sendmsg_unix", BPF_CGROUP_UNIX_SENDMSG as u32),
];

/// The verifier's log, when a load fails for a reason it explains.
const LOG_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UnixProgramError {
    #[error("parsing the eBPF object again: {0}")]
    Parse(#[from] aya_obj::ParseError),
    #[error("relocating {0}")]
    Relocate(String),
    #[error("map {0} was not created by the loader")]
    MissingMap(String),
    #[error("program {0} missing from the eBPF object")]
    MissingProgram(&'static str),
    #[error("{0}")]
    Refused(Refusal),
    #[error("{what}: {source}")]
    Syscall {
        what: &'static str,
        source: io::Error,
    },
}

/// The loaded programs, not yet attached (the kernel refuses their load type before 6.7).
pub struct UnixPrograms {
    programs: Vec<(&'static str, u32, OwnedFd)>,
    links: Vec<PathBuf>,
}

/// Why this kernel has no UNIX socket hooks (for `warden doctor` and the layer list).
pub const UNSUPPORTED: &str =
    "the kernel has no cgroup connect_unix/sendmsg_unix hooks (Linux 6.7)";

/// Whether this kernel has the hooks: their context gained `uaddrlen` with them (6.7). Read
/// once per process (parsing the kernel's BTF takes milliseconds, and the bpf_lsm tier asks
/// more than once).
pub fn kernel_has_hooks() -> bool {
    static HAS_HOOKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS_HOOKS.get_or_init(|| {
        super::btf::Btf::from_file(super::btf::VMLINUX)
            .and_then(|btf| btf.member_offset("bpf_sock_addr_kern", "uaddrlen"))
            .is_ok()
    })
}

/// Both programs relocated against the maps of a loaded object, waiting for the verifier. The
/// instructions name the maps by the object's descriptors: load them while it is alive.
pub struct Relocated {
    programs: Vec<(&'static str, u32, Vec<bpf_insn>)>,
}

impl UnixPrograms {
    /// Relocates both programs against the maps of `ebpf` (before any map is taken from it).
    pub fn relocate(object: &[u8], ebpf: &Ebpf) -> Result<Relocated, UnixProgramError> {
        let mut obj = aya_obj::Object::parse(object)?;
        let mut fds = Vec::new();
        for name in obj.maps.keys() {
            let fd = ebpf
                .map(name)
                .and_then(map_fd)
                .ok_or_else(|| UnixProgramError::MissingMap(name.clone()))?;
            fds.push((name.clone(), fd.as_raw_fd()));
        }
        let text_sections: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
        let maps: Vec<(String, RawFd, aya_obj::Map)> = fds
            .into_iter()
            .map(|(name, fd)| {
                let map = obj.maps[&name].clone();
                (name, fd, map)
            })
            .collect();
        obj.relocate_maps(
            maps.iter().map(|(n, fd, m)| (n.as_str(), *fd, m)),
            &text_sections,
        )
        .map_err(|e| UnixProgramError::Relocate(e.to_string()))?;
        obj.relocate_calls(&text_sections)
            .map_err(|e| UnixProgramError::Relocate(e.to_string()))?;

        let mut programs = Vec::new();
        for (name, attach_type) in PROGRAMS {
            let program = obj
                .programs
                .get(name)
                .ok_or(UnixProgramError::MissingProgram(name))?;
            let function = obj
                .functions
                .get(&program.function_key())
                .ok_or(UnixProgramError::MissingProgram(name))?;
            programs.push((name, attach_type, function.instructions.clone()));
        }
        Ok(Relocated { programs })
    }
}

impl Relocated {
    /// Has the kernel verify and load both. `Ok(None)`: this kernel does not know the hooks.
    pub fn load(self, log_dir: &Path) -> Result<Option<UnixPrograms>, UnixProgramError> {
        let mut programs = Vec::new();
        for (name, attach_type, instructions) in self.programs {
            match prog_load(name, &instructions, attach_type, log_dir)? {
                Some(fd) => programs.push((name, attach_type, fd)),
                None => return Ok(None),
            }
        }
        Ok(Some(UnixPrograms {
            programs,
            links: Vec::new(),
        }))
    }
}

impl UnixPrograms {
    /// Attaches both to the session cgroup and pins the links in `pin_dir` (the network
    /// programs' directory: recovery removes what a dead supervisor left there).
    pub fn attach(
        &mut self,
        cgroup: BorrowedFd<'_>,
        pin_dir: &Path,
    ) -> Result<(), UnixProgramError> {
        for (name, attach_type, prog) in &self.programs {
            let link = link_create(prog.as_fd(), cgroup, *attach_type)?;
            let path = pin_dir.join(name);
            obj_pin(link.as_fd(), &path)?;
            self.links.push(path);
        }
        Ok(())
    }

    /// Removes the pins: the links go with the last reference, and the programs detach.
    pub fn unpin(&mut self) {
        for path in self.links.drain(..) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::error!("unpinning {}: {e}", path.display());
            }
        }
    }

    /// Kernel ids of the loaded programs.
    pub fn ids(&self) -> Vec<u32> {
        self.programs
            .iter()
            .filter_map(|(_, _, fd)| prog_id(fd.as_fd()).ok())
            .collect()
    }
}

impl Drop for UnixPrograms {
    fn drop(&mut self) {
        self.unpin();
    }
}

fn map_fd(map: &Map) -> Option<BorrowedFd<'_>> {
    let data = match map {
        Map::Array(d)
        | Map::HashMap(d)
        | Map::LruHashMap(d)
        | Map::LpmTrie(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuHashMap(d)
        | Map::PerfEventArray(d)
        | Map::RingBuf(d) => d,
        _ => return None,
    };
    Some(data.fd().as_fd())
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_LINK_CREATE on a cgroup.
#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

/// `union bpf_attr` for BPF_OBJ_PIN.
#[repr(C)]
struct ObjPinAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

fn bpf<T>(cmd: bpf_cmd, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is the `union bpf_attr` prefix for `cmd`, valid for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr as *mut T,
            std::mem::size_of::<T>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// Loads one program. `Ok(None)`: the kernel refused the hook itself (EINVAL with nothing in
/// the verifier's log: an attach type it does not know).
fn prog_load(
    name: &'static str,
    insns: &[bpf_insn],
    attach_type: u32,
    log_dir: &Path,
) -> Result<Option<OwnedFd>, UnixProgramError> {
    let license = c"GPL";
    let mut prog_name = [0u8; 16];
    // The kernel keeps 15 bytes of a name.
    for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_SOCK_ADDR as u32,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name,
        expected_attach_type: attach_type,
        ..Default::default()
    };
    // Without a log first: writing one makes the verifier several times slower.
    if let Ok(fd) = bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr) {
        return Ok(Some(owned(fd)));
    }
    let mut log = vec![0u8; LOG_BYTES];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    match bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(Some(owned(fd))),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).into_owned();
            if e.raw_os_error() == Some(libc::EINVAL) && text.trim().is_empty() {
                return Ok(None);
            }
            Err(UnixProgramError::Refused(Refusal::new(
                name, e, &text, log_dir,
            )))
        }
    }
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The start of `struct bpf_prog_info`.
#[repr(C)]
#[derive(Default)]
struct ProgInfoHead {
    prog_type: u32,
    id: u32,
}

fn prog_id(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut info = ProgInfoHead::default();
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<ProgInfoHead>() as u32,
        info: &mut info as *mut ProgInfoHead as u64,
    };
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info.id)
}

fn link_create(
    prog: BorrowedFd<'_>,
    cgroup: BorrowedFd<'_>,
    attach_type: u32,
) -> Result<OwnedFd, UnixProgramError> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type,
        flags: 0,
    };
    bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr)
        .map(owned)
        .map_err(|source| UnixProgramError::Syscall {
            what: "BPF_LINK_CREATE",
            source,
        })
}

fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> Result<(), UnixProgramError> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| UnixProgramError::Syscall {
        what: "BPF_OBJ_PIN",
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let mut attr = ObjPinAttr {
        pathname: c.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        file_flags: 0,
    };
    bpf(bpf_cmd::BPF_OBJ_PIN, &mut attr)
        .map(|_| ())
        .map_err(|source| UnixProgramError::Syscall {
            what: "BPF_OBJ_PIN",
            source,
        })
}
