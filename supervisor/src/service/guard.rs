//! The daemon's agent guard: in force while the requirements list agent programs (read again
//! every [`RELOAD`]), and left in the kernel when the daemon stops, so that a restart or a
//! crash opens no gap (the next daemon takes it over). Only a list that became empty removes
//! it. A requirements file that cannot be read leaves the guard as it is.
use std::time::Duration;

use crate::{
    agent_guard::{AgentGuard, Options},
    settings,
};

/// How often the requirements' list is read again.
pub const RELOAD: Duration = Duration::from_secs(10);

pub fn spawn(sources: settings::Sources, opts: Options) {
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => return tracing::error!("the agent guard's runtime: {e}"),
        };
        runtime.block_on(guard(sources, opts));
    });
}

async fn guard(sources: settings::Sources, opts: Options) {
    let mut guard: Option<AgentGuard> = None;
    loop {
        match settings::agent_programs(&sources) {
            Err(e) => {
                tracing::warn!("agent programs not read again (the guard is unchanged): {e:#}")
            }
            Ok(programs) if programs.is_empty() => {
                let stopped = match guard.take() {
                    Some(g) => g.stop(true),
                    // One an earlier daemon or list left in the kernel.
                    None if crate::agent_guard::pinned() => {
                        AgentGuard::start(&[], &opts).and_then(|g| g.stop(true))
                    }
                    None => Ok(()),
                };
                if let Err(e) = stopped {
                    tracing::error!("removing the agent guard: {e}");
                }
            }
            Ok(programs) => {
                let result = match &mut guard {
                    Some(g) => g.update(&programs),
                    None => AgentGuard::start(&programs, &opts).map(|g| {
                        tracing::info!(
                            "agent guard {}: {}",
                            if g.readopted() {
                                "taken over"
                            } else {
                                "loaded"
                            },
                            g.describe().join("; ")
                        );
                        guard = Some(g);
                    }),
                };
                if let Err(e) = result {
                    tracing::error!("the agent guard: {e}");
                }
            }
        }
        match &mut guard {
            Some(g) => {
                if let Err(e) = g.run(tokio::time::sleep(RELOAD)).await {
                    tracing::error!("the agent guard: {e}");
                    tokio::time::sleep(RELOAD).await;
                }
            }
            None => tokio::time::sleep(RELOAD).await,
        }
    }
}
