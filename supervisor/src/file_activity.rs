//! File system calls, folded (see [`crate::folding`]): a process opening the same file
//! 100,000 times makes a handful of records with counts.
use warden_common::{
    AT_FDCWD, FILE_OP_LINK, FILE_OP_OPEN, FILE_OP_RENAME, FILE_OP_SYMLINK, FILE_OP_TRUNCATE,
};

use crate::{
    decode::FileCall,
    events::{Event, FileAccess, escape::escape_bytes},
    folding::{Folded, Window},
};

#[derive(Default)]
pub struct FileActivity(Window<Key, FileCall>);

/// What makes two calls identical.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    pid: u32,
    path: Vec<u8>,
    op: u32,
    path2: Option<Vec<u8>>,
    dfd: i32,
    flags: u64,
    /// The result, with every success counting as one (open returns a new fd each time).
    result: i64,
}

impl FileActivity {
    pub fn add(&mut self, call: FileCall) {
        let key = Key {
            pid: call.pid,
            path: call.path.clone(),
            op: call.op,
            path2: call.path2.clone(),
            dfd: call.dfd,
            flags: call.flags,
            result: call.ret.min(0),
        };
        self.0.add(key, call.boot_ns, call);
    }

    /// Every call added so far has been taken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The records of a finished window (or of everything, at the end), in time order.
    pub fn take(&mut self, now_ns: u64, everything: bool) -> Vec<(u64, Event)> {
        self.0
            .take(now_ns, everything)
            .into_iter()
            .map(record)
            .collect()
    }
}

fn record(f: Folded<FileCall>) -> (u64, Event) {
    let c = f.first;
    let access = FileAccess {
        pid: c.pid,
        path: escape_bytes(&c.path),
        path_truncated: c.path_truncated,
        path_unreadable: c.path_unreadable,
        dirfd: (c.dfd != AT_FDCWD && !c.path.starts_with(b"/")).then_some(c.dfd),
        path2: c.path2.as_deref().map(escape_bytes),
        path2_truncated: c.path2_truncated,
        flags: (c.op == FILE_OP_OPEN).then(|| open_flags(c.flags)),
        result: if c.ret >= 0 {
            "ok".into()
        } else {
            errno_name(-c.ret)
        },
        count: f.count,
        last_boot_ns: (f.count > 1).then_some(f.last_ns),
    };
    let event = match c.op {
        FILE_OP_OPEN => Event::FileOpen(access),
        FILE_OP_LINK => Event::FileLink(access),
        FILE_OP_RENAME => Event::FileRename(access),
        FILE_OP_SYMLINK => Event::FileSymlink(access),
        FILE_OP_TRUNCATE => Event::FileTruncate(access),
        _ => Event::FileUnlink(access),
    };
    (c.boot_ns, event)
}

fn errno_name(e: i64) -> String {
    let errno = nix::errno::Errno::from_raw(e as i32);
    if errno == nix::errno::Errno::UnknownErrno {
        format!("errno {e}")
    } else {
        format!("{errno:?}")
    }
}

/// `O_WRONLY|O_CREAT|O_TRUNC|...` (x86-64 and most architectures' values).
pub fn open_flags(flags: u64) -> String {
    const NAMED: &[(u64, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
        (0o20000000, "O_TMPFILE"),
    ];
    let mut out = vec![match flags & 0o3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        _ => "O_RDWR",
    }];
    out.extend(
        NAMED
            .iter()
            .filter(|(bit, _)| flags & bit == *bit)
            .map(|(_, n)| *n),
    );
    out.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ts: u64, path: &str, ret: i64) -> FileCall {
        FileCall {
            boot_ns: ts,
            pid: 7,
            op: FILE_OP_OPEN,
            dfd: AT_FDCWD,
            flags: 0o101,
            ret,
            path: path.as_bytes().to_vec(),
            path_truncated: false,
            path_unreadable: false,
            path2: None,
            path2_truncated: false,
        }
    }

    #[test]
    fn folds_identical_calls_within_a_window() {
        let mut a = FileActivity::default();
        for i in 0..1000 {
            a.add(call(100 + i, "/etc/x", -13));
            a.add(call(100 + i, "/tmp/y", 3 + i as i64));
        }
        assert!(a.take(500, false).is_empty(), "the window is still open");
        let out = a.take(100 + crate::folding::WINDOW_NS, false);
        assert_eq!(out.len(), 2);
        let Event::FileOpen(x) = &out[0].1 else {
            panic!()
        };
        assert_eq!(
            (x.path.as_str(), x.result.as_str(), x.count),
            ("/etc/x", "EACCES", 1000)
        );
        assert_eq!(x.flags.as_deref(), Some("O_WRONLY|O_CREAT"));
        assert_eq!(x.last_boot_ns, Some(1099));
        let Event::FileOpen(y) = &out[1].1 else {
            panic!()
        };
        assert_eq!(
            (y.result.as_str(), y.count),
            ("ok", 1000),
            "each new fd is the same success"
        );
        a.add(call(5, "/a", -2));
        let out = a.take(6, true);
        let Event::FileOpen(z) = &out[0].1 else {
            panic!()
        };
        assert_eq!(
            (z.result.as_str(), z.count, z.last_boot_ns),
            ("ENOENT", 1, None)
        );
    }
}
