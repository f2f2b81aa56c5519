//! What the kernel will really run for an exec: a file can name its interpreter (`#!`), a
//! binfmt_misc handler can claim it by magic bytes or extension, and the interpreter can be a
//! script again. Judging only the file named in execve would let `#!/usr/bin/touch` run a
//! forbidden program, so the gate follows the chain the way the kernel does (fs/exec.c,
//! fs/binfmt_script.c, fs/binfmt_misc.c) and judges every link.
use std::{
    ffi::OsStr,
    io::Read,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

/// The kernel reads this much of a file to choose its handler (BINPRM_BUF_SIZE).
pub const HEAD_LEN: usize = 256;
/// Handlers the kernel follows before it gives up with ELOOP (exec_binprm: depth > 5).
pub const MAX_LINKS: usize = 5;

/// An interpreter the kernel runs, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The interpreter's path as the kernel opens it.
    pub path: Vec<u8>,
    /// `#!` or `binfmt_misc:<name>`.
    pub via: String,
    /// The arguments the kernel puts after the interpreter's name, before the previous
    /// level's arguments (its argv[1..], or all of it when `keeps_argv0`).
    pub argv: Vec<Vec<u8>>,
    /// binfmt_misc flag `P`: the previous argv[0] is kept.
    pub keeps_argv0: bool,
}

/// The argv of each image the kernel builds, from the caller's to the last interpreter's
/// (fs/binfmt_script.c and fs/binfmt_misc.c rewrite it at each level).
pub fn levels(argv: &[Vec<u8>], chain: &[Link]) -> Vec<Vec<Vec<u8>>> {
    let mut out = vec![argv.to_vec()];
    for link in chain {
        let prev = out.last().map(Vec::as_slice).unwrap_or_default();
        let rest = if link.keeps_argv0 {
            prev
        } else {
            prev.get(1..).unwrap_or_default()
        };
        let next = std::iter::once(link.path.clone())
            .chain(link.argv.iter().cloned())
            .chain(rest.iter().cloned())
            .collect();
        out.push(next);
    }
    out
}

/// A `#!` line: the interpreter and its one optional argument, as fs/binfmt_script.c reads it
/// (blanks around both trimmed; the argument keeps inner blanks; the line ends at a newline
/// or the end of the buffer). None when the head is not a script or names no interpreter.
pub fn shebang(head: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(rest);
    let line = line.split(|&b| b == 0).next().unwrap_or(line);
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b))?;
    let line = &line[start..];
    let end = line.iter().position(blank).unwrap_or(line.len());
    let (interp, tail) = line.split_at(end);
    let tail = match tail.iter().position(|b| !blank(b)) {
        Some(s) => &tail[s..],
        None => &[][..],
    };
    let tail_end = tail.iter().rposition(|b| !blank(b)).map_or(0, |e| e + 1);
    let arg = (tail_end > 0).then(|| tail[..tail_end].to_vec());
    Some((interp.to_vec(), arg))
}

/// A registered binfmt_misc handler (an entry under the binfmt_misc mount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscHandler {
    pub name: String,
    pub interpreter: Vec<u8>,
    /// Flag `P`: argv[0] is kept, after the file's path.
    pub preserve_argv0: bool,
    pub matcher: Matcher,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    Magic {
        offset: usize,
        magic: Vec<u8>,
        mask: Option<Vec<u8>>,
    },
    /// The file name's extension, without the dot.
    Extension(Vec<u8>),
}

impl MiscHandler {
    /// One entry file's text; None for a disabled entry or one this parser cannot read (the
    /// caller then refuses execs it cannot judge, see [`Handlers::unreadable`]).
    pub fn parse(name: &str, text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != "enabled" {
            return None;
        }
        let (mut interpreter, mut flags, mut offset) = (None, "", 0);
        let (mut magic, mut mask, mut extension) = (None, None, None);
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "interpreter" => interpreter = Some(value.as_bytes().to_vec()),
                "flags:" => flags = value,
                "offset" => offset = value.parse().ok()?,
                "magic" => magic = Some(hex(value)?),
                "mask" => mask = Some(hex(value)?),
                "extension" => extension = Some(value.trim_start_matches('.').as_bytes().to_vec()),
                _ => {}
            }
        }
        let matcher = match (magic, extension) {
            (Some(magic), None) => Matcher::Magic {
                offset,
                magic,
                mask,
            },
            (None, Some(ext)) => Matcher::Extension(ext),
            _ => return None,
        };
        Some(Self {
            name: name.to_string(),
            interpreter: interpreter?,
            preserve_argv0: flags.contains('P'),
            matcher,
        })
    }

    fn claims(&self, filename: &[u8], head: &[u8]) -> bool {
        match &self.matcher {
            // fs/binfmt_misc.c: what follows the name's last dot (`strrchr(bprm->interp, '.')`).
            Matcher::Extension(ext) => filename
                .iter()
                .rposition(|&b| b == b'.')
                .is_some_and(|i| filename[i + 1..] == ext[..]),
            Matcher::Magic {
                offset,
                magic,
                mask,
            } => {
                let Some(window) = head.get(*offset..offset + magic.len()) else {
                    return false;
                };
                window.iter().zip(magic).enumerate().all(|(i, (b, m))| {
                    let k = mask
                        .as_ref()
                        .and_then(|k| k.get(i))
                        .copied()
                        .unwrap_or(0xff);
                    b & k == m & k
                })
            }
        }
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The machine's binfmt_misc handlers, read afresh for each exec (an administrator may add
/// one at any time; the agent cannot: the register file is outside its write roots).
#[derive(Default)]
pub struct Handlers {
    pub handlers: Vec<MiscHandler>,
    /// Entries that exist but could not be read: an exec they might claim is not judged.
    pub unreadable: Vec<String>,
}

/// How long a reading of the handlers serves: reading mountinfo and the entries for every
/// exec would slow exec-heavy builds, and handlers change only by an administrator's hand.
const HANDLERS_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl Handlers {
    /// The handlers as read at most [`HANDLERS_FRESH`] ago.
    pub fn current() -> std::sync::Arc<Handlers> {
        type Cached = Option<(std::time::Instant, std::sync::Arc<Handlers>)>;
        static CACHE: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        match &*cache {
            Some((at, h)) if at.elapsed() < HANDLERS_FRESH => h.clone(),
            _ => {
                let h = std::sync::Arc::new(Handlers::load());
                *cache = Some((std::time::Instant::now(), h.clone()));
                h
            }
        }
    }

    /// From every binfmt_misc mount in mountinfo, unless its `status` says disabled.
    fn load() -> Self {
        let mut out = Handlers::default();
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return out;
        };
        for dir in binfmt_misc_mounts(&info) {
            if std::fs::read_to_string(dir.join("status")).is_ok_and(|s| s.trim() == "disabled") {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "register" || name == "status" {
                    continue;
                }
                match std::fs::read_to_string(e.path()) {
                    Ok(text) => {
                        if text.starts_with("enabled") {
                            match MiscHandler::parse(&name, &text) {
                                Some(h) => out.handlers.push(h),
                                None => out.unreadable.push(name),
                            }
                        }
                    }
                    Err(_) => out.unreadable.push(name),
                }
            }
        }
        out
    }
}

/// Mount points of binfmt_misc file systems in a mountinfo text.
fn binfmt_misc_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            (right.split(' ').next() == Some("binfmt_misc")).then(|| PathBuf::from(point))
        })
        .collect()
}

/// Why a chain could not be followed to its end: the gate refuses such an exec.
#[derive(Debug, PartialEq, Eq)]
pub enum Unfollowable {
    /// More handlers than the kernel follows: it would fail with ELOOP anyway.
    TooDeep,
    /// A binfmt_misc entry exists that Warden could not read.
    UnreadableHandler(String),
}

/// The chain of interpreters for `filename` (how the caller named it) whose first bytes are
/// `head`; `open` reads the head of an interpreter given its path. Empty for a binary the
/// kernel runs itself.
pub fn follow(
    filename: &[u8],
    head: &[u8],
    handlers: &Handlers,
    open: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<Vec<Link>, Unfollowable> {
    let mut chain = Vec::new();
    let (mut name, mut head) = (filename.to_vec(), head.to_vec());
    loop {
        if let Some(h) = handlers.handlers.iter().find(|h| h.claims(&name, &head)) {
            if !handlers.unreadable.is_empty() {
                return Err(Unfollowable::UnreadableHandler(
                    handlers.unreadable[0].clone(),
                ));
            }
            chain.push(Link {
                path: h.interpreter.clone(),
                via: format!("binfmt_misc:{}", h.name),
                argv: vec![name.clone()],
                keeps_argv0: h.preserve_argv0,
            });
        } else if let Some((interp, arg)) = shebang(&head) {
            chain.push(Link {
                path: interp,
                via: "#!".into(),
                argv: arg
                    .into_iter()
                    .chain(std::iter::once(name.clone()))
                    .collect(),
                keeps_argv0: false,
            });
        } else {
            if chain.is_empty()
                && let Some(h) = handlers.unreadable.first()
                && !is_elf(&head)
            {
                return Err(Unfollowable::UnreadableHandler(h.clone()));
            }
            return Ok(chain);
        }
        if chain.len() > MAX_LINKS {
            return Err(Unfollowable::TooDeep);
        }
        name = chain.last().map(|l| l.path.clone()).unwrap_or_default();
        head = open(&name).unwrap_or_default();
    }
}

fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

/// The first [`HEAD_LEN`] bytes of a file.
pub fn read_head(path: &Path) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0; HEAD_LEN];
    let mut n = 0;
    while n < HEAD_LEN {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    buf.truncate(n);
    Some(buf)
}

/// Where the supervisor can open a path the caller `pid` names (relative to its cwd).
pub fn open_path(pid: u32, path: &[u8]) -> PathBuf {
    let p = Path::new(OsStr::from_bytes(path));
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        Path::new(&format!("/proc/{pid}/cwd")).join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines_read_as_the_kernel_reads_them() {
        type Want<'a> = Option<(&'a [u8], Option<&'a [u8]>)>;
        let cases: &[(&[u8], Want)] = &[
            (b"#!/bin/sh\necho hi\n", Some((b"/bin/sh", None))),
            (
                b"#! /usr/bin/touch m1\n",
                Some((b"/usr/bin/touch", Some(b"m1"))),
            ),
            (
                b"#!\t/usr/bin/env  -S touch  a b \t\n",
                Some((b"/usr/bin/env", Some(b"-S touch  a b"))),
            ),
            (b"#!/usr/bin/python3", Some((b"/usr/bin/python3", None))),
            (b"#!./rel arg\r\n", Some((b"./rel", Some(b"arg\r")))),
            (b"#!   \n", None),
            (b"#!\n/bin/sh", None),
            (b"\x7fELF\x02\x01", None),
            (b" #!/bin/sh", None),
        ];
        for (head, want) in cases {
            let got = shebang(head);
            let got = got.as_ref().map(|(i, a)| (i.as_slice(), a.as_deref()));
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(head));
        }
    }

    fn files(name: &[u8]) -> Option<Vec<u8>> {
        let text: &[u8] = match name {
            b"/w/a" => b"#!/w/b x\n",
            b"/w/b" => b"#!/usr/bin/touch y\n",
            b"/w/loop" => b"#!/w/loop\n",
            b"/usr/bin/touch" => b"\x7fELF\x02",
            _ => return None,
        };
        Some(text.to_vec())
    }

    #[test]
    fn nested_interpreters_are_followed_with_their_arguments() {
        let h = Handlers::default();
        let chain = follow(b"./s.sh", b"#!/w/a\n", &h, &files).unwrap();
        let got: Vec<(&[u8], Vec<&[u8]>)> = chain
            .iter()
            .map(|l| {
                (
                    l.path.as_slice(),
                    l.argv.iter().map(Vec::as_slice).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"/w/a"[..], vec![&b"./s.sh"[..]]),
                (&b"/w/b"[..], vec![&b"x"[..], &b"/w/a"[..]]),
                (&b"/usr/bin/touch"[..], vec![&b"y"[..], &b"/w/b"[..]]),
            ]
        );
        assert_eq!(
            follow(b"/usr/bin/touch", b"\x7fELF", &h, &files),
            Ok(vec![])
        );
        assert_eq!(
            follow(b"./l", b"#!/w/loop\n", &h, &files),
            Err(Unfollowable::TooDeep)
        );
    }

    #[test]
    fn each_level_gets_the_argv_the_kernel_builds() {
        let v = |words: &[&str]| -> Vec<Vec<u8>> {
            words.iter().map(|w| w.as_bytes().to_vec()).collect()
        };
        let h = Handlers::default();
        let chain = follow(b"./s.sh", b"#!/w/a\n", &h, &files).unwrap();
        let got = levels(&v(&["s", "-l", "z"]), &chain);
        assert_eq!(
            got.last().unwrap(),
            &v(&[
                "/usr/bin/touch",
                "y",
                "/w/b",
                "x",
                "/w/a",
                "./s.sh",
                "-l",
                "z"
            ])
        );
        assert_eq!(got.len(), 4);
        let misc = |keeps| Link {
            path: b"/usr/bin/qemu".to_vec(),
            via: "binfmt_misc:q".into(),
            argv: v(&["/w/arm"]),
            keeps_argv0: keeps,
        };
        let argv = v(&["arm", "-v"]);
        assert_eq!(
            levels(&argv, &[misc(false)])[1],
            v(&["/usr/bin/qemu", "/w/arm", "-v"])
        );
        assert_eq!(
            levels(&argv, &[misc(true)])[1],
            v(&["/usr/bin/qemu", "/w/arm", "arm", "-v"])
        );
    }

    #[test]
    fn binfmt_misc_entries_are_read_and_claim_files_before_shebang_lines() {
        let ext = MiscHandler::parse(
            "wtest",
            "enabled\ninterpreter /usr/bin/touch\nflags: \nextension .wtest\n",
        )
        .unwrap();
        let magic = MiscHandler::parse(
            "qemu-aarch64",
            "enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: POCF\noffset 0\n\
             magic 7f454c460201010000000000000000000200b700\n\
             mask ffffffffffffff00fffffffffffffffffeffffff\n",
        )
        .unwrap();
        assert_eq!(
            MiscHandler::parse("off", "disabled\ninterpreter /x\n"),
            None
        );
        let h = Handlers {
            handlers: vec![ext, magic],
            unreadable: vec![],
        };
        let chain = follow(b"./job.wtest", b"#!/bin/sh\n", &h, &files).unwrap();
        assert_eq!(chain[0].path, b"/usr/bin/touch");
        assert_eq!(chain[0].via, "binfmt_misc:wtest");
        let mut arm =
            b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00".to_vec();
        arm[7] = 9; // masked out
        let chain = follow(b"/w/arm-bin", &arm, &h, &files).unwrap();
        assert_eq!(chain[0].via, "binfmt_misc:qemu-aarch64");
        let unreadable = Handlers {
            handlers: vec![],
            unreadable: vec!["secret".into()],
        };
        assert_eq!(
            follow(b"./x", b"MZ", &unreadable, &files),
            Err(Unfollowable::UnreadableHandler("secret".into()))
        );
        assert_eq!(
            follow(b"/usr/bin/touch", b"\x7fELF", &unreadable, &files),
            Ok(vec![])
        );
    }

    #[test]
    fn binfmt_misc_mounts_come_from_mountinfo() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    40 22 0:36 / /proc/sys/fs/binfmt_misc rw,relatime - binfmt_misc binfmt_misc rw\n";
        assert_eq!(
            binfmt_misc_mounts(info),
            vec![PathBuf::from("/proc/sys/fs/binfmt_misc")]
        );
    }
}
