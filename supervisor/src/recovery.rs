//! Sessions whose supervisor died (SIGKILL, crash): found and ended by the next Warden.
//!
//! While a session runs, its supervisor holds an exclusive lock on a registration file in the
//! run directory. The kernel releases the lock when the process dies, however it dies, so a
//! registration whose lock can be taken belongs to an orphan. Until it is ended, the orphan
//! stays confined: its network programs are pinned in bpffs and keep enforcing, and with the
//! DNS proxy gone its lookups fail.
use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write as _},
    os::unix::fs::MetadataExt,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::{
    audit_log,
    cgroup::SessionCgroup,
    clock,
    events::{EndReason, Event, SessionEnd},
    kernel::bpffs,
};

/// Default directory of registrations (tmpfs: cleared at boot, like cgroups and pins).
pub const RUN_DIR: &str = "/run/warden/sessions";

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub log: PathBuf,
    pub cgroup: PathBuf,
    pub pin_dir: PathBuf,
    pub supervisor_pid: u32,
    /// Who the command runs as (absent in registrations of older Wardens).
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub user: String,
    /// The command line, escaped for a terminal.
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub workspace: String,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub started: String,
}

/// A live session's registration; dropping it (normal end) removes it.
pub struct Registration {
    path: PathBuf,
    _lock: Flock<File>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

pub fn register(run_dir: &Path, info: &SessionInfo) -> io::Result<Registration> {
    fs::create_dir_all(run_dir)?;
    let path = run_dir.join(format!("{}.json", info.id));
    // Written and locked under a name `recover` ignores, then renamed: another Warden starting
    // at the same moment never sees a registration that is not locked yet (it would take the
    // lock, find no content, and make this registration fail).
    let partial = run_dir.join(format!(".{}.json.partial", info.id));
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&partial)?;
    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| e)?;
    serde_json::to_writer(&mut *lock, info)?;
    lock.flush()?;
    fs::rename(&partial, &path)?;
    Ok(Registration { path, _lock: lock })
}

/// The sessions registered in `run_dir` whose supervisor is alive (it holds the lock).
pub fn live(run_dir: &Path) -> Vec<SessionInfo> {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut out: Vec<SessionInfo> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|path| {
            let file = File::open(&path).ok()?;
            let info: SessionInfo = serde_json::from_reader(&file).ok()?;
            // Taken: nobody holds it, the supervisor is gone (`recover` ends that session).
            match Flock::lock(file, FlockArg::LockSharedNonblock) {
                Ok(_) => None,
                Err(_) => Some(info),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// What `recover` did with one orphan.
#[derive(Debug)]
pub struct Recovered {
    pub id: String,
    pub killed: u32,
    pub error: Option<String>,
}

/// Ends every orphaned session registered in `run_dir`, then removes pins left by sessions
/// that are over (their cgroup is gone) but were never registered here.
pub fn recover(run_dir: &Path) -> Vec<Recovered> {
    let out = recover_registered(run_dir);
    remove_stale_pins();
    out
}

fn remove_stale_pins() {
    let Ok(cgroup_root) = crate::cgroup::find_cgroup2_mount() else {
        return;
    };
    let pins = Path::new(bpffs::MOUNT_POINT).join(bpffs::WARDEN_DIR);
    let Ok(entries) = fs::read_dir(&pins) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let id = entry.file_name();
        // A session's cgroup goes last: with it gone, the session is over.
        if cgroup_root.join(crate::cgroup::PARENT).join(&id).exists() {
            continue;
        }
        let dir = entry.path();
        if let Ok(files) = fs::read_dir(&dir) {
            for f in files.filter_map(Result::ok) {
                let _ = fs::remove_file(f.path());
            }
        }
        match fs::remove_dir(&dir) {
            Ok(()) => tracing::warn!("removed stale pins of session {}", id.to_string_lossy()),
            Err(e) => tracing::error!("removing {}: {e}", dir.display()),
        }
    }
}

fn recover_registered(run_dir: &Path) -> Vec<Recovered> {
    let Ok(entries) = fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // Held: its supervisor is alive.
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        // Removed meanwhile (its session ended normally, releasing the lock as it went):
        // what is locked must still be the registration on file.
        let same_file = match (lock.metadata(), fs::metadata(&path)) {
            (Ok(locked), Ok(now)) => locked.ino() == now.ino() && locked.dev() == now.dev(),
            _ => false,
        };
        if !same_file {
            continue;
        }
        let info: SessionInfo = match serde_json::from_reader(&*lock) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!("{}: unreadable registration: {e}", path.display());
                continue;
            }
        };
        let result = end_orphan(&info);
        tracing::warn!(
            "ended session {} whose supervisor (pid {}) died",
            info.id,
            info.supervisor_pid
        );
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(crate::approvals::socket::path(run_dir, &info.id));
        out.push(match result {
            Ok(killed) => Recovered {
                id: info.id,
                killed,
                error: None,
            },
            Err(e) => Recovered {
                id: info.id,
                killed: 0,
                error: Some(e.to_string()),
            },
        });
    }
    out
}

fn end_orphan(info: &SessionInfo) -> anyhow::Result<u32> {
    let mut killed = 0;
    if info.cgroup.exists() {
        let cgroup = SessionCgroup::open(&info.cgroup)?;
        killed = cgroup.kill_all()?;
        cgroup.remove()?;
    }
    // Removing the pins drops the last references to the links: the programs detach.
    if let Ok(pins) = fs::read_dir(&info.pin_dir) {
        for pin in pins.filter_map(Result::ok) {
            fs::remove_file(pin.path())?;
        }
        fs::remove_dir(&info.pin_dir)?;
    }
    let audit_log::Reopened {
        mut writer,
        dropped_partial,
        started_boot_ns,
    } = audit_log::reopen(&info.log)?;
    let records = writer.records();
    let now = clock::boot_ns();
    writer.append(
        now,
        Event::SessionEnd(SessionEnd {
            reason: EndReason::SupervisorLost,
            exit_code: None,
            signal: None,
            status: -1,
            killed,
            duration_ms: now.saturating_sub(started_boot_ns) / 1_000_000,
            records,
            lost: 0,
            error: Some(format!(
                "the supervisor (pid {}) died; events after its death were not recorded{}",
                info.supervisor_pid,
                if dropped_partial {
                    "; its last, partial record was removed"
                } else {
                    ""
                }
            )),
        }),
    )?;
    writer.sync()?;
    Ok(killed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, dir: &Path) -> SessionInfo {
        SessionInfo {
            id: id.to_string(),
            log: dir.join("none.jsonl"),
            cgroup: dir.join("no-cgroup"),
            pin_dir: dir.join("no-pins"),
            supervisor_pid: std::process::id(),
            uid: 0,
            user: "root".into(),
            command: "true".into(),
            workspace: "/".into(),
            started: String::new(),
        }
    }

    #[test]
    fn sessions_registering_while_another_warden_recovers_are_neither_taken_nor_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        fs::create_dir_all(&run_dir).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let recovering = {
            let (run_dir, stop) = (run_dir.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut ended = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    ended += recover_registered(&run_dir).len();
                }
                ended
            })
        };
        // Each registration lives a moment: the directory stays small, so the other Warden
        // looks at it often (a registration seen before it is locked used to fail one in a
        // few hundred).
        for i in 0..3000 {
            let r = register(&run_dir, &info(&format!("s{i}"), dir.path()))
                .unwrap_or_else(|e| panic!("registration {i} failed: {e}"));
            drop(r);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            recovering.join().unwrap(),
            0,
            "a live session was recovered"
        );
        assert_eq!(
            fs::read_dir(&run_dir).unwrap().count(),
            0,
            "nothing left behind"
        );
    }

    #[test]
    fn live_lists_the_sessions_whose_supervisor_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let held = register(dir.path(), &info("a", dir.path())).unwrap();
        let orphan = register(dir.path(), &info("b", dir.path())).unwrap();
        // An orphan: its registration stays, its lock is gone (the supervisor died).
        std::mem::forget(orphan);
        let path = dir.path().join("b.json");
        let copy = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        fs::write(&path, copy).unwrap();
        let ids: Vec<String> = live(dir.path()).into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["a"]);
        drop(held);
        assert!(live(dir.path()).is_empty());
    }
}
