//! Telemetry the collector missed (it was down when a session ended, or a supervisor died)
//! is the service's to deliver: every interval, what `warden export` would send goes to the
//! requirements' collector. Sessions exported right now by their own supervisor are skipped
//! (their cursor is locked).
use std::{path::PathBuf, time::Duration};

use crate::{otlp, settings};

/// How long one delivery may take per session.
const GRACE: Duration = Duration::from_secs(30);

pub fn spawn(state_dir: PathBuf, sources: settings::Sources, interval: Duration) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(interval);
            if let Err(e) = once(&state_dir, &sources) {
                tracing::warn!("delivering pending telemetry: {e:#}");
            }
        }
    });
}

fn once(state_dir: &std::path::Path, sources: &settings::Sources) -> anyhow::Result<()> {
    let overrides = warden_requirements::CliOverrides::default();
    let loaded = settings::load(sources, &overrides, std::path::Path::new("/root"))?;
    let Some(options) = settings::telemetry(&loaded.settings, GRACE) else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let exporter = otlp::Exporter::new(&options.export)?;
        for (dir, result) in otlp::export_pending(&exporter, state_dir, GRACE).await {
            match result {
                Ok(otlp::Outcome::Done) => tracing::info!("{}: delivered", dir.display()),
                Ok(otlp::Outcome::Pending { next_seq, error }) => tracing::info!(
                    "{}: still pending from seq {next_seq}{}",
                    dir.display(),
                    error.map(|e| format!(" ({e})")).unwrap_or_default()
                ),
                Err(e) => tracing::warn!("{}: {e}", dir.display()),
            }
        }
        exporter.shutdown().await;
        anyhow::Ok(())
    })
}
