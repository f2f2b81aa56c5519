//! The credential store: each credential is one keyring entry holding its metadata and value,
//! and one more entry lists the names (keyrings cannot be enumerated portably). Nothing is ever
//! written to a file: when no keyring serves, opening the store fails and says how to get one.
//!
//! Threat: a secret written to disk in the clear outlives the session and is read by anything
//! running as the user. So there is no plaintext fallback, a locked or in-memory-only Secret
//! Service collection is refused rather than unlocked by a prompt nobody can see, and every
//! keyring call has a deadline so a keyring waiting on a prompt fails instead of hanging.
use std::{sync::mpsc, thread, time::Duration};

use keyring::{Entry, keyutils::KeyutilsCredential, secret_service::SsCredential};
use serde::{Deserialize, Serialize};
use warden_wire::string_enum;
use zeroize::Zeroizing;

use crate::model::{Credential, CredentialName, Metadata, Secret};

string_enum! {
    /// The keyring a store lives in.
    Backend, "credential store" {
        /// The desktop keyring (gnome-keyring, KWallet) over the session bus.
        SecretService = "secret-service",
        /// The kernel's per-user persistent keyring: survives logouts, not reboots.
        Keyutils = "keyutils",
    }
}

/// Which keyring to use: the best one present, or one named by `--store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// Secret Service when the session has a bus, the kernel's keyutils otherwise.
    Auto,
    Only(Backend),
}

/// Why the store cannot do what was asked. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no keyring serves this session: {why}. Warden never stores credentials in a plain file. \
         Start a Secret Service (e.g. `dbus-run-session -- sh -c 'echo -n PASSWORD | \
         gnome-keyring-daemon --unlock --components=secrets; warden credentials ...'`, or log in \
         to a desktop session), or use the kernel keyring with `--store keyutils`"
    )]
    NoKeyring { why: String },
    #[error(
        "the Secret Service's default collection is locked; unlock it (log in to the desktop, or \
         `gnome-keyring-daemon --unlock`) and try again: Warden does not answer unlock prompts"
    )]
    Locked,
    #[error(
        "the Secret Service's default collection is the in-memory session collection, which \
         forgets everything when the daemon stops; create a persistent (login) keyring or use \
         `--store keyutils`"
    )]
    NotPersistent,
    #[error("the {backend} keyring did not answer within {secs} s while it was asked to {what}")]
    Timeout {
        backend: Backend,
        what: &'static str,
        secs: u64,
    },
    #[error("no credential named {0} (`warden credentials list` shows them)")]
    NotFound(CredentialName),
    #[error("a credential named {0} exists; remove it first or add with --replace")]
    Exists(CredentialName),
    #[error("the {backend} keyring refused to {what}: {message}")]
    Keyring {
        backend: Backend,
        what: &'static str,
        message: String,
    },
    #[error("the keyring entry of {name} is not a Warden credential ({why})")]
    Corrupt { name: String, why: String },
}

/// How long a keyring call may take before it counts as hung (a locked collection's prompt).
const DEADLINE: Duration = Duration::from_secs(10);
/// The keyring service name of every Warden entry.
const SERVICE: &str = "warden";
/// The entry listing the names.
const INDEX: &str = "index";

/// An open store in one keyring.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// One line of `list`: a name and its metadata, or why it could not be read.
pub struct Listed {
    pub name: CredentialName,
    pub metadata: Result<Metadata, StoreError>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    metadata: Metadata,
    secret: String,
}

impl Store {
    /// Opens the store, checking that the keyring will keep what it is given.
    pub fn open(choice: StoreChoice) -> Result<Self, StoreError> {
        let backend = match choice {
            StoreChoice::Only(b) => b,
            StoreChoice::Auto if session_bus_named() => Backend::SecretService,
            StoreChoice::Auto => Backend::Keyutils,
        };
        let store = Self { backend };
        if backend == Backend::Keyutils {
            // Here, not in `call`'s thread: a session keyring belongs to the thread that
            // joins it and to the threads it starts later.
            join_session_keyring()?;
        }
        // The outer error: the keyring failed or hung; the inner: what the probe found.
        store.call("open the store", |b| Ok(probe(b)))??;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Stores a credential; an existing one of the same name only with `replace`.
    pub fn add(&self, credential: &Credential, replace: bool) -> Result<(), StoreError> {
        credential
            .metadata
            .check()
            .map_err(|e| StoreError::Corrupt {
                name: credential.name.to_string(),
                why: e.0,
            })?;
        let mut names = self.names()?;
        let exists = names.contains(&credential.name);
        if exists && !replace {
            return Err(StoreError::Exists(credential.name.clone()));
        }
        let blob = Zeroizing::new(
            serde_json::to_string(&Stored {
                metadata: credential.metadata.clone(),
                secret: credential.secret.expose().to_owned(),
            })
            .expect("a credential serializes"),
        );
        let user = entry_user(&credential.name);
        self.call("store the credential", move |b| {
            entry(b, &user)?.set_password(&blob)
        })?;
        if !exists {
            names.push(credential.name.clone());
            self.write_names(names)?;
        }
        Ok(())
    }

    /// Reads one credential, value included.
    pub fn get(&self, name: &CredentialName) -> Result<Credential, StoreError> {
        let user = entry_user(name);
        let blob = self
            .call("read the credential", move |b| {
                absent_is_none(entry(b, &user)?.get_password().map(Zeroizing::new))
            })?
            .ok_or_else(|| StoreError::NotFound(name.clone()))?;
        let stored: Stored = serde_json::from_str(&blob).map_err(|e| StoreError::Corrupt {
            name: name.to_string(),
            why: e.to_string(),
        })?;
        Ok(Credential {
            name: name.clone(),
            metadata: stored.metadata,
            secret: Secret::new(stored.secret),
        })
    }

    /// Every credential's name and metadata (values are read, checked, and dropped).
    pub fn list(&self) -> Result<Vec<Listed>, StoreError> {
        Ok(self
            .names()?
            .into_iter()
            .map(|name| Listed {
                metadata: self.get(&name).map(|c| c.metadata),
                name,
            })
            .collect())
    }

    /// Deletes a credential and its name from the list.
    pub fn remove(&self, name: &CredentialName) -> Result<(), StoreError> {
        let mut names = self.names()?;
        let listed = names.contains(name);
        let user = entry_user(name);
        let deleted = self.call("delete the credential", move |b| {
            absent_is_none(entry(b, &user)?.delete_credential())
        })?;
        // A name listed without its entry is still taken off the list.
        if deleted.is_none() && !listed {
            return Err(StoreError::NotFound(name.clone()));
        }
        if listed {
            names.retain(|n| n != name);
            self.write_names(names)?;
        }
        Ok(())
    }

    /// The names of the stored credentials, in the order they were added.
    pub fn names(&self) -> Result<Vec<CredentialName>, StoreError> {
        let read = self.call("read the list of credentials", |b| {
            absent_is_none(entry(b, INDEX)?.get_password())
        })?;
        let Some(text) = read else {
            return Ok(Vec::new());
        };
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            name: INDEX.into(),
            why: e.to_string(),
        })
    }

    fn write_names(&self, names: Vec<CredentialName>) -> Result<(), StoreError> {
        let text = serde_json::to_string(&names).expect("names serialize");
        self.call("update the list of credentials", move |b| {
            entry(b, INDEX)?.set_password(&text)
        })
    }

    /// Runs one keyring call on its own thread, so that a call stuck on an unlock prompt
    /// ends in a `Timeout` instead of hanging Warden.
    fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(Backend) -> keyring::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let backend = self.backend;
        let (tx, rx) = mpsc::sync_channel(1);
        thread::spawn(move || {
            let _ = tx.send(f(backend));
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(keyring_error(backend, what, e)),
            Err(_) => Err(StoreError::Timeout {
                backend,
                what,
                secs: DEADLINE.as_secs(),
            }),
        }
    }
}

/// A missing entry as `None`, so that each caller says what its absence means.
fn absent_is_none<T>(r: keyring::Result<T>) -> keyring::Result<Option<T>> {
    match r {
        Err(keyring::Error::NoEntry) => Ok(None),
        other => other.map(Some),
    }
}

fn keyring_error(backend: Backend, what: &'static str, e: keyring::Error) -> StoreError {
    StoreError::Keyring {
        backend,
        what,
        message: e.to_string(),
    }
}

fn unreachable(backend: Backend, why: impl std::fmt::Display) -> StoreError {
    StoreError::NoKeyring {
        why: format!("{backend}: {why}"),
    }
}

/// Whether the keyring is there and will keep entries.
fn probe(backend: Backend) -> Result<(), StoreError> {
    match backend {
        Backend::SecretService => probe_secret_service(),
        Backend::Keyutils => probe_keyutils(),
    }
}

fn probe_secret_service() -> Result<(), StoreError> {
    use secret_service::{EncryptionType, blocking::SecretService};
    let none = |why: String| unreachable(Backend::SecretService, why);
    if !session_bus_named() {
        return Err(none("DBUS_SESSION_BUS_ADDRESS is not set".into()));
    }
    let ss = SecretService::connect(EncryptionType::Dh).map_err(|e| none(e.to_string()))?;
    let collection = ss
        .get_default_collection()
        .map_err(|e| none(format!("no default collection ({e})")))?;
    if collection
        .collection_path
        .as_str()
        .ends_with("/collection/session")
    {
        return Err(StoreError::NotPersistent);
    }
    match collection.is_locked() {
        Ok(false) => Ok(()),
        Ok(true) => Err(StoreError::Locked),
        Err(e) => Err(none(e.to_string())),
    }
}

/// keyutils needs a session keyring to reach the persistent one; a process without one (a
/// bare headless shell) joins a new anonymous session keyring, which only it and what it
/// starts later share.
fn join_session_keyring() -> Result<(), StoreError> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    KeyRing::from_special_id(KeyRingIdentifier::Session, true)
        .map(|_| ())
        .map_err(|e| unreachable(Backend::Keyutils, format!("no session keyring ({e})")))
}

fn probe_keyutils() -> Result<(), StoreError> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    KeyRing::get_persistent(KeyRingIdentifier::Session)
        .map(|_| ())
        .map_err(|e| {
            unreachable(
                Backend::Keyutils,
                format!("the kernel refused the persistent keyring ({e})"),
            )
        })
}

fn session_bus_named() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty())
}

fn entry_user(name: &CredentialName) -> String {
    format!("credential/{name}")
}

fn entry(backend: Backend, user: &str) -> keyring::Result<Entry> {
    Ok(match backend {
        Backend::SecretService => Entry::new_with_credential(Box::new(
            SsCredential::new_with_target(None, SERVICE, user)?,
        )),
        Backend::Keyutils => Entry::new_with_credential(Box::new(
            KeyutilsCredential::new_with_target(None, SERVICE, user)?,
        )),
    })
}
