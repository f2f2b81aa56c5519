//! Warden requirements: what platform teams impose on every session, and the user's choices
//! inside them (issue #5). A pure library: it parses, validates, merges with provenance,
//! checks signatures and file ownership, and resolves the final settings. Fetching bundles,
//! watching files and enforcing the settings are the supervisor's.
//!
//! The flow at start:
//! 1. [`load_local_layers`] reads the managed directory and the local file, checking each
//!    with [`integrity`] (root-owned, not writable by others, no symlinks).
//! 2. [`merge`] of those gives [`Effective::cloud_source`]: the bundle URL and pinned key.
//! 3. The supervisor fetches the bundle and its signature; [`verify`] checks them against the
//!    key, the [`BundleCache`]'s last accepted version and the clock. Offline,
//!    [`BundleCache::load`] gives the last good one.
//! 4. [`merge`] of `[bundle layer, local layers...]` gives the [`Effective`] requirements,
//!    each key with its origin ([`Effective::entries`] for `requirements show --effective`).
//! 5. [`resolve`] checks the [`UserConfig`] and [`CliOverrides`] against them and returns the
//!    complete [`Settings`], or every [`ConstraintError`].
//!
//! The schema and rules are documented in `docs/requirements.md`.

pub mod bundle;
pub mod constrain;
pub mod effective;
pub mod integrity;
pub mod keys;
pub mod layers;
pub mod live;
pub mod schema;
pub mod source;
pub mod user_config;
pub mod values;

pub use bundle::{BundleCache, BundleError, VerifiedBundle, sign, verify};
pub use constrain::{ConstraintError, Resolved, Settings, Source, resolve};
pub use effective::{Effective, Entry, Origin, Setting, merge};
pub use integrity::{IntegrityError, TrustPolicy, check_file};
pub use keys::{PublicKey, SecretKey, Signature};
pub use layers::{Layer, LayerKind, LayerPaths, LoadError, load_local_layers, load_managed_dir};
pub use live::LiveRequirements;
pub use schema::Requirements;
pub use source::ParseError;
pub use user_config::{CliOverrides, UserConfig};
pub use values::InvalidValue;
