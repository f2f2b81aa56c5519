//! `verify` on one token per way a login can be wrong, with keys made for the test.
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestKey, jwks};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use warden_login_pin::{LoginPin, LoginRefused, VerifiedLogin, verify};

const NOW: u64 = 1_800_000_000;
const WORKSPACE: &str = "/https:~1~1api.example~1auth/account_id";

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// The pin as Warden would build it from its requirements.
fn pin() -> LoginPin {
    serde_json::from_value(json!({
        "issuer": "https://auth.example",
        "audience": ["warden-cli"],
        "jwks_url": "https://auth.example/jwks",
        "workspace_claim": WORKSPACE,
        "allowed_workspaces": ["ws-team"],
        "method": { "claim": "/amr", "allowed": ["sso"] },
    }))
    .unwrap()
}

fn claims() -> Value {
    json!({
        "iss": "https://auth.example",
        "aud": ["warden-cli", "other-app"],
        "sub": "user-1",
        "exp": NOW + 600,
        "nbf": NOW - 10,
        "https://api.example/auth": { "account_id": "ws-team" },
        "amr": ["pwd", "sso"],
    })
}

/// The claims with the value at `pointer` replaced, or removed if `value` is null.
fn with(pointer: &str, value: Value) -> Value {
    let mut claims = claims();
    let (parent, name) = pointer.rsplit_once('/').unwrap();
    let object = claims.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match value {
        Value::Null => object.remove(name),
        value => object.insert(name.to_string(), value),
    };
    claims
}

/// A token assembled by hand, for headers no signing library would write.
fn hand_made(header: Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", part(&header), part(&claims()))
}

/// The attack HS* invites: the issuer's published key, used as an HMAC secret.
fn hs256_with_public_key(key: &TestKey) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let published = serde_json::to_vec(&key.jwk).unwrap();
    let secret = EncodingKey::from_secret(&published).unwrap();
    jsonwebtoken::encode(&header, &claims(), &secret).unwrap()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_way_a_login_can_be_wrong_is_refused_by_name() {
    let k1 = TestKey::es256("k1");
    let k2 = TestKey::es384("k2");
    let impostor = TestKey::es256("k1");
    let keys = jwks(&[&k1, &k2]);
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    let refused = |r: LoginRefused| Some(r);
    let table: Vec<(&str, String, Option<LoginRefused>)> = vec![
        ("allowed workspace (ES256)", k1.sign(&claims()), None),
        ("allowed workspace (ES384)", k2.sign(&claims()), None),
        (
            "expired, within the minute of leeway",
            k1.sign(&with("/exp", json!(NOW - 30))),
            None,
        ),
        (
            "another workspace",
            k1.sign(&with(WORKSPACE, json!("ws-other"))),
            refused(LoginRefused::WorkspaceNotAllowed {
                allowed: strings(&["ws-team"]),
                actual: "ws-other".into(),
            }),
        ),
        (
            "no workspace claim",
            k1.sign(&with(WORKSPACE, Value::Null)),
            refused(LoginRefused::MissingClaim {
                pointer: WORKSPACE.into(),
            }),
        ),
        (
            "expired",
            k1.sign(&with("/exp", json!(NOW - 61))),
            refused(LoginRefused::Expired {
                at: at(NOW - 61),
                now: now(),
            }),
        ),
        (
            "no expiry",
            k1.sign(&with("/exp", Value::Null)),
            refused(LoginRefused::MissingClaim {
                pointer: "/exp".into(),
            }),
        ),
        (
            "not yet valid",
            k1.sign(&with("/nbf", json!(NOW + 120))),
            refused(LoginRefused::NotYetValid {
                from: at(NOW + 120),
                now: now(),
            }),
        ),
        (
            "signed by another key with the same kid",
            impostor.sign(&claims()),
            refused(LoginRefused::BadSignature { kid: "k1".into() }),
        ),
        (
            "alg none",
            hand_made(json!({"alg": "none", "kid": "k1"}), ""),
            refused(LoginRefused::UnsupportedAlgorithm { alg: "none".into() }),
        ),
        (
            "HS256 with the public key as the secret",
            hs256_with_public_key(&k1),
            refused(LoginRefused::UnsupportedAlgorithm {
                alg: "HS256".into(),
            }),
        ),
        (
            "ES384 header naming the P-256 key",
            k2.sign_as("k1", &claims()),
            refused(LoginRefused::UnusableKey {
                kid: "k1".into(),
                reason: "it is for ES256 and the token is signed with ES384".into(),
            }),
        ),
        (
            "wrong issuer",
            k1.sign(&with("/iss", json!("https://evil.example"))),
            refused(LoginRefused::WrongIssuer {
                expected: "https://auth.example".into(),
                actual: "https://evil.example".into(),
            }),
        ),
        (
            "wrong audience",
            k1.sign(&with("/aud", json!("other-app"))),
            refused(LoginRefused::WrongAudience {
                expected: strings(&["warden-cli"]),
                actual: strings(&["other-app"]),
            }),
        ),
        (
            "unknown kid",
            k1.sign_as("k9", &claims()),
            refused(LoginRefused::UnknownKey { kid: "k9".into() }),
        ),
        (
            "method not allowed",
            k1.sign(&with("/amr", json!(["pwd", "otp"]))),
            refused(LoginRefused::MethodNotAllowed {
                allowed: strings(&["sso"]),
                actual: strings(&["pwd", "otp"]),
            }),
        ),
        (
            "critical header extension",
            hand_made(
                json!({"alg": "ES256", "kid": "k1", "crit": ["x"], "x": 1}),
                "AA",
            ),
            refused(LoginRefused::Malformed(
                "critical header extensions [\"x\"] are not understood".into(),
            )),
        ),
        (
            "two parts",
            "eyJhbGciOiJFUzI1NiJ9.e30".into(),
            refused(LoginRefused::Malformed(
                "it does not have three parts".into(),
            )),
        ),
    ];
    for (name, token, expected) in table {
        let got = verify(&token, &pin(), &keys, now());
        match expected {
            None => assert!(got.is_ok(), "{name}: {got:?}"),
            Some(expected) => assert_eq!(got, Err(expected), "{name}"),
        }
    }
}

#[test]
fn an_accepted_login_says_who_where_how_and_until_when() {
    let key = TestKey::es256("k1");
    let login = verify(&key.sign(&claims()), &pin(), &jwks(&[&key]), now()).unwrap();
    assert_eq!(
        login,
        VerifiedLogin {
            issuer: "https://auth.example".into(),
            subject: "user-1".into(),
            workspace: "ws-team".into(),
            method: Some("sso".into()),
            expires_at: UNIX_EPOCH + Duration::from_secs(NOW + 600),
        }
    );
}

#[test]
fn refusals_name_the_expected_and_the_actual_value() {
    let messages = [
        LoginRefused::WorkspaceNotAllowed {
            allowed: strings(&["ws-team"]),
            actual: "ws-other".into(),
        },
        LoginRefused::WrongIssuer {
            expected: "https://auth.example".into(),
            actual: "https://evil.example".into(),
        },
        LoginRefused::Expired {
            at: UNIX_EPOCH + Duration::from_secs(NOW - 61),
            now: now(),
        },
    ]
    .map(|r| r.to_string());
    assert_eq!(
        messages,
        [
            "the credential belongs to workspace \"ws-other\", outside the pin (allowed: [\"ws-team\"])",
            "the token was issued by \"https://evil.example\", not by the pinned issuer \"https://auth.example\"",
            "the token expired at 2027-01-15T07:58:59Z (it is now 2027-01-15T08:00:00Z)",
        ]
    );
}

#[test]
fn without_a_method_pin_any_method_or_none_is_accepted() {
    let key = TestKey::es256("k1");
    let pin = LoginPin {
        method: None,
        ..pin()
    };
    let token = key.sign(&with("/amr", Value::Null));
    let login = verify(&token, &pin, &jwks(&[&key]), now()).unwrap();
    assert_eq!(login.method, None);
}
