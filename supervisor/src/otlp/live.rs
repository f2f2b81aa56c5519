//! The live session's exporter: set up before the session starts (a bad CA file or header
//! stops it there), resuming older sessions' backlogs, then following the session's log until
//! its `session.end` is acknowledged or the grace after it runs out.
use std::{io::Write as _, path::Path, sync::Arc, time::Duration};

use anyhow::anyhow;
use tokio::sync::mpsc;

use super::TelemetryOptions;
use crate::{events::Event, freezer::Freezer};

pub struct LiveExport {
    options: TelemetryOptions,
    exporter: Arc<super::Exporter>,
    /// Held for the whole session: nobody else exports this log meanwhile.
    _lock: nix::fcntl::Flock<std::fs::File>,
    older: tokio::task::JoinHandle<()>,
}

/// The exporter, following the session's log.
pub struct Following {
    export: LiveExport,
    state: tokio::sync::watch::Sender<super::SessionState>,
    delivery: tokio::task::JoinHandle<std::io::Result<super::Outcome>>,
}

impl LiveExport {
    pub fn start(options: &TelemetryOptions, state_dir: &Path, dir: &Path) -> anyhow::Result<Self> {
        let exporter = super::Exporter::new(&options.export)?;
        // The cursor's presence marks the session as one to export, should this supervisor
        // die before it is done.
        super::Cursor::default().store(dir)?;
        let lock = super::cursor::lock(dir)?
            .ok_or_else(|| anyhow!("{}: export lock held by another process", dir.display()))?;
        let older = tokio::spawn({
            let exporter = exporter.clone();
            let state_dir = state_dir.to_path_buf();
            let grace = options.grace;
            async move {
                for (dir, outcome) in super::export_pending(&exporter, &state_dir, grace).await {
                    match outcome {
                        Ok(super::Outcome::Done) => {
                            tracing::info!("{}: pending telemetry sent", dir.display())
                        }
                        Ok(super::Outcome::Pending { next_seq, .. }) => tracing::info!(
                            "{}: telemetry still pending from seq {next_seq}",
                            dir.display()
                        ),
                        Err(e) => tracing::error!("{}: exporting: {e}", dir.display()),
                    }
                }
            }
        });
        Ok(Self {
            options: options.clone(),
            exporter,
            _lock: lock,
            older,
        })
    }

    pub fn follow(
        self,
        log: &Path,
        dir: &Path,
        freezer: Arc<Freezer>,
        events: &mpsc::Sender<(u64, Event)>,
    ) -> Following {
        let (state, state_rx) = tokio::sync::watch::channel(super::SessionState::Running);
        let control = super::BacklogControl::new(
            self.options.max_backlog_bytes,
            self.options.backlog_policy,
            freezer,
            events.downgrade(),
        );
        let delivery = tokio::spawn({
            let exporter = self.exporter.clone();
            let log = log.to_path_buf();
            let dir = dir.to_path_buf();
            let grace = self.options.grace;
            async move {
                super::Delivery {
                    exporter: &exporter,
                    log,
                    cursor: super::Cursor::default(),
                    session_dir: Some(dir),
                    live: Some((state_rx, Some(control))),
                    grace,
                }
                .run()
                .await
            }
        });
        Following {
            export: self,
            state,
            delivery,
        }
    }
}

impl Following {
    pub fn state(&self, state: super::SessionState) {
        let _ = self.state.send(state);
    }

    /// Gives the exporter its grace to send the rest, then leaves what is left pending.
    pub async fn finish(self, id: &str, quiet: bool) {
        self.state(super::SessionState::Ended);
        let bound = self.export.options.grace + Duration::from_secs(1);
        let outcome = match tokio::time::timeout(bound, self.delivery).await {
            Ok(Ok(Ok(outcome))) => outcome,
            Ok(Ok(Err(e))) => super::Outcome::Pending {
                next_seq: 0,
                error: Some(e.to_string()),
            },
            Ok(Err(e)) => super::Outcome::Pending {
                next_seq: 0,
                error: Some(e.to_string()),
            },
            Err(_) => super::Outcome::Pending {
                next_seq: 0,
                error: Some("timed out".into()),
            },
        };
        if let super::Outcome::Pending { next_seq, error } = outcome {
            let why = error.map(|e| format!(" ({e})")).unwrap_or_default();
            tracing::warn!("session {id}: telemetry pending from seq {next_seq}{why}");
            if !quiet {
                // Not `eprintln!`: the terminal may have hung up (that panics).
                let _ = writeln!(
                    std::io::stderr(),
                    "warden: telemetry of session {id} not all delivered to {}{why}: it stays \
                     in the log; `warden export` or the next `warden run` sends the rest",
                    self.export.exporter.endpoint()
                );
            }
        }
        if tokio::time::timeout(self.export.options.grace, self.export.older)
            .await
            .is_err()
        {
            tracing::info!("older sessions' telemetry still pending: left for `warden export`");
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.export.exporter.shutdown()).await;
    }
}
