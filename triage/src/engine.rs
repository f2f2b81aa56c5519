//! The detections as records go by: one pass, the same for a recorded session (its records in
//! time order) and for a live one (as the pipeline writes them).
use std::collections::{HashMap, HashSet, VecDeque};

use warden_records::events::{Record, SessionStart};

use crate::{
    detections::{
        Context, Correlator, DETECTIONS, Detection, Matcher, Paths, denied_target, matches,
    },
    finding::{Finding, FindingSource, calls, ranges},
    lineage::Lineage,
    render,
};

/// The state of the library over one session.
pub struct Engine {
    paths: Paths,
    lineage: Lineage,
    states: Vec<State>,
}

/// What one detection has seen so far.
#[derive(Default)]
struct State {
    calls: u64,
    seqs: Vec<u64>,
    /// Evidence a correlator handed back already (it may hand a record back again).
    seen: HashSet<u64>,
    /// The evidence record with the lowest seq, rendered: the narrative names it.
    first: Option<(u64, String)>,
    fired: bool,
    burst: Burst,
    correlator: Option<Box<dyn Correlator>>,
}

/// Denials within a burst's window: what they refused, and how often.
#[derive(Default)]
struct Burst {
    window: VecDeque<(u64, String)>,
    distinct: HashMap<String, usize>,
}

impl Engine {
    /// For a session whose `session.start` is `start` (its home and workspace; older logs
    /// without them: the user's usual home).
    pub fn new(start: Option<&SessionStart>) -> Self {
        let states = DETECTIONS
            .iter()
            .map(|d| State {
                correlator: match &d.matcher {
                    Matcher::Correlated(make) => Some(make()),
                    _ => None,
                },
                ..State::default()
            })
            .collect();
        Engine {
            paths: Paths {
                home: home(start),
                workspace: start.map(|s| s.workspace.clone()).unwrap_or_default(),
            },
            lineage: Lineage::default(),
            states,
        }
    }

    /// Takes the next record; returns the detections that fired with it (each fires once).
    pub fn push(&mut self, r: &Record) -> Vec<&'static Detection> {
        let proc = self.lineage.push(r);
        let cx = Context {
            paths: &self.paths,
            lineage: &self.lineage,
        };
        let mut fired = Vec::new();
        for (d, st) in DETECTIONS.iter().zip(&mut self.states) {
            match (&d.matcher, st.correlator.as_mut()) {
                (Matcher::Correlated(_), Some(c)) => {
                    for hit in c.push(r, proc, &cx) {
                        if st.seen.insert(hit.seq) {
                            st.note(&hit);
                        }
                    }
                }
                (m, _) if matches(m, &r.event, &self.paths) => {
                    st.note(r);
                    if let Matcher::Burst { window_ns, .. } = m {
                        st.burst.push(r, *window_ns);
                    }
                }
                _ => continue,
            }
            if !st.fired && st.fires(d) {
                st.fired = true;
                fired.push(d);
            }
        }
        fired
    }

    /// The finding of a detection that fired, with its evidence so far.
    pub fn finding(&self, d: &Detection) -> Option<Finding> {
        let i = DETECTIONS.iter().position(|x| std::ptr::eq(x, d))?;
        let st = &self.states[i];
        st.fired.then(|| st.finding(d))
    }

    /// Every finding, most severe first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = DETECTIONS
            .iter()
            .zip(&self.states)
            .filter(|(_, st)| st.fired)
            .map(|(d, st)| st.finding(d))
            .collect();
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }
}

impl State {
    fn note(&mut self, r: &Record) {
        self.calls += calls(&r.event);
        self.seqs.push(r.seq);
        if self.first.as_ref().is_none_or(|(seq, _)| r.seq < *seq) {
            self.first = Some((r.seq, render::what(r)));
        }
    }

    fn fires(&self, d: &Detection) -> bool {
        match d.matcher {
            Matcher::Count { at_least, .. } => self.calls >= at_least,
            Matcher::Burst { at_least, .. } => self.burst.distinct.len() as u64 >= at_least,
            _ => self.calls > 0,
        }
    }

    fn finding(&self, d: &Detection) -> Finding {
        let mut seqs = self.seqs.clone();
        seqs.sort_unstable();
        let (first_seq, first) = self.first.clone().unwrap_or_default();
        Finding {
            detection: d.id.to_string(),
            source: FindingSource::Builtin,
            severity: d.severity,
            techniques: d.techniques.iter().map(|t| t.to_string()).collect(),
            narrative: format!(
                "{} ({} time{}, first at seq {first_seq}: {first})",
                d.what,
                self.calls,
                if self.calls == 1 { "" } else { "s" },
            ),
            count: self.calls,
            evidence: ranges(&seqs),
            review: None,
        }
    }
}

impl Burst {
    /// Adds a denial; those older than the window (behind the newest) leave it.
    fn push(&mut self, r: &Record, window_ns: u64) {
        let key = denied_target(&r.event).unwrap_or_default();
        *self.distinct.entry(key.clone()).or_default() += 1;
        self.window.push_back((r.boot_ns, key));
        let newest = r.boot_ns;
        while let Some((at, _)) = self.window.front()
            && newest.saturating_sub(*at) > window_ns
        {
            let (_, k) = self.window.pop_front().expect("not empty");
            if let Some(n) = self.distinct.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.distinct.remove(&k);
                }
            }
        }
    }
}

/// The home directory paths are judged against.
pub(crate) fn home(start: Option<&SessionStart>) -> String {
    start
        .map(|s| s.home.clone())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| guess_home(start.map(|s| s.user.as_str()).unwrap_or("")))
}

/// Logs of older versions do not say where home was: the usual place for the user.
fn guess_home(user: &str) -> String {
    match user {
        "root" => "/root".into(),
        "" => String::new(),
        u => format!("/home/{u}"),
    }
}
