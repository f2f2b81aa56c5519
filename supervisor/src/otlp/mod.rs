//! Telemetry: the audit log sent to an OpenTelemetry collector over OTLP.
//!
//! - `mapping`: one audit record -> one OTLP log record `warden.<kind>` with semantic-convention
//!   and `warden.*` attributes;
//! - `transport` (and `http_client`): the gRPC or HTTP/protobuf exporter, headers, TLS, and the
//!   event/decision/loss counters sent as OTLP metrics;
//! - `cursor`: how far the collector acknowledged a session, persisted beside its log;
//! - `delivery`: the loop that reads the log from the cursor and sends it at least once, in
//!   order, through collector outages, within the backlog limit.
pub mod cursor;
pub mod delivery;
mod http_client;
pub mod live;
pub mod mapping;
pub mod transport;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

pub use cursor::Cursor;
pub use delivery::{BacklogControl, Delivery, Outcome, SessionState};
pub use transport::{ExportConfig, Exporter};

use warden_requirements::values::BacklogPolicy;

use crate::audit_log;

/// A session's telemetry settings.
#[derive(Clone, Debug)]
pub struct TelemetryOptions {
    pub export: ExportConfig,
    /// Most bytes of log that may wait for the collector.
    pub max_backlog_bytes: u64,
    pub backlog_policy: BacklogPolicy,
    /// How long the supervisor keeps sending after `session.end` (and older sessions' backlogs
    /// at start) before it leaves the rest to `warden export`.
    pub grace: Duration,
}

/// Sends the telemetry of finished sessions that is not acknowledged yet (collector outage,
/// supervisor killed), each within `grace`. Sessions exported elsewhere right now are skipped.
pub async fn export_pending(
    exporter: &Exporter,
    state_dir: &Path,
    grace: Duration,
) -> Vec<(PathBuf, std::io::Result<Outcome>)> {
    let mut out = Vec::new();
    for dir in cursor::pending(state_dir) {
        let Ok(Some(_lock)) = cursor::lock(&dir) else {
            continue;
        };
        let result = async {
            let cursor = Cursor::load(&dir)?.unwrap_or_default();
            Delivery {
                exporter,
                log: dir.join(audit_log::FILE_NAME),
                cursor,
                session_dir: Some(dir.clone()),
                live: None,
                grace,
            }
            .run()
            .await
        }
        .await;
        out.push((dir, result));
    }
    out
}

/// Sends a whole recorded log again (`warden replay --otlp`), without touching its cursor.
pub async fn resend(exporter: &Exporter, log: &Path, grace: Duration) -> std::io::Result<Outcome> {
    Delivery {
        exporter,
        log: log.to_path_buf(),
        cursor: Cursor::default(),
        session_dir: None,
        live: None,
        grace,
    }
    .run()
    .await
}
