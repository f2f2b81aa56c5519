//! What a kill was: which listed program the killed image is, and how sure that is.
//!
//! The kernel says what matched (the file, the path, or only the size). A size match is
//! hashed here: the process is dead, so the file is found again by the path it was started
//! by (relative paths from its parent's working directory) and used only if it is still the
//! same file (device and inode). The listed program is looked up in the list as it is now,
//! which is the list the kernel had unless it changed since the kill.
use std::{
    fs::OpenOptions,
    os::unix::{ffi::OsStrExt as _, fs::OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use warden_common::{GUARD_BY_FILE, GUARD_BY_PATH, GuardFileKey};
use warden_records::events::{GuardVerdict, escape::escape_bytes};

use super::{identity, listed::Resolved};

/// What the kernel reported about a kill.
#[derive(Clone, Copy, Debug)]
pub struct Kill<'a> {
    pub by: u32,
    pub file: GuardFileKey,
    pub size: u64,
    /// The path as passed to execve.
    pub filename: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    pub verdict: GuardVerdict,
    /// The listed path, escaped.
    pub program: Option<String>,
    /// The killed file's digest, when it was hashed.
    pub sha256: Option<[u8; 32]>,
}

/// `found`: the digest of the killed file, found again (size matches only).
pub fn judge(kill: &Kill<'_>, listed: &[Resolved], found: Option<[u8; 32]>) -> Judged {
    let name = |r: &Resolved| escape_bytes(r.listed.path.as_path().as_os_str().as_bytes());
    let hash = super::listed::path_hash(Path::new(std::ffi::OsStr::from_bytes(kill.filename)));
    let by_path = || {
        listed
            .iter()
            .find(|r| r.path_hashes.contains(&hash))
            .map(name)
    };
    match kill.by {
        GUARD_BY_FILE => Judged {
            verdict: GuardVerdict::Listed,
            program: listed
                .iter()
                .find(|r| r.file.as_ref().is_some_and(|f| f.key == kill.file))
                .map(name)
                .or_else(by_path),
            sha256: None,
        },
        GUARD_BY_PATH => Judged {
            verdict: GuardVerdict::ListedPath,
            program: by_path(),
            sha256: None,
        },
        _ => {
            let of_size = || {
                listed
                    .iter()
                    .find(|r| r.copy_size == Some(kill.size))
                    .map(name)
            };
            match found {
                None => Judged {
                    verdict: GuardVerdict::Unverified,
                    program: of_size(),
                    sha256: None,
                },
                Some(digest) => match listed
                    .iter()
                    .find(|r| r.listed.sha256.is_some_and(|d| d.0 == digest))
                {
                    Some(r) => Judged {
                        verdict: GuardVerdict::Copy,
                        program: Some(name(r)),
                        sha256: Some(digest),
                    },
                    None => Judged {
                        verdict: GuardVerdict::SizeMatch,
                        program: of_size(),
                        sha256: Some(digest),
                    },
                },
            }
        }
    }
}

/// Finds the killed file again and hashes it, if it is still the file that was killed.
pub fn refind(kill: &Kill<'_>, ppid: u32) -> Option<[u8; 32]> {
    let name = Path::new(std::ffi::OsStr::from_bytes(kill.filename));
    // The killed process's own descriptors (`fexecve`): here they would name this process's.
    if ["/dev/fd/", "/proc/self/", "/proc/thread-self/"]
        .iter()
        .any(|p| kill.filename.starts_with(p.as_bytes()))
    {
        return None;
    }
    let path: PathBuf = if name.is_absolute() {
        name.to_path_buf()
    } else {
        // The parent's working directory is where a shell started it from (a child that
        // changed its own before exec is not found: `unverified`).
        std::fs::read_link(format!("/proc/{ppid}/cwd"))
            .ok()?
            .join(name)
    };
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .ok()?;
    if identity::of_open_file(&file).ok()? != kill.file {
        return None;
    }
    identity::sha256_of(&mut file).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_guard::listed::{OnDisk, path_hash};
    use warden_common::GUARD_BY_SIZE;

    const AGENT: GuardFileKey = GuardFileKey {
        dev: 1 << 20,
        _pad: 0,
        ino: 100,
    };
    const OTHER: GuardFileKey = GuardFileKey {
        dev: 1 << 20,
        _pad: 0,
        ino: 200,
    };
    const CONTENT: [u8; 32] = [7; 32];
    const ELSE: [u8; 32] = [9; 32];

    fn listed(path: &str, file: Option<GuardFileKey>, digest: Option<[u8; 32]>) -> Resolved {
        let mut text = format!("path = \"{path}\"\n");
        if let Some(d) = digest {
            text.push_str(&format!("sha256 = \"{}\"\n", identity::hex(&d)));
        }
        Resolved {
            listed: toml::from_str(&text).unwrap(),
            file: file.map(|key| OnDisk {
                key,
                size: 5000,
                sha256: digest.unwrap_or(ELSE),
                script: false,
            }),
            path_hashes: vec![path_hash(Path::new(path))],
            path_lengths: vec![path.len()],
            copy_size: digest.map(|_| 5000),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn verdicts() {
        let list = [
            listed("/opt/agent", Some(AGENT), Some(CONTENT)),
            listed("/opt/run.sh", None, None),
        ];
        struct Case {
            name: &'static str,
            by: u32,
            file: GuardFileKey,
            filename: &'static str,
            found: Option<[u8; 32]>,
            want: (GuardVerdict, Option<&'static str>, Option<[u8; 32]>),
        }
        let cases = [
            Case {
                name: "the listed file, by another name",
                by: GUARD_BY_FILE,
                file: AGENT,
                filename: "./a",
                found: None,
                want: (GuardVerdict::Listed, Some("/opt/agent"), None),
            },
            Case {
                name: "a script by its listed path",
                by: GUARD_BY_PATH,
                file: OTHER,
                filename: "/opt/run.sh",
                found: None,
                want: (GuardVerdict::ListedPath, Some("/opt/run.sh"), None),
            },
            Case {
                name: "a copy",
                by: GUARD_BY_SIZE,
                file: OTHER,
                filename: "/tmp/x",
                found: Some(CONTENT),
                want: (GuardVerdict::Copy, Some("/opt/agent"), Some(CONTENT)),
            },
            Case {
                name: "only the size",
                by: GUARD_BY_SIZE,
                file: OTHER,
                filename: "/usr/bin/other",
                found: Some(ELSE),
                want: (GuardVerdict::SizeMatch, Some("/opt/agent"), Some(ELSE)),
            },
            Case {
                name: "gone before it was hashed",
                by: GUARD_BY_SIZE,
                file: OTHER,
                filename: "/tmp/x",
                found: None,
                want: (GuardVerdict::Unverified, Some("/opt/agent"), None),
            },
            Case {
                name: "a file no longer listed",
                by: GUARD_BY_FILE,
                file: OTHER,
                filename: "/gone",
                found: None,
                want: (GuardVerdict::Listed, None, None),
            },
        ];
        for case in cases {
            let kill = Kill {
                by: case.by,
                file: case.file,
                size: 5000,
                filename: case.filename.as_bytes(),
            };
            let got = judge(&kill, &list, case.found);
            let want = Judged {
                verdict: case.want.0,
                program: case.want.1.map(String::from),
                sha256: case.want.2,
            };
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn the_killed_file_is_found_again_only_if_it_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy");
        std::fs::write(&path, b"abc").unwrap();
        let key = identity::of_open_file(&std::fs::File::open(&path).unwrap()).unwrap();
        let filename = path.as_os_str().as_bytes();
        let kill = |file| Kill {
            by: GUARD_BY_SIZE,
            file,
            size: 3,
            filename,
        };
        let abc = identity::sha256_of(&mut std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(refind(&kill(key), 1), Some(abc));
        let other = GuardFileKey {
            ino: key.ino + 1,
            ..key
        };
        assert_eq!(refind(&kill(other), 1), None);
        // A descriptor of the dead process is not this process's descriptor of that number.
        let file = std::fs::File::open(&path).unwrap();
        let by_fd = format!("/dev/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        let through_fd = Kill {
            filename: by_fd.as_bytes(),
            ..kill(key)
        };
        assert_eq!(refind(&through_fd, 1), None);
        // Relative: from the parent's working directory (a process that sits in `dir`).
        let mut parent = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        let relative = Kill {
            filename: b"./copy",
            ..kill(key)
        };
        let found = refind(&relative, parent.id());
        parent.kill().unwrap();
        parent.wait().unwrap();
        assert_eq!(found, Some(abc));
    }
}
