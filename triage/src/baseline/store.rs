//! A baseline on disk: one JSON file per workspace and agent, replaced atomically, updated
//! under a lock so that two triages at once do not lose a session.
use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warden_records::audit_log::{hex, write_atomically};

use super::{BaselineError, Feature};

/// The file format this code reads and writes.
pub const VERSION: u32 = 1;

/// What a baseline holds.
#[derive(Serialize, Deserialize)]
pub struct Stored {
    pub version: u32,
    /// The key, kept inside so that a file is never read as another workspace's.
    pub workspace: String,
    pub agent: String,
    /// Session ids in the order they were learnt: a session's index is its place here, and
    /// their number is the baseline's size.
    pub learnt: Vec<String>,
    pub items: BTreeMap<Feature, BTreeMap<String, Seen>>,
}

/// How often an item was seen.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct Seen {
    /// Learnt sessions that had it.
    pub sessions: u64,
    /// Index of the first and the last of them.
    pub first: u64,
    pub last: u64,
}

impl Stored {
    fn new(workspace: &str, agent: &str) -> Self {
        Stored {
            version: VERSION,
            workspace: workspace.to_string(),
            agent: agent.to_string(),
            learnt: Vec::new(),
            items: BTreeMap::new(),
        }
    }
}

/// The file name of a key: a hash, since a workspace path is no file name.
pub fn file_stem(workspace: &str, agent: &str) -> String {
    let digest = Sha256::digest(format!("{workspace}\0{agent}").as_bytes());
    hex(&digest[..16])
}

/// The baseline at `path`; an empty one when there is none yet. A file that does not parse,
/// or is of another version or key, is an error: resetting it silently would let a damaged
/// or planted file wipe what was learnt.
pub fn load(path: &Path, workspace: &str, agent: &str) -> Result<Stored, BaselineError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Stored::new(workspace, agent)),
        Err(source) => return Err(io_error(path, source)),
    };
    let corrupt = |source| BaselineError::Corrupt {
        path: path.to_path_buf(),
        source,
    };
    // The version first: a newer format need not parse as this one.
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let Version { version } = serde_json::from_str(&text).map_err(corrupt)?;
    if version != VERSION {
        return Err(BaselineError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    let stored: Stored = serde_json::from_str(&text).map_err(corrupt)?;
    if stored.workspace != workspace || stored.agent != agent {
        return Err(BaselineError::WrongKey {
            path: path.to_path_buf(),
            workspace: stored.workspace,
            agent: stored.agent,
        });
    }
    Ok(stored)
}

/// Replaces the file at `path` with `stored`: a reader sees the old file or the new one,
/// whole (so reading needs no lock), and after a crash one of them is there.
pub fn save(path: &Path, stored: &Stored) -> Result<(), BaselineError> {
    let json = serde_json::to_vec_pretty(stored).expect("a baseline serialises");
    write_atomically(path, &json).map_err(|e| io_error(path, e))?;
    // The rename is durable once the directory is synced.
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Holds the exclusive lock of a baseline while alive (the lock goes with the file's close).
pub struct Lock {
    _file: File,
}

/// Waits for the exclusive lock of the baseline whose file stem is `stem` in `dir`.
pub fn lock(dir: &Path, stem: &str) -> Result<Lock, BaselineError> {
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let path = dir.join(format!("{stem}.lock"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    file.lock().map_err(|e| io_error(&path, e))?;
    Ok(Lock { _file: file })
}

fn io_error(path: &Path, source: io::Error) -> BaselineError {
    BaselineError::Io {
        path: PathBuf::from(path),
        source,
    }
}
