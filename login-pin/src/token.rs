//! Verifying a token: its header names an asymmetric algorithm and one of the issuer's keys, the
//! signature verifies with that key, and only then are its claims read (`claims.rs`).
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::{Map, Value};

use crate::pin::LoginPin;
use crate::refused::LoginRefused;

/// A login whose token verified and whose claims are inside the pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedLogin {
    pub issuer: String,
    pub subject: String,
    pub workspace: String,
    /// The accepted login method, when the pin names a method claim.
    pub method: Option<String>,
    pub expires_at: SystemTime,
}

/// Checks `token` against `keys` (the issuer's published keys) and `pin`, at time `now`.
pub fn verify(
    token: &str,
    pin: &LoginPin,
    keys: &JwkSet,
    now: SystemTime,
) -> Result<VerifiedLogin, LoginRefused> {
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("it does not have three parts"))?;
    let (header, claims) = signed
        .split_once('.')
        .filter(|(_, claims)| !claims.contains('.'))
        .ok_or_else(|| malformed("it does not have three parts"))?;
    let header = json_object(header, "header")?;
    let alg = text(&header, "alg")?;
    // Only asymmetric algorithms: with HS*, the issuer's public key would do as an HMAC secret.
    let alg = asymmetric(&alg).ok_or(LoginRefused::UnsupportedAlgorithm { alg })?;
    if let Some(crit) = header.get("crit") {
        return Err(malformed(&format!(
            "critical header extensions {crit} are not understood"
        )));
    }
    let kid = text(&header, "kid")?;
    let jwk = keys
        .find(&kid)
        .ok_or_else(|| LoginRefused::UnknownKey { kid: kid.clone() })?;
    check_signature(signed, signature, jwk, alg, &kid)?;
    let claims = Value::Object(json_object(claims, "claims")?);
    crate::claims::check(&claims, pin, now)
}

fn check_signature(
    signed: &str,
    signature: &str,
    jwk: &Jwk,
    alg: Algorithm,
    kid: &str,
) -> Result<(), LoginRefused> {
    let unusable = |reason: String| LoginRefused::UnusableKey {
        kid: kid.to_string(),
        reason,
    };
    key_fits(jwk, alg).map_err(unusable)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| unusable(e.to_string()))?;
    match jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(LoginRefused::BadSignature {
            kid: kid.to_string(),
        }),
        Err(e) => Err(malformed(&format!("the signature cannot be checked: {e}"))),
    }
}

/// The algorithm named in a header, if it is one this crate accepts.
fn asymmetric(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Whether the key was published for this algorithm: the token's header must not choose how
/// the issuer's key is used.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> Result<(), String> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("it is not published for signatures (its \"use\" is not \"sig\")".into());
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg != KeyAlgorithm::from(alg)
    {
        return Err(format!(
            "it is for {key_alg} and the token is signed with {alg:?}"
        ));
    }
    let fits = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => alg.family() == AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(okp) => {
            okp.curve == EllipticCurve::Ed25519 && alg == Algorithm::EdDSA
        }
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "it is {} and the token is signed with {alg:?}",
            key_kind(jwk)
        ))
    }
}

fn key_kind(jwk: &Jwk) -> String {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => "an RSA key".into(),
        AlgorithmParameters::EllipticCurve(ec) => format!("an EC key on {:?}", ec.curve),
        AlgorithmParameters::OctetKeyPair(okp) => format!("an OKP key on {:?}", okp.curve),
        AlgorithmParameters::OctetKey(_) => "a symmetric key".into(),
        _ => "a key of an unknown type".into(),
    }
}

fn json_object(part: &str, what: &str) -> Result<Map<String, Value>, LoginRefused> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| malformed(&format!("its {what} is not base64url: {e}")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed(&format!("its {what} is not a JSON object"))),
        Err(e) => Err(malformed(&format!("its {what} is not JSON: {e}"))),
    }
}

fn text(header: &Map<String, Value>, name: &str) -> Result<String, LoginRefused> {
    match header.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(malformed(&format!("the header's {name:?} is not a string"))),
        None => Err(malformed(&format!("the header has no {name:?}"))),
    }
}

fn malformed(why: &str) -> LoginRefused {
    LoginRefused::Malformed(why.to_string())
}
