//! The command's lifetime: started by the launcher (which confines it), then watched until it
//! exits, Warden is told to stop, or the audit log fails. Returns how the session ended.
use std::{ffi::OsString, io, os::unix::process::ExitStatusExt as _, sync::Arc};

use nix::sys::signal::Signal;

use anyhow::anyhow;
use tokio::{
    process::Child,
    sync::{Notify, mpsc},
    task::JoinHandle,
};
use warden_agent::spec::LaunchSpec;

use super::{
    phases::Phases,
    services::{GateSetup, Services},
};
use crate::{
    cgroup::SessionCgroup,
    events::{EndReason, SessionEnd},
    launch::{self, Launched},
    pipeline::Finished,
    service::{protocol::Forwarded, session_link::FromClient},
    signals::Signals,
    target_user::TargetUser,
};

/// How the session ended.
pub enum Ending {
    /// `end` says how (the command exited, was interrupted, or could not start); its counts
    /// are filled in when the log is complete.
    Ended(SessionEnd),
    /// The audit log could not be written: the session was killed, as it must not go on
    /// unrecorded.
    LogFailed(anyhow::Error),
}

/// What starting the command needs.
pub struct Start<'a> {
    pub command: &'a [OsString],
    pub user: &'a TargetUser,
    pub spec: &'a LaunchSpec,
    pub env: &'a [(&'a str, &'a std::ffi::OsStr)],
    pub env_removed: &'a [OsString],
    /// The environment the command starts from, when not this process's own (the client's).
    pub base_env: Option<&'a [(OsString, OsString)]>,
    pub gate: GateSetup,
    /// Woken when live triage's finding ends the session.
    pub triage_end: Arc<Notify>,
    /// The client's signals, when the service started the session.
    pub client: Option<mpsc::UnboundedReceiver<FromClient>>,
    /// Woken when the terminal hangs up during an approval prompt.
    pub hangup: Arc<Notify>,
}

/// Starts the command and the exec gate on its launcher, and watches it to its end.
pub async fn supervise(
    start: Start<'_>,
    cgroup: &SessionCgroup,
    services: &mut Services,
    signals: &mut Signals,
    phases: &mut Phases,
) -> anyhow::Result<Ending> {
    let launched = launch::spawn(
        start.command,
        start.user,
        cgroup,
        start.spec,
        launch::Environment {
            base: start.base_env,
            set: start.env,
            removed: start.env_removed,
        },
        start.client.is_some(),
    )
    .await;
    phases.done("launcher");
    let child = match launched {
        Ok(Launched {
            child,
            listener: Some(listener),
        }) => {
            let gate = GateSetup {
                launcher_pid: child.id(),
                ..start.gate
            };
            services.start_gate(gate, listener);
            child
        }
        Ok(Launched {
            mut child,
            listener: None,
        }) => {
            services.no_more_gate();
            // The launcher said why on stderr; its status says what kind of failure.
            let status = child.wait().await?;
            let error = io::Error::other(format!(
                "the launcher could not start the command ({status})"
            ));
            return Ok(spawn_failed(
                start.command,
                &error,
                status.code().unwrap_or(126),
            ));
        }
        Err(e) => {
            services.no_more_gate();
            let status = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return Ok(spawn_failed(start.command, &e, status));
        }
    };
    let ends = Ends {
        signals,
        triage: &start.triage_end,
        hangup: &start.hangup,
        client: start.client,
    };
    watch(child, cgroup, &mut services.pipeline, ends).await
}

/// The next message of the client, if there is a client.
async fn next(client: &mut Option<mpsc::UnboundedReceiver<FromClient>>) -> Option<FromClient> {
    match client {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The signal the command's process group gets for what the client passed on.
fn passed_on(f: Forwarded) -> Signal {
    match f {
        Forwarded::Interrupt => Signal::SIGINT,
        Forwarded::Quit => Signal::SIGQUIT,
        Forwarded::Resize => Signal::SIGWINCH,
        Forwarded::Suspend => Signal::SIGTSTP,
        Forwarded::Resume => Signal::SIGCONT,
        Forwarded::Hangup => Signal::SIGHUP,
        Forwarded::Terminate => Signal::SIGTERM,
    }
}

fn spawn_failed(command: &[OsString], e: &io::Error, status: i32) -> Ending {
    let error = format!("cannot run {}: {e}", command[0].to_string_lossy());
    eprintln!("warden: {error}");
    Ending::Ended(SessionEnd {
        status,
        error: Some(error),
        ..end(EndReason::SpawnFailed)
    })
}

fn end(reason: EndReason) -> SessionEnd {
    SessionEnd {
        reason,
        exit_code: None,
        signal: None,
        status: 0,
        killed: 0,
        duration_ms: 0,
        records: 0,
        lost: 0,
        error: None,
    }
}

/// What ends a session before its command does.
struct Ends<'a> {
    signals: &'a mut Signals,
    triage: &'a Notify,
    hangup: &'a Notify,
    /// The client's signals, when the service started the session.
    client: Option<mpsc::UnboundedReceiver<FromClient>>,
}

/// Until the command exits. A signal from a process or a hang-up (not a key pressed at the
/// terminal), a finding whose action is to end, or the terminal hanging up during a prompt
/// ends the session: its processes are killed and the command's exit follows. A failed log
/// kills the session.
async fn watch(
    mut child: Child,
    cgroup: &SessionCgroup,
    pipeline: &mut JoinHandle<io::Result<Finished>>,
    mut ends: Ends<'_>,
) -> anyhow::Result<Ending> {
    let mut end = end(EndReason::Exited);
    // The command leads its own process group when a client passes signals on.
    let group = child
        .id()
        .map(|pid| nix::unistd::Pid::from_raw(-(pid as i32)));
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                end.exit_code = status.code();
                end.signal = status.signal();
                if end.reason == EndReason::Exited {
                    end.status = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                }
                return Ok(Ending::Ended(end));
            }
            received = ends.signals.recv() => {
                let received = received?;
                if received.is_terminal_key() {
                    tracing::debug!("{} from the terminal: left to the command", received.signal);
                    continue;
                }
                if received.from_terminal {
                    tracing::info!("the terminal hung up: ending the session");
                } else {
                    tracing::info!("{} from pid {}: ending the session", received.signal, received.sender_pid);
                }
                end.reason = EndReason::Interrupted;
                end.status = 128 + received.signal as i32;
                end.killed += cgroup.kill_all()?;
            }
            Some(from) = next(&mut ends.client) => {
                let ending = match from {
                    FromClient::Signal(Forwarded::Hangup) | FromClient::Gone => Signal::SIGHUP,
                    FromClient::Signal(Forwarded::Terminate) => Signal::SIGTERM,
                    FromClient::Signal(f) => {
                        if let Some(group) = group {
                            let _ = nix::sys::signal::kill(group, passed_on(f));
                        }
                        continue;
                    }
                };
                if from == FromClient::Gone {
                    ends.client = None;
                }
                if end.reason == EndReason::Exited {
                    tracing::info!("the client hung up or was told to end: ending the session");
                    end.reason = EndReason::Interrupted;
                    end.status = 128 + ending as i32;
                }
                end.killed += cgroup.kill_all()?;
            }
            _ = ends.triage.notified() => {
                tracing::info!("a finding's action is to end the session");
                end.reason = EndReason::Triage;
                end.status = 128 + libc::SIGKILL;
                end.killed += cgroup.kill_all()?;
            }
            // The prompt helper held the terminal's foreground, so the hang-up's SIGHUP went
            // to it, not to Warden: the session ends as on a SIGHUP sent to Warden.
            _ = ends.hangup.notified() => {
                tracing::info!("the terminal hung up during an approval prompt: ending the session");
                end.reason = EndReason::Interrupted;
                end.status = 128 + libc::SIGHUP;
                end.killed += cgroup.kill_all()?;
            }
            result = &mut *pipeline => {
                let err = match result {
                    Ok(Err(e)) => anyhow!(e),
                    Ok(Ok(_)) => anyhow!("event pipeline stopped unexpectedly"),
                    Err(e) => anyhow!(e),
                };
                cgroup.kill_all()?;
                let _ = child.wait().await;
                return Ok(Ending::LogFailed(err));
            }
        }
    }
}
