//! The export cursor: how far the collector has acknowledged a session's log, persisted in
//! the session directory after every acknowledged batch (atomically: a crash leaves the old
//! or the new cursor). Delivery resumes from it, so records after it are sent at least once
//! and those before it are not sent again.
//!
//! One exporter per session at a time: whoever exports holds `export.lock` (flock), the live
//! supervisor for its own session, `warden export` or a later `warden run` for a finished one.
use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::audit_log;

pub const CURSOR_FILE: &str = "export.cursor";
pub const LOCK_FILE: &str = "export.lock";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The first record the collector has not acknowledged.
    pub next_seq: u64,
    /// Byte offset of that record's line in the log.
    pub offset: u64,
    /// `session.end` was acknowledged: nothing is left to send.
    #[serde(default)]
    pub done: bool,
}

impl Cursor {
    pub fn path(session_dir: &Path) -> PathBuf {
        session_dir.join(CURSOR_FILE)
    }

    /// The session's cursor; `None` when the session was never set up for export.
    pub fn load(session_dir: &Path) -> io::Result<Option<Self>> {
        let path = Self::path(session_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn store(&self, session_dir: &Path) -> io::Result<()> {
        audit_log::write_atomically(&Self::path(session_dir), &serde_json::to_vec(self)?)
    }
}

/// The right to export a session; `Ok(None)` when another process holds it.
pub fn lock(session_dir: &Path) -> io::Result<Option<Flock<File>>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(session_dir.join(LOCK_FILE))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e.into()),
    }
}

/// Session directories under `state_dir` whose telemetry is not all acknowledged yet, oldest
/// first.
pub fn pending(state_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("sessions")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|dir| matches!(Cursor::load(dir), Ok(Some(c)) if !c.done))
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_lists_pending_sessions() {
        let state = tempfile::tempdir().unwrap();
        let sessions = state.path().join("sessions");
        for (name, cursor) in [
            ("a", Some(Cursor::default())),
            (
                "b",
                Some(Cursor {
                    next_seq: 9,
                    offset: 900,
                    done: true,
                }),
            ),
            ("c", None),
        ] {
            let dir = sessions.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(c) = cursor {
                c.store(&dir).unwrap();
                assert_eq!(Cursor::load(&dir).unwrap(), Some(c));
            }
        }
        assert_eq!(pending(state.path()), [sessions.join("a")]);
        assert_eq!(Cursor::load(&sessions.join("c")).unwrap(), None);
        std::fs::write(Cursor::path(&sessions.join("c")), "{").unwrap();
        let err = Cursor::load(&sessions.join("c")).unwrap_err().to_string();
        assert!(err.contains("export.cursor"), "{err}");
    }

    #[test]
    fn one_exporter_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        assert!(held.is_some());
        assert!(lock(dir.path()).unwrap().is_none());
        drop(held);
        assert!(lock(dir.path()).unwrap().is_some());
    }
}
