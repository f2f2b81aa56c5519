//! Delivery `helper`: git's credential helper, answered over the session's agent socket. The
//! agent gets the value only when it asks for one of the credential's hosts, and each answer
//! (or refusal) is a `credential.use` record with the asking process.
use std::path::Path;

use warden_agent_api::{Ack, GitCredential};
use warden_credentials::Credential;

use crate::events::{CredentialOutcome, CredentialUse, Event};

/// The user name git sends with a token (hosts that take tokens ignore it).
const TOKEN_USER: &str = "x-access-token";

/// The credentials the session answers git's helper requests with.
#[derive(Default)]
pub struct Helper {
    credentials: Vec<Credential>,
}

impl Helper {
    pub fn new(credentials: Vec<Credential>) -> Self {
        Self { credentials }
    }

    pub fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    /// The answer to one `get`, and its record. Only HTTPS: a value sent over plain HTTP
    /// would cross the network in the clear.
    pub fn answer(&self, pid: u32, protocol: &str, host: &str) -> (Ack, Event) {
        let host = host.to_ascii_lowercase();
        let found = self
            .credentials
            .iter()
            .find(|c| c.metadata.is_for_host(&host));
        let (ack, outcome, detail) = match found {
            Some(_) if protocol != "https" => (
                Ack::refused(format!("only https: git asked for {protocol}://{host}")),
                CredentialOutcome::Refused,
                Some(format!("protocol {protocol}")),
            ),
            Some(c) => (
                Ack {
                    credential: Some(GitCredential {
                        username: TOKEN_USER.into(),
                        password: c.secret.expose().to_owned(),
                    }),
                    ..Ack::ok()
                },
                CredentialOutcome::Handed,
                None,
            ),
            None => (
                Ack::refused(format!("no credential of this session is for {host}")),
                CredentialOutcome::Refused,
                Some("no credential is for this host".into()),
            ),
        };
        let event = Event::CredentialUse(CredentialUse {
            credential: found.map(|c| c.name.to_string()),
            delivery: warden_credentials::Delivery::Helper,
            outcome,
            host: Some(crate::events::escape::escape_bytes(host.as_bytes())),
            pid: Some(pid),
            detail,
        });
        (ack, event)
    }
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
                scheme: None,
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
    fn answers_only_https_requests_for_the_credentials_hosts() {
        let h = helper();
        // (protocol, host, handed, outcome)
        let cases = [
            ("https", "github.com", true, CredentialOutcome::Handed),
            ("https", "GitHub.com", true, CredentialOutcome::Handed),
            ("http", "github.com", false, CredentialOutcome::Refused),
            ("https", "gitlab.com", false, CredentialOutcome::Refused),
            (
                "https",
                "github.com.evil.test",
                false,
                CredentialOutcome::Refused,
            ),
            ("https", "", false, CredentialOutcome::Refused),
        ];
        for (protocol, host, handed, outcome) in cases {
            let (ack, event) = h.answer(42, protocol, host);
            assert_eq!(ack.ok, handed, "{protocol}://{host}");
            assert_eq!(
                ack.credential.as_ref().map(|c| c.password.as_str()),
                handed.then_some(VALUE),
                "{protocol}://{host}"
            );
            let Event::CredentialUse(u) = &event else {
                panic!("{event:?}")
            };
            assert_eq!(u.outcome, outcome, "{protocol}://{host}");
            assert_eq!(u.pid, Some(42));
            assert_eq!(u.delivery, Delivery::Helper);
            let line = serde_json::to_string(u).unwrap();
            assert!(!line.contains(VALUE), "{line}");
        }
    }
}
