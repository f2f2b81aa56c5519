//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use warden_requirements::{Layer, LayerKind, TrustPolicy};

/// A fresh directory below the target directory. Not below /tmp: /tmp is writable by every
/// user, so nothing below it can pass the integrity checks.
pub fn trusted_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("requirements-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
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
    let uid = fs::metadata(env!("CARGO_TARGET_TMPDIR")).unwrap().uid();
    TrustPolicy { owner_uid: uid }
}

pub fn is_root() -> bool {
    fs::metadata("/proc/self").unwrap().uid() == 0
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
