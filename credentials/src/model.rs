//! A credential: its name, what it is for and how it reaches the agent (metadata, never secret),
//! and its value (secret: zeroed when dropped, never shown by `Debug` or `Display`).
use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use warden_wire::{InvalidValue, serde_via_str};
use zeroize::Zeroizing;

pub use warden_wire::CredentialDelivery as Delivery;

/// A credential's name: what `warden credentials` and the records call it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialName(String);

impl CredentialName {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CredentialName {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let first_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        let rest_ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !first_ok || !rest_ok || s.len() > Self::MAX_LEN {
            return Err(InvalidValue(format!(
                "credential name {s:?}: use 1 to {} letters, digits, '.', '_' or '-', starting with a letter or digit",
                Self::MAX_LEN
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for CredentialName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_via_str!(CredentialName, "credential name");

/// A credential's value. Zeroed when dropped; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value itself: for the one place that hands it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[secret, {} bytes]", self.0.len())
    }
}

/// What a credential is for and how it is handed over. Not secret: `list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Who issued it, e.g. `openai`, `anthropic`, `github`; login pins are per provider.
    pub provider: String,
    /// The host names it is for (`inject` and `helper` hand it only to these).
    #[serde(default)]
    pub hosts: Vec<String>,
    pub delivery: Delivery,
    /// `inject`: the request header that carries it (lower case), e.g. `authorization`; the
    /// placeholder is swapped wherever it is in that header's value (`Bearer <placeholder>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `env`: the variable that holds the value; `inject`: the one that holds the placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// How the user logged in to get it, e.g. `api-key`, `chatgpt`, `oauth`.
    pub login_method: String,
    /// The workspace or organisation it belongs to, as the user declared it (a login pin
    /// trusts only the verified token's claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

impl Metadata {
    /// The header `inject` swaps the placeholder in.
    pub fn inject_header(&self) -> &str {
        self.header.as_deref().unwrap_or("authorization")
    }

    /// Whether `host` (a DNS name, any case) is one this credential is for.
    pub fn is_for_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// What must hold for the metadata to make sense for its delivery.
    pub fn check(&self) -> Result<(), InvalidValue> {
        let bad = |m: String| Err(InvalidValue(m));
        if self.provider.is_empty() {
            return bad("provider: must not be empty".into());
        }
        for host in &self.hosts {
            if !is_host_name(host) {
                return bad(format!("host {host:?}: not a DNS host name"));
            }
        }
        match self.delivery {
            Delivery::Inject | Delivery::Helper if self.hosts.is_empty() => bad(format!(
                "delivery {}: name the hosts it is for (--host)",
                self.delivery
            )),
            Delivery::Env if self.env.is_none() => {
                bad("delivery env: name the variable (--env NAME)".into())
            }
            _ => Ok(()),
        }?;
        if let Some(name) = &self.env
            && !is_env_name(name)
        {
            return bad(format!("--env {name:?}: not a variable name"));
        }
        if let Some(header) = &self.header
            && !is_header_name(header)
        {
            return bad(format!("--header {header:?}: not an HTTP header name"));
        }
        Ok(())
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_env_name(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A credential as the store holds it.
#[derive(Clone, Debug)]
pub struct Credential {
    pub name: CredentialName,
    pub metadata: Metadata,
    pub secret: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(delivery: Delivery) -> Metadata {
        Metadata {
            provider: "openai".into(),
            hosts: vec!["api.openai.com".into()],
            delivery,
            header: None,
            env: None,
            login_method: "api-key".into(),
            workspace: None,
            expires_at: None,
            added_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn names() {
        for ok in ["openai", "gh.token", "a", "A-1_b"] {
            assert!(ok.parse::<CredentialName>().is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "-x", ".x", "a b", "a/b", "a\nb", "é", long.as_str()] {
            assert!(bad.parse::<CredentialName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let c = Credential {
            name: "k".parse().unwrap(),
            metadata: metadata(Delivery::Inject),
            secret: Secret::new("sk-live-1234567890".into()),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-live"), "{shown}");
        assert!(shown.contains("18 bytes"), "{shown}");
    }

    /// A case: what it is, the change to valid metadata, a word the error must contain.
    type Case = (&'static str, fn(&mut Metadata), Option<&'static str>);

    #[test]
    fn metadata_checks() {
        let cases: &[Case] = &[
            ("inject with a host", |_| {}, None),
            ("inject without hosts", |m| m.hosts.clear(), Some("--host")),
            (
                "helper without hosts",
                |m| {
                    m.delivery = Delivery::Helper;
                    m.hosts.clear()
                },
                Some("--host"),
            ),
            (
                "env without a name",
                |m| m.delivery = Delivery::Env,
                Some("--env"),
            ),
            (
                "env with a name",
                |m| {
                    m.delivery = Delivery::Env;
                    m.env = Some("OPENAI_API_KEY".into())
                },
                None,
            ),
            (
                "bad variable",
                |m| m.env = Some("A=B".into()),
                Some("variable"),
            ),
            ("bad host", |m| m.hosts = vec!["a..b".into()], Some("host")),
            (
                "host with a port",
                |m| m.hosts = vec!["a:443".into()],
                Some("host"),
            ),
            (
                "bad header",
                |m| m.header = Some("x y".into()),
                Some("header"),
            ),
            ("no provider", |m| m.provider.clear(), Some("provider")),
        ];
        for (what, change, error) in cases {
            let mut m = metadata(Delivery::Inject);
            change(&mut m);
            match (m.check(), error) {
                (Ok(()), None) => {}
                (Err(e), Some(part)) => assert!(e.0.contains(part), "{what}: {e}"),
                (got, want) => panic!("{what}: got {got:?}, want an error with {want:?}"),
            }
        }
    }

    #[test]
    fn hosts_match_whole_names_in_any_case() {
        let m = metadata(Delivery::Inject);
        assert!(m.is_for_host("API.openai.com."));
        assert!(!m.is_for_host("openai.com"));
        assert!(!m.is_for_host("api.openai.com.evil.test"));
    }
}
