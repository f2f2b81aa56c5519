//! `warden replay`: print, verify, or send a recorded session again.
use anyhow::Context as _;
use warden::{log_view, otlp, replay, verify};

use super::args::ReplayArgs;

pub fn replay(args: ReplayArgs) -> anyhow::Result<i32> {
    let ReplayArgs {
        session,
        view,
        json,
        filter,
        verify: check,
        otlp: endpoint,
        protocol,
        headers,
        ca,
        state,
    } = args;

    let path = log_view::locate(&session, &state.state_dir)?;
    if check {
        let report =
            verify::verify(&path).with_context(|| format!("reading {}", path.display()))?;
        print!("{report}");
        if report.intact() {
            println!();
        }
        return Ok(if report.intact() { 0 } else { 1 });
    }
    if let Some(endpoint) = endpoint {
        let mut config = otlp::ExportConfig::new(endpoint, protocol);
        config.headers = headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        config.ca_file = ca;
        // A resend is not new activity: the counters are the live export's.
        config.metrics = false;
        let runtime = tokio::runtime::Runtime::new()?;
        let outcome = runtime.block_on(async {
            let exporter = otlp::Exporter::new(&config)?;
            anyhow::Ok(otlp::resend(&exporter, &path, std::time::Duration::from_secs(30)).await?)
        })?;
        return Ok(match outcome {
            otlp::Outcome::Done => {
                println!("sent {} to {}", path.display(), config.endpoint);
                0
            }
            otlp::Outcome::Pending { next_seq, error } => {
                eprintln!(
                    "warden: {}: sent up to seq {next_seq} only{}",
                    path.display(),
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                );
                1
            }
        });
    }
    let records = replay::read(&path)?;
    let view = if json { replay::ReplayView::Json } else { view };
    replay::print(&records, &filter, view, &mut std::io::stdout().lock())?;
    Ok(0)
}
