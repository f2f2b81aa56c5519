//! Requirements changing while a session runs: a valid change applies to new sessions (this
//! one keeps the settings it started with) and is recorded; an invalid one is refused, the
//! last good set stays, and that is recorded too.
use std::{path::PathBuf, time::Duration};

use tokio::sync::mpsc;
use warden_requirements::{LayerPaths, LiveRequirements, TrustPolicy};

use crate::{
    clock,
    events::{Event, RequirementsChange},
};

const POLL: Duration = Duration::from_secs(1);

/// What identifies a file's content cheaply: its name, inode, size and modification time.
type Fingerprint = Vec<(PathBuf, Option<(u64, u64, i128)>)>;

fn fingerprint(paths: &LayerPaths) -> Fingerprint {
    use std::os::unix::fs::MetadataExt as _;
    let mut files = vec![paths.local_file.clone()];
    if let Ok(entries) = std::fs::read_dir(&paths.managed_dir) {
        let mut managed: Vec<PathBuf> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        managed.sort();
        files.extend(managed);
    }
    files
        .into_iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(&p).ok().map(|m| {
                let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
                (m.ino(), m.size(), mtime)
            });
            (p, m)
        })
        .collect()
}

/// Watches until the task is dropped.
pub async fn watch(paths: LayerPaths, events: mpsc::Sender<(u64, Event)>) {
    let Ok(mut live) = LiveRequirements::load(paths.clone(), TrustPolicy::default()) else {
        return;
    };
    let mut seen = fingerprint(&paths);
    loop {
        tokio::time::sleep(POLL).await;
        let now = fingerprint(&paths);
        if now == seen {
            continue;
        }
        seen = now;
        let files: Vec<String> = seen.iter().map(|(p, _)| p.display().to_string()).collect();
        let change = match live.reload() {
            Ok(_) => RequirementsChange {
                accepted: true,
                files,
                error: None,
            },
            Err(e) => RequirementsChange {
                accepted: false,
                files,
                error: Some(e.to_string()),
            },
        };
        tracing::warn!(
            "requirements changed: {}",
            change
                .error
                .as_deref()
                .unwrap_or("valid, applies to new sessions")
        );
        let _ = events
            .send((clock::boot_ns(), Event::RequirementsChanged(change)))
            .await;
    }
}
