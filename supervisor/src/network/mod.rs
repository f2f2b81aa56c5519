//! The session's network allowlist: policy, the kernel allow maps, and the DNS proxy that
//! opens addresses for allowed names.
pub mod allowlist;
pub mod connect_activity;
pub mod dns_budget;
pub mod dns_proxy;
pub use warden_policy::network as policy;
pub mod unix_sockets;
pub mod upstream;

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
};

use crate::decode::Labels;

/// Names for what the kernel reports by number: rule ids and resolved addresses.
/// What the session's kernel records name by number: network rules and allowed names, and
/// the protected paths of the LSM file_open program.
pub struct SessionLabels {
    pub policy: Arc<policy::NetworkPolicy>,
    pub allowlist: Arc<Mutex<allowlist::Allowlist>>,
    /// Escaped, by index.
    pub protected: Vec<String>,
}

impl Labels for SessionLabels {
    fn rule(&self, id: u32) -> (String, Option<String>) {
        (
            self.policy.rule_name(id),
            self.policy.rule(id).map(|r| r.source.clone()),
        )
    }

    fn domain(&self, ip: &IpAddr) -> Option<String> {
        self.allowlist
            .lock()
            .expect("allowlist lock")
            .name_of(ip)
            .map(str::to_string)
    }

    fn protected_path(&self, index: u32) -> Option<String> {
        self.protected.get(index as usize).cloned()
    }
}
