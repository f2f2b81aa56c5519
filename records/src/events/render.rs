//! One human-readable line per record, for `warden run --events` and `warden events --list`
//! (and the column layout of the actions view's folded lines, `action_view`).
use super::{
    DecisionSource, Event, Record, RequestKind, Scope, Subject, Verdict,
    escape::{for_terminal, shell_word},
};

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// An approval's subject: `exec pid 12 git push -f`, `dns example.com AAAA`, `finding
/// secret-exfiltration`.
pub fn subject(s: &Subject) -> String {
    match s.request {
        RequestKind::Exec => format!("exec pid {} {}", s.pid, command_line(&s.argv)),
        RequestKind::Dns => format!(
            "dns {} {}",
            for_terminal(s.name.as_deref().unwrap_or_default()),
            s.qtype.as_deref().unwrap_or_default()
        ),
        RequestKind::Credential => credential_subject(s),
        RequestKind::Finding => format!(
            "finding {}",
            for_terminal(s.name.as_deref().unwrap_or_default())
        ),
    }
}

/// `credential gh for github.com (pid 12)`.
pub fn credential_subject(s: &Subject) -> String {
    format!(
        "credential {} for {} (pid {})",
        for_terminal(s.credential.as_deref().unwrap_or_default()),
        for_terminal(s.name.as_deref().unwrap_or_default()),
        s.pid
    )
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "ALLOW",
        Verdict::Deny => "DENY",
        Verdict::Redirect => "REDIRECT",
    }
}

pub fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_word(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `HH:MM:SS.mmm` from an RFC 3339 time.
fn clock_time(time: &str) -> &str {
    time.get(11..23).unwrap_or(time)
}

/// A file call without its process: `PATH [-> PATH2] [FLAGS] RESULT`.
pub fn file_call(f: &super::FileAccess) -> String {
    let mut s = shell_word(&f.path);
    if let Some(p2) = &f.path2 {
        s.push_str(&format!(" -> {}", shell_word(p2)));
    }
    if let Some(flags) = &f.flags {
        s.push_str(&format!(" {flags}"));
    }
    s.push_str(&format!(" {}", f.result));
    s
}

pub fn line(rec: &Record) -> String {
    view_line(
        &rec.time,
        &rec.seq.to_string(),
        rec.event.kind(),
        &details(rec),
    )
}

/// The columns of a line: time of day (from an RFC 3339 time), seq, kind, details. The
/// actions view writes its lines that stand for several records with it (no seq).
pub fn view_line(time: &str, seq: &str, kind: &str, details: &str) -> String {
    format!("{} {seq:>6} {kind:<13} {details}", clock_time(time))
}

/// What the line says after its time, seq and kind (the HTML report gives those columns of
/// their own).
pub fn details(rec: &Record) -> String {
    match &rec.event {
        Event::SessionStart(s) => {
            let missing = if s.missing_layers.is_empty() {
                String::new()
            } else {
                format!(
                    " (missing layers: {})",
                    for_terminal(&s.missing_layers.join(", "))
                )
            };
            format!(
                "session {} user {} ({}) cgroup {} hooks {}{missing}: {}",
                rec.session,
                for_terminal(&s.user),
                s.uid,
                for_terminal(&s.cgroup),
                for_terminal(&s.hook_tier),
                command_line(&s.command)
            )
        }
        Event::Exec(e) => {
            let mut s = format!(
                "pid {} ppid {} uid {}  {}  {}",
                e.pid,
                e.ppid,
                e.uid,
                shell_word(&e.filename),
                command_line(&e.argv)
            );
            if e.filename_truncated {
                s.push_str("  [path truncated]");
            }
            if e.argv_truncated {
                s.push_str(&format!(
                    "  [argv truncated, {} bytes in all]",
                    e.argv_bytes
                ));
            }
            if e.argv_unreadable {
                s.push_str("  [argv unreadable]");
            }
            match e.killed_for_token {
                Some(super::TokenProblem::Missing) => s.push_str("  KILLED: exec without approval"),
                Some(super::TokenProblem::Mismatch) => {
                    s.push_str("  KILLED: not what was approved")
                }
                None => {}
            }
            s
        }
        Event::ExecRequest(r) => {
            let mut s = format!(
                "pid {} {} {}  {}",
                r.pid,
                verdict_word(r.verdict),
                shell_word(&r.filename),
                command_line(&r.argv)
            );
            for i in &r.interpreters {
                s.push_str(&format!(" via {} {}", i.via, shell_word(&i.path)));
            }
            if let Some(rule) = &r.rule {
                s.push_str(&format!(" by {}", for_terminal(rule)));
            }
            if r.source != DecisionSource::Policy {
                s.push_str(&format!(" ({})", r.source.as_str()));
            }
            if let Some(reason) = &r.reason {
                s.push_str(&format!(": {}", for_terminal(reason)));
            }
            if !r.matched.is_empty() {
                s.push_str(&format!(" (in `{}`)", command_line(&r.matched)));
            }
            s
        }
        Event::SyscallDenied(d) => {
            let what = match &d.socket {
                Some(s) => format!(" ({} {} {})", s.family, s.kind, s.protocol),
                None => String::new(),
            };
            format!(
                "pid {} DENY {}{what} by {}",
                d.pid,
                d.syscall,
                for_terminal(&d.rule)
            )
        }
        Event::Fork(f) => format!("pid {} ppid {}", f.pid, f.ppid),
        Event::Exit(x) => match (x.exit_code, x.signal) {
            (Some(code), _) => format!("pid {} exit {code}", x.pid),
            (None, Some(sig)) => format!(
                "pid {} killed by {}{}",
                x.pid,
                signal_name(sig),
                if x.core_dumped { " (core dumped)" } else { "" }
            ),
            (None, None) => format!("pid {}", x.pid),
        },
        Event::LsmDenied(d) => {
            let what = match (&d.protected, d.target_pid) {
                (Some(p), _) => format!(" {}", for_terminal(p)),
                (None, Some(t)) => format!(" target pid {t}"),
                (None, None) => String::new(),
            };
            format!(
                "pid {} {}{what} DENIED by {} ({})",
                d.pid,
                d.hook.as_str(),
                d.rule,
                d.errno
            )
        }
        Event::UnixConnect(u) | Event::UnixSend(u) => format!(
            "pid {} unix {}{} {} by {}",
            u.pid,
            if u.abstract_name { "@" } else { "" },
            for_terminal(&u.path),
            verdict_word(u.verdict),
            for_terminal(&u.rule)
        ),
        Event::NetConnect(n) | Event::NetSend(n) => {
            let addr = if n.address.contains(':') {
                format!("[{}]:{}", n.address, n.port)
            } else {
                format!("{}:{}", n.address, n.port)
            };
            let mut s = format!(
                "pid {} {} {addr} {} by {}",
                n.pid,
                n.transport,
                verdict_word(n.verdict),
                for_terminal(&n.rule)
            );
            if let Some(d) = &n.domain {
                s.push_str(&format!(" ({})", for_terminal(d)));
            }
            if n.count > 1 {
                s.push_str(&format!(" (x{})", n.count));
            }
            s
        }
        Event::DnsQuery(q) => {
            let mut s = format!(
                "{} {} {} by {} -> {}",
                for_terminal(&q.name),
                q.qtype,
                verdict_word(q.verdict),
                for_terminal(&q.rule),
                q.rcode
            );
            if !q.answers.is_empty() {
                s.push_str(&format!(
                    " [{}] allowed {}s",
                    q.answers.join(", "),
                    q.allowed_secs.unwrap_or(0)
                ));
            }
            if let Some(e) = &q.error {
                s.push_str(&format!(": {}", for_terminal(e)));
            }
            if let Some(b) = &q.budget {
                s.push_str(&format!(" ({})", for_terminal(&b.to_string())));
            }
            s
        }
        Event::FileOpen(f)
        | Event::FileLink(f)
        | Event::FileRename(f)
        | Event::FileUnlink(f)
        | Event::FileSymlink(f)
        | Event::FileTruncate(f) => {
            let mut s = format!("pid {} {}", f.pid, file_call(f));
            if f.count > 1 {
                s.push_str(&format!(" (x{})", f.count));
            }
            s
        }
        Event::ApprovalRequest(a) => {
            let mut s = format!(
                "{} {} asks the {}: {}",
                a.id,
                subject(&a.subject),
                if a.asked == DecisionSource::Reviewer {
                    "reviewer"
                } else {
                    "user"
                },
                for_terminal(&a.why)
            );
            if let Some(r) = &a.risk {
                s.push_str(&format!(" [risk {}]", r.level));
            }
            s
        }
        Event::Approval(a) => {
            let mut s = format!(
                "{} {} {} {} by {}",
                a.id,
                subject(&a.subject),
                verdict_word(a.verdict),
                if a.scope == Scope::Session {
                    "for the session"
                } else {
                    "once"
                },
                a.source.as_str()
            );
            if let Some(by) = &a.by {
                s.push_str(&format!(" ({})", for_terminal(by)));
            }
            s.push_str(&format!(": {}", for_terminal(&a.reason)));
            s
        }
        Event::ApprovalRefused(r) => format!(
            "pid {} uid {}: {}",
            r.peer_pid,
            r.peer_uid,
            for_terminal(&r.reason)
        ),
        Event::RequirementsChanged(c) => match &c.error {
            None => "accepted: applies to new sessions".to_string(),
            Some(e) => format!("REFUSED, the last good set stays: {}", for_terminal(e)),
        },
        Event::CredentialUse(c) => {
            let mut s = format!(
                "{} {} {}",
                c.credential.as_deref().unwrap_or("-"),
                c.delivery,
                c.outcome
            );
            if let Some(h) = &c.host {
                s.push_str(&format!(" host {}", for_terminal(h)));
            }
            if let Some(p) = c.pid {
                s.push_str(&format!(" pid {p}"));
            }
            if let Some(d) = &c.detail {
                s.push_str(&format!(": {}", for_terminal(d)));
            }
            s
        }
        Event::LimitReached(l) => {
            format!("{} limit {} reached {} times", l.resource, l.limit, l.hits)
        }
        Event::Finding(f) => {
            let evidence: Vec<String> = f
                .evidence
                .iter()
                .take(6)
                .map(|r| match r.first == r.last {
                    true => r.first.to_string(),
                    false => format!("{}-{}", r.first, r.last),
                })
                .collect();
            format!(
                "{} {} -> {}: {} (evidence seq {}{})",
                f.severity.as_str().to_uppercase(),
                f.detection,
                f.action,
                // The narrative was escaped when it was made; a log is hostile data all the same.
                for_terminal(&f.narrative),
                evidence.join(", "),
                if f.evidence.len() > 6 { ", ..." } else { "" }
            )
        }
        Event::EventsLost(l) => format!(
            "LOST exec {} fork {} exit {} network {} file {} (session total {})",
            l.exec, l.fork, l.exit, l.network, l.file, l.total
        ),
        Event::AgentPrompt(p) => match &p.text {
            Some(text) => format!("pid {} {} bytes: {}", p.pid, p.bytes, for_terminal(text)),
            None => format!(
                "pid {} {} bytes (redacted, sha256 {})",
                p.pid, p.bytes, p.sha256
            ),
        },
        Event::AgentToolCall(t) => {
            let mut s = format!(
                "pid {} {} {}",
                t.pid,
                match t.phase {
                    super::ToolCallPhase::Start => "START",
                    super::ToolCallPhase::End => "END",
                },
                for_terminal(&t.id)
            );
            if let Some(name) = &t.name {
                s.push_str(&format!(" {}", for_terminal(name)));
            }
            if let Some(status) = &t.status {
                s.push_str(&format!(": {}", for_terminal(status)));
            }
            s
        }
        Event::ExportBacklog(b) => {
            let mut s = format!(
                "{} at {} of {} bytes waiting for the collector",
                b.action.as_str().to_uppercase(),
                b.backlog_bytes,
                b.limit_bytes
            );
            if let (Some(from), Some(to)) = (b.from_seq, b.to_seq) {
                s.push_str(&format!(": seq {from}-{to} not exported"));
            }
            s
        }
        Event::GuardArmed(a) => {
            let programs: Vec<String> = a.programs.iter().map(|p| for_terminal(&p.path)).collect();
            let mut s = format!(
                "{} guarding {}",
                a.how.as_str().to_uppercase(),
                if programs.is_empty() {
                    "nothing".to_string()
                } else {
                    programs.join(", ")
                }
            );
            for w in &a.warnings {
                s.push_str(&format!("; {}", for_terminal(w)));
            }
            s
        }
        Event::GuardKilled(k) => {
            let mut s = format!(
                "pid {} uid {} {} KILLED outside a session: {}",
                k.pid,
                k.uid,
                command_line(&k.argv),
                k.verdict
            );
            if let Some(p) = &k.program {
                s.push_str(&format!(" of {}", for_terminal(p)));
            }
            s
        }
        Event::GuardDisarmed(d) => match d.unpinned {
            true => "STOPPED guarding: pins removed".to_string(),
            false => "STOPPED recording: pins kept, the kernel still kills".to_string(),
        },
        Event::SessionEnd(e) => {
            let mut s = format!(
                "{} status {} killed {} records {} lost {} after {:.3}s",
                e.reason,
                e.status,
                e.killed,
                e.records,
                e.lost,
                e.duration_ms as f64 / 1000.0
            )
            .to_lowercase();
            if let Some(err) = &e.error {
                s.push_str(&format!(": {}", for_terminal(err)));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Exec, Exit};

    fn rec(event: Event) -> Record {
        Record {
            session: "s".into(),
            seq: 3,
            time: "2026-11-23T21:00:01.123456789Z".into(),
            boot_ns: 1,
            prev_hash: String::new(),
            tool_call_id: None,
            event,
        }
    }

    #[test]
    fn exec_line_cannot_forge_a_second_line() {
        let e = Exec {
            pid: 10,
            ppid: 9,
            uid: 1000,
            gid: 1000,
            cgroup_id: 1,
            filename: "/bin/echo".into(),
            filename_truncated: false,
            argv: vec!["echo".into(), "x\n21:00:02 fake".into()],
            argv_truncated: true,
            argv_bytes: 5000,
            argv_unreadable: false,
            killed_for_token: None,
        };
        let l = line(&rec(Event::Exec(e)));
        assert!(!l.contains('\n'));
        assert!(l.starts_with("21:00:01.123      3 exec"));
        assert!(l.contains("'x\\n21:00:02 fake'"), "{l}");
        assert!(l.contains("argv truncated, 5000 bytes"));
    }

    #[test]
    fn a_guard_kill_names_the_program_and_cannot_forge_a_line() {
        let k = crate::events::GuardKilled {
            pid: 7,
            ppid: 1,
            uid: 1000,
            gid: 1000,
            user: None,
            filename: "./agent".into(),
            filename_truncated: false,
            argv: vec!["./agent".into(), "x\n21:00:02 fake".into()],
            argv_truncated: false,
            argv_unreadable: false,
            verdict: crate::events::GuardVerdict::Copy,
            program: Some("/opt/agent".into()),
            file: "254:0:9".into(),
            size: 10,
            sha256: None,
            told_user: false,
        };
        let l = line(&rec(Event::GuardKilled(Box::new(k))));
        assert!(!l.contains('\n'), "{l}");
        assert!(
            l.ends_with("pid 7 uid 1000 ./agent 'x\\n21:00:02 fake' KILLED outside a session: copy of /opt/agent"),
            "{l}"
        );
    }

    #[test]
    fn exit_line_names_the_signal() {
        let l = line(&rec(Event::Exit(Exit::from_wait_status(5, 1, 9))));
        assert!(l.ends_with("pid 5 killed by SIGKILL"), "{l}");
    }

    /// The line is OTLP's body too: values in it are the log's spellings.
    #[test]
    fn end_line_spells_the_reason_as_the_log() {
        for &reason in crate::events::EndReason::ALL {
            let end = crate::events::SessionEnd {
                reason,
                exit_code: None,
                signal: None,
                status: 1,
                killed: 0,
                duration_ms: 5,
                records: 3,
                lost: 0,
                error: None,
            };
            let l = line(&rec(Event::SessionEnd(end)));
            assert!(l.contains(&format!(" {reason} status 1 killed 0 ")), "{l}");
        }
    }
}
