//! The issuer's keys, fetched over HTTPS and cached on disk: used while fresh, refetched once
//! when a token names a key not yet seen (key rotation), and used stale (for a day at most)
//! only when the issuer cannot be reached.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jsonwebtoken::jwk::JwkSet;
use thiserror::Error;

use crate::fetch::Fetcher;
use crate::pin::LoginPin;
use crate::refused::LoginRefused;
use crate::store::{Entry, Store, since, unix};
use crate::token::{VerifiedLogin, verify};

/// The oldest cached copy used when the issuer cannot be reached.
const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// A token naming an unknown key refetches at most this often per URL, so that forged tokens
/// cannot make Warden hammer the issuer.
const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum JwksError {
    #[error("the issuer's keys must be fetched over HTTPS, and {url:?} is not an https:// URL")]
    NotHttps { url: String },
    #[error("cannot trust the CA certificates in {}: {reason}", path.display())]
    Trust { path: PathBuf, reason: String },
    #[error("cannot fetch the issuer's keys from {url}: {reason}; {cache}")]
    Unavailable {
        url: String,
        reason: String,
        /// Why no cached copy could stand in.
        cache: String,
    },
    #[error("the key cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a login was not accepted: the keys could not be had, or the token was refused.
#[derive(Debug, Error)]
pub enum LoginError {
    #[error(transparent)]
    Keys(#[from] JwksError),
    #[error(transparent)]
    Refused(#[from] LoginRefused),
}

/// An issuer's keys, and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub set: JwkSet,
    pub origin: KeysOrigin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeysOrigin {
    /// Fetched from the issuer just now.
    Fetched,
    /// The cached copy, still within the lifetime the issuer gave it.
    Cached,
    /// A fetch failed (`reason`, for the caller to log); the cached copy, `age` old, was used.
    Stale { age: Duration, reason: String },
}

/// A verified login, and where the keys that verified it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedLogin {
    pub login: VerifiedLogin,
    pub keys: KeysOrigin,
}

/// Issuers' keys, cached in one directory.
pub struct JwksCache {
    store: Store,
    fetcher: Fetcher,
}

impl JwksCache {
    /// A cache in `dir` (created, mode 0700); HTTPS trusts the web PKI, or only the CA
    /// certificates (PEM) in `ca`.
    pub fn new(dir: PathBuf, ca: Option<&Path>) -> Result<Self, JwksError> {
        Ok(Self {
            store: Store::open(dir)?,
            fetcher: Fetcher::new(ca)?,
        })
    }

    /// The pin's issuer keys: the cached copy while fresh, else fetched.
    pub fn keys_for(&self, pin: &LoginPin) -> Result<Keys, JwksError> {
        let url = https(&pin.jwks_url)?;
        let cached = self.store.read(url)?;
        let now = SystemTime::now();
        match cached {
            Some(entry) if is_fresh(&entry, now) => Ok(Keys {
                set: entry.keys,
                origin: KeysOrigin::Cached,
            }),
            cached => self.refresh(url, cached, now, false),
        }
    }

    /// Verifies `token` against the pin with its issuer's keys, refetching them once if the
    /// token names a key the cached copy lacks (the issuer may have rotated its keys).
    pub fn check_login(&self, token: &str, pin: &LoginPin) -> Result<CheckedLogin, LoginError> {
        let now = SystemTime::now();
        let mut keys = self.keys_for(pin)?;
        let mut verified = verify(token, pin, &keys.set, now);
        if matches!(verified, Err(LoginRefused::UnknownKey { .. }))
            && keys.origin != KeysOrigin::Fetched
            && let Some(refetched) = self.refetch_for_unknown_key(pin, now)?
        {
            keys = refetched;
            verified = verify(token, pin, &keys.set, now);
        }
        Ok(CheckedLogin {
            login: verified?,
            keys: keys.origin,
        })
    }

    /// The keys fetched again, unless an unknown key already made that happen within the
    /// minute.
    fn refetch_for_unknown_key(
        &self,
        pin: &LoginPin,
        now: SystemTime,
    ) -> Result<Option<Keys>, JwksError> {
        let url = https(&pin.jwks_url)?;
        let cached = self.store.read(url)?;
        if cached
            .as_ref()
            .is_some_and(|entry| !may_refetch_for_unknown_key(entry, now))
        {
            return Ok(None);
        }
        self.refresh(url, cached, now, true).map(Some)
    }

    /// Fetches the keys and caches them; if the fetch fails, falls back on a cached copy less
    /// than a day old.
    fn refresh(
        &self,
        url: &str,
        cached: Option<Entry>,
        now: SystemTime,
        for_unknown_key: bool,
    ) -> Result<Keys, JwksError> {
        let refetch_at = match for_unknown_key {
            true => Some(unix(now)),
            false => cached.as_ref().and_then(|c| c.unknown_key_refetch_at),
        };
        let fetched = match self.fetcher.get(url) {
            Ok(fetched) => fetched,
            Err(e) => return self.fall_back(url, cached, now, refetch_at, e.to_string()),
        };
        self.store.write(&Entry {
            url: url.to_string(),
            fetched_at: unix(now),
            max_age: fetched.max_age.as_secs(),
            unknown_key_refetch_at: refetch_at,
            keys: fetched.keys.clone(),
        })?;
        Ok(Keys {
            set: fetched.keys,
            origin: KeysOrigin::Fetched,
        })
    }

    fn fall_back(
        &self,
        url: &str,
        cached: Option<Entry>,
        now: SystemTime,
        refetch_at: Option<u64>,
        reason: String,
    ) -> Result<Keys, JwksError> {
        let unavailable = |cache: String| JwksError::Unavailable {
            url: url.to_string(),
            reason: reason.clone(),
            cache,
        };
        let Some(mut entry) = cached else {
            return Err(unavailable("and there is no cached copy".into()));
        };
        let age = usable_age(&entry, now).map_err(unavailable)?;
        // Remember the attempt, so that the next unknown key waits before trying again.
        if entry.unknown_key_refetch_at != refetch_at {
            entry.unknown_key_refetch_at = refetch_at;
            self.store.write(&entry)?;
        }
        Ok(Keys {
            set: entry.keys,
            origin: KeysOrigin::Stale { age, reason },
        })
    }
}

fn https(url: &str) -> Result<&str, JwksError> {
    let scheme = url.get(..8).unwrap_or_default();
    if scheme.eq_ignore_ascii_case("https://") {
        Ok(url)
    } else {
        Err(JwksError::NotHttps {
            url: url.to_string(),
        })
    }
}

/// How old a cached copy is, if young enough to stand in for a failed fetch.
fn usable_age(entry: &Entry, now: SystemTime) -> Result<Duration, String> {
    match entry.age(now) {
        Some(age) if age < MAX_STALE => Ok(age),
        Some(age) => Err(format!(
            "and the cached copy is {} h old, more than {} h",
            age.as_secs() / 3600,
            MAX_STALE.as_secs() / 3600
        )),
        None => Err("and the cached copy is dated in the future (the clock moved)".into()),
    }
}

fn is_fresh(entry: &Entry, now: SystemTime) -> bool {
    entry
        .age(now)
        .is_some_and(|age| age < Duration::from_secs(entry.max_age))
}

fn may_refetch_for_unknown_key(entry: &Entry, now: SystemTime) -> bool {
    entry
        .unknown_key_refetch_at
        .and_then(|at| since(at, now))
        .is_none_or(|elapsed| elapsed >= UNKNOWN_KEY_REFETCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fetched_ago: i64, max_age: u64, refetch_ago: Option<i64>) -> (Entry, SystemTime) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |ago: i64| (1_000_000 - ago) as u64;
        let entry = Entry {
            url: "https://issuer.example/jwks".into(),
            fetched_at: at(fetched_ago),
            max_age,
            unknown_key_refetch_at: refetch_ago.map(at),
            keys: JwkSet::default(),
        };
        (entry, now)
    }

    #[test]
    fn a_copy_is_fresh_within_its_max_age_and_not_from_the_future() {
        for (fetched_ago, max_age, fresh) in [
            (0, 60, true),
            (59, 60, true),
            (60, 60, false),
            (-5, 60, false),
        ] {
            let (e, now) = entry(fetched_ago, max_age, None);
            assert_eq!(is_fresh(&e, now), fresh, "fetched {fetched_ago} s ago");
        }
    }

    #[test]
    fn an_unknown_key_refetches_at_most_once_a_minute() {
        for (refetch_ago, may) in [
            (None, true),
            (Some(10), false),
            (Some(60), true),
            (Some(-30), true),
        ] {
            let (e, now) = entry(0, 3600, refetch_ago);
            assert_eq!(may_refetch_for_unknown_key(&e, now), may, "{refetch_ago:?}");
        }
    }

    #[test]
    fn only_https_urls_are_fetched() {
        assert!(https("https://issuer.example/jwks").is_ok());
        assert!(https("HTTPS://issuer.example/jwks").is_ok());
        for url in [
            "http://issuer.example/jwks",
            "file:///etc/jwks",
            "https:/x",
            "",
        ] {
            assert!(
                matches!(https(url), Err(JwksError::NotHttps { .. })),
                "{url}"
            );
        }
    }
}
