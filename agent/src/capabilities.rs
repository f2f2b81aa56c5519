//! An agent run as root keeps only the capabilities that ordinary work as root needs.
//!
//! Threat: root's capabilities reach past the sandbox's rules. CAP_DAC_READ_SEARCH opens any
//! file by its handle (open_by_handle_at, past every path rule), CAP_SYS_RAWIO reads
//! /dev/mem and /proc/kcore, CAP_MKNOD makes device nodes in a write root, CAP_NET_ADMIN
//! changes the host's routes and links, CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON and the rest
//! reach the kernel itself. The bounding set is cut too, so that no exec gets them back.
use std::io;

/// What stays: owning and changing files in the write roots, running as other users,
/// binding low ports, signalling (Landlock and the gate still decide whom): Docker's default
/// set without CAP_MKNOD, CAP_NET_RAW, CAP_SETFCAP, CAP_SETPCAP and CAP_SYS_CHROOT.
pub const KEEP: &[u32] = &[
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    3,  // CAP_FOWNER
    4,  // CAP_FSETID
    5,  // CAP_KILL
    6,  // CAP_SETGID
    7,  // CAP_SETUID
    10, // CAP_NET_BIND_SERVICE
    29, // CAP_AUDIT_WRITE
];

/// `KEEP` as a capability mask.
pub fn keep_mask() -> u64 {
    KEEP.iter().fold(0, |m, c| m | 1 << c)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Cuts the bounding set, the ambient set and this process's capabilities down to `KEEP`.
pub fn limit_to_keep() -> io::Result<()> {
    // The kernel's highest capability; the bounding set may not name any beyond it.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?
        .trim()
        .parse()
        .map_err(io::Error::other)?;
    for cap in (0..=last).filter(|c| !KEEP.contains(c)) {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: as above.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    let mask = keep_mask();
    let word = |shift: u32| CapData {
        effective: (mask >> shift) as u32,
        permitted: (mask >> shift) as u32,
        inheritable: 0,
    };
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [word(0), word(32)];
    // SAFETY: a version 3 header and the two data words it takes.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
