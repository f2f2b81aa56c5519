//! A route: which credential goes to which host, in which request header, in place of which
//! placeholder.
use http::{HeaderName, HeaderValue};

use crate::secret::Secret;

/// The prefix of generated placeholders, so that a placeholder in a log is recognisable.
const PLACEHOLDER_PREFIX: &str = "warden-";

/// One credential delivered by injection.
#[derive(Debug)]
pub struct Route {
    /// The host name the agent connects to (the TLS SNI and the Host header).
    pub host: String,
    /// The credential's name, for reports.
    pub credential: String,
    /// The only request header the placeholder is replaced in.
    pub header: HeaderName,
    /// What the agent holds instead of the value.
    pub placeholder: String,
    pub value: Secret,
}

/// Why a route cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("credential {credential}: host name {host:?} is not a DNS name")]
    Host { credential: String, host: String },
    #[error("credential {credential}: the value is empty or not a valid header value")]
    Value { credential: String },
    #[error("credential {credential}: the placeholder is empty or not printable ASCII")]
    Placeholder { credential: String },
    #[error("credential {credential}: the placeholder contains the value")]
    PlaceholderContainsValue { credential: String },
}

impl Route {
    /// A placeholder of exactly `len` bytes (at least the prefix and 16 random hex digits): a
    /// placeholder as long as the value keeps the length of every redacted response body, so
    /// its `Content-Length` stays right.
    pub fn placeholder_for(len: usize) -> Result<String, getrandom::Error> {
        let digits = len.saturating_sub(PLACEHOLDER_PREFIX.len()).max(16);
        let mut random = vec![0u8; digits.div_ceil(2)];
        getrandom::fill(&mut random)?;
        let mut placeholder = String::with_capacity(PLACEHOLDER_PREFIX.len() + digits);
        placeholder.push_str(PLACEHOLDER_PREFIX);
        for byte in random {
            placeholder.push_str(&format!("{byte:02x}"));
        }
        placeholder.truncate(PLACEHOLDER_PREFIX.len() + digits);
        Ok(placeholder)
    }

    /// Checks what injection and redaction rely on: the replacements always make valid header
    /// values, and redacting never writes the value back.
    pub(crate) fn validate(&self) -> Result<(), RouteError> {
        let credential = || self.credential.clone();
        if rustls::pki_types::DnsName::try_from(self.host.as_str()).is_err() {
            return Err(RouteError::Host {
                credential: credential(),
                host: self.host.clone(),
            });
        }
        let value = self.value.as_bytes();
        if value.is_empty() || HeaderValue::from_bytes(value).is_err() {
            return Err(RouteError::Value {
                credential: credential(),
            });
        }
        let placeholder = self.placeholder.as_bytes();
        if placeholder.is_empty() || !placeholder.iter().all(|b| b.is_ascii_graphic()) {
            return Err(RouteError::Placeholder {
                credential: credential(),
            });
        }
        if memchr::memmem::find(placeholder, value).is_some() {
            return Err(RouteError::PlaceholderContainsValue {
                credential: credential(),
            });
        }
        Ok(())
    }

    fn same_length(&self) -> bool {
        self.placeholder.len() == self.value.len()
    }
}

/// The routes of one host: a connection serves one host, its requests are injected with these
/// routes and its responses redacted of their values.
#[derive(Debug)]
pub(crate) struct Site {
    pub(crate) host: String,
    pub(crate) routes: Vec<Route>,
}

impl Site {
    /// Whether redacting keeps every response body's length.
    pub(crate) fn same_length(&self) -> bool {
        self.routes.iter().all(Route::same_length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, placeholder: &str, value: &str) -> Route {
        Route {
            host: host.into(),
            credential: "openai".into(),
            header: http::header::AUTHORIZATION,
            placeholder: placeholder.into(),
            value: Secret::from(value.to_string()),
        }
    }

    #[test]
    fn placeholders_have_the_asked_length_and_differ() {
        for len in [23, 40, 51, 164] {
            let a = Route::placeholder_for(len).unwrap();
            assert_eq!(a.len(), len);
            assert!(a.starts_with(PLACEHOLDER_PREFIX));
            assert_ne!(a, Route::placeholder_for(len).unwrap());
        }
    }

    #[test]
    fn short_lengths_still_get_sixteen_random_digits() {
        assert_eq!(Route::placeholder_for(4).unwrap().len(), 23);
    }

    #[test]
    fn validation() {
        assert!(
            route("api.openai.com", "warden-abc", "sk-1")
                .validate()
                .is_ok()
        );
        assert!(
            route("not a host", "warden-abc", "sk-1")
                .validate()
                .is_err()
        );
        assert!(
            route("api.openai.com", "warden abc", "sk-1")
                .validate()
                .is_err()
        );
        assert!(
            route("api.openai.com", "warden-abc", "")
                .validate()
                .is_err()
        );
        assert!(
            route("api.openai.com", "warden-abc", "a\nb")
                .validate()
                .is_err()
        );
        assert!(
            route("api.openai.com", "x-sk-1-x", "sk-1")
                .validate()
                .is_err()
        );
    }
}
