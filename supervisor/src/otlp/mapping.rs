//! One audit-log record -> one OTLP log record named `warden.<kind>`.
//!
//! Attributes use OpenTelemetry semantic-convention names where one exists (process.*, user.id,
//! file.path, network.*, server.address, dns.question.name) and `warden.*` otherwise. Every
//! record carries `warden.session.id` and `warden.seq`, so a receiver can de-duplicate what
//! at-least-once delivery sends twice. Values are the log's own, already escaped and bounded.
use std::time::{Duration, SystemTime};

use opentelemetry::{
    Key,
    logs::{AnyValue, Severity},
};

use crate::events::{
    DecisionSource, Event, FileAccess, Network, Record, RequestKind, Risk, Subject, UnixSocket,
    Verdict, render,
};
use crate::network::dns_budget::Amount;

/// What one OTLP log record carries (filled into the SDK's record by the exporter).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub event_name: &'static str,
    pub timestamp: SystemTime,
    pub severity: Severity,
    /// One human-readable line (the `warden events` rendering).
    pub body: String,
    pub attributes: Vec<(Key, AnyValue)>,
}

impl Mapped {
    /// The value of attribute `key`, for tests and the decision counters.
    pub fn get(&self, key: &str) -> Option<&AnyValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            AnyValue::String(s) => Some(s.as_str()),
            _ => None,
        }
    }
}

/// Who took a decision, from the rule's provenance: a requirement, or the user's policy
/// (configuration, flags, built-in defaults).
fn decision_source(rule_source: Option<&str>) -> &'static str {
    match rule_source {
        Some(s) if s.starts_with("requirement") => DecisionSource::Requirements.as_str(),
        _ => DecisionSource::Policy.as_str(),
    }
}

/// The recorded source; `policy` in logs written before requirement rules were told apart is
/// refined from the rule's provenance.
fn source_of(source: DecisionSource, rule_source: Option<&str>) -> &'static str {
    match source {
        DecisionSource::Policy => decision_source(rule_source),
        other => other.as_str(),
    }
}

/// `warden.decision` of an exec whose image the kernel killed (the exec token did not match):
/// an outcome of OTLP only, the log says it with `killed_for_token`.
const KILLED: &str = "kill";

struct Attrs(Vec<(Key, AnyValue)>);

impl Attrs {
    fn str(&mut self, key: &'static str, value: impl Into<String>) {
        self.0
            .push((Key::from_static_str(key), AnyValue::from(value.into())));
    }

    fn opt_str(&mut self, key: &'static str, value: Option<&String>) {
        if let Some(v) = value {
            self.str(key, v.clone());
        }
    }

    fn int(&mut self, key: &'static str, value: impl TryInto<i64>) {
        // u64 counters beyond i64 do not occur; saturate rather than wrap if one did.
        let v = value.try_into().unwrap_or(i64::MAX);
        self.0.push((Key::from_static_str(key), AnyValue::Int(v)));
    }

    fn amount(&mut self, key: &'static str, value: Amount) {
        let value = match value {
            Amount::Count(n) => return self.int(key, n),
            Amount::Bits(b) => AnyValue::Double(b),
        };
        self.0.push((Key::from_static_str(key), value));
    }

    fn flag(&mut self, key: &'static str, value: bool) {
        if value {
            self.0
                .push((Key::from_static_str(key), AnyValue::Boolean(true)));
        }
    }

    fn list(&mut self, key: &'static str, values: &[String]) {
        let list = values.iter().map(|v| AnyValue::from(v.clone())).collect();
        self.0
            .push((Key::from_static_str(key), AnyValue::ListAny(Box::new(list))));
    }

    fn decision(&mut self, verdict: &'static str, source: &'static str) {
        self.str("warden.decision", verdict);
        self.str("warden.decision.source", source);
    }

    /// What an approval request is about: an exec (the process and its command) or a name.
    fn subject(&mut self, s: &Subject) {
        self.str("warden.approval.request", s.request.as_str());
        match s.request {
            RequestKind::Exec => {
                self.int("process.pid", s.pid);
                self.opt_str("warden.exec.program", s.program.as_ref());
                self.list("process.command_args", &s.argv);
            }
            RequestKind::Dns => {
                self.opt_str("dns.question.name", s.name.as_ref());
                self.opt_str("warden.dns.qtype", s.qtype.as_ref());
            }
            RequestKind::Credential => {
                self.int("process.pid", s.pid);
                self.opt_str("warden.credential.name", s.credential.as_ref());
                self.opt_str("server.address", s.name.as_ref());
            }
            RequestKind::Finding => {
                self.opt_str("warden.finding.detection", s.name.as_ref());
            }
        }
    }

    fn risk(&mut self, risk: Option<&Risk>) {
        if let Some(r) = risk {
            self.str("warden.risk.level", r.level.as_str());
            self.list("warden.risk.reasons", &r.reasons);
        }
    }

    fn network(&mut self, n: &Network) {
        self.int("process.pid", n.pid);
        self.int("user.id", n.uid);
        self.str("network.transport", n.transport.clone());
        self.str("network.peer.address", n.address.clone());
        self.int("network.peer.port", n.port);
        if let Some(domain) = &n.domain {
            self.str("server.address", domain.clone());
            self.int("server.port", n.port);
        }
        self.decision(
            n.verdict.as_str(),
            decision_source(n.rule_source.as_deref()),
        );
        self.str("warden.rule.id", n.rule.clone());
        self.opt_str("warden.rule.source", n.rule_source.as_ref());
        if n.count > 1 {
            self.int("warden.network.count", n.count);
        }
    }

    fn unix_socket(&mut self, u: &UnixSocket) {
        self.int("process.pid", u.pid);
        self.int("user.id", u.uid);
        self.str("network.transport", "unix");
        self.str("network.peer.address", u.path.clone());
        self.flag("warden.unix.abstract", u.abstract_name);
        self.decision(
            u.verdict.as_str(),
            decision_source(u.rule_source.as_deref()),
        );
        self.str("warden.rule.id", u.rule.clone());
        self.opt_str("warden.rule.source", u.rule_source.as_ref());
    }

    fn file(&mut self, f: &FileAccess) {
        self.int("process.pid", f.pid);
        self.str("file.path", f.path.clone());
        self.flag("warden.file.path_truncated", f.path_truncated);
        self.flag("warden.file.path_unreadable", f.path_unreadable);
        if let Some(fd) = f.dirfd {
            self.int("warden.file.dirfd", fd);
        }
        self.opt_str("warden.file.path2", f.path2.as_ref());
        self.flag("warden.file.path2_truncated", f.path2_truncated);
        self.opt_str("warden.file.flags", f.flags.as_ref());
        self.str("warden.file.result", f.result.clone());
        self.int("warden.file.count", f.count);
    }
}

fn timestamp(rec: &Record) -> SystemTime {
    time::OffsetDateTime::parse(&rec.time, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp_nanos()).ok())
        .map_or(SystemTime::UNIX_EPOCH, |ns| {
            SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
        })
}

pub fn map(rec: &Record) -> Mapped {
    let mut a = Attrs(Vec::with_capacity(16));
    a.str("warden.session.id", rec.session.clone());
    a.int("warden.seq", rec.seq);
    a.int("warden.boot_ns", rec.boot_ns);
    a.opt_str("warden.tool_call.id", rec.tool_call_id.as_ref());
    let mut severity = Severity::Info;
    match &rec.event {
        Event::SessionStart(s) => {
            a.list("process.command_args", &s.command);
            a.flag("warden.command_truncated", s.command_truncated);
            a.str("user.name", s.user.clone());
            a.int("user.id", s.uid);
            a.int("warden.gid", s.gid);
            a.str("warden.cgroup", s.cgroup.clone());
            a.int("warden.cgroup_id", s.cgroup_id);
            a.int("warden.supervisor.pid", s.supervisor_pid);
            a.str("host.name", s.hostname.clone());
            a.str("warden.version", s.warden_version.clone());
            a.int("warden.schema", s.schema);
            a.list("warden.settings_files", &s.settings_files);
            a.list("warden.layers", &s.layers);
            a.list("warden.missing_layers", &s.missing_layers);
            a.str("warden.hook_tier", s.hook_tier.clone());
            if !s.hook_tiers_unavailable.is_empty() {
                a.list("warden.hook_tiers_unavailable", &s.hook_tiers_unavailable);
            }
            a.list("warden.vcs_read_only", &s.vcs_read_only);
            a.list("warden.vcs_pinned", &s.vcs_pinned);
            if !s.env_removed.is_empty() {
                a.list("warden.env_removed", &s.env_removed);
            }
            if !s.settings_warnings.is_empty() {
                a.list("warden.settings_warnings", &s.settings_warnings);
                severity = Severity::Warn;
            }
        }
        Event::Exec(e) => {
            a.int("process.pid", e.pid);
            a.int("process.parent_pid", e.ppid);
            a.int("user.id", e.uid);
            a.int("warden.gid", e.gid);
            a.int("warden.cgroup_id", e.cgroup_id);
            a.str("process.executable.path", e.filename.clone());
            a.list("process.command_args", &e.argv);
            a.int("warden.argv_bytes", e.argv_bytes);
            a.flag("warden.filename_truncated", e.filename_truncated);
            a.flag("warden.argv_truncated", e.argv_truncated);
            a.flag("warden.argv_unreadable", e.argv_unreadable);
            if let Some(problem) = e.killed_for_token {
                a.decision(KILLED, DecisionSource::Policy.as_str());
                a.str("warden.killed_for_token", problem.as_str());
                severity = Severity::Warn;
            }
        }
        Event::ExecRequest(r) => {
            a.int("process.pid", r.pid);
            a.str("warden.syscall", r.syscall.clone());
            a.str(
                "process.executable.path",
                r.resolved.clone().unwrap_or_else(|| r.filename.clone()),
            );
            a.str("warden.exec.filename", r.filename.clone());
            a.str("warden.exec.program", r.program.clone());
            a.list("process.command_args", &r.argv);
            a.flag("warden.argv_truncated", r.argv_truncated);
            a.decision(
                r.verdict.as_str(),
                source_of(r.source, r.rule_source.as_deref()),
            );
            a.opt_str("warden.approval.id", r.approval.as_ref());
            if let Some(d) = r.decision {
                a.str("warden.rule.decision", d.as_str());
            }
            a.opt_str("warden.rule.id", r.rule.as_ref());
            a.opt_str("warden.rule.source", r.rule_source.as_ref());
            a.opt_str("warden.reason", r.reason.as_ref());
            if !r.matched.is_empty() {
                a.list("warden.exec.matched", &r.matched);
            }
            if !r.interpreters.is_empty() {
                let chain: Vec<String> = r.interpreters.iter().map(|i| i.path.clone()).collect();
                a.list("warden.exec.interpreters", &chain);
            }
            if !r.stdio_sockets.is_empty() {
                let socks: Vec<String> = r
                    .stdio_sockets
                    .iter()
                    .map(|s| format!("{} {} {}", s.fd, s.transport, s.peer))
                    .collect();
                a.list("warden.exec.stdio_sockets", &socks);
            }
            a.int("warden.wait_us", r.wait_us);
            if r.verdict == Verdict::Deny {
                severity = Severity::Warn;
            }
        }
        Event::SyscallDenied(d) => {
            a.int("process.pid", d.pid);
            a.str("warden.syscall", d.syscall.clone());
            a.list("warden.syscall.args", &d.args);
            if let Some(s) = &d.socket {
                a.str("warden.socket.family", s.family.clone());
                a.str("warden.socket.type", s.kind.clone());
                a.str("warden.socket.protocol", s.protocol.clone());
            }
            a.decision(Verdict::Deny.as_str(), DecisionSource::Policy.as_str());
            a.str("warden.rule.id", d.rule.clone());
            severity = Severity::Warn;
        }
        Event::Fork(f) => {
            a.int("process.pid", f.pid);
            a.int("process.parent_pid", f.ppid);
        }
        Event::Exit(x) => {
            a.int("process.pid", x.pid);
            a.int("process.parent_pid", x.ppid);
            if let Some(code) = x.exit_code {
                a.int("process.exit.code", code);
            }
            if let Some(sig) = x.signal {
                a.int("warden.signal", sig);
                a.str("warden.signal.name", render::signal_name(sig));
            }
            a.flag("warden.core_dumped", x.core_dumped);
        }
        Event::NetConnect(n) | Event::NetSend(n) => {
            a.network(n);
            if n.verdict == Verdict::Deny {
                severity = Severity::Warn;
            }
        }
        Event::UnixConnect(u) | Event::UnixSend(u) => {
            a.unix_socket(u);
            if u.verdict == Verdict::Deny {
                severity = Severity::Warn;
            }
        }
        Event::LsmDenied(d) => {
            a.int("process.pid", d.pid);
            a.str("warden.lsm.hook", d.hook.as_str());
            a.str("error.type", d.errno.clone());
            a.decision(Verdict::Deny.as_str(), DecisionSource::Policy.as_str());
            a.str("warden.rule.id", d.rule.clone());
            a.opt_str("file.path", d.protected.as_ref());
            if let Some(pid) = d.target_pid {
                a.int("warden.target.pid", pid);
            }
            if let Some(sig) = d.signal {
                a.int("warden.signal", sig);
            }
            if let Some(mode) = d.ptrace_mode {
                a.int("warden.ptrace.mode", mode);
            }
            if let Some(cmd) = d.bpf_cmd {
                a.int("warden.bpf.cmd", cmd);
            }
            severity = Severity::Warn;
        }
        Event::DnsQuery(q) => {
            a.str("dns.question.name", q.name.clone());
            a.str("warden.dns.qtype", q.qtype.clone());
            a.str("network.transport", q.transport.clone());
            a.str("client.address", q.client.clone());
            a.decision(
                q.verdict.as_str(),
                source_of(q.source, q.rule_source.as_deref()),
            );
            a.opt_str("warden.approval.id", q.approval.as_ref());
            a.str("warden.rule.id", q.rule.clone());
            a.opt_str("warden.rule.source", q.rule_source.as_ref());
            a.str("warden.dns.rcode", q.rcode.clone());
            if !q.answers.is_empty() {
                a.list("warden.dns.answers", &q.answers);
            }
            if let Some(ttl) = q.ttl {
                a.int("warden.dns.ttl", ttl);
            }
            if let Some(secs) = q.allowed_secs {
                a.int("warden.dns.allowed_secs", secs);
            }
            a.opt_str("warden.dns.upstream", q.upstream.as_ref());
            a.int("warden.dns.duration_us", q.duration_us);
            a.opt_str("error.type", q.error.as_ref());
            if let Some(b) = &q.budget {
                a.str("warden.dns.budget", b.budget.as_str());
                a.str("warden.dns.budget.scope", b.scope.as_str());
                a.amount("warden.dns.budget.limit", b.limit);
                a.amount("warden.dns.budget.value", b.value);
                a.str("warden.dns.budget.domain", b.domain.clone());
            }
            if q.verdict == Verdict::Deny {
                severity = Severity::Warn;
            }
        }
        Event::FileOpen(f)
        | Event::FileLink(f)
        | Event::FileRename(f)
        | Event::FileUnlink(f)
        | Event::FileSymlink(f)
        | Event::FileTruncate(f) => a.file(f),
        Event::RequirementsChanged(c) => {
            a.0.push((
                Key::from_static_str("warden.requirements.accepted"),
                AnyValue::Boolean(c.accepted),
            ));
            a.list("warden.requirements.files", &c.files);
            a.opt_str("error.type", c.error.as_ref());
            if !c.accepted {
                severity = Severity::Warn;
            }
        }
        Event::CredentialUse(c) => {
            a.opt_str("warden.credential.name", c.credential.as_ref());
            a.str("warden.credential.delivery", c.delivery.as_str());
            a.str("warden.credential.outcome", c.outcome.as_str());
            a.opt_str("server.address", c.host.as_ref());
            if let Some(pid) = c.pid {
                a.int("process.pid", u64::from(pid));
            }
            a.opt_str("warden.reason", c.detail.as_ref());
            if matches!(
                c.outcome,
                crate::events::CredentialOutcome::Refused
                    | crate::events::CredentialOutcome::UpstreamFailed
                    | crate::events::CredentialOutcome::MisdirectedHost
                    | crate::events::CredentialOutcome::UnlistedHost
            ) {
                severity = Severity::Warn;
            }
        }
        Event::Finding(f) => {
            a.str("warden.finding.detection", f.detection.clone());
            a.str("warden.finding.source", f.source.as_str());
            a.str("warden.finding.severity", f.severity.as_str());
            a.list("warden.finding.techniques", &f.techniques);
            a.str("warden.finding.narrative", f.narrative.clone());
            a.int("warden.finding.count", f.count);
            let evidence: Vec<String> = f
                .evidence
                .iter()
                .map(|r| format!("{}-{}", r.first, r.last))
                .collect();
            a.list("warden.finding.evidence", &evidence);
            a.str("warden.finding.action", f.action.as_str());
            a.opt_str("warden.rule.source", f.action_source.as_ref());
            severity = match f.severity {
                crate::events::RiskLevel::Low => Severity::Info,
                crate::events::RiskLevel::Medium => Severity::Warn,
                crate::events::RiskLevel::High | crate::events::RiskLevel::Critical => {
                    Severity::Error
                }
            };
        }
        Event::LimitReached(l) => {
            a.str("warden.limit.resource", l.resource.clone());
            a.str("warden.limit.value", l.limit.clone());
            a.int("warden.limit.hits", l.hits);
            severity = Severity::Warn;
        }
        Event::EventsLost(l) => {
            a.int("warden.lost.exec", l.exec);
            a.int("warden.lost.fork", l.fork);
            a.int("warden.lost.exit", l.exit);
            a.int("warden.lost.network", l.network);
            a.int("warden.lost.file", l.file);
            a.int("warden.lost.unix", l.unix);
            a.int("warden.lost.lsm", l.lsm);
            a.int("warden.lost.undecodable", l.undecodable);
            a.int("warden.lost.total", l.total);
            severity = Severity::Warn;
        }
        Event::AgentPrompt(p) => {
            a.int("process.pid", p.pid);
            a.int("warden.prompt.bytes", p.bytes);
            a.str("warden.prompt.sha256", p.sha256.clone());
            a.opt_str("warden.prompt.text", p.text.as_ref());
            a.flag("warden.prompt.truncated", p.text_truncated);
            a.flag("warden.prompt.redacted", p.redacted);
        }
        Event::AgentToolCall(t) => {
            a.int("process.pid", t.pid);
            // The envelope tags the call's own records too; the id is the call's, always.
            if rec.tool_call_id.is_none() {
                a.str("warden.tool_call.id", t.id.clone());
            }
            a.str("warden.tool_call.phase", t.phase.as_str());
            a.opt_str("warden.tool_call.name", t.name.as_ref());
            a.opt_str("warden.tool_call.status", t.status.as_ref());
            if let Some(n) = t.processes {
                a.int("warden.tool_call.processes", n);
            }
        }
        Event::ApprovalRequest(r) => {
            a.subject(&r.subject);
            a.str("warden.approval.id", r.id.clone());
            a.str("warden.approval.why", r.why.clone());
            a.opt_str("warden.rule.id", r.rule.as_ref());
            a.risk(r.risk.as_ref());
            a.str("warden.approval.asked", r.asked.as_str());
            a.int("warden.approval.timeout_ms", r.timeout_ms);
        }
        Event::Approval(r) => {
            a.subject(&r.subject);
            a.str("warden.approval.id", r.id.clone());
            a.decision(r.verdict.as_str(), r.source.as_str());
            a.str("warden.approval.scope", r.scope.as_str());
            a.str("warden.reason", r.reason.clone());
            a.opt_str("warden.approval.by", r.by.as_ref());
            a.opt_str("warden.rule.id", r.rule.as_ref());
            a.risk(r.risk.as_ref());
            a.str("warden.approval.policy", r.policy.clone());
            a.str("warden.approval.reviewer", r.reviewer.clone());
            a.int("warden.wait_us", r.waited_us);
            if r.verdict == Verdict::Deny {
                severity = Severity::Warn;
            }
        }
        Event::ApprovalRefused(r) => {
            a.int("warden.peer.pid", r.peer_pid);
            a.int("warden.peer.uid", r.peer_uid);
            a.str("warden.reason", r.reason.clone());
            severity = Severity::Warn;
        }
        Event::ExportBacklog(b) => {
            a.str("warden.backlog.action", b.action.as_str());
            a.int("warden.backlog.bytes", b.backlog_bytes);
            a.int("warden.backlog.limit_bytes", b.limit_bytes);
            if let Some(v) = b.from_seq {
                a.int("warden.backlog.from_seq", v);
            }
            if let Some(v) = b.to_seq {
                a.int("warden.backlog.to_seq", v);
            }
            if let Some(v) = b.records {
                a.int("warden.backlog.records", v);
            }
            severity = Severity::Warn;
        }
        Event::GuardArmed(g) => {
            a.str("warden.guard.how", g.how.as_str());
            let paths: Vec<String> = g.programs.iter().map(|p| p.path.clone()).collect();
            a.list("warden.guard.programs", &paths);
            a.list("warden.guard.warnings", &g.warnings);
            a.str("warden.version", g.warden_version.clone());
            a.int("warden.supervisor.pid", g.supervisor_pid);
            if !g.warnings.is_empty() {
                severity = Severity::Warn;
            }
        }
        Event::GuardKilled(k) => {
            a.int("process.pid", k.pid);
            a.int("process.parent_pid", k.ppid);
            a.int("user.id", k.uid);
            a.opt_str("user.name", k.user.as_ref());
            a.str("process.executable.path", k.filename.clone());
            a.list("process.command_args", &k.argv);
            // The list of agent programs is the requirements'.
            a.decision(KILLED, DecisionSource::Requirements.as_str());
            a.str("warden.guard.verdict", k.verdict.as_str());
            a.opt_str("warden.guard.program", k.program.as_ref());
            a.str("warden.guard.file", k.file.clone());
            a.int("warden.guard.size", k.size);
            a.opt_str("warden.guard.sha256", k.sha256.as_ref());
            a.flag("warden.guard.told_user", k.told_user);
            severity = Severity::Warn;
        }
        Event::GuardDisarmed(d) => {
            a.flag("warden.guard.unpinned", d.unpinned);
            a.int("warden.supervisor.pid", d.supervisor_pid);
            if d.unpinned {
                severity = Severity::Warn;
            }
        }
        Event::SessionEnd(e) => {
            a.str("warden.end.reason", e.reason.as_str());
            if let Some(code) = e.exit_code {
                a.int("process.exit.code", code);
            }
            if let Some(sig) = e.signal {
                a.int("warden.signal", sig);
            }
            a.int("warden.status", e.status);
            a.int("warden.killed", e.killed);
            a.int("warden.duration_ms", e.duration_ms);
            a.int("warden.records", e.records);
            a.int("warden.lost", e.lost);
            a.opt_str("error.type", e.error.as_ref());
        }
    }
    Mapped {
        event_name: rec.event.otlp_name(),
        timestamp: timestamp(rec),
        severity,
        body: render::line(rec),
        attributes: a.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Exec, ExecRequest, Fork, Scope};

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            session: "0190-s".into(),
            seq,
            time: "2026-11-23T21:00:01.123456789Z".into(),
            boot_ns: 5,
            prev_hash: "ab".into(),
            tool_call_id: Some("call-1".into()),
            event,
        }
    }

    fn int(m: &Mapped, key: &str) -> i64 {
        match m.get(key) {
            Some(AnyValue::Int(i)) => *i,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn dns_budget_attributes() {
        use crate::events::DnsQuery;
        use crate::network::dns_budget::{Budget, Exceeded, Scope as BudgetScope};
        let m = map(&rec(
            3,
            Event::DnsQuery(Box::new(DnsQuery {
                name: "k3x9.example.test".into(),
                qtype: "A".into(),
                transport: "udp".into(),
                client: "127.0.0.1:4000".into(),
                verdict: Verdict::Deny,
                source: DecisionSource::Policy,
                approval: None,
                rule: "dns-budget".into(),
                rule_source: None,
                rcode: "REFUSED".into(),
                answers: Vec::new(),
                ttl: None,
                allowed_secs: None,
                upstream: None,
                duration_us: 9,
                error: None,
                budget: Some(Exceeded {
                    budget: Budget::LabelEntropy,
                    scope: BudgetScope::Domain,
                    limit: Amount::Bits(4.4),
                    value: Amount::Bits(5.17),
                    domain: "example.test".into(),
                }),
            })),
        ));
        assert_eq!(
            m.get_str("warden.dns.budget"),
            Some("max_label_entropy_bits")
        );
        assert_eq!(m.get_str("warden.dns.budget.scope"), Some("domain"));
        assert_eq!(m.get_str("warden.dns.budget.domain"), Some("example.test"));
        assert_eq!(
            m.get("warden.dns.budget.value"),
            Some(&AnyValue::Double(5.17))
        );
        assert!(
            m.body
                .contains("over the domain budget max_label_entropy_bits"),
            "{}",
            m.body
        );
    }

    #[test]
    fn exec_uses_semantic_conventions() {
        let m = map(&rec(
            7,
            Event::Exec(Exec {
                pid: 10,
                ppid: 9,
                uid: 1000,
                gid: 1000,
                cgroup_id: 3,
                filename: "/bin/ls\\xff".into(),
                filename_truncated: false,
                argv: vec!["ls".into(), "a\nb".into()],
                argv_truncated: true,
                argv_bytes: 4100,
                argv_unreadable: false,
                killed_for_token: None,
            }),
        ));
        assert_eq!(m.event_name, "warden.exec");
        assert_eq!(m.get_str("warden.session.id"), Some("0190-s"));
        assert_eq!(int(&m, "warden.seq"), 7);
        assert_eq!(m.get_str("warden.tool_call.id"), Some("call-1"));
        assert_eq!(int(&m, "process.pid"), 10);
        assert_eq!(int(&m, "process.parent_pid"), 9);
        assert_eq!(int(&m, "user.id"), 1000);
        assert_eq!(m.get_str("process.executable.path"), Some("/bin/ls\\xff"));
        let Some(AnyValue::ListAny(args)) = m.get("process.command_args") else {
            panic!()
        };
        assert_eq!(args[1], AnyValue::from("a\nb".to_string()));
        assert_eq!(
            m.get("warden.argv_truncated"),
            Some(&AnyValue::Boolean(true))
        );
        assert!(m.get("warden.argv_unreadable").is_none());
        assert!(m.get("warden.decision").is_none());
        // The body is the terminal-safe rendering: no raw newline from argv.
        assert!(!m.body.contains('\n'), "{}", m.body);
        assert_eq!(
            m.timestamp,
            SystemTime::UNIX_EPOCH + Duration::from_nanos(1_795_467_601_123_456_789)
        );
    }

    #[test]
    fn decisions_carry_verdict_source_and_rule() {
        let net = Network {
            pid: 4,
            uid: 0,
            transport: "tcp".into(),
            address: "10.0.0.1".into(),
            port: 443,
            verdict: Verdict::Allow,
            rule: "allowed_domains=*.example.com".into(),
            rule_source: Some(
                "requirement network.allowed_domains at /etc/warden/requirements.toml line 3"
                    .into(),
            ),
            domain: Some("a.example.com".into()),
            count: 1,
            last_boot_ns: None,
        };
        let m = map(&rec(1, Event::NetConnect(net.clone())));
        assert_eq!(m.event_name, "warden.network.connect");
        assert_eq!(m.get_str("warden.decision"), Some("allow"));
        assert_eq!(m.get_str("warden.decision.source"), Some("requirements"));
        assert_eq!(
            m.get_str("warden.rule.id"),
            Some("allowed_domains=*.example.com")
        );
        assert_eq!(m.get_str("network.peer.address"), Some("10.0.0.1"));
        assert_eq!(int(&m, "network.peer.port"), 443);
        assert_eq!(m.get_str("server.address"), Some("a.example.com"));
        assert_eq!(m.get_str("network.transport"), Some("tcp"));

        let denied = Network {
            verdict: Verdict::Deny,
            rule: "default-deny".into(),
            rule_source: None,
            domain: None,
            ..net
        };
        let m = map(&rec(2, Event::NetSend(denied)));
        assert_eq!(m.get_str("warden.decision"), Some("deny"));
        assert_eq!(m.get_str("warden.decision.source"), Some("policy"));
        assert_eq!(m.severity, Severity::Warn);
        assert!(m.get("server.address").is_none());

        let m = map(&rec(
            3,
            Event::ExecRequest(Box::new(ExecRequest {
                pid: 5,
                syscall: "execve".into(),
                filename: "git".into(),
                resolved: Some("/usr/bin/git".into()),
                program: "git".into(),
                argv: vec!["git".into(), "push".into()],
                argv_truncated: false,
                verdict: Verdict::Deny,
                source: DecisionSource::Policy,
                approval: None,
                decision: Some(crate::exec_policy::ExecDecision::Forbidden),
                rule: Some("exec.rules=git push".into()),
                rule_source: Some("command line flag --exec-rule".into()),
                reason: None,
                matched: vec![],
                interpreters: vec![crate::events::Interpreter {
                    path: "/usr/bin/touch".into(),
                    program: "touch".into(),
                    via: "#!".into(),
                }],
                stdio_sockets: vec![],
                wait_us: 40,
            })),
        ));
        assert_eq!(m.event_name, "warden.exec.request");
        assert_eq!(m.get_str("warden.decision"), Some("deny"));
        assert!(m.get("warden.exec.interpreters").is_some());
        assert_eq!(m.get_str("warden.decision.source"), Some("policy"));
        assert_eq!(m.get_str("warden.rule.id"), Some("exec.rules=git push"));
        assert_eq!(m.get_str("warden.rule.decision"), Some("forbidden"));
        assert_eq!(m.get_str("process.executable.path"), Some("/usr/bin/git"));
    }

    #[test]
    fn approvals_carry_the_decision_its_source_and_the_request() {
        let approval = crate::events::Approval {
            id: "0123abcd-7".into(),
            subject: Subject {
                request: RequestKind::Exec,
                pid: 9,
                program: Some("git".into()),
                argv: vec!["git".into(), "push".into(), "-f".into()],
                name: None,
                qtype: None,
                credential: None,
            },
            verdict: Verdict::Deny,
            scope: Scope::Once,
            source: DecisionSource::AutoReview,
            reason: "critical risk: rewrites remote history".into(),
            by: None,
            rule: Some("builtin:git-push-force".into()),
            risk: Some(Risk {
                level: crate::events::RiskLevel::High,
                reasons: vec!["rewrites remote history".into()],
            }),
            policy: "on-request".into(),
            reviewer: "auto-review".into(),
            waited_us: 12,
        };
        let m = map(&rec(4, Event::Approval(Box::new(approval))));
        assert_eq!(m.event_name, "warden.approval");
        assert_eq!(m.get_str("warden.decision"), Some("deny"));
        assert_eq!(m.get_str("warden.decision.source"), Some("auto_review"));
        assert_eq!(m.get_str("warden.approval.id"), Some("0123abcd-7"));
        assert_eq!(m.get_str("warden.rule.id"), Some("builtin:git-push-force"));
        assert_eq!(m.get_str("warden.risk.level"), Some("high"));
        assert_eq!(int(&m, "process.pid"), 9);
        assert_eq!(m.severity, Severity::Warn);
    }

    #[test]
    fn every_kind_has_a_warden_name() {
        let m = map(&rec(0, Event::Fork(Fork { pid: 2, ppid: 1 })));
        assert_eq!(m.event_name, "warden.fork");
        assert_eq!(int(&m, "process.parent_pid"), 1);
        // The name is always `warden.` + the log's kind.
        let kinds = [
            Event::Fork(Fork { pid: 2, ppid: 1 }),
            Event::EventsLost(Default::default()),
            Event::ApprovalRefused(crate::events::ApprovalRefused {
                peer_pid: 1,
                peer_uid: 2,
                reason: "x".into(),
            }),
        ];
        for e in kinds {
            assert_eq!(e.otlp_name(), format!("warden.{}", e.kind()));
        }
    }

    /// Every enum value that reaches OTLP is spelled as the log spells it: each value is put in
    /// a record as the log writes it, read back, mapped, and the attribute compared.
    #[test]
    fn otlp_values_are_the_logs_spellings() {
        use crate::events::{
            BacklogAction, EndReason, LsmHook, RiskLevel, TokenProblem, ToolCallPhase,
        };
        use crate::exec_policy::ExecDecision;
        use crate::network::dns_budget::{Budget, Scope as BudgetScope};
        fn names<T: ToString>(all: &[T]) -> Vec<String> {
            all.iter().map(T::to_string).collect()
        }
        const REQUEST: &str = r#""kind":"exec.request","pid":1,"syscall":"execve","filename":"x","program":"x","argv":[],"wait_us":1"#;
        const FINDING: &str = r#""kind":"finding","detection":"secret-exfiltration","source":"builtin","severity":"high","techniques":["T1041"],"narrative":"n","count":2,"evidence":[{"first":3,"last":4}]"#;
        const DNS: &str = r#""kind":"dns.query","name":"a.test","qtype":"A","transport":"udp","client":"127.0.0.1:1","verdict":"deny","rule":"r","rcode":"REFUSED","duration_us":1"#;
        const ASKED: &str =
            r#""kind":"approval.request","id":"a","pid":1,"why":"w","timeout_ms":1"#;
        const APPROVAL: &str = r#""kind":"approval","id":"a","request":"exec","pid":1,"verdict":"allow","source":"user","reason":"r","policy":"p","reviewer":"user","waited_us":1"#;
        // (the record's fields, with @ where the value goes; the OTLP attribute; the values)
        let cases = [
            (
                r#""kind":"session.end","reason":"@","status":0,"killed":0,"duration_ms":1,"records":1,"lost":0"#.to_string(),
                "warden.end.reason",
                names(EndReason::ALL),
            ),
            (format!(r#"{REQUEST},"verdict":"@","source":"user""#), "warden.decision", names(Verdict::ALL)),
            (
                format!(r#"{REQUEST},"verdict":"deny","source":"@""#),
                "warden.decision.source",
                names(DecisionSource::ALL),
            ),
            (
                format!(r#"{REQUEST},"verdict":"deny","source":"user","decision":"@""#),
                "warden.rule.decision",
                names(ExecDecision::ALL),
            ),
            (
                r#""kind":"exec","pid":1,"ppid":1,"uid":0,"gid":0,"cgroup_id":1,"filename":"x","argv":[],"argv_bytes":0,"killed_for_token":"@""#.to_string(),
                "warden.killed_for_token",
                names(TokenProblem::ALL),
            ),
            (
                r#""kind":"lsm.denied","pid":1,"hook":"@","errno":"EPERM","rule":"r""#.to_string(),
                "warden.lsm.hook",
                names(LsmHook::ALL),
            ),
            (
                format!(r#"{ASKED},"request":"@","asked":"user""#),
                "warden.approval.request",
                names(RequestKind::ALL),
            ),
            (
                format!(r#"{ASKED},"request":"exec","asked":"@""#),
                "warden.approval.asked",
                names(DecisionSource::ALL),
            ),
            (
                format!(r#"{ASKED},"request":"exec","asked":"user","risk":{{"level":"@","reasons":[]}}"#),
                "warden.risk.level",
                names(RiskLevel::ALL),
            ),
            (format!(r#"{APPROVAL},"scope":"@""#), "warden.approval.scope", names(Scope::ALL)),
            (
                r#""kind":"agent.tool_call","pid":1,"id":"c","phase":"@""#.to_string(),
                "warden.tool_call.phase",
                names(ToolCallPhase::ALL),
            ),
            (
                r#""kind":"export.backlog","action":"@","backlog_bytes":1,"limit_bytes":2"#.to_string(),
                "warden.backlog.action",
                names(BacklogAction::ALL),
            ),
            (
                format!(r#"{DNS},"budget":{{"budget":"@","scope":"session","limit":1,"value":2,"domain":"test"}}"#),
                "warden.dns.budget",
                names(Budget::ALL),
            ),
            (
                format!(r#"{DNS},"budget":{{"budget":"unique_names","scope":"@","limit":1,"value":2,"domain":"test"}}"#),
                "warden.dns.budget.scope",
                names(BudgetScope::ALL),
            ),
            (
                r#""kind":"credential.use","delivery":"inject","outcome":"@""#.to_string(),
                "warden.credential.outcome",
                names(crate::events::CredentialOutcome::ALL),
            ),
            (
                r#""kind":"credential.use","delivery":"@","outcome":"handed""#.to_string(),
                "warden.credential.delivery",
                names(warden_wire::CredentialDelivery::ALL),
            ),            (
                format!(r#"{FINDING},"action":"@""#),
                "warden.finding.action",
                names(warden_wire::TriageAction::ALL),
            ),
            (
                FINDING.replace(r#""severity":"high""#, r#""severity":"@""#) + r#","action":"end""#,
                "warden.finding.severity",
                names(crate::events::RiskLevel::ALL),
            ),
            (
                FINDING.replace(r#""source":"builtin""#, r#""source":"@""#) + r#","action":"end""#,
                "warden.finding.source",
                names(crate::events::FindingSource::ALL),
            ),
            (
                r#""kind":"guard.killed","pid":1,"ppid":1,"uid":0,"gid":0,"filename":"x","argv":[],"verdict":"@","file":"0:1:2","size":3"#.to_string(),
                "warden.guard.verdict",
                names(crate::events::GuardVerdict::ALL),
            ),
            (
                r#""kind":"guard.armed","how":"@","programs":[],"warden_version":"0","supervisor_pid":1"#.to_string(),
                "warden.guard.how",
                names(crate::events::GuardArming::ALL),
            ),
        ];
        let finding: Record = serde_json::from_str(&format!(
            r#"{{"session":"s","seq":5,"time":"2026-12-06T00:00:00.000000000Z","boot_ns":1,{FINDING},"action":"end"}}"#
        ))
        .unwrap();
        let m = map(&finding);
        assert_eq!(m.event_name, "warden.finding");
        assert_eq!(
            m.get_str("warden.finding.detection"),
            Some("secret-exfiltration")
        );
        assert!(m.get("warden.finding.evidence").is_some());
        for (fields, key, values) in cases {
            assert!(!values.is_empty(), "{key}");
            for value in values {
                let line = format!(
                    r#"{{"session":"s","seq":1,"time":"2026-12-06T00:00:00.000000000Z","boot_ns":1,{}}}"#,
                    fields.replace('@', &value)
                );
                let record: Record =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(map(&record).get_str(key), Some(value.as_str()), "{line}");
            }
        }
    }
}
