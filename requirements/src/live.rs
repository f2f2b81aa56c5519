//! Requirements that change while the supervisor runs: a valid change applies to sessions
//! started after it; an invalid one is refused and the last good set stays in force.

use std::sync::Arc;

use crate::effective::{Effective, merge};
use crate::integrity::TrustPolicy;
use crate::layers::{Layer, LayerPaths, LoadError, load_local_layers};

/// The last good effective requirements, and how to read them again.
#[derive(Debug)]
pub struct LiveRequirements {
    paths: LayerPaths,
    policy: TrustPolicy,
    bundle: Option<Layer>,
    local: Vec<Layer>,
    current: Arc<Effective>,
}

impl LiveRequirements {
    /// Loads the local layers; at start an error means Warden must not start.
    pub fn load(paths: LayerPaths, policy: TrustPolicy) -> Result<Self, LoadError> {
        let local = load_local_layers(&paths, &policy)?;
        let current = Arc::new(merge(&local));
        Ok(Self {
            paths,
            policy,
            bundle: None,
            local,
            current,
        })
    }

    /// The requirements for a session starting now; a session keeps the ones it started with.
    pub fn current(&self) -> Arc<Effective> {
        Arc::clone(&self.current)
    }

    /// Reads the local layers again, after a change on disk. On error nothing changes.
    pub fn reload(&mut self) -> Result<Arc<Effective>, LoadError> {
        self.local = load_local_layers(&self.paths, &self.policy)?;
        Ok(self.remerge())
    }

    /// Puts a newly verified cloud bundle's layer on top (or removes it with `None`).
    pub fn set_bundle(&mut self, bundle: Option<Layer>) -> Arc<Effective> {
        self.bundle = bundle;
        self.remerge()
    }

    fn remerge(&mut self) -> Arc<Effective> {
        let layers: Vec<Layer> = self.bundle.iter().chain(&self.local).cloned().collect();
        self.current = Arc::new(merge(&layers));
        self.current()
    }
}
