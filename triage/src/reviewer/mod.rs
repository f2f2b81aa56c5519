//! The AI reviewer (`warden triage --reviewer-command CMD`): a program, for example a wrapper
//! around a language model, that reads the findings with excerpts of their evidence and may
//! raise a finding's severity, give a verdict and add a narrative. It never removes or lowers a
//! finding: what the rules found stands (docs/triage.md, "AI reviewer").
//!
//! It gets one JSON document on stdin ([`input`]): only records that are some finding's
//! evidence, bounded, secrets redacted, framed as untrusted data. It prints one JSON answer
//! ([`answer`]). A timeout, a crash, output that is not such an answer, or an answer that looks
//! injected leaves every finding as the rules made it, marked needs-review with the reason.
mod answer;
mod input;
mod run;

use std::time::Duration;

use warden_records::events::Record;

use crate::{finding::Review, triage::Report};

/// Most characters of the reviewer's narrative kept.
const MAX_NARRATIVE: usize = 1000;

/// A reviewer command and how long it may take.
pub struct Reviewer {
    /// The program and its arguments, run directly (no shell), in its own process group.
    pub command: Vec<String>,
    /// Then the process group is killed.
    pub timeout: Duration,
}

/// Why the reviewer's answer was not used; every finding is then needs-review with it as the
/// reason.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no reviewer command")]
    EmptyCommand,
    #[error("the reviewer command `{program}` could not be started: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the reviewer command did not answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("the reviewer command failed ({0})")]
    Failed(String),
    #[error("the reviewer command's answer is longer than {0} bytes")]
    TooLong(usize),
    #[error("the reviewer command's answer is not valid: {0}")]
    BadAnswer(String),
    #[error("the reviewer command's answer looks injected, not used: {0}")]
    Injected(String),
}

impl Reviewer {
    /// For `--reviewer-timeout` when not given: a language model reading a few dozen records.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

    /// Reviews the report's findings; `records` are the session's, in `seq` order. Each finding
    /// gets a [`Review`]. On an error every finding is already marked needs-review with it as
    /// the reason and nothing of the answer was applied; the caller says it. Without findings
    /// the command is not run.
    pub fn review(&self, report: &mut Report, records: &[Record]) -> Result<(), ReviewError> {
        if report.findings.is_empty() {
            return Ok(());
        }
        let sent = input::Sent::new(report, records);
        let answered = run::run(&self.command, sent.json.clone(), self.timeout)
            .and_then(|out| answer::parse(&out))
            .and_then(|a| answer::check(a, &sent, report));
        match answered {
            Ok(answers) => {
                answer::apply(report, &sent, answers);
                Ok(())
            }
            Err(e) => {
                let reason = e.to_string();
                for f in &mut report.findings {
                    f.review = Some(Review::needs_review(reason.clone()));
                }
                Err(e)
            }
        }
    }
}

/// Whether `c` is invisible formatting: soft hyphen, zero-width characters, bidirectional
/// overrides (text that reads differently than it is).
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
    )
}

/// Text from the reviewer made safe for a terminal and one line: line breaks and tabs become
/// spaces, other control characters and invisible formatting go; at most `max` characters
/// (then `...`). Returns whether it was cut.
fn clean(s: &str, max: usize) -> (String, bool) {
    let mut chars = s.trim().chars().filter_map(|c| match c {
        '\n' | '\r' | '\t' => Some(' '),
        c if c.is_control() || invisible(c) => None,
        c => Some(c),
    });
    let out: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        (out + "...", true)
    } else {
        (out, false)
    }
}
