//! `warden approvals list|approve|deny`: the client side of the approvals sockets.
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::{
    approvals::{
        PendingView, Reply,
        socket::{self, Op},
    },
    events::{Scope, escape::for_terminal, render},
};

/// Prints the pending requests of every running session; returns the exit status.
pub fn list(run_dir: &Path, json: bool) -> anyhow::Result<i32> {
    let mut all: Vec<PendingView> = Vec::new();
    let mut failed = false;
    for sock in
        socket::sockets(run_dir).with_context(|| format!("reading {}", run_dir.display()))?
    {
        match socket::call(&sock, &Op::List) {
            Ok(r) if r.ok => all.extend(r.pending),
            Ok(r) => {
                failed = true;
                eprintln!(
                    "warden: {}: {}",
                    sock.display(),
                    r.error.unwrap_or_default()
                );
            }
            // A session that ended between the listing and the call.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                failed = true;
                eprintln!("warden: {}: {e}", sock.display());
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if all.is_empty() {
        println!("no request is waiting");
    } else {
        for p in &all {
            let what = render::subject(&p.subject);
            println!(
                "{}  {what}\n    why: {}{}\n    waiting {} s, denied in {} s",
                p.id,
                for_terminal(&p.why),
                p.risk
                    .as_ref()
                    .map(|r| format!("\n    risk: {}: {}", r.level, r.reasons.join("; ")))
                    .unwrap_or_default(),
                p.waited_ms / 1000,
                p.expires_in_ms / 1000
            );
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Answers request `id` in whichever running session has it.
pub fn answer(
    run_dir: &Path,
    id: &str,
    approve: bool,
    session: bool,
    reason: Option<String>,
) -> anyhow::Result<i32> {
    let op = Op::Answer {
        id: id.to_string(),
        reply: Reply {
            approve,
            scope: if session { Scope::Session } else { Scope::Once },
            reason,
        },
    };
    // Ids start with the first characters of their session's id.
    let prefix = id.split('-').next().unwrap_or_default();
    let candidates: Vec<_> = socket::sockets(run_dir)?
        .into_iter()
        .filter(|s| {
            s.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    let mut last_error = None;
    for sock in candidates {
        match socket::call(&sock, &op) {
            Ok(r) if r.ok => {
                println!("{} {id}", if approve { "approved" } else { "denied" });
                return Ok(0);
            }
            Ok(r) => last_error = r.error,
            Err(e) => last_error = Some(format!("{}: {e}", sock.display())),
        }
    }
    match last_error {
        Some(e) => bail!("{id}: {e}"),
        None => bail!("{id}: no running session has this request"),
    }
}
