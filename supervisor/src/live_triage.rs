//! Live triage: `warden triage`'s built-in detections run in the session's pipeline as records
//! are written; each finding is a `finding` record (and an OTLP `warden.finding`), and the
//! requirements (`triage.on_<severity>`) say whether the session goes on or is ended.
use std::sync::Arc;

use tokio::sync::Notify;
use warden_requirements::{Effective, effective::Setting};
use warden_triage::{Engine, Severity};
use warden_wire::TriageAction;

use crate::events::{Event, Record};

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

/// The detections over one live session.
pub struct LiveTriage {
    policy: TriagePolicy,
    /// Made from the session's `session.start` (its home and workspace).
    engine: Option<Engine>,
    /// Woken when a finding's action ends the session.
    end: Arc<Notify>,
}

impl LiveTriage {
    pub fn new(policy: TriagePolicy, end: Arc<Notify>) -> Self {
        LiveTriage {
            policy,
            engine: None,
            end,
        }
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
                if action == TriageAction::End {
                    self.end.notify_one();
                }
                Event::Finding(Box::new(f.record(action, source)))
            })
            .collect()
    }
}
