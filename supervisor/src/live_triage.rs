//! Live triage: `warden triage`'s built-in detections run in the session's pipeline as records
//! are written; each finding is a `finding` record (and an OTLP `warden.finding`), and the
//! requirements (`triage.on_<severity>`) say whether the session goes on, waits frozen for a
//! person's answer, or is ended.
use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use warden_requirements::{Effective, effective::Setting};
use warden_triage::{Engine, Finding, Severity};
use warden_wire::TriageAction;

use crate::{
    approvals::{Answer, Broker, Facts, Request, Review},
    events::{Event, Record, RequestKind, Subject, Verdict},
    freezer::{Freezer, Hold},
};

/// What a finding of one severity makes Warden do, and the requirement that said so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub action: TriageAction,
    pub source: Option<String>,
}

/// The requirements' `[triage]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriagePolicy {
    /// Low, medium, high, critical.
    actions: [Action; 4],
}

impl TriagePolicy {
    /// None when the requirements turn live triage off (`triage.live = false`).
    pub fn from_requirements(e: &Effective) -> Option<Self> {
        if e.triage_live.as_ref().is_some_and(|s| !s.value) {
            return None;
        }
        let action = |key: &str, s: &Option<Setting<TriageAction>>| match s {
            Some(s) => Action {
                action: s.value,
                source: Some(format!("{key} at {}", s.origin)),
            },
            None => Action {
                action: TriageAction::Record,
                source: None,
            },
        };
        Some(TriagePolicy {
            actions: [
                action("triage.on_low", &e.triage_on_low),
                action("triage.on_medium", &e.triage_on_medium),
                action("triage.on_high", &e.triage_on_high),
                action("triage.on_critical", &e.triage_on_critical),
            ],
        })
    }

    fn for_severity(&self, s: Severity) -> &Action {
        &self.actions[match s {
            Severity::Low => 0,
            Severity::Medium => 1,
            Severity::High => 2,
            Severity::Critical => 3,
        }]
    }
}

/// How live triage asks whether a session goes on: the session's approval flow, and its
/// freezer to hold it still meanwhile.
pub struct Asker {
    /// Weak: the broker sends its records through the pipeline that holds this, and the
    /// pipeline's last drain waits for every sender to go.
    pub broker: Weak<Broker>,
    pub freezer: Arc<Freezer>,
}

impl Asker {
    /// Freezes the session and asks; an approval thaws it, anything else ends it (frozen: its
    /// processes die without running on).
    fn ask(&self, f: &Finding, end: Arc<Notify>) {
        let Some(broker) = self.broker.upgrade() else {
            // The approval flow is gone (the session is ending): nobody to ask.
            end.notify_one();
            return;
        };
        self.freezer.hold(Hold::TriageQuestion);
        let review = broker.review(Request {
            subject: Subject {
                request: RequestKind::Finding,
                pid: 0,
                program: None,
                argv: Vec::new(),
                name: Some(f.detection.clone()),
                qtype: None,
                credential: None,
            },
            why: format!(
                "live triage: {} ({}); the session is frozen until answered",
                f.detection, f.severity
            ),
            rule: None,
            facts: Facts::Finding {
                detection: f.detection.clone(),
                severity: f.severity,
                narrative: f.narrative.clone(),
            },
        });
        let freezer = self.freezer.clone();
        let settle = move |answer: Answer| match answer.verdict {
            Verdict::Allow => freezer.release(Hold::TriageQuestion),
            _ => end.notify_one(),
        };
        match review {
            Review::Decided(answer) => settle(answer),
            Review::Pending { id, answer } => {
                tokio::spawn(async move {
                    settle(answer.await.unwrap_or_else(|_| Answer::lost(&id)));
                });
            }
        }
    }
}

/// The detections over one live session.
pub struct LiveTriage {
    policy: TriagePolicy,
    /// Made from the session's `session.start` (its home and workspace).
    engine: Option<Engine>,
    /// Woken when a finding's action ends the session.
    end: Arc<Notify>,
    /// Set once the session's approval flow runs; a question before it (there is none: no
    /// agent record comes before) ends the session.
    asker: Option<Asker>,
}

impl LiveTriage {
    pub fn new(policy: TriagePolicy, end: Arc<Notify>) -> Self {
        LiveTriage {
            policy,
            engine: None,
            end,
            asker: None,
        }
    }

    /// From now on, `ask` actions ask through `asker`.
    pub fn ask_with(&mut self, asker: Asker) {
        self.asker = Some(asker);
    }

    /// The `finding` records this record makes fire, to be written after it.
    pub fn push(&mut self, r: &Record) -> Vec<Event> {
        if let Event::SessionStart(start) = &r.event {
            self.engine = Some(Engine::new(Some(start)));
        }
        let Some(engine) = self.engine.as_mut() else {
            return Vec::new();
        };
        let fired = engine.push(r);
        fired
            .into_iter()
            .filter_map(|d| engine.finding(d))
            .map(|f| {
                let Action { action, source } = self.policy.for_severity(f.severity).clone();
                match (action, &self.asker) {
                    (TriageAction::Record, _) => {}
                    (TriageAction::Ask, Some(asker)) => asker.ask(&f, self.end.clone()),
                    (TriageAction::Ask | TriageAction::End, _) => self.end.notify_one(),
                }
                Event::Finding(Box::new(f.record(action, source)))
            })
            .collect()
    }
}
