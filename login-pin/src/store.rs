//! The on-disk JWKS cache: one file per URL (named by its SHA-256), written atomically and
//! readable by the owner only.
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::cache::JwksError;

/// One cached JWKS, with what decides when to fetch it again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) url: String,
    /// Seconds since the epoch.
    pub(crate) fetched_at: u64,
    pub(crate) max_age: u64,
    /// When a token's unknown key last caused a refetch (seconds since the epoch).
    #[serde(default)]
    pub(crate) unknown_key_refetch_at: Option<u64>,
    pub(crate) keys: JwkSet,
}

impl Entry {
    /// How old the copy is; `None` if it claims to come from the future (the clock moved).
    pub(crate) fn age(&self, now: SystemTime) -> Option<Duration> {
        since(self.fetched_at, now)
    }
}

/// Time elapsed from `then` (seconds since the epoch) to `now`, if `then` is not later.
pub(crate) fn since(then: u64, now: SystemTime) -> Option<Duration> {
    Duration::from_secs(unix(now)).checked_sub(Duration::from_secs(then))
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    pub(crate) fn open(dir: PathBuf) -> Result<Self, JwksError> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| cache_error(&dir, e))?;
        Ok(Self { dir })
    }

    pub(crate) fn path(&self, url: &str) -> PathBuf {
        let hash: String = Sha256::digest(url.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("jwks-{hash}.json"))
    }

    /// The cached entry for `url`; none if there is no file or it is unreadable as an entry
    /// (it is then replaced by the next fetch).
    pub(crate) fn read(&self, url: &str) -> Result<Option<Entry>, JwksError> {
        let path = self.path(url);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(cache_error(&path, e)),
        };
        Ok(serde_json::from_slice::<Entry>(&bytes)
            .ok()
            .filter(|entry| entry.url == url))
    }

    /// Replaces the entry by writing a new file (mode 0600) and renaming it over the old, so
    /// that a reader never sees half of one.
    pub(crate) fn write(&self, entry: &Entry) -> Result<(), JwksError> {
        let path = self.path(&entry.url);
        let json = serde_json::to_vec_pretty(entry).map_err(std::io::Error::other);
        let mut file =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| cache_error(&path, e))?;
        json.and_then(|json| file.write_all(&json))
            .and_then(|()| file.as_file().sync_all())
            .map_err(|e| cache_error(&path, e))?;
        file.persist(&path)
            .map_err(|e| cache_error(&path, e.error))?;
        Ok(())
    }
}

fn cache_error(path: &Path, source: std::io::Error) -> JwksError {
    JwksError::Cache {
        path: path.to_path_buf(),
        source,
    }
}
