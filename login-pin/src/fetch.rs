//! Fetching an issuer's JWKS: HTTPS only, bounded in size and time, with the cache lifetime
//! the server asks for.
use std::path::Path;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use thiserror::Error;

use crate::cache::JwksError;

/// A JWKS is a few kilobytes; anything much larger is not one.
const MAX_BYTES: u64 = 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_AGE: u64 = 3600;
/// Bounds on the server's `max-age`: no refetch on every login, no key kept a day past rotation.
const MIN_MAX_AGE: u64 = 60;
const MAX_MAX_AGE: u64 = 24 * 3600;

pub(crate) struct Fetched {
    pub(crate) keys: JwkSet,
    pub(crate) max_age: Duration,
}

#[derive(Debug, Error)]
pub(crate) enum FetchError {
    #[error("{0}")]
    Transport(ureq::Error),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the answer is larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("the answer is not a JWKS: {0}")]
    NotJwks(serde_json::Error),
}

pub(crate) struct Fetcher {
    agent: ureq::Agent,
}

impl Fetcher {
    /// A client trusting the web PKI, or only the CA certificates (PEM) in `ca`.
    pub(crate) fn new(ca: Option<&Path>) -> Result<Self, JwksError> {
        let mut config = ureq::Agent::config_builder()
            .https_only(true)
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .user_agent("warden-login-pin");
        if let Some(ca) = ca {
            let tls = crate::tls::trust_only(ca).map_err(|reason| JwksError::Trust {
                path: ca.to_path_buf(),
                reason,
            })?;
            config = config.tls_config(tls);
        }
        Ok(Self {
            agent: ureq::Agent::new_with_config(config.build()),
        })
    }

    pub(crate) fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut answer = self
            .agent
            .get(url)
            .header("accept", "application/json")
            .call()
            .map_err(FetchError::Transport)?;
        if !answer.status().is_success() {
            return Err(FetchError::Status(answer.status().as_u16()));
        }
        let max_age = max_age(
            answer
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
        );
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge,
                e => FetchError::Transport(e),
            })?;
        let keys = serde_json::from_slice(&body).map_err(FetchError::NotJwks)?;
        Ok(Fetched { keys, max_age })
    }
}

/// How long a JWKS may be used without asking again, from the answer's `Cache-Control`.
fn max_age(cache_control: Option<&str>) -> Duration {
    let asked = cache_control.and_then(|value| {
        value.split(',').find_map(|directive| {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-cache" || directive == "no-store" {
                return Some(0);
            }
            directive
                .strip_prefix("max-age=")?
                .trim_matches('"')
                .parse()
                .ok()
        })
    });
    Duration::from_secs(
        asked
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_follows_cache_control_within_bounds() {
        let table = [
            (None, 3600),
            (Some("public, max-age=7200"), 7200),
            (Some("Max-Age=300, must-revalidate"), 300),
            (Some("max-age=5"), 60),
            (Some("max-age=999999"), 86400),
            (Some("no-store"), 60),
            (Some("max-age=x"), 3600),
        ];
        for (header, secs) in table {
            assert_eq!(max_age(header), Duration::from_secs(secs), "{header:?}");
        }
    }
}
