//! Fetching the cloud-managed requirements bundle: over HTTPS, verified against the pinned
//! key, the last accepted version and the clock, then cached. A bundle that fails any check is
//! refused and reported, never applied; when the server cannot be reached, the last good
//! cached bundle applies (an offline start).
use std::{path::Path, time::Duration};

use warden_requirements::{BundleCache, Signature, effective::CloudSource, verify};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Bundles are small; a larger answer is refused rather than read.
const MAX_BYTES: u64 = 1 << 20;

/// What refreshing the cache did.
#[derive(Debug, PartialEq, Eq)]
pub enum Refresh {
    /// A newer or equal verified bundle is now cached.
    Stored { version: u64 },
    /// The server answered with a bundle that fails verification: not applied.
    Refused(String),
    /// No answer (offline, server down, TLS failure): the cache stays as it was.
    Unreachable(String),
}

fn agent(ca_file: Option<&Path>) -> Result<ureq::Agent, String> {
    let mut config = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT));
    if let Some(ca) = ca_file {
        config = config.tls_config(crate::tls::trust_only(ca)?);
    }
    Ok(ureq::Agent::new_with_config(config.build()))
}

fn get(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, String> {
    agent
        .get(url)
        .call()
        .map_err(|e| format!("{url}: {e}"))?
        .body_mut()
        .with_config()
        .limit(MAX_BYTES)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))
}

/// Fetches `<bundle_url>` and `<bundle_url>.sig`, verifies them and caches the bundle.
pub fn refresh(cloud: &CloudSource, cache: &BundleCache, ca_file: Option<&Path>) -> Refresh {
    let url = cloud.bundle_url.value.to_string();
    let fetched =
        agent(ca_file).and_then(|a| Ok((get(&a, &url)?, get(&a, &format!("{url}.sig"))?)));
    let (bytes, sig) = match fetched {
        Ok(b) => b,
        Err(e) => return Refresh::Unreachable(e),
    };
    let key = &cloud.public_key.value;
    let checked = (|| -> Result<u64, String> {
        let signature: Signature = String::from_utf8_lossy(&sig)
            .trim()
            .parse()
            .map_err(|e| format!("{url}.sig: {e}"))?;
        let last = cache
            .last_accepted_version(key)
            .map_err(|e| e.to_string())?;
        let verified = verify(
            &url,
            &bytes,
            &signature,
            key,
            time::OffsetDateTime::now_utc(),
            last,
        )
        .map_err(|e| e.to_string())?;
        cache.store(&verified).map_err(|e| e.to_string())?;
        Ok(verified.version())
    })();
    match checked {
        Ok(version) => Refresh::Stored { version },
        Err(e) => Refresh::Refused(e),
    }
}
