//! What the proxy tells Warden about each connection and request: host and credential name,
//! never the value.
use std::fmt;

use tokio::sync::mpsc::{Sender, error::TrySendError};

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The placeholder was replaced by the value and the request forwarded.
    Injected,
    /// A request to a routed host without the placeholder: forwarded unchanged.
    PlaceholderAbsent,
    /// The request named another host than the TLS server name: refused with 421.
    MisdirectedHost { host: String },
    /// The TLS server name is not a routed host: the handshake was aborted.
    UnlistedHost { sni: String },
    /// The upstream could not be reached or answered: 502 to the agent.
    UpstreamFailed { reason: String },
    /// The value appeared in a response `count` times and reached the agent as the placeholder.
    ResponseRedacted { count: u64 },
}

impl Outcome {
    pub const INJECTED: &'static str = "injected";
    pub const PLACEHOLDER_ABSENT: &'static str = "placeholder_absent";
    pub const MISDIRECTED_HOST: &'static str = "misdirected_host";
    pub const UNLISTED_HOST: &'static str = "unlisted_host";
    pub const UPSTREAM_FAILED: &'static str = "upstream_failed";
    pub const RESPONSE_REDACTED: &'static str = "response_redacted";

    /// The outcome's wire name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Injected => Self::INJECTED,
            Self::PlaceholderAbsent => Self::PLACEHOLDER_ABSENT,
            Self::MisdirectedHost { .. } => Self::MISDIRECTED_HOST,
            Self::UnlistedHost { .. } => Self::UNLISTED_HOST,
            Self::UpstreamFailed { .. } => Self::UPSTREAM_FAILED,
            Self::ResponseRedacted { .. } => Self::RESPONSE_REDACTED,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Self::Injected | Self::PlaceholderAbsent => Ok(()),
            Self::MisdirectedHost { host } => write!(f, " (request for {host})"),
            Self::UnlistedHost { sni } => write!(f, " (server name {sni})"),
            Self::UpstreamFailed { reason } => write!(f, " ({reason})"),
            Self::ResponseRedacted { count } => write!(f, " ({count} occurrences)"),
        }
    }
}

/// One event. `credential` is absent when the event concerns no single credential (an unlisted
/// server name, a misdirected request, an upstream failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub host: String,
    pub credential: Option<String>,
    pub outcome: Outcome,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.host)?;
        if let Some(credential) = &self.credential {
            write!(f, " credential {credential}")?;
        }
        write!(f, ": {}", self.outcome)
    }
}

/// The sending side of the report channel, logging each report as it goes.
#[derive(Clone)]
pub(crate) struct Reporter(Sender<Report>);

impl Reporter {
    pub(crate) fn new(tx: Sender<Report>) -> Self {
        Self(tx)
    }

    /// Waits for room in the channel: a report is not dropped because Warden is slow to read.
    pub(crate) async fn send(&self, report: Report) {
        log(&report);
        // A closed channel means Warden stopped listening; the proxy keeps serving.
        let _ = self.0.send(report).await;
    }

    /// For where nothing can be awaited (a response body being dropped): queued by a task when
    /// the channel is full.
    pub(crate) fn send_detached(&self, report: Report) {
        log(&report);
        if let Err(TrySendError::Full(report)) = self.0.try_send(report)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let tx = self.0.clone();
            runtime.spawn(async move {
                let _ = tx.send(report).await;
            });
        }
    }
}

/// At debug level: Warden records the reports themselves.
fn log(report: &Report) {
    tracing::debug!(
        host = %report.host,
        credential = report.credential.as_deref().unwrap_or(""),
        outcome = %report.outcome,
        "credential proxy"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let report = Report {
            host: "api.openai.com".into(),
            credential: Some("openai".into()),
            outcome: Outcome::ResponseRedacted { count: 2 },
        };
        assert_eq!(
            report.to_string(),
            "api.openai.com credential openai: response_redacted (2 occurrences)"
        );
    }
}
