//! A file as the guard's kernel program knows it, and its content's digest.
//!
//! The program reads the image's `inode->i_sb->s_dev` and `inode->i_ino`. `stat` can report
//! other numbers (overlayfs gives a non-directory the device of the layer it lives in), so the
//! identity is taken from what the kernel shows for an open file instead: its inode number in
//! `/proc/self/fdinfo`, and the device of its mount's super block in `/proc/self/mountinfo`
//! (found by the mount id fdinfo names). The file is opened as exec opens it, so it is the same
//! inode.
use std::{
    fs::{self, File},
    io::{self, Read as _},
    os::fd::AsRawFd as _,
};

use sha2::{Digest as _, Sha256};
use warden_common::GuardFileKey;

/// How the kernel keeps a device number inside (`MKDEV`): 20 bits of minor.
pub fn kernel_dev(major: u32, minor: u32) -> u32 {
    (major << 20) | minor
}

/// `MAJOR:MINOR:INODE`, as the records spell a file.
pub fn spell(key: &GuardFileKey) -> String {
    format!("{}:{}:{}", key.dev >> 20, key.dev & 0xf_ffff, key.ino)
}

/// The kernel's identity of an open file.
pub fn of_open_file(file: &File) -> io::Result<GuardFileKey> {
    let fdinfo = fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))?;
    let (mnt_id, ino) = parse_fdinfo(&fdinfo).ok_or_else(|| {
        io::Error::other("/proc/self/fdinfo has no mnt_id or ino (Linux 5.14 and later have)")
    })?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let (major, minor) = device_of_mount(&mountinfo, mnt_id)
        .ok_or_else(|| io::Error::other(format!("mount {mnt_id} is not in mountinfo")))?;
    Ok(GuardFileKey {
        dev: kernel_dev(major, minor),
        _pad: 0,
        ino,
    })
}

/// `mnt_id:` and `ino:` of an fdinfo file.
fn parse_fdinfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    Some((field("mnt_id:")?, field("ino:")?))
}

/// The `MAJOR:MINOR` field (the super block's device) of mount `mnt_id` in mountinfo.
fn device_of_mount(mountinfo: &str, mnt_id: u64) -> Option<(u32, u32)> {
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        if fields.next()?.parse::<u64>().ok()? != mnt_id {
            return None;
        }
        let (major, minor) = fields.nth(1)?.split_once(':')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

/// SHA-256 of what is left to read in `file`.
pub fn sha256_of(file: &mut File) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

/// Lower-case hex of a digest.
pub fn hex(digest: &[u8; 32]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn fdinfo_and_mountinfo_fields() {
        let fdinfo = "pos:\t0\nflags:\t0100000\nmnt_id:\t27\nino:\t247857\n";
        assert_eq!(parse_fdinfo(fdinfo), Some((27, 247857)));
        assert_eq!(
            parse_fdinfo("pos:\t0\nflags:\t0100000\nmnt_id:\t27\n"),
            None
        );
        let mountinfo = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                         27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        assert_eq!(device_of_mount(mountinfo, 27), Some((254, 0)));
        assert_eq!(device_of_mount(mountinfo, 22), Some((0, 21)));
        assert_eq!(device_of_mount(mountinfo, 99), None);
    }

    #[test]
    fn kernel_device_numbers() {
        let key = GuardFileKey {
            dev: kernel_dev(254, 3),
            _pad: 0,
            ino: 7,
        };
        assert_eq!(key.dev, (254 << 20) | 3);
        assert_eq!(spell(&key), "254:3:7");
    }

    /// On an ordinary file system (not overlayfs) the kernel's identity is what stat shows.
    #[test]
    fn an_open_file_is_known_by_the_numbers_stat_gives_here() {
        let file = File::open("/proc/self/exe").unwrap();
        let meta = file.metadata().unwrap();
        let key = of_open_file(&file).unwrap();
        assert_eq!(key.ino, meta.ino());
        let fdinfo = fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()));
        let (mnt_id, _) = parse_fdinfo(&fdinfo.unwrap()).unwrap();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let overlay = mountinfo.lines().any(|l| {
            l.split_whitespace().next() == Some(&mnt_id.to_string()) && l.contains(" - overlay ")
        });
        if !overlay {
            let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
            assert_eq!(key.dev, kernel_dev(major, minor));
        }
    }

    #[test]
    fn digest_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"abc").unwrap();
        let digest = sha256_of(&mut File::open(&path).unwrap()).unwrap();
        assert_eq!(
            hex(&digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
