//! `warden export`: send what collectors have not acknowledged.
use warden::{otlp, settings, target_user};
use warden_requirements::CliOverrides;

use super::args::ExportArgs;

pub fn export(args: ExportArgs) -> anyhow::Result<i32> {
    let ExportArgs {
        timeout_secs,
        state,
        telemetry,
        config,
        requirements,
    } = args;

    let user = target_user::resolve(None)?;
    let user_config = config
        .unwrap_or_else(|| warden_requirements::user_config::default_user_config_path(&user.home));
    let sources = requirements.sources(warden::settings::UserConfigSource::File(user_config))?;
    let mut overrides = CliOverrides::default();
    telemetry.apply(&mut overrides);
    let loaded = settings::load(&sources, &overrides, &user.home)?;
    let timeout = std::time::Duration::from_secs(timeout_secs);
    let Some(options) = settings::telemetry(&loaded.settings, timeout) else {
        anyhow::bail!("no OTLP endpoint configured (telemetry.otlp_endpoint or --otlp-endpoint)");
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let exporter = otlp::Exporter::new(&options.export)?;
        let results = otlp::export_pending(&exporter, &state.state_dir, timeout).await;
        exporter.shutdown().await;
        let mut pending = 0;
        for (dir, result) in &results {
            match result {
                Ok(otlp::Outcome::Done) => println!("{}: sent", dir.display()),
                Ok(otlp::Outcome::Pending { next_seq, error }) => {
                    pending += 1;
                    println!(
                        "{}: pending from seq {next_seq}{}",
                        dir.display(),
                        error
                            .as_ref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                }
                Err(e) => {
                    pending += 1;
                    println!("{}: {e}", dir.display());
                }
            }
        }
        if results.is_empty() {
            println!("nothing pending");
        }
        anyhow::Ok(if pending > 0 { 1 } else { 0 })
    })
}
