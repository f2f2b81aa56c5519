//! The session cgroup's `cgroup.freeze`, shared by whoever may need the session stopped: the
//! exporter while its telemetry backlog drains, live triage while a person is asked about a
//! finding. The session is frozen while anyone holds it and thawed when the last lets go, so
//! that one cannot thaw what the other froze.
use std::{collections::BTreeSet, path::PathBuf, sync::Mutex};

/// Who holds the session frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hold {
    ExportBacklog,
    TriageQuestion,
    /// A question at a terminal the session's agent could otherwise read (the service's
    /// client's).
    TerminalPrompt,
}

pub struct Freezer {
    file: PathBuf,
    holds: Mutex<BTreeSet<Hold>>,
}

impl Freezer {
    pub fn new(freeze_file: PathBuf) -> Self {
        Freezer {
            file: freeze_file,
            holds: Mutex::new(BTreeSet::new()),
        }
    }

    /// Freezes the session (if nobody did yet) for `hold`.
    pub fn hold(&self, hold: Hold) {
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        if holds.is_empty() {
            self.write(true);
        }
        holds.insert(hold);
    }

    /// Lets go of `hold`; thaws the session when nobody else holds it.
    pub fn release(&self, hold: Hold) {
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        if holds.remove(&hold) && holds.is_empty() {
            self.write(false);
        }
    }

    fn write(&self, frozen: bool) {
        match std::fs::write(&self.file, if frozen { "1" } else { "0" }) {
            Ok(()) => {}
            // Thawing a session whose cgroup is already removed (it ended frozen, and the
            // supervisor released it first): nothing is frozen any more.
            Err(e) if !frozen && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!("{}: {e}", self.file.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_thaws_when_the_last_hold_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cgroup.freeze");
        let f = Freezer::new(file.clone());
        let state = || std::fs::read_to_string(&file).unwrap();
        f.hold(Hold::ExportBacklog);
        assert_eq!(state(), "1");
        f.hold(Hold::TriageQuestion);
        f.release(Hold::ExportBacklog);
        assert_eq!(state(), "1", "triage still holds it");
        f.release(Hold::ExportBacklog);
        assert_eq!(state(), "1", "a second release of one hold changes nothing");
        f.release(Hold::TriageQuestion);
        assert_eq!(state(), "0");
    }
}
