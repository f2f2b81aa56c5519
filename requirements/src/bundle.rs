//! Cloud bundles: a requirements document with a `[bundle]` table (version, expiry), signed
//! with ed25519 over its exact bytes; the signature travels beside it as base64 text.
//!
//! A bundle is refused, never applied, if the signature does not verify against the pinned
//! `cloud.public_key`, if its version is lower than the last one accepted (a downgrade; the
//! same version is fine), or if it has expired. The last accepted bundle is cached with its
//! signature so that a start without network re-verifies it and uses it.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::keys::{PublicKey, SecretKey, Signature};
use crate::layers::{BundleInfo, Layer, LayerKind};
use crate::source::ParseError;

/// Where the supervisor keeps the last accepted bundle.
pub const DEFAULT_BUNDLE_CACHE_DIR: &str = "/var/lib/warden/requirements";

/// Signs a bundle's exact bytes, for `warden requirements sign`.
pub fn sign(bundle: &[u8], key: &SecretKey) -> Signature {
    key.sign(bundle)
}

/// A bundle whose signature, version and expiry have been checked.
#[derive(Clone, Debug)]
pub struct VerifiedBundle {
    bytes: Vec<u8>,
    signature: Signature,
    info: BundleInfo,
    layer: Layer,
}

impl VerifiedBundle {
    pub fn version(&self) -> u64 {
        self.info.version
    }

    pub fn expires_at(&self) -> OffsetDateTime {
        self.info.expires_at
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn signature(&self) -> Signature {
        self.signature
    }

    /// The highest-precedence layer, for [`crate::merge`].
    pub fn layer(&self) -> &Layer {
        &self.layer
    }
}

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleRefusal {
    #[error("the signature does not verify against cloud.public_key")]
    BadSignature,
    #[error(
        "version {version} is lower than version {last_accepted}, accepted before (a downgrade)"
    )]
    Downgrade { version: u64, last_accepted: u64 },
    #[error("it expired at {expires_at} (now {now})")]
    Expired {
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    },
    #[error("it is not valid UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Invalid(#[from] ParseError),
}

/// A refused bundle: which one and why. Its `Display` is the line to log.
#[derive(Debug, thiserror::Error)]
pub struct BundleError {
    /// The bundle's name: its URL, or the cache file.
    pub bundle: String,
    pub refusal: BundleRefusal,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused cloud bundle {}: {}", self.bundle, self.refusal)
    }
}

/// Checks a bundle named `name` (its URL, for messages): signature first, so nothing in an
/// unsigned document is even parsed, then content, downgrade and expiry.
pub fn verify(
    name: &str,
    bytes: &[u8],
    signature: &Signature,
    key: &PublicKey,
    now: OffsetDateTime,
    last_accepted_version: Option<u64>,
) -> Result<VerifiedBundle, BundleError> {
    let bundle = verify_signed(name, bytes, signature, key)?;
    let refuse = |refusal| BundleError {
        bundle: name.to_owned(),
        refusal,
    };
    if let Some(last_accepted) = last_accepted_version.filter(|&last| bundle.version() < last) {
        return Err(refuse(BundleRefusal::Downgrade {
            version: bundle.version(),
            last_accepted,
        }));
    }
    if now >= bundle.expires_at() {
        return Err(refuse(BundleRefusal::Expired {
            expires_at: bundle.expires_at(),
            now,
        }));
    }
    Ok(bundle)
}

/// Signature and content checks only: what the cache needs to know the last accepted version
/// even of a bundle that has since expired.
fn verify_signed(
    name: &str,
    bytes: &[u8],
    signature: &Signature,
    key: &PublicKey,
) -> Result<VerifiedBundle, BundleError> {
    let refuse = |refusal| BundleError {
        bundle: name.to_owned(),
        refusal,
    };
    if !key.verifies(bytes, signature) {
        return Err(refuse(BundleRefusal::BadSignature));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| refuse(BundleRefusal::NotUtf8))?;
    let layer = Layer::parse(LayerKind::CloudBundle, name, text).map_err(|e| refuse(e.into()))?;
    let Some(info) = layer.bundle_info() else {
        unreachable!("Layer::parse refuses a cloud bundle without [bundle]");
    };
    Ok(VerifiedBundle {
        bytes: bytes.to_vec(),
        signature: *signature,
        info,
        layer,
    })
}

/// The cache file: the bundle's bytes (base64, so they come back byte for byte) and its
/// signature. One file, replaced by rename, so a crash leaves the old or the new one whole.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    signature: Signature,
    bundle: String,
}

const CACHE_FILE: &str = "bundle.cache";

/// The last accepted bundle, kept in a directory only root can write.
#[derive(Clone, Debug)]
pub struct BundleCache {
    dir: PathBuf,
}

/// A cache that cannot be read or written. A cache that no longer verifies is one too: the
/// supervisor logs it and goes on without the bundle, or refuses to start, as it decides.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("bundle cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bundle cache {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Refused(#[from] BundleError),
}

impl BundleCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CACHE_FILE)
    }

    /// Replaces the cached bundle with `bundle`.
    pub fn store(&self, bundle: &VerifiedBundle) -> Result<(), CacheError> {
        let path = self.path();
        let io_error = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        let text = toml::to_string(&CacheFile {
            signature: bundle.signature,
            bundle: STANDARD.encode(&bundle.bytes),
        })
        .map_err(|e| CacheError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::create_dir_all(&self.dir).map_err(io_error)?;
        let tmp = self.dir.join(format!("{CACHE_FILE}.tmp"));
        let mut file = std::fs::File::create(&tmp).map_err(io_error)?;
        file.write_all(text.as_bytes()).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        std::fs::rename(&tmp, &path).map_err(io_error)
    }

    /// The cached bundle, verified again as if just fetched (expiry included, no downgrade
    /// check: it is the last accepted one). `Ok(None)` when nothing is cached.
    pub fn load(
        &self,
        key: &PublicKey,
        now: OffsetDateTime,
    ) -> Result<Option<VerifiedBundle>, CacheError> {
        let Some((bytes, signature)) = self.read()? else {
            return Ok(None);
        };
        Ok(Some(verify(
            &self.path().display().to_string(),
            &bytes,
            &signature,
            key,
            now,
            None,
        )?))
    }

    /// The version of the cached bundle, expired or not, for the downgrade check of the next
    /// fetched one. `Ok(None)` when nothing is cached.
    pub fn last_accepted_version(&self, key: &PublicKey) -> Result<Option<u64>, CacheError> {
        let Some((bytes, signature)) = self.read()? else {
            return Ok(None);
        };
        let name = self.path().display().to_string();
        Ok(Some(
            verify_signed(&name, &bytes, &signature, key)?.version(),
        ))
    }

    fn read(&self) -> Result<Option<(Vec<u8>, Signature)>, CacheError> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
            Ok(bytes) => bytes,
        };
        let corrupt = |reason: String| CacheError::Corrupt {
            path: path.clone(),
            reason,
        };
        let text = String::from_utf8(text).map_err(|_| corrupt("not valid UTF-8".into()))?;
        let file: CacheFile = toml::from_str(&text).map_err(|e| corrupt(e.message().to_owned()))?;
        let bytes = STANDARD
            .decode(&file.bundle)
            .map_err(|e| corrupt(format!("bundle is not base64: {e}")))?;
        Ok(Some((bytes, file.signature)))
    }
}
