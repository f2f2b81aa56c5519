//! Delivery `helper`: git's credential helper, answered over the session's agent socket. The
//! agent gets a value only when it asks, over HTTPS, for one of the credential's hosts, and the
//! approval flow agrees (the auto-reviewer approves such a request unless the session was
//! refused before; a person, or the reviewer command, is asked otherwise). Each answer or
//! refusal is a `credential.use` record with the asking process.
use std::{path::Path, sync::Arc};

use warden_agent_api::{Ack, GitCredential};
use warden_credentials::Credential;

use crate::{
    approvals::{Answer, Broker, Facts, Request, Review},
    events::{
        CredentialOutcome, CredentialUse, Event, RequestKind, Subject, Verdict,
        escape::escape_bytes,
    },
};

/// The user name git sends with a token (hosts that take tokens ignore it).
const TOKEN_USER: &str = "x-access-token";

/// The credentials the session answers git's helper requests with.
#[derive(Default)]
pub struct Helper {
    credentials: Vec<Credential>,
    broker: Option<Arc<Broker>>,
}

impl Helper {
    pub fn new(credentials: Vec<Credential>) -> Self {
        Self {
            credentials,
            broker: None,
        }
    }

    /// Who approves requests (without one, every request is refused).
    pub fn approved_by(mut self, broker: Arc<Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// The credential asked for, or why not.
    fn find(&self, wanted: &Wanted) -> Result<&Credential, (Option<&Credential>, String)> {
        match wanted {
            Wanted::ForHost { protocol, host } => {
                let found = self
                    .credentials
                    .iter()
                    .find(|c| c.metadata.is_for_host(host));
                match found {
                    None => Err((
                        None,
                        "no credential of this session is for this host".into(),
                    )),
                    Some(c) if protocol != "https" => {
                        Err((Some(c), format!("only https: git asked over {protocol}")))
                    }
                    Some(c) => Ok(c),
                }
            }
            Wanted::Named(name) => self
                .credentials
                .iter()
                .find(|c| c.name.as_str() == name)
                .ok_or_else(|| {
                    (
                        None,
                        format!(
                            "no credential named {} was given to this session with delivery helper",
                            shown(name)
                        ),
                    )
                }),
        }
    }

    /// The answer to one request, and its record.
    pub async fn answer(&self, pid: u32, wanted: Wanted) -> (Ack, Event) {
        let host = match &wanted {
            Wanted::ForHost { host, .. } => Some(host.as_str()),
            Wanted::Named(_) => None,
        };
        let c = match self.find(&wanted) {
            Ok(c) => c,
            Err((c, why)) => return refused(c, pid, host, why),
        };
        let answer = match &self.broker {
            Some(broker) => ask(broker, c, pid, host).await,
            None => return refused(Some(c), pid, host, "nobody approves requests".into()),
        };
        if answer.verdict != Verdict::Allow {
            let why = format!("not approved ({}): {}", answer.source, answer.reason);
            return refused(Some(c), pid, host, why);
        }
        let ack = Ack {
            credential: Some(GitCredential {
                username: TOKEN_USER.into(),
                password: c.secret.expose().to_owned(),
            }),
            ..Ack::ok()
        };
        let detail = format!("approval {} ({})", answer.id, answer.source);
        let event = record(Some(c), pid, host, CredentialOutcome::Handed, Some(detail));
        (ack, event)
    }
}

/// What the agent asks for: git's credential for a host, or (an agent's API-key helper
/// command) a credential by name.
pub enum Wanted {
    ForHost { protocol: String, host: String },
    Named(String),
}

async fn ask(broker: &Arc<Broker>, c: &Credential, pid: u32, host: Option<&str>) -> Answer {
    let asker = if host.is_some() {
        "git"
    } else {
        "an API-key helper"
    };
    let review = broker.review(Request {
        subject: Subject {
            request: RequestKind::Credential,
            pid,
            program: None,
            argv: Vec::new(),
            name: host.map(shown),
            qtype: None,
            credential: Some(c.name.to_string()),
        },
        why: match host {
            Some(h) => format!("{asker} asks for credential {} for {h}", c.name),
            None => format!("{asker} asks for credential {}", c.name),
        },
        rule: None,
        facts: Facts::Credential {
            credential: c.name.to_string(),
            host: host.map(str::to_string),
        },
    });
    match review {
        Review::Decided(a) => a,
        Review::Pending { id, answer } => answer.await.unwrap_or_else(|_| Answer::lost(&id)),
    }
}

/// The agent's words for a host, as records show them: bounded, escaped.
fn shown(host: &str) -> String {
    let bytes = host.as_bytes();
    escape_bytes(&bytes[..bytes.len().min(HOST_MAX)])
}

/// The longest host name DNS allows; longer is the agent's noise.
const HOST_MAX: usize = 253;

fn refused(c: Option<&Credential>, pid: u32, host: Option<&str>, why: String) -> (Ack, Event) {
    let ack = Ack::refused(match host {
        Some(h) => format!("{why} ({})", shown(h)),
        None => why.clone(),
    });
    let event = record(c, pid, host, CredentialOutcome::Refused, Some(why));
    (ack, event)
}

fn record(
    c: Option<&Credential>,
    pid: u32,
    host: Option<&str>,
    outcome: CredentialOutcome,
    detail: Option<String>,
) -> Event {
    Event::CredentialUse(CredentialUse {
        credential: c.map(|c| c.name.to_string()),
        delivery: warden_credentials::Delivery::Helper,
        outcome,
        host: host.map(shown),
        pid: Some(pid),
        detail,
    })
}

/// The variables that make git ask the session (through `warden-agent-report`).
pub fn git_env(agent_report: &Path) -> Vec<(String, std::ffi::OsString)> {
    let helper = format!("!{} git-credential", agent_report.display());
    vec![
        ("GIT_CONFIG_COUNT".into(), "1".into()),
        ("GIT_CONFIG_KEY_0".into(), "credential.helper".into()),
        ("GIT_CONFIG_VALUE_0".into(), helper.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_credentials::{Delivery, Metadata, Secret};

    const VALUE: &str = "ghp_helperValue0001";

    fn helper() -> Helper {
        Helper::new(vec![Credential {
            name: "gh".parse().unwrap(),
            metadata: Metadata {
                provider: "github".into(),
                hosts: vec!["github.com".into()],
                delivery: Delivery::Helper,
                header: None,
                env: None,
                login_method: "api-key".into(),
                workspace: None,
                expires_at: None,
                added_at: time::OffsetDateTime::UNIX_EPOCH,
            },
            secret: Secret::new(VALUE.into()),
        }])
    }

    #[test]
    fn only_https_requests_for_the_credentials_hosts_go_further() {
        let h = helper();
        // (protocol, host, found, a word of the refusal)
        let cases = [
            ("https", "github.com", true, ""),
            ("http", "github.com", false, "only https"),
            ("https", "gitlab.com", false, "no credential"),
            ("https", "github.com.evil.test", false, "no credential"),
            ("https", "", false, "no credential"),
        ];
        for (protocol, host, found, why) in cases {
            let wanted = Wanted::ForHost {
                protocol: protocol.into(),
                host: host.into(),
            };
            match h.find(&wanted) {
                Ok(c) => assert!(found, "{protocol}://{host} found {}", c.name),
                Err((_, w)) => assert!(!found && w.contains(why), "{protocol}://{host}: {w}"),
            }
        }
    }

    #[test]
    fn an_api_key_helper_asks_by_name() {
        let h = helper();
        assert!(h.find(&Wanted::Named("gh".into())).is_ok());
        // The agent's words are bounded in what Warden says back and records.
        let long = "x".repeat(100_000);
        let Err((None, why)) = h.find(&Wanted::Named(long)) else {
            panic!("found")
        };
        assert!(why.len() < 400, "{} bytes", why.len());
    }

    #[tokio::test]
    async fn without_an_approver_nothing_is_handed_and_the_record_has_no_value() {
        let wanted = Wanted::ForHost {
            protocol: "https".into(),
            host: "github.com".into(),
        };
        let (ack, event) = helper().answer(42, wanted).await;
        assert!(!ack.ok && ack.credential.is_none());
        let Event::CredentialUse(u) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(
            (u.outcome, u.pid, u.host.as_deref()),
            (CredentialOutcome::Refused, Some(42), Some("github.com"))
        );
        assert!(!serde_json::to_string(u).unwrap().contains(VALUE));
    }
}
