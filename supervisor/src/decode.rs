//! Ring-buffer bytes from the kernel programs into `Event`s.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::unix::ffi::OsStrExt,
};

use warden_common::{
    EXEC_ARGV_TRUNCATED, EXEC_ARGV_UNREADABLE, EXEC_FILENAME_TRUNCATED, EXEC_TOKEN_MISMATCH,
    EXEC_TOKEN_MISSING, EventHeader, EventKind, ExecEvent, ExitEvent, FILE_PATH_MAX,
    FILE_PATH_TRUNCATED, FILE_PATH_UNREADABLE, FILE_PATH2_MAX, FILE_PATH2_TRUNCATED, FileEvent,
    ForkEvent, LSM_BPF, LSM_FILE_OPEN, LSM_INODE_CREATE, LSM_INODE_LINK, LSM_INODE_MKDIR,
    LSM_INODE_MKNOD, LSM_INODE_RENAME, LSM_INODE_RMDIR, LSM_INODE_SYMLINK, LSM_INODE_UNLINK,
    LSM_PTRACE, LSM_TASK_KILL, LsmEvent, NET_OP_CONNECT, NetEvent, RULE_DEFAULT_DENY,
    RULE_UNIX_NOT_CANONICAL, UNIX_ADDR_ABSTRACT, UNIX_PATH_MAX, UnixEvent, VERDICT_ALLOW,
    VERDICT_DENY,
};

use crate::events::{
    Event, Exec, Exit, Fork, LsmDenied, LsmHook, Network, TokenProblem, UnixSocket, Verdict,
    escape::escape_bytes,
};

/// What the kernel only knows by number: rule ids, and which name an address came from.
pub trait Labels {
    /// The rule's recorded name and where it came from.
    fn rule(&self, id: u32) -> (String, Option<String>);
    fn domain(&self, ip: &IpAddr) -> Option<String>;
    /// The protected path with this index (escaped), as the LSM file_open program knows it.
    fn protected_path(&self, index: u32) -> Option<String>;
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("ring-buffer record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("unknown BPF LSM hook {0}")]
    UnknownHook(u32),
    #[error("{kind:?} record of {len} bytes, expected {expected}")]
    Size {
        kind: EventKind,
        len: usize,
        expected: usize,
    },
}

/// Copies a `T` out of a record that must be exactly its size.
fn read<T: Copy>(kind: EventKind, bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Size {
            kind,
            len: bytes.len(),
            expected: size_of::<T>(),
        });
    }
    // SAFETY: the length is checked and `T` is plain `repr(C)` data valid for any bits.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// A decoded kernel record: an event, or a file system call (aggregated by `file_activity`).
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Event(u64, Event),
    File(FileCall),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCall {
    pub boot_ns: u64,
    pub pid: u32,
    pub op: u32,
    pub dfd: i32,
    pub flags: u64,
    /// The return value (negative errno on failure).
    pub ret: i64,
    pub path: Vec<u8>,
    pub path_truncated: bool,
    pub path_unreadable: bool,
    pub path2: Option<Vec<u8>>,
    pub path2_truncated: bool,
}

/// Decodes one record.
pub fn decode(bytes: &[u8], labels: &dyn Labels) -> Result<Decoded, DecodeError> {
    if bytes.len() < size_of::<EventHeader>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    let raw_kind = u32::from_ne_bytes(bytes[..4].try_into().expect("4 bytes"));
    let kind = EventKind::from_u32(raw_kind).ok_or(DecodeError::UnknownKind(raw_kind))?;
    let (boot_ns, event) = match kind {
        EventKind::File => {
            let e: FileEvent = read(kind, bytes)?;
            let path2 = e.path2[..(e.path2_len as usize).min(FILE_PATH2_MAX)].to_vec();
            return Ok(Decoded::File(FileCall {
                boot_ns: e.header.boot_ns,
                pid: e.header.pid,
                op: e.op,
                dfd: e.dfd,
                flags: e.flags,
                ret: e.ret,
                path: e.path[..(e.path_len as usize).min(FILE_PATH_MAX)].to_vec(),
                path_truncated: e.truncated & FILE_PATH_TRUNCATED != 0,
                path_unreadable: e.truncated & FILE_PATH_UNREADABLE != 0,
                path2: (e.path2_len > 0).then_some(path2),
                path2_truncated: e.truncated & FILE_PATH2_TRUNCATED != 0,
            }));
        }
        EventKind::Exec => {
            let e: ExecEvent = read(kind, bytes)?;
            (e.header.boot_ns, Event::Exec(exec(&e)))
        }
        EventKind::Fork => {
            let e: ForkEvent = read(kind, bytes)?;
            let fork = Fork {
                pid: e.child_pid,
                ppid: e.parent_pid,
            };
            (e.header.boot_ns, Event::Fork(fork))
        }
        EventKind::Exit => {
            let e: ExitEvent = read(kind, bytes)?;
            let exit = Exit::from_wait_status(e.header.pid, e.ppid, e.exit_code);
            (e.header.boot_ns, Event::Exit(exit))
        }
        EventKind::Net => {
            let e: NetEvent = read(kind, bytes)?;
            (e.header.boot_ns, network(&e, labels))
        }
        EventKind::Unix => {
            let e: UnixEvent = read(kind, bytes)?;
            (e.header.boot_ns, unix_socket(&e, labels))
        }
        EventKind::Lsm => {
            let e: LsmEvent = read(kind, bytes)?;
            (e.header.boot_ns, Event::LsmDenied(lsm_denied(&e, labels)?))
        }
    };
    Ok(Decoded::Event(boot_ns, event))
}

fn lsm_denied(e: &LsmEvent, labels: &dyn Labels) -> Result<LsmDenied, DecodeError> {
    let hook = match e.hook {
        LSM_FILE_OPEN => LsmHook::FileOpen,
        LSM_INODE_CREATE => LsmHook::InodeCreate,
        LSM_INODE_LINK => LsmHook::InodeLink,
        LSM_INODE_UNLINK => LsmHook::InodeUnlink,
        LSM_INODE_RENAME => LsmHook::InodeRename,
        LSM_INODE_MKDIR => LsmHook::InodeMkdir,
        LSM_INODE_MKNOD => LsmHook::InodeMknod,
        LSM_INODE_SYMLINK => LsmHook::InodeSymlink,
        LSM_INODE_RMDIR => LsmHook::InodeRmdir,
        LSM_TASK_KILL => LsmHook::TaskKill,
        LSM_PTRACE => LsmHook::PtraceAccessCheck,
        LSM_BPF => LsmHook::Bpf,
        other => return Err(DecodeError::UnknownHook(other)),
    };
    let errno = nix::errno::Errno::from_raw(e.errno as i32);
    let targeted = matches!(hook, LsmHook::TaskKill | LsmHook::PtraceAccessCheck);
    Ok(LsmDenied {
        pid: e.header.pid,
        hook,
        errno: format!("{errno:?}"),
        rule: hook.rule().into(),
        protected: hook
            .about_files()
            .then(|| labels.protected_path(e.rule))
            .flatten(),
        target_pid: targeted.then_some(e.target_pid),
        signal: (hook == LsmHook::TaskKill).then_some(e.arg),
        ptrace_mode: (hook == LsmHook::PtraceAccessCheck).then_some(e.arg),
        bpf_cmd: (hook == LsmHook::Bpf).then_some(e.arg),
    })
}

const AF_INET: u16 = 2;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

fn network(e: &NetEvent, labels: &dyn Labels) -> Event {
    let ip = if e.family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(e.addr[0], e.addr[1], e.addr[2], e.addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(e.addr))
    };
    let (rule, rule_source) = labels.rule(e.rule);
    let n = Network {
        pid: e.header.pid,
        uid: e.uid,
        transport: match e.protocol {
            IPPROTO_TCP => "tcp".into(),
            IPPROTO_UDP => "udp".into(),
            IPPROTO_ICMP => "icmp".into(),
            IPPROTO_ICMPV6 => "icmpv6".into(),
            p => format!("ip-proto-{p}"),
        },
        address: ip.to_string(),
        port: e.port,
        verdict: match e.verdict {
            VERDICT_ALLOW => Verdict::Allow,
            VERDICT_DENY => Verdict::Deny,
            _ => Verdict::Redirect,
        },
        rule,
        rule_source,
        domain: labels.domain(&ip),
        count: 1,
        last_boot_ns: None,
    };
    if e.op == NET_OP_CONNECT {
        Event::NetConnect(n)
    } else {
        Event::NetSend(n)
    }
}

fn unix_socket(e: &UnixEvent, labels: &dyn Labels) -> Event {
    let abstract_name = e.address == UNIX_ADDR_ABSTRACT;
    let len = (e.len as usize).min(UNIX_PATH_MAX);
    // An abstract name's first byte is its NUL marker.
    let name = if abstract_name {
        &e.path[1.min(len)..len]
    } else {
        &e.path[..len]
    };
    let (mut rule, rule_source) = labels.rule(e.rule);
    // The kernel refuses every spelling it has no rule for; say when the spelling itself was
    // the reason (relative, `.`, `..`, `//`, a trailing `/`).
    if e.rule == RULE_DEFAULT_DENY
        && !abstract_name
        && !warden_requirements::constrain::is_canonical_absolute(std::path::Path::new(
            std::ffi::OsStr::from_bytes(name),
        ))
    {
        rule = labels.rule(RULE_UNIX_NOT_CANONICAL).0;
    }
    let u = UnixSocket {
        pid: e.header.pid,
        uid: e.uid,
        path: escape_bytes(name),
        abstract_name,
        verdict: if e.verdict == VERDICT_ALLOW {
            Verdict::Allow
        } else {
            Verdict::Deny
        },
        rule,
        rule_source,
    };
    if e.op == NET_OP_CONNECT {
        Event::UnixConnect(u)
    } else {
        Event::UnixSend(u)
    }
}

fn exec(e: &ExecEvent) -> Exec {
    let filename = &e.filename[..(e.filename_len as usize).min(e.filename.len())];
    let argv = &e.argv[..(e.argv_len as usize).min(e.argv.len())];
    Exec {
        pid: e.header.pid,
        ppid: e.ppid,
        uid: e.uid,
        gid: e.gid,
        cgroup_id: e.header.cgroup_id,
        filename: escape_bytes(filename),
        filename_truncated: e.flags & EXEC_FILENAME_TRUNCATED != 0,
        argv: split_argv(argv),
        argv_truncated: e.flags & EXEC_ARGV_TRUNCATED != 0,
        argv_bytes: e.argv_total_len,
        argv_unreadable: e.flags & EXEC_ARGV_UNREADABLE != 0,
        killed_for_token: if e.flags & EXEC_TOKEN_MISSING != 0 {
            Some(TokenProblem::Missing)
        } else if e.flags & EXEC_TOKEN_MISMATCH != 0 {
            Some(TokenProblem::Mismatch)
        } else {
            None
        },
    }
}

/// The argument area is each argument followed by a NUL.
pub(crate) fn split_argv(area: &[u8]) -> Vec<String> {
    let area = area.strip_suffix(&[0]).unwrap_or(area);
    if area.is_empty() {
        return Vec::new();
    }
    area.split(|&b| b == 0).map(escape_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_common::{ARGV_MAX, FILENAME_MAX, NET_OP_SENDMSG};

    struct Fixed;
    impl Labels for Fixed {
        fn rule(&self, id: u32) -> (String, Option<String>) {
            (format!("rule-{id}"), Some("test".into()))
        }
        fn domain(&self, ip: &IpAddr) -> Option<String> {
            (ip.to_string() == "127.0.0.10").then(|| "allowed.test".into())
        }
        fn protected_path(&self, index: u32) -> Option<String> {
            (index == 3).then(|| "/home/u/.ssh".into())
        }
    }

    fn header(kind: EventKind) -> EventHeader {
        EventHeader {
            kind: kind as u32,
            pid: 42,
            tid: 42,
            _pad: 0,
            cgroup_id: 7,
            boot_ns: 1234,
        }
    }

    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain repr(C) value.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    #[test]
    fn decodes_exec_with_hostile_argv() {
        let mut e = ExecEvent {
            header: header(EventKind::Exec),
            ppid: 1,
            uid: 1000,
            gid: 1000,
            flags: EXEC_ARGV_TRUNCATED,
            filename_len: 0,
            argv_len: 0,
            argv_total_len: 300_000,
            filename: [0; FILENAME_MAX],
            argv: [0; ARGV_MAX],
        };
        let name = b"/bin/echo";
        e.filename[..name.len()].copy_from_slice(name);
        e.filename_len = name.len() as u32;
        let argv = b"echo\0a\nb\0\xff\xfe\0xxxx";
        e.argv[..argv.len()].copy_from_slice(argv);
        e.argv_len = argv.len() as u32;
        let Decoded::Event(ts, ev) = decode(&bytes_of(&e), &Fixed).unwrap() else {
            panic!()
        };
        assert_eq!(ts, 1234);
        let Event::Exec(x) = ev else { panic!() };
        assert_eq!(x.filename, "/bin/echo");
        assert_eq!(x.argv, ["echo", "a\nb", "\\xff\\xfe", "xxxx"]);
        assert!(x.argv_truncated);
        assert_eq!(x.argv_bytes, 300_000);
    }

    #[test]
    fn decodes_exit_status() {
        let e = ExitEvent {
            header: header(EventKind::Exit),
            exit_code: 3 << 8,
            ppid: 1,
        };
        let Decoded::Event(_, ev) = decode(&bytes_of(&e), &Fixed).unwrap() else {
            panic!()
        };
        assert_eq!(ev, Event::Exit(Exit::from_wait_status(42, 1, 3 << 8)));
        let Event::Exit(x) = ev else { panic!() };
        assert_eq!((x.exit_code, x.signal), (Some(3), None));
        let killed = Exit::from_wait_status(1, 0, 9);
        assert_eq!((killed.exit_code, killed.signal), (None, Some(9)));
        assert!(Exit::from_wait_status(1, 0, 11 | 0x80).core_dumped);
    }

    #[test]
    fn decodes_network_decisions() {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[127, 0, 0, 10]);
        let e = NetEvent {
            header: header(EventKind::Net),
            uid: 1000,
            rule: 17,
            family: AF_INET,
            port: 8080,
            op: NET_OP_CONNECT,
            verdict: VERDICT_ALLOW,
            protocol: IPPROTO_TCP,
            _pad: 0,
            addr,
        };
        let Decoded::Event(_, ev) = decode(&bytes_of(&e), &Fixed).unwrap() else {
            panic!()
        };
        let Event::NetConnect(n) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (n.address.as_str(), n.port, n.transport.as_str()),
            ("127.0.0.10", 8080, "tcp")
        );
        assert_eq!((n.verdict, n.rule.as_str()), (Verdict::Allow, "rule-17"));
        assert_eq!(n.domain.as_deref(), Some("allowed.test"));
        let v6 = NetEvent {
            family: 10,
            op: NET_OP_SENDMSG,
            verdict: VERDICT_DENY,
            protocol: IPPROTO_UDP,
            addr: std::net::Ipv6Addr::LOCALHOST.octets(),
            ..e
        };
        let Decoded::Event(_, ev) = decode(&bytes_of(&v6), &Fixed).unwrap() else {
            panic!()
        };
        let Event::NetSend(n) = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (n.address.as_str(), n.verdict, n.domain),
            ("::1", Verdict::Deny, None)
        );
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        assert_eq!(decode(&[1, 0], &Fixed), Err(DecodeError::Short(2)));

        let mut h = bytes_of(&header(EventKind::Fork));
        assert!(matches!(decode(&h, &Fixed), Err(DecodeError::Size { .. })));
        h[0] = 99;
        assert_eq!(decode(&h, &Fixed), Err(DecodeError::UnknownKind(99)));
    }
}
