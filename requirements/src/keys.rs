//! ed25519 keys and signatures for cloud bundles, written as base64 of their raw bytes.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;

use crate::values::InvalidValue;
use warden_wire::serde_via_str;

/// Decodes base64 (surrounding whitespace ignored, as in a file ending in a newline) into
/// exactly `N` bytes.
fn decode<const N: usize>(s: &str, what: &str) -> Result<[u8; N], InvalidValue> {
    let bytes = STANDARD
        .decode(s.trim())
        .map_err(|e| InvalidValue(format!("invalid {what}: not base64 ({e})")))?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        InvalidValue(format!(
            "invalid {what}: {len} bytes, expected {N} (base64 of the raw ed25519 {what})"
        ))
    })
}

/// The public key that cloud bundles must be signed with (`cloud.public_key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// True when `signature` is a valid signature of `message` by this key. Strict
    /// verification: rejects the malleable and small-order forms plain ed25519 lets through.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify_strict(message, &signature.0).is_ok()
    }
}

impl FromStr for PublicKey {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let bytes = decode::<32>(s, "public key")?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| InvalidValue("invalid public key: not an ed25519 point".into()))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0.as_bytes()))
    }
}

serde_via_str!(PublicKey, "public key");

/// A bundle author's signing key. Not `Display`, and `Debug` hides it, so it is not logged by
/// accident; [`SecretKey::to_base64`] writes it out on purpose.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; ed25519_dalek::SECRET_KEY_LENGTH];
        getrandom::fill(&mut seed)?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Base64 of the 32-byte seed: the format [`SecretKey::from_str`] reads.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message))
    }
}

impl FromStr for SecretKey {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        decode::<32>(s, "secret key").map(|seed| Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public_key())
    }
}

/// A detached ed25519 signature of a bundle's exact bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl FromStr for Signature {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        decode::<64>(s, "signature").map(|bytes| Self(ed25519_dalek::Signature::from_bytes(&bytes)))
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0.to_bytes()))
    }
}

serde_via_str!(Signature, "signature");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_base64() {
        let secret = SecretKey::generate().unwrap();
        let again: SecretKey = format!("{}\n", secret.to_base64()).parse().unwrap();
        assert_eq!(again.public_key(), secret.public_key());
        let public: PublicKey = secret.public_key().to_string().parse().unwrap();
        let signature: Signature = secret.sign(b"hello").to_string().parse().unwrap();
        assert!(public.verifies(b"hello", &signature));
        assert!(!public.verifies(b"hellO", &signature));
        assert!(!format!("{secret:?}").contains(&secret.to_base64()));
    }

    #[test]
    fn bad_encodings_are_explained() {
        let err = "AAAA".parse::<PublicKey>().unwrap_err().to_string();
        assert!(err.contains("3 bytes, expected 32"), "{err}");
        let err = "not base64!".parse::<Signature>().unwrap_err().to_string();
        assert!(err.contains("not base64"), "{err}");
    }
}
