//! Approvals: when the agent wants to leave its sandbox (a `prompt` exec rule, a command the
//! `untrusted` policy does not know to be safe, a domain nobody listed), someone decides
//! while the agent waits in the kernel (the exec held by seccomp, the DNS answer held by
//! the proxy).
//!
//! Who decides follows the approval policy and the reviewer:
//! - `never`: nobody is asked; what needs approval is denied (source `policy`);
//! - reviewer `user`: a person, at the terminal that ran `warden run` or with
//!   `warden approvals` from another one;
//! - reviewer `auto-review`: the risk classifier ([`risk`]) approves low risk and refuses
//!   critical risk (source `auto_review`); the rest goes to the reviewer command when one is
//!   configured, else to a person;
//! - reviewer `external`: the reviewer command ([`reviewer_command`]) answers everything.
//!
//! A request nobody answers in time is denied (source `timeout`). Identical requests made
//! while one is pending wait for the same answer; "approve for the session" makes a session
//! rule that answers later identical requests at once. Every decision is an `approval`
//! record; every request that waits for someone is first an `approval.request` record.
pub mod ids;
pub mod reviewer_command;
use warden_policy::approval::{self, NextStep};
pub use warden_policy::risk;
pub mod socket;
pub mod terminal;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};
use warden_requirements::values::{ApprovalPolicy, Reviewer};

use crate::{
    clock,
    events::{
        Approval, ApprovalRequest, DecisionSource, Event, Risk, RiskLevel, Scope, Subject, Verdict,
    },
};

/// What the session chose: who decides, how long they have, who else may answer.
pub struct Options {
    pub policy: ApprovalPolicy,
    pub reviewer: Reviewer,
    /// The reviewer command and its arguments (a requirement).
    pub reviewer_command: Option<Vec<String>>,
    /// How long a person has to answer.
    pub timeout: Duration,
    /// How long the reviewer command has.
    pub reviewer_timeout: Duration,
    /// Nobody will answer (no terminal prompt, no approvals socket): what needs a person is
    /// denied at once.
    pub unattended: bool,
    /// Members of this group may answer through the socket (besides root and the user).
    pub approvers_gid: Option<u32>,
    /// The requirements allow only their own domains: unknown names are not asked about.
    pub managed_domains_only: bool,
}

pub struct Config {
    pub session: String,
    /// What this session's request ids start with ([`ids`]).
    pub request_tag: String,
    pub options: Options,
    pub risk: risk::Context,
}

impl std::ops::Deref for Config {
    type Target = Options;

    fn deref(&self) -> &Options {
        &self.options
    }
}

/// What the auto-reviewer and the reviewer command look at.
#[derive(Clone, Debug)]
pub enum Facts {
    Exec {
        commands: Vec<Vec<String>>,
        known_safe: bool,
        writes_file: bool,
        /// Asked for by an administrator's `prompt` requirement.
        required_prompt: bool,
        cwd: Option<PathBuf>,
    },
    Dns {
        name: String,
        qtype: String,
        /// Over a DNS budget: possibly data leaving in the name (DNS tunnelling).
        over_budget: bool,
    },
    /// git's credential helper asks for a credential stored for `host`, or an agent's
    /// API-key helper for one by name (no host).
    Credential {
        credential: String,
        host: Option<String>,
    },
    /// Live triage found what the requirements say a person decides on: may the session,
    /// frozen meanwhile, go on?
    Finding {
        detection: String,
        severity: RiskLevel,
        narrative: String,
    },
}

/// A request for approval.
#[derive(Clone, Debug)]
pub struct Request {
    pub subject: Subject,
    /// Why it needs approval.
    pub why: String,
    /// The rule that asks for it, when one does.
    pub rule: Option<String>,
    pub facts: Facts,
}

impl Request {
    /// Requests with the same key get the same answer (and a session rule covers them all).
    fn key(&self) -> String {
        match &self.facts {
            Facts::Exec { .. } => {
                let mut k = format!("exec\0{}", self.subject.program.as_deref().unwrap_or(""));
                for a in &self.subject.argv {
                    k.push('\0');
                    k.push_str(a);
                }
                k
            }
            Facts::Dns { name, .. } => {
                format!("dns\0{}", name.trim_end_matches('.').to_ascii_lowercase())
            }
            Facts::Credential { credential, host } => {
                format!(
                    "credential\0{credential}\0{}",
                    host.as_deref().unwrap_or_default()
                )
            }
            Facts::Finding { detection, .. } => format!("finding\0{detection}"),
        }
    }
}

/// A decision on a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The `approval` record's id.
    pub id: String,
    pub verdict: Verdict,
    pub scope: Scope,
    pub source: DecisionSource,
    pub reason: String,
    pub by: Option<String>,
}

impl Answer {
    /// What the requester does when the broker is gone before answering: refuse.
    pub fn lost(id: &str) -> Self {
        Self {
            id: id.to_string(),
            verdict: Verdict::Deny,
            scope: Scope::Once,
            source: DecisionSource::Policy,
            reason: "the approval flow stopped before answering".into(),
            by: None,
        }
    }
}

pub enum Review {
    Decided(Answer),
    /// Someone is asked; the answer comes on the channel.
    Pending {
        id: String,
        answer: oneshot::Receiver<Answer>,
    },
}

/// What a person's or the reviewer's answer says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub approve: bool,
    #[serde(default = "once")]
    pub scope: Scope,
    #[serde(default)]
    pub reason: Option<String>,
}

fn once() -> Scope {
    Scope::Once
}

/// A pending request as `warden approvals list` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingView {
    pub session: String,
    /// The request, as its `approval.request` record shows it.
    #[serde(flatten)]
    pub request: ApprovalRequest,
    pub waited_ms: u64,
    pub expires_in_ms: u64,
}

impl std::ops::Deref for PendingView {
    type Target = ApprovalRequest;

    fn deref(&self) -> &ApprovalRequest {
        &self.request
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnswerError {
    #[error("no pending request {0} (answered already, timed out, or never made)")]
    NotPending(String),
}

struct Pending {
    key: String,
    request: Request,
    /// What its `approval.request` record said (who is asked, the risk, the timeout).
    record: ApprovalRequest,
    asked_at: Instant,
    /// When the wait started, for the record.
    started: Instant,
    waiters: Vec<oneshot::Sender<Answer>>,
    /// Told when the request is answered (a terminal prompt for it stops).
    answered: Arc<Notify>,
}

/// A one-time answer, remembered for a moment for the same process. A denial: a shell that
/// is refused an exec tries the same command under its other names on PATH (`/usr/bin/x`,
/// then `/bin/x`), and a resolver retries a refused name; neither should ask again. An
/// approval: an exec held while the session was frozen for the question (a prompt at the
/// service's client's terminal) is restarted by the kernel when it thaws; the same exec of
/// the same process is what was approved.
struct RecentAnswer {
    answer: Answer,
    pid: u32,
    at: Instant,
}

const RECENT_MEMORY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    pending: HashMap<String, Pending>,
    by_key: HashMap<String, String>,
    /// Approvals for the session: the answer later identical requests get.
    session_rules: HashMap<String, Answer>,
    recent_answers: HashMap<String, RecentAnswer>,
    history: risk::History,
}

impl State {
    /// What a decision leaves behind: a session rule, or a denial to repeat to retries.
    fn remember(&mut self, key: &str, answer: &Answer, pid: u32) {
        let again = |reason: String| Answer {
            reason,
            ..answer.clone()
        };
        match (answer.verdict, answer.scope) {
            (Verdict::Allow, Scope::Session) => {
                let reason = format!("approved for the session (approval {})", answer.id);
                self.session_rules.insert(key.to_string(), again(reason));
            }
            // A person's approval of one exec: only they take long enough for a freeze.
            (Verdict::Allow, _) if answer.source != DecisionSource::User => {}
            (verdict, _) => {
                let what = if verdict == Verdict::Deny {
                    self.history.refusals += 1;
                    "denied"
                } else {
                    "approved"
                };
                self.recent_answers
                    .retain(|_, d| d.at.elapsed() < RECENT_MEMORY);
                let reason = format!("{what} moments ago (approval {})", answer.id);
                self.recent_answers.insert(
                    key.to_string(),
                    RecentAnswer {
                        answer: again(reason),
                        pid,
                        at: Instant::now(),
                    },
                );
            }
        }
    }

    /// The answer a session rule or a recent answer gives this request, if one does.
    fn remembered(&self, key: &str, pid: u32) -> Option<Answer> {
        self.session_rules.get(key).cloned().or_else(|| {
            self.recent_answers
                .get(key)
                .filter(|d| d.pid == pid && d.at.elapsed() < RECENT_MEMORY)
                .map(|d| d.answer.clone())
        })
    }
}

/// The session's approval service, shared by the exec gate, the DNS proxy, the terminal
/// prompt and the approvals socket.
pub struct Broker {
    cfg: Config,
    events: mpsc::Sender<(u64, Event)>,
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    next_id: AtomicU64,
    /// The terminal prompt's queue; dropped when the session closes, which ends the prompt.
    terminal: Mutex<Option<mpsc::UnboundedSender<String>>>,
}

impl Broker {
    pub fn new(
        cfg: Config,
        events: mpsc::Sender<(u64, Event)>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            events,
            runtime,
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            terminal: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The runtime the approval flow runs on (for callers on other threads).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Requests for a person are also shown at the terminal (see [`terminal`]).
    pub fn attach_terminal(&self, queue: mpsc::UnboundedSender<String>) {
        *self.terminal.lock().expect("terminal lock") = Some(queue);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("approvals lock")
    }

    /// A refusal elsewhere in the session (a forbidden exec, a refused system call, a denied
    /// name): the auto-reviewer trusts the session less.
    pub fn note_refusal(&self) {
        self.state().history.refusals += 1;
    }

    pub(crate) fn emit(&self, event: Event) {
        // Callers run on the gate's thread and on the runtime alike, so this never blocks:
        // when the channel is full, a task hands the record over once there is room.
        match self.events.try_send((clock::boot_ns(), event)) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                let events = self.events.clone();
                self.runtime.spawn(async move {
                    let _ = events.send(item).await;
                });
            }
        }
    }

    /// Decides now when the policy, a session rule or the auto-reviewer can; otherwise asks.
    pub fn review(self: &Arc<Self>, request: Request) -> Review {
        let started = Instant::now();
        let key = request.key();
        let mut st = self.state();
        if let Some(answer) = st.remembered(&key, request.subject.pid) {
            drop(st);
            self.record(&request, None, &answer, started);
            return Review::Decided(answer);
        }
        if let Some(id) = st.by_key.get(&key).cloned() {
            let (tx, rx) = oneshot::channel();
            st.pending
                .get_mut(&id)
                .expect("by_key names pending requests")
                .waiters
                .push(tx);
            return Review::Pending { id, answer: rx };
        }
        let id = ids::request(
            &self.cfg.request_tag,
            self.next_id.fetch_add(1, Ordering::Relaxed),
        );
        let risk = (self.cfg.reviewer == Reviewer::AutoReview)
            .then(|| self.classify(&request.facts, st.history));
        let route = self.route(risk.as_ref());
        match route {
            NextStep::Decide(verdict, source, reason) => {
                let answer = Answer {
                    id,
                    verdict,
                    scope: Scope::Once,
                    source,
                    reason,
                    by: None,
                };
                st.remember(&key, &answer, request.subject.pid);
                drop(st);
                self.record(&request, risk, &answer, started);
                Review::Decided(answer)
            }
            NextStep::Ask(asked) => {
                let (tx, rx) = oneshot::channel();
                let answered = Arc::new(Notify::new());
                let timeout = if asked == DecisionSource::Reviewer {
                    self.cfg.reviewer_timeout
                } else {
                    self.cfg.timeout
                };
                let record = ApprovalRequest {
                    id: id.clone(),
                    subject: request.subject.clone(),
                    why: request.why.clone(),
                    rule: request.rule.clone(),
                    risk: risk.clone(),
                    asked,
                    timeout_ms: timeout.as_millis() as u64,
                };
                self.emit(Event::ApprovalRequest(Box::new(record.clone())));
                st.by_key.insert(key.clone(), id.clone());
                st.pending.insert(
                    id.clone(),
                    Pending {
                        key,
                        request: request.clone(),
                        record,
                        asked_at: Instant::now(),
                        started,
                        waiters: vec![tx],
                        answered,
                    },
                );
                drop(st);
                self.start_waiting(&id, asked, timeout, &request, risk);
                Review::Pending { id, answer: rx }
            }
        }
    }

    fn classify(&self, facts: &Facts, history: risk::History) -> Risk {
        match facts {
            Facts::Exec {
                commands,
                known_safe,
                writes_file,
                required_prompt,
                cwd,
            } => risk::exec(
                &risk::ExecFacts {
                    commands,
                    known_safe: *known_safe,
                    writes_file: *writes_file,
                    required_prompt: *required_prompt,
                    cwd: cwd.as_deref(),
                },
                &self.cfg.risk,
                history,
            ),
            Facts::Dns {
                name,
                qtype,
                over_budget,
            } => {
                let mut r = risk::domain(name, qtype, history);
                // Never approved alone: a person or the reviewer command decides.
                if *over_budget && r.level < RiskLevel::High {
                    r.level = RiskLevel::High;
                    r.reasons
                        .push("over a DNS budget (data may leave in the names)".into());
                }
                r
            }
            Facts::Credential { credential, host } => {
                risk::credential(credential, host.as_deref(), history)
            }
            // Never approved alone: what the finding says is for a person (or the reviewer
            // command) to weigh.
            Facts::Finding {
                severity,
                narrative,
                ..
            } => Risk {
                level: (*severity).max(RiskLevel::High),
                reasons: vec![narrative.clone()],
            },
        }
    }

    fn route(&self, risk: Option<&Risk>) -> NextStep {
        approval::route(
            approval::Answerers {
                policy: self.cfg.policy,
                reviewer: self.cfg.reviewer,
                reviewer_command: self.cfg.reviewer_command.is_some(),
                unattended: self.cfg.unattended,
            },
            risk,
        )
    }

    /// Starts what ends the wait: the timeout, the reviewer command, the terminal prompt.
    fn start_waiting(
        self: &Arc<Self>,
        id: &str,
        asked: DecisionSource,
        timeout: Duration,
        request: &Request,
        risk: Option<Risk>,
    ) {
        // Timers and reviewer runs hold the broker weakly: a session that ends does not wait
        // for them.
        let weak = Arc::downgrade(self);
        if asked == DecisionSource::Reviewer {
            let command = self
                .cfg
                .reviewer_command
                .clone()
                .expect("the reviewer is asked only when configured");
            let input = reviewer_command::Input::new(&self.cfg, id, request, risk);
            let id = id.to_string();
            // The run is bounded by the reviewer's timeout, which answers for it.
            self.runtime.spawn(async move {
                let (verdict, scope, source, reason) =
                    match reviewer_command::ask(&command, &input, timeout).await {
                        Ok(reply) => (
                            if reply.approve {
                                Verdict::Allow
                            } else {
                                Verdict::Deny
                            },
                            reply.scope,
                            DecisionSource::Reviewer,
                            reply.reason.unwrap_or_else(|| "no reason given".into()),
                        ),
                        Err(e @ reviewer_command::ReviewError::Timeout(_)) => (
                            Verdict::Deny,
                            Scope::Once,
                            DecisionSource::Timeout,
                            e.to_string(),
                        ),
                        Err(e) => (
                            Verdict::Deny,
                            Scope::Once,
                            DecisionSource::Reviewer,
                            e.to_string(),
                        ),
                    };
                if let Some(broker) = weak.upgrade() {
                    let _ = broker.answer_with(&id, verdict, scope, source, reason, None);
                }
            });
            return;
        }
        let timeout_id = id.to_string();
        self.runtime.spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(broker) = weak.upgrade() {
                let _ = broker.answer_with(
                    &timeout_id,
                    Verdict::Deny,
                    Scope::Once,
                    DecisionSource::Timeout,
                    format!("no answer within {} s", timeout.as_secs_f64()),
                    None,
                );
            }
        });
        if let Some(queue) = self.terminal.lock().expect("terminal lock").as_ref() {
            let _ = queue.send(id.to_string());
        }
    }

    /// The session ends: every request still waiting is denied (a prompt showing one is
    /// taken down), and the terminal prompt stops.
    pub fn close(&self) {
        self.terminal.lock().expect("terminal lock").take();
        self.deny_pending(|_| true, "the session ended before an answer");
    }

    /// The terminal hung up: nothing more is asked there, and every request waiting for a
    /// person is denied now (whoever sat at the terminal is gone, and the session ends).
    pub fn terminal_hung_up(&self) {
        self.terminal.lock().expect("terminal lock").take();
        self.deny_pending(
            |p| p.record.asked == DecisionSource::User,
            "the terminal hung up before an answer",
        );
    }

    fn deny_pending(&self, which: impl Fn(&Pending) -> bool, reason: &str) {
        let ids: Vec<String> = (self.state().pending.iter())
            .filter(|(_, p)| which(p))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let _ = self.answer_with(
                &id,
                Verdict::Deny,
                Scope::Once,
                DecisionSource::Policy,
                reason.to_string(),
                None,
            );
        }
    }

    /// A person's answer (terminal or socket).
    pub fn answer(&self, id: &str, reply: &Reply, by: String) -> Result<(), AnswerError> {
        let verdict = if reply.approve {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        let reason = reply.reason.clone().unwrap_or_else(|| {
            match (reply.approve, reply.scope) {
                (true, Scope::Session) => "approved for the session",
                (true, Scope::Once) => "approved",
                (false, _) => "denied",
            }
            .to_string()
        });
        self.answer_with(
            id,
            verdict,
            reply.scope,
            DecisionSource::User,
            reason,
            Some(by),
        )
    }

    fn answer_with(
        &self,
        id: &str,
        verdict: Verdict,
        scope: Scope,
        source: DecisionSource,
        reason: String,
        by: Option<String>,
    ) -> Result<(), AnswerError> {
        let mut st = self.state();
        let pending = st
            .pending
            .remove(id)
            .ok_or_else(|| AnswerError::NotPending(id.to_string()))?;
        st.by_key.remove(&pending.key);
        // A denial is for this request only: the next identical one is asked again.
        let scope = if verdict == Verdict::Allow {
            scope
        } else {
            Scope::Once
        };
        let answer = Answer {
            id: id.to_string(),
            verdict,
            scope,
            source,
            reason,
            by,
        };
        st.remember(&pending.key, &answer, pending.request.subject.pid);
        drop(st);
        pending.answered.notify_one();
        self.record(
            &pending.request,
            pending.record.risk,
            &answer,
            pending.started,
        );
        for w in pending.waiters {
            let _ = w.send(answer.clone());
        }
        Ok(())
    }

    fn record(&self, request: &Request, risk: Option<Risk>, answer: &Answer, started: Instant) {
        self.emit(Event::Approval(Box::new(Approval {
            id: answer.id.clone(),
            subject: request.subject.clone(),
            verdict: answer.verdict,
            scope: answer.scope,
            source: answer.source,
            reason: answer.reason.clone(),
            by: answer.by.clone(),
            rule: request.rule.clone(),
            risk,
            policy: self.cfg.policy.to_string(),
            reviewer: self.cfg.reviewer.to_string(),
            waited_us: started.elapsed().as_micros() as u64,
        })));
    }

    /// The requests waiting for a person or the reviewer.
    pub fn pending(&self) -> Vec<PendingView> {
        let st = self.state();
        let mut out: Vec<PendingView> = st
            .pending
            .values()
            .map(|p| {
                let timeout = Duration::from_millis(p.record.timeout_ms);
                PendingView {
                    session: self.cfg.session.clone(),
                    request: p.record.clone(),
                    waited_ms: p.asked_at.elapsed().as_millis() as u64,
                    expires_in_ms: timeout.saturating_sub(p.asked_at.elapsed()).as_millis() as u64,
                }
            })
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse(p.waited_ms));
        out
    }

    /// A pending request's view and the notification of its answer, while it is pending.
    pub fn watch(&self, id: &str) -> Option<(PendingView, Arc<Notify>)> {
        let notify = self.state().pending.get(id)?.answered.clone();
        let view = self.pending().into_iter().find(|p| p.id == id)?;
        Some((view, notify))
    }
}

#[cfg(test)]
mod tests;
