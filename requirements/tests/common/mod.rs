//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use warden_requirements::integrity::check_dir;
use warden_requirements::{Layer, LayerKind, TrustPolicy};

/// A fresh directory that passes the integrity checks: below the target directory when its
/// ancestors allow (not below /tmp: it is writable by every user), else below /run or home.
pub fn trusted_dir() -> TempDir {
    let candidates = [
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR"))),
        is_root().then(|| PathBuf::from("/run")),
        std::env::var_os("HOME").map(PathBuf::from),
    ];
    let base = candidates
        .into_iter()
        .flatten()
        .find(|dir| check_dir(dir, &policy()).is_ok())
        .expect("no directory writable only by root or this user to run the tests in");
    let dir = tempfile::Builder::new()
        .prefix("warden-requirements-")
        .tempdir_in(base)
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Writes `text` to `path` with mode 0644 and returns the path.
pub fn write(path: &Path, text: &str) -> PathBuf {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    path.to_owned()
}

/// Trusts whoever runs the tests, so that they also pass outside root; root runs trust
/// root alone, as Warden does.
pub fn policy() -> TrustPolicy {
    TrustPolicy { owner_uid: euid() }
}

fn euid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}

pub fn is_root() -> bool {
    euid() == 0
}

pub const EXPIRES: &str = "2030-01-01T00:00:00Z";

/// A bundle header for `text` with the given version.
pub fn bundle_text(version: u64, text: &str) -> String {
    format!("{text}\n[bundle]\nversion = {version}\nexpires_at = {EXPIRES}\n")
}

pub fn layer(kind: LayerKind, name: &str, text: &str) -> Layer {
    let text = if kind == LayerKind::CloudBundle {
        bundle_text(1, text)
    } else {
        text.to_owned()
    };
    Layer::parse(kind, name, text).unwrap_or_else(|e| panic!("{e}"))
}
