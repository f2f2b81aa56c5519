//! The claims of a token whose signature verified: issuer, audience, validity period, subject,
//! workspace and login method, each against the pin.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::pin::{LoginPin, MethodPin};
use crate::refused::LoginRefused;
use crate::token::VerifiedLogin;

/// Clock skew tolerated between the issuer and this machine, for `exp` and `nbf`.
const LEEWAY: Duration = Duration::from_secs(60);

pub(crate) fn check(
    claims: &Value,
    pin: &LoginPin,
    now: SystemTime,
) -> Result<VerifiedLogin, LoginRefused> {
    let issuer = text(claims, "/iss")?;
    if issuer != pin.issuer {
        return Err(LoginRefused::WrongIssuer {
            expected: pin.issuer.clone(),
            actual: issuer,
        });
    }
    check_audience(claims, &pin.audience)?;
    let expires_at = check_period(claims, now)?;
    let subject = text(claims, "/sub")?;
    let workspace = text(claims, &pin.workspace_claim)?;
    if !pin.allowed_workspaces.contains(&workspace) {
        return Err(LoginRefused::WorkspaceNotAllowed {
            allowed: pin.allowed_workspaces.clone(),
            actual: workspace,
        });
    }
    let method = pin
        .method
        .as_ref()
        .map(|m| check_method(claims, m))
        .transpose()?;
    Ok(VerifiedLogin {
        issuer,
        subject,
        workspace,
        method,
        expires_at,
    })
}

fn check_audience(claims: &Value, expected: &[String]) -> Result<(), LoginRefused> {
    if expected.is_empty() {
        return Ok(());
    }
    let actual = texts(claims, "/aud")?;
    if actual.iter().any(|a| expected.contains(a)) {
        Ok(())
    } else {
        Err(LoginRefused::WrongAudience {
            expected: expected.to_vec(),
            actual,
        })
    }
}

/// Checks `exp` (required) and `nbf` (if present); returns when the token expires.
fn check_period(claims: &Value, now: SystemTime) -> Result<SystemTime, LoginRefused> {
    let expires_at = time(claims, "/exp")?.ok_or_else(|| missing("/exp"))?;
    if now.checked_sub(LEEWAY).is_some_and(|t| t >= expires_at) {
        return Err(LoginRefused::Expired {
            at: expires_at,
            now,
        });
    }
    if let Some(from) = time(claims, "/nbf")?
        && now.checked_add(LEEWAY).is_some_and(|t| t < from)
    {
        return Err(LoginRefused::NotYetValid { from, now });
    }
    Ok(expires_at)
}

/// The login method the pin accepts: the claim's value, or the first accepted one of its
/// values when it is an array (as `amr` is).
fn check_method(claims: &Value, pin: &MethodPin) -> Result<String, LoginRefused> {
    let actual = texts(claims, &pin.claim)?;
    let accepted = actual
        .iter()
        .find(|m| pin.allowed.is_empty() || pin.allowed.contains(m));
    match accepted {
        Some(method) => Ok(method.clone()),
        None => Err(LoginRefused::MethodNotAllowed {
            allowed: pin.allowed.clone(),
            actual,
        }),
    }
}

fn text(claims: &Value, pointer: &str) -> Result<String, LoginRefused> {
    match claims.pointer(pointer) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(not_a(pointer, "string", other)),
        None => Err(missing(pointer)),
    }
}

/// A string, or a non-empty array of strings, as `aud` and `amr` may be.
fn texts(claims: &Value, pointer: &str) -> Result<Vec<String>, LoginRefused> {
    let values = match claims.pointer(pointer) {
        Some(Value::String(s)) => return Ok(vec![s.clone()]),
        Some(Value::Array(values)) if !values.is_empty() => values,
        Some(Value::Array(_)) | None => return Err(missing(pointer)),
        Some(other) => return Err(not_a(pointer, "string or an array of strings", other)),
    };
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(not_a(pointer, "string or an array of strings", other)),
        })
        .collect()
}

/// A NumericDate claim (seconds since the epoch, possibly fractional), if present.
fn time(claims: &Value, pointer: &str) -> Result<Option<SystemTime>, LoginRefused> {
    let Some(value) = claims.pointer(pointer) else {
        return Ok(None);
    };
    value
        .as_f64()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .and_then(|d| UNIX_EPOCH.checked_add(d))
        .map(Some)
        .ok_or_else(|| not_a(pointer, "time in seconds since 1970", value))
}

fn missing(pointer: &str) -> LoginRefused {
    LoginRefused::MissingClaim {
        pointer: pointer.to_string(),
    }
}

fn not_a(pointer: &str, kind: &str, found: &Value) -> LoginRefused {
    LoginRefused::Malformed(format!("the claim at {pointer:?} is {found}, not a {kind}"))
}
