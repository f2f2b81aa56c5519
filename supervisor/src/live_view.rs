//! What `warden run --events[=VIEW]` prints on stderr as the session's records are written:
//! what a person acts on (`actions`, the records' `action_view`), or every record (`all`).
use std::io::Write as _;

use crate::{
    action_view::ActionView,
    events::{Record, render},
};

/// The values of `--events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsView {
    /// What a person acts on: each exec that ran (the PATH entries tried before it folded in),
    /// exec decisions by a rule, denials, approvals, network, findings; a process's file
    /// activity as one line when it exits, each denied file call on a line of its own.
    Actions,
    /// Every record, one line each, as written to the log.
    All,
}

pub enum LiveView {
    Actions(Box<ActionView>),
    All,
}

impl LiveView {
    pub fn new(view: EventsView) -> Self {
        match view {
            EventsView::Actions => LiveView::Actions(Box::default()),
            EventsView::All => LiveView::All,
        }
    }

    /// Shows a record just written.
    pub fn show(&mut self, record: &Record) {
        match self {
            LiveView::Actions(view) => print(view.push(record)),
            LiveView::All => print([render::line(record)]),
        }
    }

    /// Every file call the kernel reported so far has been written.
    pub fn files_written(&mut self) {
        if let LiveView::Actions(view) = self {
            print(view.files_written());
        }
    }
}

/// A line that cannot be shown (stderr closed) is not a reason to stop the session.
fn print(lines: impl IntoIterator<Item = String>) {
    let mut err = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(err, "{line}");
    }
}
