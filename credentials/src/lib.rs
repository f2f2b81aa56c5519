//! Warden's credential store: credentials with their metadata in the OS keyring, never in a
//! plaintext file, and the rules for handing them to an agent.
mod model;
mod store;

pub use model::{Credential, CredentialName, Delivery, Metadata, Secret};
pub use store::{Backend, Listed, Store, StoreChoice, StoreError};
