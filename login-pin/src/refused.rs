//! Why a login was refused, in words a person can act on: each names what the pin expected and
//! what the token carried.
use std::time::SystemTime;

use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A token that is not accepted as a login.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoginRefused {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error(
        "the token is signed with {alg:?}; only asymmetric signatures are accepted \
         (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
    )]
    UnsupportedAlgorithm { alg: String },
    #[error("the token names key {kid:?}, which is not among the issuer's published keys")]
    UnknownKey { kid: String },
    #[error("the issuer's key {kid:?} cannot check this token: {reason}")]
    UnusableKey { kid: String, reason: String },
    #[error("the token's signature does not verify with the issuer's key {kid:?}")]
    BadSignature { kid: String },
    #[error("the token expired at {} (it is now {})", rfc3339(*at), rfc3339(*now))]
    Expired { at: SystemTime, now: SystemTime },
    #[error("the token is valid only from {} (it is now {})", rfc3339(*from), rfc3339(*now))]
    NotYetValid { from: SystemTime, now: SystemTime },
    #[error("the token was issued by {actual:?}, not by the pinned issuer {expected:?}")]
    WrongIssuer { expected: String, actual: String },
    #[error("the token is for audience {actual:?}, not for {expected:?}")]
    WrongAudience {
        expected: Vec<String>,
        actual: Vec<String>,
    },
    #[error("the token has no claim at {pointer:?}")]
    MissingClaim { pointer: String },
    #[error(
        "the credential belongs to workspace {actual:?}, outside the pin (allowed: {allowed:?})"
    )]
    WorkspaceNotAllowed {
        allowed: Vec<String>,
        actual: String,
    },
    #[error(
        "the login used method {actual:?}, which the pin does not allow (allowed: {allowed:?})"
    )]
    MethodNotAllowed {
        allowed: Vec<String>,
        actual: Vec<String>,
    },
}

fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| format!("{t:?}"))
}
