//! Baselines: what earlier sessions of a workspace, run with an agent, did (the names they
//! looked up, the programs they ran, where they wrote outside the workspace, which program
//! started which), so that what a session does for the first time is a finding.
//!
//! The CLI calls, for one session: [`Baselines::open`], [`Baselines::baseline_for`],
//! [`Baseline::deviations`] (added to the report), then [`Baselines::learn`] with whether the
//! report has any finding. A session with findings never enters its baseline, so an attack
//! does not teach the baseline to accept itself; a person who judged one benign has it learnt
//! with [`Baselines::accept`].
mod features;
mod store;

use std::{
    collections::BTreeSet,
    fmt,
    path::{Path, PathBuf},
};

use warden_records::events::{Event, Record, escape::for_terminal};
use warden_wire::string_enum;

use crate::{
    detections::program_name,
    engine::home,
    finding::{Finding, FindingSource, Severity, ranges},
    triage::session_start,
};
use features::{Observation, Places, observe};
use store::{Seen, Stored};

/// Sessions a baseline learns, at least, before it judges.
pub const LEARNING_SESSIONS: u64 = 5;
/// Learnt sessions in a row that must bring nothing new for a baseline to be stable. With 3,
/// 2 of 60 simulated workspaces stopped learning before seeing a tool used in half of their
/// sessions, and reported it from then on; with 5, none did.
pub const QUIET_SESSIONS: u64 = 5;

string_enum! {
    /// What a baseline learns of a session.
    Feature, "baseline feature" {
        /// A DNS name looked up (answered or refused).
        Domain = "domain",
        /// A program run, or one the exec gate held.
        Binary = "binary",
        /// A path written (created, truncated, renamed, removed) outside the workspace.
        Write = "write-outside-workspace",
        /// A program started by another (`bash -> cargo`).
        Shape = "process-shape",
    }
}

string_enum! {
    /// How far a baseline has got.
    BaselineState, "baseline state" {
        /// Fewer than [`LEARNING_SESSIONS`] sessions learnt, or something new came in the last
        /// [`QUIET_SESSIONS`] of them: the baseline does not know the workspace yet, and
        /// judges nothing.
        Learning = "learning",
        /// It has learnt enough, and nothing new came in the last [`QUIET_SESSIONS`]
        /// sessions learnt: new things are findings.
        Stable = "stable",
        /// It was stable, and sessions a person accepted brought something new in the last
        /// [`QUIET_SESSIONS`]: new things are still findings.
        Changed = "changed",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("the session's start record names no workspace or agent, so it has no baseline")]
    Unkeyed,
    #[error("baseline {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "baseline {path} is damaged ({source}); it was left as it is: delete it to learn the workspace again"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "baseline {path} is format version {found}; this Warden reads version {}",
        store::VERSION
    )]
    Version { path: PathBuf, found: u32 },
    #[error(
        "baseline {path} belongs to workspace {} with agent {}, not to this session's",
        for_terminal(workspace),
        for_terminal(agent)
    )]
    WrongKey {
        path: PathBuf,
        workspace: String,
        agent: String,
    },
}

/// What [`Baselines::learn`] did with a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learnt {
    /// It entered: the baseline now holds this many sessions.
    Added { sessions: u64 },
    /// It was learnt before (triage ran on it again): it counts once.
    AlreadyLearnt,
    /// It has findings (its own deviations included): it never enters.
    HadFindings,
    /// It has not ended (no `session.end`): learnt now, its later records would be lost.
    Unfinished,
}

impl fmt::Display for Learnt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Learnt::Added { sessions } => {
                write!(f, "learnt into the baseline ({sessions} sessions)")
            }
            Learnt::AlreadyLearnt => f.write_str("already in the baseline"),
            Learnt::HadFindings => {
                f.write_str("not learnt: a session with findings does not enter the baseline")
            }
            Learnt::Unfinished => f.write_str("not learnt: the session has not ended"),
        }
    }
}

/// The baselines under a state directory (`<state_dir>/baselines/`).
pub struct Baselines {
    dir: PathBuf,
}

/// The baseline of one workspace and agent, as read.
pub struct Baseline {
    path: PathBuf,
    stored: Stored,
}

/// Which baseline a session belongs to.
struct Key<'a> {
    session: &'a str,
    workspace: &'a str,
    agent: &'a str,
}

impl<'a> Key<'a> {
    fn of(records: &'a [Record]) -> Result<Self, BaselineError> {
        let start = records.iter().find_map(|r| match &r.event {
            Event::SessionStart(s) => Some((&r.session, s)),
            _ => None,
        });
        let Some((session, start)) = start else {
            return Err(BaselineError::Unkeyed);
        };
        let agent = start.command.first().map_or("", |c| program_name(c));
        if start.workspace.is_empty() || agent.is_empty() {
            return Err(BaselineError::Unkeyed);
        }
        Ok(Key {
            session,
            workspace: &start.workspace,
            agent,
        })
    }
}

impl Baselines {
    /// The baselines kept under `state_dir`; nothing is read or made until needed.
    pub fn open(state_dir: &Path) -> Self {
        Baselines {
            dir: state_dir.join("baselines"),
        }
    }

    /// The baseline of the session's workspace and agent (empty, learning, when there is none
    /// yet).
    pub fn baseline_for(&self, records: &[Record]) -> Result<Baseline, BaselineError> {
        self.load(&Key::of(records)?)
    }

    fn load(&self, key: &Key) -> Result<Baseline, BaselineError> {
        let path = self.dir.join(format!(
            "{}.json",
            store::file_stem(key.workspace, key.agent)
        ));
        let stored = store::load(&path, key.workspace, key.agent)?;
        Ok(Baseline { path, stored })
    }

    /// Adds an ended session to its baseline, unless it has findings (`has_findings`: any
    /// finding of the report, built-in, Sigma or the baseline's own; its deviations are checked
    /// again here, against the baseline as it is now) or was learnt before. The baseline is
    /// locked from reading to writing, so concurrent triages each add their session.
    pub fn learn(&self, records: &[Record], has_findings: bool) -> Result<Learnt, BaselineError> {
        let key = Key::of(records)?;
        if has_findings {
            return Ok(Learnt::HadFindings);
        }
        self.enter(&key, records, true)
    }

    /// Adds an ended session a person has looked at and judged benign, findings and all: how
    /// a stable baseline comes to know something new (it is then `changed` for a while). A
    /// session accepted again counts once.
    pub fn accept(&self, records: &[Record]) -> Result<Learnt, BaselineError> {
        self.enter(&Key::of(records)?, records, false)
    }

    fn enter(&self, key: &Key, records: &[Record], judge: bool) -> Result<Learnt, BaselineError> {
        if !records
            .iter()
            .any(|r| matches!(r.event, Event::SessionEnd(_)))
        {
            return Ok(Learnt::Unfinished);
        }
        let _lock = store::lock(&self.dir, &store::file_stem(key.workspace, key.agent))?;
        let mut baseline = self.load(key)?;
        if baseline.stored.learnt.iter().any(|s| s == key.session) {
            return Ok(Learnt::AlreadyLearnt);
        }
        if judge && !baseline.deviations(records).is_empty() {
            return Ok(Learnt::HadFindings);
        }
        baseline.add(key.session, records);
        store::save(&baseline.path, &baseline.stored)?;
        Ok(Learnt::Added {
            sessions: baseline.sessions(),
        })
    }
}

impl Baseline {
    /// Sessions learnt.
    pub fn sessions(&self) -> u64 {
        self.stored.learnt.len() as u64
    }

    pub fn state(&self) -> BaselineState {
        if !self.judging() {
            return BaselineState::Learning;
        }
        let recent = self.sessions().saturating_sub(QUIET_SESSIONS);
        if self.first_seen().any(|first| first >= recent) {
            BaselineState::Changed
        } else {
            BaselineState::Stable
        }
    }

    /// Whether it has ever been stable: from then on it judges, so that a session a person
    /// accepts does not open a window in which anything new enters unjudged.
    fn judging(&self) -> bool {
        let n = self.sessions();
        let mut new_at = vec![false; n as usize];
        for first in self.first_seen() {
            if let Some(new) = new_at.get_mut(first as usize) {
                *new = true;
            }
        }
        (LEARNING_SESSIONS.max(QUIET_SESSIONS)..=n)
            .any(|m| !new_at[(m - QUIET_SESSIONS) as usize..m as usize].contains(&true))
    }

    /// The index of the session each item was first seen in.
    fn first_seen(&self) -> impl Iterator<Item = u64> + '_ {
        self.stored
            .items
            .values()
            .flat_map(|items| items.values())
            .map(|seen| seen.first)
    }

    /// The file it is kept in (deleting it resets the baseline).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The share of learnt sessions that had `item` (as normalised: `target/debug/deps/app-*`).
    pub fn prevalence(&self, feature: Feature, item: &str) -> f64 {
        match self.seen(feature, item) {
            Some(seen) if self.sessions() > 0 => seen.sessions as f64 / self.sessions() as f64,
            _ => 0.0,
        }
    }

    fn seen(&self, feature: Feature, item: &str) -> Option<&Seen> {
        self.stored.items.get(&feature)?.get(item)
    }

    /// What the session (of this baseline's workspace and agent) did that no learnt session
    /// did, one finding per feature; none while the baseline is learning.
    pub fn deviations(&self, records: &[Record]) -> Vec<Finding> {
        if !self.judging() {
            return Vec::new();
        }
        let mut new: Vec<Observation> = observe(records, &places(records))
            .into_iter()
            .filter(|o| self.seen(o.feature, &o.item).is_none())
            .collect();
        // A new program's process shape is new too: the binary's finding says it once.
        let new_programs: BTreeSet<u64> = new
            .iter()
            .filter(|o| o.feature == Feature::Binary)
            .map(|o| o.seq)
            .collect();
        new.retain(|o| !(o.feature == Feature::Shape && new_programs.contains(&o.seq)));
        Feature::ALL
            .iter()
            .filter_map(|&feature| {
                let of: Vec<&Observation> = new.iter().filter(|o| o.feature == feature).collect();
                self.finding(feature, &of)
            })
            .collect()
    }

    /// One finding for the new items of one feature.
    fn finding(&self, feature: Feature, new: &[&Observation]) -> Option<Finding> {
        let first = new.first()?;
        let mut items: Vec<&Observation> = Vec::new();
        for o in new {
            if !items.iter().any(|i| i.item == o.item) {
                items.push(o);
            }
        }
        // A few are named; the evidence has them all.
        const NAMED: usize = 3;
        let mut list: Vec<String> = items.iter().take(NAMED).map(|o| shown(&o.raw)).collect();
        if items.len() > NAMED {
            list.push(format!("{} more", items.len() - NAMED));
        }
        let (severity, what) = match feature {
            Feature::Domain => (Severity::Medium, "looked up"),
            Feature::Binary => (Severity::Low, "ran"),
            Feature::Write => (Severity::Medium, "wrote outside the workspace to"),
            Feature::Shape => (Severity::Low, "process shape"),
        };
        let mut seqs: Vec<u64> = new.iter().map(|o| o.seq).collect();
        seqs.sort_unstable();
        Some(Finding {
            detection: format!("baseline-new-{feature}"),
            source: FindingSource::Baseline,
            severity,
            // A first is an anomaly, not a technique: which one it is depends on what it is.
            techniques: Vec::new(),
            narrative: format!(
                "first seen: {what} {} (0 of {} earlier sessions of this workspace and agent; first at seq {})",
                list.join(", "),
                self.sessions(),
                first.seq
            ),
            count: new.iter().map(|o| o.calls).sum(),
            evidence: ranges(&seqs),
            review: None,
        })
    }

    fn add(&mut self, session: &str, records: &[Record]) {
        let index = self.sessions();
        let items: BTreeSet<(Feature, String)> = observe(records, &places(records))
            .into_iter()
            .map(|o| (o.feature, o.item))
            .collect();
        for (feature, item) in items {
            let seen = self
                .stored
                .items
                .entry(feature)
                .or_default()
                .entry(item)
                .or_insert(Seen {
                    sessions: 0,
                    first: index,
                    last: index,
                });
            seen.sessions += 1;
            seen.last = index;
        }
        self.stored.learnt.push(session.to_string());
    }
}

impl fmt::Display for Baseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "baseline of {} with {}: {}, {} session{} learnt ({})",
            for_terminal(&self.stored.workspace),
            for_terminal(&self.stored.agent),
            self.state(),
            self.sessions(),
            if self.sessions() == 1 { "" } else { "s" },
            self.path.display()
        )
    }
}

/// The session's workspace and home, as its start record says.
fn places(records: &[Record]) -> Places {
    let start = session_start(records);
    Places::new(start.map_or("", |s| s.workspace.as_str()), &home(start))
}

/// An item from a record for the narrative: terminal-safe, bounded.
fn shown(raw: &str) -> String {
    let safe = for_terminal(raw);
    match safe.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &safe[..i]),
        None => safe,
    }
}
