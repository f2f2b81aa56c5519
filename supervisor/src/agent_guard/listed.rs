//! The requirements' agent programs as the guard finds them on disk, and what the kernel
//! maps must hold for them.
//!
//! A listed program is guarded three ways: the file at its path (device and inode: also its
//! hard links, whatever name they are started by), the path itself as typed (a script, whose
//! interpreter is what the kernel runs; a file put there since the guard last looked), and,
//! with a digest, every file of the size of that content (hashed after the kill: a copy, or a
//! file that only shares the size).
use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, SeekFrom},
    os::unix::{
        ffi::OsStrExt as _,
        fs::{MetadataExt as _, OpenOptionsExt as _},
    },
    path::{Path, PathBuf},
};

use warden_common::{FNV_OFFSET, GUARD_PATH_MAX, GuardConfig, GuardFileKey, fnv1a};
use warden_records::events::{GuardedProgram, escape::escape_bytes};
use warden_requirements::values::AgentProgram;

use super::identity;
use crate::kernel::agent_guard::Contents;

/// A listed program and what is at its path now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub listed: AgentProgram,
    /// The regular file at the path, when there is one.
    pub file: Option<OnDisk>,
    /// FNV-1a of each spelling that names it: the listed path, and where its symbolic links
    /// lead (a path longer than the kernel compares is left out, with a warning).
    pub path_hashes: Vec<u64>,
    /// Their lengths in bytes.
    pub path_lengths: Vec<usize>,
    /// The size of the listed digest's content, when the file holds it: files of this size
    /// are hashed after their kill.
    pub copy_size: Option<u64>,
    pub warnings: Vec<String>,
}

/// The file at a listed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnDisk {
    pub key: GuardFileKey,
    pub size: u64,
    pub sha256: [u8; 32],
    /// Starts with `#!`: the kernel runs its interpreter, not it.
    pub script: bool,
}

/// What tells a file's content has not changed since it was hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Stamp {
    key: GuardFileKey,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Digests of the listed files, so that looking again (every few seconds) hashes only what
/// changed.
#[derive(Default)]
pub struct Digests(HashMap<Stamp, [u8; 32]>);

/// FNV-1a of a path's bytes, as the kernel program hashes the exec path.
pub fn path_hash(path: &Path) -> u64 {
    fnv1a(FNV_OFFSET, path.as_os_str().as_bytes())
}

pub fn resolve(listed: &AgentProgram, digests: &mut Digests) -> Resolved {
    let path = listed.path.as_path();
    let shown = escape_bytes(path.as_os_str().as_bytes());
    let mut warnings = Vec::new();
    let mut spellings = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path)
        && real != path
    {
        spellings.push(real);
    }
    let spellings: Vec<&PathBuf> = spellings
        .iter()
        .filter(|p| {
            // The kernel compares paths that fit its buffer with their NUL.
            let fits = p.as_os_str().len() < GUARD_PATH_MAX;
            if !fits {
                warnings.push(format!(
                    "{}: longer than {} bytes, so not recognised by the path it is started \
                     by, only as a file",
                    escape_bytes(p.as_os_str().as_bytes()),
                    GUARD_PATH_MAX - 1
                ));
            }
            fits
        })
        .collect();
    let path_hashes = spellings.iter().map(|p| path_hash(p)).collect();
    let path_lengths = spellings.iter().map(|p| p.as_os_str().len()).collect();
    let file = match on_disk(path, digests) {
        Ok(file) => Some(file),
        Err(why) => {
            warnings.push(format!(
                "{shown}: {why}; recognised by its path alone until a file is there"
            ));
            None
        }
    };
    let mut copy_size = None;
    match (&listed.sha256, &file) {
        (Some(want), Some(f)) if f.sha256 == want.0 && f.script => warnings.push(format!(
            "{shown} is a script: the kernel runs its interpreter, so copies of it elsewhere \
             are not recognised"
        )),
        (Some(want), Some(f)) if f.sha256 == want.0 => copy_size = Some(f.size),
        (Some(want), Some(f)) => warnings.push(format!(
            "{shown} does not have the listed content (its SHA-256 is {}, not {want}): the \
             file at the path is guarded, copies of the listed content are not (their size \
             is unknown)",
            identity::hex(&f.sha256)
        )),
        (Some(_), None) => warnings.push(format!(
            "{shown}: copies of the listed content are not recognised until the file is there \
             (their size is unknown)"
        )),
        (None, _) => {}
    }
    Resolved {
        listed: listed.clone(),
        file,
        path_hashes,
        path_lengths,
        copy_size,
        warnings,
    }
}

/// The regular file at `path` (symbolic links followed, as exec does).
fn on_disk(path: &Path, digests: &mut Digests) -> Result<OnDisk, String> {
    // Non-blocking: a FIFO put at the path must not stall the guard.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let key = identity::of_open_file(&file).map_err(|e| e.to_string())?;
    let stamp = Stamp {
        key,
        size: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    };
    let mut head = [0u8; 2];
    let script = read_head(&mut file, &mut head) && &head == b"#!";
    let sha256 = match digests.0.get(&stamp) {
        Some(d) => *d,
        None => {
            file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
            let d = identity::sha256_of(&mut file).map_err(|e| e.to_string())?;
            digests.0.retain(|s, _| s.key != key);
            digests.0.insert(stamp, d);
            d
        }
    };
    Ok(OnDisk {
        key,
        size: meta.len(),
        sha256,
        script,
    })
}

fn read_head(file: &mut File, head: &mut [u8; 2]) -> bool {
    file.read_exact(head).is_ok()
}

/// What the kernel maps hold for these programs.
pub fn contents(resolved: &[Resolved], config: GuardConfig) -> Contents {
    let mut c = Contents {
        config,
        ..Default::default()
    };
    for r in resolved {
        // A script's own inode is never an image the kernel runs.
        if let Some(f) = r.file.as_ref().filter(|f| !f.script) {
            c.files.insert(f.key);
        }
        c.sizes.extend(r.copy_size);
        c.paths.extend(r.path_hashes.iter().copied());
        for len in &r.path_lengths {
            c.config.add_path_length(*len);
        }
    }
    c
}

/// How a program is guarded, for `guard.armed` and for people.
pub fn guarded(r: &Resolved) -> GuardedProgram {
    GuardedProgram {
        path: escape_bytes(r.listed.path.as_path().as_os_str().as_bytes()),
        sha256: r.listed.sha256.map(|d| d.to_string()),
        file: r
            .file
            .as_ref()
            .filter(|f| !f.script)
            .map(|f| identity::spell(&f.key)),
        script: r.file.as_ref().is_some_and(|f| f.script),
        copies_of_size: r.copy_size,
    }
}

/// One line per program: what is recognised.
pub fn describe(r: &Resolved) -> String {
    let g = guarded(r);
    let mut ways = Vec::new();
    if let Some(file) = &g.file {
        ways.push(format!("the file {file} by any name"));
    }
    if !r.path_hashes.is_empty() {
        ways.push("the path it is started by".to_string());
    }
    if let Some(size) = g.copies_of_size {
        ways.push(format!(
            "copies of its content ({size} bytes, then SHA-256)"
        ));
    }
    format!(
        "{}{}: {}",
        g.path,
        if g.script { " (a script)" } else { "" },
        ways.join(", ")
    )
}

/// The listed programs whose state on disk changed between two lookups.
pub fn changed(before: &[Resolved], now: &[Resolved]) -> bool {
    before != now
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn program(path: &Path, sha256: Option<[u8; 32]>) -> AgentProgram {
        let mut text = format!("path = \"{}\"\n", path.display());
        if let Some(d) = sha256 {
            text.push_str(&format!("sha256 = \"{}\"\n", identity::hex(&d)));
        }
        toml::from_str(&text).unwrap()
    }

    fn digest(bytes: &[u8]) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(bytes).into()
    }

    /// What each listed case is recognised by, as the kernel maps and the warnings say.
    #[test]
    fn each_case_is_guarded_as_far_as_it_can_be() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("agent");
        fs::write(&bin, b"\x7fELF binary").unwrap();
        let script = dir.path().join("agent.sh");
        fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&bin, &link).unwrap();
        let missing = dir.path().join("missing");
        let long = PathBuf::from(format!("/{}", "a".repeat(GUARD_PATH_MAX)));

        struct Case {
            name: &'static str,
            program: AgentProgram,
            file: bool,
            copies: Option<u64>,
            spellings: usize,
            warning: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "binary, its digest",
                program: program(&bin, Some(digest(b"\x7fELF binary"))),
                file: true,
                copies: Some(11),
                spellings: 1,
                warning: None,
            },
            Case {
                name: "binary, no digest",
                program: program(&bin, None),
                file: true,
                copies: None,
                spellings: 1,
                warning: None,
            },
            Case {
                name: "binary, another digest",
                program: program(&bin, Some(digest(b"other"))),
                file: true,
                copies: None,
                spellings: 1,
                warning: Some("does not have the listed content"),
            },
            Case {
                name: "script, its digest",
                program: program(&script, Some(digest(b"#!/bin/sh\necho hi\n"))),
                file: false,
                copies: None,
                spellings: 1,
                warning: Some("is a script"),
            },
            Case {
                name: "symbolic link",
                program: program(&link, None),
                file: true,
                copies: None,
                spellings: 2,
                warning: None,
            },
            Case {
                name: "missing, a digest",
                program: program(&missing, Some(digest(b"x"))),
                file: false,
                copies: None,
                spellings: 1,
                warning: Some("until the file is there"),
            },
            Case {
                name: "path too long",
                program: program(&long, None),
                file: false,
                copies: None,
                spellings: 0,
                warning: Some("longer than 511 bytes"),
            },
        ];
        let mut digests = Digests::default();
        for case in cases {
            let r = resolve(&case.program, &mut digests);
            let c = contents(std::slice::from_ref(&r), GuardConfig::default());
            assert_eq!(c.files.len(), usize::from(case.file), "{}", case.name);
            assert_eq!(r.copy_size, case.copies, "{}", case.name);
            assert_eq!(
                c.sizes.len(),
                usize::from(case.copies.is_some()),
                "{}",
                case.name
            );
            assert_eq!(c.paths.len(), case.spellings, "{}", case.name);
            for spelling in &r.path_lengths {
                assert!(c.config.has_path_length(*spelling), "{}", case.name);
            }
            match case.warning {
                Some(w) => assert!(
                    r.warnings.iter().any(|x| x.contains(w)),
                    "{}: {:?}",
                    case.name,
                    r.warnings
                ),
                None => assert!(r.warnings.is_empty(), "{}: {:?}", case.name, r.warnings),
            }
        }
    }

    #[test]
    fn a_changed_file_is_seen_and_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("agent");
        fs::write(&bin, b"version 1").unwrap();
        let p = program(&bin, Some(digest(b"version 1")));
        let mut digests = Digests::default();
        let first = resolve(&p, &mut digests);
        assert_eq!(first.copy_size, Some(9));
        assert!(!changed(
            std::slice::from_ref(&first),
            &[resolve(&p, &mut digests)]
        ));
        // An update replaces the file: another inode, another content.
        fs::remove_file(&bin).unwrap();
        fs::write(&bin, b"version 22").unwrap();
        let second = resolve(&p, &mut digests);
        assert!(changed(&[first], std::slice::from_ref(&second)));
        assert_eq!(second.copy_size, None);
        assert_eq!(second.file.unwrap().sha256, digest(b"version 22"));
    }
}
