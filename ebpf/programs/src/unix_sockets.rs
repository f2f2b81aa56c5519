//! cgroup connect_unix and sendmsg_unix (Linux 6.7+), or the BPF LSM socket hooks before
//! that: which UNIX sockets the session reaches.
//!
//! The threat: a host service listening on a pathname socket (Docker, the D-Bus buses,
//! ssh-agent, X11) runs what it is asked outside the sandbox. The decision is made on the
//! kernel's own copy of the address (the caller cannot change it after the check), and on its
//! spelling only, so only canonical absolute paths can be allowed, and only where the spelling
//! cannot be redirected: the session's socket directory (mounted so that symbolic links are not
//! followed in it) and the policy's exact paths (outside the write roots, where the agent
//! cannot plant a link). What a spelling means is decided in user space (`unix_sockets.rs`).
use aya_ebpf::{
    helpers::{bpf_get_current_uid_gid, bpf_probe_read_kernel, bpf_probe_read_kernel_buf},
    programs::SockAddrContext,
};
use warden_common::{
    EventKind, NET_OP_CONNECT, RULE_DEFAULT_DENY, RULE_UNIX_ABSTRACT_SCOPED,
    RULE_UNIX_NOT_CANONICAL, RULE_UNIX_SESSION_DIR, UNIX_ADDR_ABSTRACT, UNIX_ADDR_PATH,
    UNIX_PATH_MAX, UnixConfig, UnixEvent, VERDICT_ALLOW, VERDICT_DENY,
};

use crate::{
    emit,
    maps::{UNIX_ALLOW, UNIX_CONFIG},
};

/// `sizeof(sa_family_t)`: the address length of an unnamed socket.
const FAMILY_LEN: u32 = 2;

/// The longest path the programs allow: one byte short of `sun_path`, so that a read that
/// fills the buffer is known to be too long, never taken for a shorter name.
const PATH_LIMIT: u32 = UNIX_PATH_MAX as u32 - 2;

/// cgroup connect_unix/sendmsg_unix: 1 lets the operation proceed, 0 fails it with EPERM.
#[inline(always)]
pub fn on_unix(ctx: &SockAddrContext, op: u8) -> i32 {
    let Some(cfg) = UNIX_CONFIG.get(0) else {
        return 0;
    };
    let Some((sun_path, given)) = address(ctx, cfg) else {
        return 0;
    };
    i32::from(allowed(cfg, sun_path, given, op))
}

/// The BPF LSM `socket_connect`/`socket_sendmsg` hooks, on kernels without the cgroup UNIX
/// hooks (before 6.7): the same decision on the kernel's copy of `address` (`len` bytes, the
/// family included), for the session's processes. 0 allows, -EPERM refuses.
#[inline(always)]
pub fn on_lsm(address: *const u8, len: i32, op: u8) -> i32 {
    const AF_UNIX: u16 = 1;
    if address.is_null() || len < FAMILY_LEN as i32 {
        return 0;
    }
    if unsafe { bpf_probe_read_kernel(address.cast::<u16>()) }.unwrap_or(0) != AF_UNIX {
        return 0;
    }
    if crate::maps::current_session().is_none() {
        return 0;
    }
    let Some(cfg) = UNIX_CONFIG.get(0) else {
        return 0;
    };
    let given = (len as u32 - FAMILY_LEN).min(UNIX_PATH_MAX as u32);
    let sun_path = unsafe { address.add(FAMILY_LEN as usize) };
    if allowed(cfg, sun_path, given, op) {
        0
    } else {
        -1
    }
}

/// Decides (and records) a UNIX socket address: `given` bytes of `sun_path`.
#[inline(always)]
fn allowed(cfg: &UnixConfig, sun_path: *const u8, given: u32, op: u8) -> bool {
    if given == 0 {
        // Unnamed: nothing to reach by name.
        return true;
    }
    let mut path = [0u8; UNIX_PATH_MAX];
    let first: u8 = unsafe { bpf_probe_read_kernel(sun_path) }.unwrap_or(0);
    if first == 0 {
        let _ = unsafe { bpf_probe_read_kernel_buf(sun_path, &mut path) };
        let (verdict, rule) = if cfg.abstract_scoped == 1 {
            (VERDICT_ALLOW, RULE_UNIX_ABSTRACT_SCOPED)
        } else {
            (VERDICT_DENY, RULE_DEFAULT_DENY)
        };
        if verdict == VERDICT_DENY {
            record(&path, given, UNIX_ADDR_ABSTRACT, op, verdict, rule);
        }
        return decide(cfg, verdict);
    }
    // The kernel reads the name up to its first NUL within the given length; the buffer
    // stays NUL-padded after it (the allow map's keys are).
    let size = given.min(PATH_LIMIT + 1) + 1;
    let copied = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(
            path.as_mut_ptr().cast(),
            size,
            sun_path.cast(),
        )
    };
    let len = if copied > 0 { copied as u32 - 1 } else { 0 };
    // Only two spellings are allowed: beneath the socket directory without a `..` (which
    // would climb out of it), and an exact policy path (canonical, checked in user space). Any
    // other spelling of the same file is refused; user space names why in the record.
    let (verdict, rule) = if len == 0 || len > PATH_LIMIT {
        (VERDICT_DENY, RULE_UNIX_NOT_CANONICAL)
    } else if under_dir(&path, len, cfg) && !climbs(&path) {
        (VERDICT_ALLOW, RULE_UNIX_SESSION_DIR)
    } else if let Some(rule) = unsafe { UNIX_ALLOW.get(&path) } {
        (VERDICT_ALLOW, *rule)
    } else {
        (VERDICT_DENY, RULE_DEFAULT_DENY)
    };
    if op == NET_OP_CONNECT || verdict == VERDICT_DENY {
        record(&path, len, UNIX_ADDR_PATH, op, verdict, rule);
    }
    decide(cfg, verdict)
}

#[inline(always)]
fn decide(cfg: &UnixConfig, verdict: u8) -> bool {
    verdict != VERDICT_DENY || cfg.enforce != 1
}

/// Where `sun_path` is in the kernel's copy of the address, and how many of its bytes the
/// caller gave (`uaddrlen` less the family); None if it could not be read (refused).
#[inline(always)]
fn address(ctx: &SockAddrContext, cfg: &UnixConfig) -> Option<(*const u8, u32)> {
    let base = ctx.sock_addr as *const u8;
    let uaddr: *const u8 = unsafe {
        bpf_probe_read_kernel(base.add(cfg.uaddr_offset as usize).cast::<*const u8>()).ok()?
    };
    let len: u32 =
        unsafe { bpf_probe_read_kernel(base.add(cfg.uaddrlen_offset as usize).cast()).ok()? };
    let given = len.saturating_sub(FAMILY_LEN).min(UNIX_PATH_MAX as u32);
    Some((unsafe { uaddr.add(FAMILY_LEN as usize) }, given))
}

#[inline(always)]
fn at(path: &[u8; UNIX_PATH_MAX], i: usize) -> u8 {
    path.get(i).copied().unwrap_or(0)
}

/// Has a `..` component.
#[inline(always)]
fn climbs(path: &[u8; UNIX_PATH_MAX]) -> bool {
    for i in 0..UNIX_PATH_MAX - 2 {
        if path[i] == b'/' && path[i + 1] == b'.' && path[i + 2] == b'.' {
            let c = at(path, i + 3);
            if c == 0 || c == b'/' {
                return true;
            }
        }
    }
    false
}

/// Strictly beneath the session's socket directory.
#[inline(always)]
fn under_dir(path: &[u8; UNIX_PATH_MAX], len: u32, cfg: &UnixConfig) -> bool {
    if cfg.prefix_len == 0 || len <= cfg.prefix_len {
        return false;
    }
    for i in 0..UNIX_PATH_MAX {
        if path[i] & cfg.mask[i] != cfg.prefix[i] {
            return false;
        }
    }
    true
}

#[inline(always)]
fn record(path: &[u8; UNIX_PATH_MAX], len: u32, address: u8, op: u8, verdict: u8, rule: u32) {
    let Some(mut entry) = emit::reserve::<UnixEvent>(EventKind::Unix) else {
        return;
    };
    let header = emit::header(EventKind::Unix, unsafe {
        aya_ebpf::helpers::generated::bpf_get_current_cgroup_id()
    });
    entry.write(UnixEvent {
        header,
        uid: bpf_get_current_uid_gid() as u32,
        rule,
        op,
        verdict,
        address,
        _pad: 0,
        len,
        path: *path,
    });
    emit::submit(entry);
}
