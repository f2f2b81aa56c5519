//! `warden guard`: the agent guard in the foreground, until a signal stops it (what the daemon
//! will run as one of its services).
use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use warden::{
    agent_guard::{self, AgentGuard, Options},
    settings,
};
use warden_requirements::values::AgentProgram;

use super::args::{GuardArgs, RequirementsPaths};

pub fn guard(args: GuardArgs) -> anyhow::Result<i32> {
    let GuardArgs {
        state,
        requirements,
        cgroup_root,
        keep_pinned,
    } = args;
    anyhow::ensure!(
        nix::unistd::Uid::effective().is_root(),
        "warden guard loads a kernel program for the whole machine: run it as root"
    );
    let opts = Options {
        state_dir: state.state_dir,
        cgroup_root,
    };
    let programs = agent_programs(&requirements)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        if programs.is_empty() {
            return nothing_listed(&opts);
        }
        let mut guard = AgentGuard::start(&programs, &opts)?;
        announce(
            &guard,
            if guard.readopted() {
                "took over the guard an earlier one left in the kernel"
            } else {
                "loaded the guard"
            },
        );
        loop {
            let reload = guard
                .run(async {
                    tokio::select! {
                        _ = term.recv() => false,
                        _ = int.recv() => false,
                        _ = hup.recv() => true,
                    }
                })
                .await?;
            if !reload {
                break;
            }
            match agent_programs(&requirements) {
                Ok(programs) if programs.is_empty() => {
                    println!("warden guard: the requirements list no agent program any more");
                    guard.stop(true)?;
                    return Ok(0);
                }
                Ok(programs) => {
                    guard.update(&programs)?;
                    announce(&guard, "read the requirements again");
                }
                // The guard goes on with the list it has: a broken file must not open the door.
                Err(e) => eprintln!("warden guard: requirements not reloaded: {e:#}"),
            }
        }
        guard.stop(!keep_pinned)?;
        println!(
            "warden guard: stopped{}",
            if keep_pinned {
                "; the guard stays in the kernel"
            } else {
                ""
            }
        );
        Ok(0)
    })
}

fn agent_programs(paths: &RequirementsPaths) -> anyhow::Result<Vec<AgentProgram>> {
    settings::agent_programs(&paths.sources(settings::UserConfigSource::Given(None))?)
}

/// No program listed: a guard left in the kernel by an earlier list is removed (and that is
/// recorded), as the daemon does.
fn nothing_listed(opts: &Options) -> anyhow::Result<i32> {
    if agent_guard::pinned() {
        AgentGuard::start(&[], opts)
            .and_then(|g| g.stop(true))
            .context("removing the guard an earlier list left in the kernel")?;
        println!(
            "warden guard: no agent program is listed; the guard left in the kernel is removed"
        );
    } else {
        println!("warden guard: no agent program is listed ([[service.agent_programs]])");
    }
    Ok(0)
}

fn announce(guard: &AgentGuard, what: &str) {
    for line in guard.describe() {
        println!("warden guard: guarding {line}");
    }
    for w in guard.warnings() {
        println!("warden guard: warning: {w}");
    }
    println!(
        "warden guard: {what}; kills are recorded in {}",
        guard.log_path().display()
    );
}
