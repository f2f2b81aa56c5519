//! Cloud bundles: signature, downgrade, expiry and the offline cache.

mod common;

use common::{bundle_text, layer, trusted_dir};
use time::OffsetDateTime;
use time::macros::datetime;
use warden_requirements::bundle::{BundleRefusal, CacheError};
use warden_requirements::{
    BundleCache, BundleError, LayerKind, PublicKey, SecretKey, Signature, merge, sign, verify,
};

const URL: &str = "https://policy.example/warden/bundle.toml";
const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

struct Author {
    key: SecretKey,
}

impl Author {
    fn new() -> Self {
        Self {
            key: SecretKey::generate().unwrap(),
        }
    }

    fn public(&self) -> PublicKey {
        self.key.public_key()
    }

    fn bundle(&self, version: u64) -> (Vec<u8>, Signature) {
        let bytes = bundle_text(version, "allowed_sandbox_modes = [\"read-only\"]").into_bytes();
        let signature = sign(&bytes, &self.key);
        (bytes, signature)
    }
}

fn refusal(result: Result<impl std::fmt::Debug, BundleError>) -> (String, BundleRefusal) {
    let err = result.expect_err("accepted");
    (err.to_string(), err.refusal)
}

#[test]
fn a_signed_bundle_verifies_and_becomes_the_top_layer() {
    let author = Author::new();
    let (bytes, signature) = author.bundle(3);
    // The signature travels as base64 text.
    let signature: Signature = signature.to_string().parse().unwrap();
    let bundle = verify(URL, &bytes, &signature, &author.public(), NOW, Some(2)).unwrap();
    assert_eq!(bundle.version(), 3);
    assert_eq!(bundle.expires_at(), datetime!(2030-01-01 0:00 UTC));
    assert_eq!(bundle.layer().kind(), LayerKind::CloudBundle);
    assert_eq!(bundle.layer().name(), URL);

    let local = layer(
        LayerKind::Local,
        "/etc/warden/requirements.toml",
        "allowed_sandbox_modes = [\"read-only\", \"workspace-write\"]",
    );
    let effective = merge(&[bundle.layer().clone(), local]);
    let modes = effective.allowed_sandbox_modes.unwrap();
    assert_eq!(modes.value.len(), 1);
    assert_eq!(modes.origin.layer, LayerKind::CloudBundle);
    assert_eq!(modes.origin.location.file(), URL);
}

#[test]
fn a_bad_signature_is_refused() {
    let author = Author::new();
    let (mut bytes, signature) = author.bundle(1);
    let (message, why) = refusal(verify(
        URL,
        &bytes,
        &signature,
        &Author::new().public(),
        NOW,
        None,
    ));
    assert!(matches!(why, BundleRefusal::BadSignature));
    assert_eq!(
        message,
        format!(
            "refused cloud bundle {URL}: the signature does not verify against cloud.public_key"
        )
    );

    // One changed byte: the document that says read-only now says something else.
    let at = bytes.iter().position(|&b| b == b'[').unwrap();
    bytes[at + 2] ^= 1;
    let (_, why) = refusal(verify(URL, &bytes, &signature, &author.public(), NOW, None));
    assert!(matches!(why, BundleRefusal::BadSignature));
}

#[test]
fn a_downgrade_is_refused_the_same_version_is_not() {
    let author = Author::new();
    let (bytes, signature) = author.bundle(4);
    let (message, why) = refusal(verify(
        URL,
        &bytes,
        &signature,
        &author.public(),
        NOW,
        Some(5),
    ));
    assert!(matches!(
        why,
        BundleRefusal::Downgrade {
            version: 4,
            last_accepted: 5
        }
    ));
    assert!(
        message.ends_with("version 4 is lower than version 5, accepted before (a downgrade)"),
        "{message}"
    );
    assert!(verify(URL, &bytes, &signature, &author.public(), NOW, Some(4)).is_ok());
    assert!(verify(URL, &bytes, &signature, &author.public(), NOW, Some(3)).is_ok());
}

#[test]
fn an_expired_bundle_is_refused() {
    let author = Author::new();
    let (bytes, signature) = author.bundle(1);
    let after = datetime!(2030-01-01 0:00 UTC);
    let (message, why) = refusal(verify(
        URL,
        &bytes,
        &signature,
        &author.public(),
        after,
        None,
    ));
    assert!(matches!(why, BundleRefusal::Expired { .. }));
    assert!(message.contains("expired at 2030-01-01"), "{message}");
}

#[test]
fn a_signed_but_invalid_bundle_is_refused_with_its_line() {
    let author = Author::new();
    let text = bundle_text(1, "[[exec.rules]]\nprefix = [\"sh\"]\ndecision = \"allow\"");
    let signature = sign(text.as_bytes(), &author.key);
    let (message, why) = refusal(verify(
        URL,
        text.as_bytes(),
        &signature,
        &author.public(),
        NOW,
        None,
    ));
    assert!(matches!(why, BundleRefusal::Invalid(_)));
    assert!(
        message.starts_with(&format!(
            "refused cloud bundle {URL}: {URL} line 3, key exec.rules[0].decision"
        )),
        "{message}"
    );

    let bytes = b"\xff\xfe";
    let signature = sign(bytes, &author.key);
    let (_, why) = refusal(verify(URL, bytes, &signature, &author.public(), NOW, None));
    assert!(matches!(why, BundleRefusal::NotUtf8));
}

#[test]
fn the_cache_serves_an_offline_start() {
    let dir = trusted_dir();
    let cache = BundleCache::new(dir.path().join("cache"));
    let author = Author::new();
    assert!(cache.load(&author.public(), NOW).unwrap().is_none());
    assert_eq!(cache.last_accepted_version(&author.public()).unwrap(), None);

    let (bytes, signature) = author.bundle(7);
    let fetched = verify(URL, &bytes, &signature, &author.public(), NOW, None).unwrap();
    cache.store(&fetched).unwrap();

    // Next start, offline: the cached bundle is verified again and used.
    let cached = cache.load(&author.public(), NOW).unwrap().unwrap();
    assert_eq!(cached.bytes(), bytes);
    assert_eq!(cached.version(), 7);
    assert_eq!(cached.layer().name(), cache.path().display().to_string());
    assert_eq!(
        cache.last_accepted_version(&author.public()).unwrap(),
        Some(7)
    );

    // A newer bundle replaces it.
    let (bytes, signature) = author.bundle(8);
    let newer = verify(URL, &bytes, &signature, &author.public(), NOW, Some(7)).unwrap();
    cache.store(&newer).unwrap();
    assert_eq!(
        cache
            .load(&author.public(), NOW)
            .unwrap()
            .unwrap()
            .version(),
        8
    );

    // Once expired it is no longer used, but still guards against a downgrade.
    let later = datetime!(2031-01-01 0:00 UTC);
    let err = cache.load(&author.public(), later).unwrap_err();
    assert!(
        matches!(
            &err,
            CacheError::Refused(BundleError {
                refusal: BundleRefusal::Expired { .. },
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(
        cache.last_accepted_version(&author.public()).unwrap(),
        Some(8)
    );

    // Under another key the cache does not verify.
    let err = cache.load(&Author::new().public(), NOW).unwrap_err();
    assert!(
        err.to_string().contains("the signature does not verify"),
        "{err}"
    );
}

#[test]
fn a_corrupt_cache_is_an_error_not_a_panic() {
    let dir = trusted_dir();
    let cache = BundleCache::new(dir.path());
    let author = Author::new();
    let (bytes, signature) = author.bundle(2);
    let good = verify(URL, &bytes, &signature, &author.public(), NOW, None).unwrap();
    cache.store(&good).unwrap();
    let stored = std::fs::read_to_string(cache.path()).unwrap();

    let not_base64 = stored.replace("bundle = \"", "bundle = \"!");
    let tampered = stored.replace(
        &base64_of(&bytes),
        &base64_of(&bundle_text(2, "").into_bytes()),
    );
    let cases: [(&[u8], &str); 5] = [
        (b"\x00\xff garbage", "is corrupt: not valid UTF-8"),
        (b"signature = 1", "is corrupt"),
        (b"", "is corrupt: missing field"),
        (not_base64.as_bytes(), "is corrupt: bundle is not base64"),
        (tampered.as_bytes(), "the signature does not verify"),
    ];
    for (content, expected) in cases {
        std::fs::write(cache.path(), content).unwrap();
        let err = cache.load(&author.public(), NOW).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
        assert!(err.contains(&cache.path().display().to_string()), "{err}");
        assert!(cache.last_accepted_version(&author.public()).is_err());
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
