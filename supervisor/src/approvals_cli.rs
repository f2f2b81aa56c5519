//! `warden approvals list|approve|deny`: the client side of the approvals sockets.
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::{
    approvals::{
        AnswerError, PendingView, Reply,
        socket::{self, Op},
    },
    events::{Scope, escape::for_terminal, render},
};

/// A pending request and the socket of its session.
#[derive(Debug)]
struct Found {
    socket: PathBuf,
    view: PendingView,
}

/// What the running sessions said: their pending requests, and the sockets that could not be
/// asked (each with why).
struct Listing {
    found: Vec<Found>,
    failed: Vec<String>,
}

fn list_everywhere(run_dir: &Path) -> anyhow::Result<Listing> {
    let mut listing = Listing {
        found: Vec::new(),
        failed: Vec::new(),
    };
    for sock in
        socket::sockets(run_dir).with_context(|| format!("reading {}", run_dir.display()))?
    {
        match socket::call(&sock, &Op::List) {
            Ok(r) if r.ok => listing
                .found
                .extend(r.pending.into_iter().map(|view| Found {
                    socket: sock.clone(),
                    view,
                })),
            Ok(r) => (listing.failed).push(format!(
                "{}: {}",
                sock.display(),
                r.error.unwrap_or_default()
            )),
            // A session that ended between the listing and the call.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => listing.failed.push(format!("{}: {e}", sock.display())),
        }
    }
    Ok(listing)
}

/// Prints the pending requests of every running session; returns the exit status.
pub fn list(run_dir: &Path, json: bool) -> anyhow::Result<i32> {
    let Listing { found, failed } = list_everywhere(run_dir)?;
    for f in &failed {
        eprintln!("warden: {f}");
    }
    let all: Vec<PendingView> = found.into_iter().map(|f| f.view).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if all.is_empty() {
        println!("no request is waiting");
    } else {
        for p in &all {
            let what = render::subject(&p.subject);
            println!(
                "{}  {what}\n    session: {}\n    why: {}{}\n    waiting {} s, denied in {} s",
                p.id,
                p.session,
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
    Ok(if failed.is_empty() { 0 } else { 1 })
}

/// The one pending request whose id is `id`. Several (sessions of an older Warden, whose ids
/// could coincide) are refused, naming each: an answer must reach the request its person
/// read, or none.
fn the_one<'a>(id: &str, found: &'a [Found]) -> anyhow::Result<&'a Found> {
    let matching: Vec<&Found> = found.iter().filter(|f| f.view.id == id).collect();
    match matching[..] {
        [one] => Ok(one),
        [] => bail!("{}", AnswerError::NotPending(id.to_string())),
        _ => bail!(
            "{} requests have the id {id}; none was answered:\n{}",
            matching.len(),
            matching
                .iter()
                .map(|f| format!(
                    "  session {}: {}",
                    f.view.session,
                    render::subject(&f.view.subject)
                ))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Answers request `id` (exactly as `list` shows it) in the running session that has it.
pub fn answer(
    run_dir: &Path,
    id: &str,
    approve: bool,
    session: bool,
    reason: Option<String>,
) -> anyhow::Result<i32> {
    let Listing { found, failed } = list_everywhere(run_dir)?;
    let target = match the_one(id, &found) {
        Ok(target) => target,
        // The request may be in a session that could not be asked: say why it could not.
        Err(e) if !failed.is_empty() => bail!("{e}; not asked:\n  {}", failed.join("\n  ")),
        Err(e) => return Err(e),
    };
    let op = Op::Answer {
        id: id.to_string(),
        reply: Reply {
            approve,
            scope: if session { Scope::Session } else { Scope::Once },
            reason,
        },
    };
    let r = socket::call(&target.socket, &op)
        .with_context(|| format!("{}", target.socket.display()))?;
    if !r.ok {
        bail!("{id}: {}", r.error.unwrap_or_default());
    }
    println!(
        "{} {id} (session {})",
        if approve { "approved" } else { "denied" },
        target.view.session
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ApprovalRequest, DecisionSource, RequestKind, Subject};

    fn found(session: &str, id: &str, program: &str) -> Found {
        Found {
            socket: PathBuf::from(format!("/run/warden/sessions/{session}.approvals.sock")),
            view: PendingView {
                session: session.into(),
                request: ApprovalRequest {
                    id: id.into(),
                    subject: Subject {
                        request: RequestKind::Exec,
                        pid: 7,
                        program: Some(program.into()),
                        argv: vec![program.into(), "-x".into()],
                        name: None,
                        qtype: None,
                        credential: None,
                    },
                    why: "prompt rule".into(),
                    rule: None,
                    risk: None,
                    asked: DecisionSource::User,
                    timeout_ms: 1000,
                },
                waited_ms: 0,
                expires_in_ms: 1000,
            },
        }
    }

    #[test]
    fn an_id_answers_one_request_or_none() {
        let found = [
            found("s-one", "2d3c4b5a-1", "make"),
            found("s-two", "0e1f2d3c-1", "curl"),
            found("s-three", "0e1f2d3c-1", "rm"),
        ];
        assert_eq!(the_one("2d3c4b5a-1", &found).unwrap().view.session, "s-one");
        let ambiguous = the_one("0e1f2d3c-1", &found).unwrap_err().to_string();
        assert!(
            ambiguous.starts_with("2 requests have the id 0e1f2d3c-1; none was answered"),
            "{ambiguous}"
        );
        assert!(
            ambiguous.contains("session s-two: exec pid 7 curl -x")
                && ambiguous.contains("session s-three: exec pid 7 rm -x"),
            "{ambiguous}"
        );
        let unknown = the_one("2d3c4b5a", &found).unwrap_err().to_string();
        assert!(
            unknown.contains("no pending request 2d3c4b5a"),
            "a prefix is not an id: {unknown}"
        );
    }
}
