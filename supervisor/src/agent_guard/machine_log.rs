//! The guard's log: `STATE_DIR/guard/events.jsonl`, one per machine, hash-chained like a
//! session's (its records carry the session `agent-guard`), continued by every Warden that
//! guards.
use std::{
    fs, io,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
};

use warden_records::{
    audit_log::{self, AuditWriter},
    clock::Clock,
    events::Event,
};

/// The `session` of the guard's records (and the seed of its hash chain).
pub const SESSION: &str = "agent-guard";

/// Where the log is kept under a state directory.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("guard").join(audit_log::FILE_NAME)
}

pub struct Opened {
    pub writer: AuditWriter,
    /// What `events.lost` records have counted so far (the kernel's counter is since load).
    pub lost_recorded: u64,
    /// A log that could not be continued, kept aside.
    pub warning: Option<String>,
}

/// Continues the log, or starts it. A log that cannot be continued (not Warden records) is
/// renamed aside and a new one started: the guard must not stop for it.
pub fn open(state_dir: &Path) -> io::Result<Opened> {
    let path = path(state_dir);
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if !path.exists() {
        return Ok(Opened {
            writer: AuditWriter::create(&path, SESSION, Clock::new())?,
            lost_recorded: 0,
            warning: None,
        });
    }
    match audit_log::reopen(&path).and_then(|r| Ok((r, lost_recorded(&path)?))) {
        Ok((reopened, lost_recorded)) => Ok(Opened {
            warning: reopened.dropped_partial.then(|| {
                format!(
                    "{}: its last line was cut off (a crash while writing) and was dropped",
                    path.display()
                )
            }),
            writer: reopened.writer,
            lost_recorded,
        }),
        Err(e) => {
            let aside = path.with_extension(format!("jsonl.damaged-{}", std::process::id()));
            fs::rename(&path, &aside)?;
            let _ = fs::remove_file(audit_log::head_path(&path));
            Ok(Opened {
                writer: AuditWriter::create(&path, SESSION, Clock::new())?,
                lost_recorded: 0,
                warning: Some(format!(
                    "{} could not be continued ({e}): kept as {}, a new log started",
                    path.display(),
                    aside.display()
                )),
            })
        }
    }
}

/// The `total` of the last `events.lost` record.
fn lost_recorded(path: &Path) -> io::Result<u64> {
    let records = audit_log::read(path).map_err(io::Error::other)?;
    Ok(records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::EventsLost(l) => Some(l.total),
            _ => None,
        })
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_records::events::{EventsLost, GuardDisarmed};

    fn disarmed() -> Event {
        Event::GuardDisarmed(GuardDisarmed {
            unpinned: false,
            supervisor_pid: 1,
        })
    }

    #[test]
    fn continued_by_the_next_guard_with_an_intact_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = open(dir.path()).unwrap();
        first.writer.append(1, disarmed()).unwrap();
        let lost = EventsLost {
            exec: 2,
            total: 2,
            ..Default::default()
        };
        first.writer.append(2, Event::EventsLost(lost)).unwrap();
        first.writer.sync().unwrap();
        drop(first);
        let mut second = open(dir.path()).unwrap();
        assert_eq!(second.lost_recorded, 2);
        assert!(second.warning.is_none());
        second.writer.append(3, disarmed()).unwrap();
        second.writer.sync().unwrap();
        let log = path(dir.path());
        let records = audit_log::read(&log).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(records.iter().all(|r| r.session == SESSION));
        assert!(warden_records::verify::verify(&log).unwrap().intact());
    }

    #[test]
    fn a_log_that_cannot_be_continued_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let log = path(dir.path());
        fs::create_dir_all(log.parent().unwrap()).unwrap();
        fs::write(&log, b"not a record\n").unwrap();
        let opened = open(dir.path()).unwrap();
        let warning = opened.warning.unwrap();
        assert!(warning.contains("a new log started"), "{warning}");
        assert_eq!(fs::read_dir(log.parent().unwrap()).unwrap().count(), 2);
    }
}
