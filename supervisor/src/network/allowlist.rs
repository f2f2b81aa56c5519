//! The session's allow maps in the kernel, and what user space remembers about them (which
//! name each address was resolved from, for the record).
use std::{
    collections::HashMap as StdHashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use aya::maps::{HashMap, LpmTrie, MapData, MapError, lpm_trie::Key};
use warden_common::AllowEntry;

use super::policy::NetworkPolicy;

pub struct Allowlist {
    v4: HashMap<MapData, u32, AllowEntry>,
    v6: HashMap<MapData, [u32; 4], AllowEntry>,
    /// The name each allowed address came from (the latest one).
    names: StdHashMap<IpAddr, String>,
}

/// The kernel maps behind an `Allowlist`, as taken from the loaded object.
pub struct NetworkMaps {
    pub allow4: HashMap<MapData, u32, AllowEntry>,
    pub allow6: HashMap<MapData, [u32; 4], AllowEntry>,
    pub cidr4: LpmTrie<MapData, [u8; 4], u32>,
    pub cidr6: LpmTrie<MapData, [u8; 16], u32>,
    pub loopback_ports: HashMap<MapData, u16, u32>,
}

fn key4(ip: Ipv4Addr) -> u32 {
    // The kernel compares `user_ip4`, which holds the address in network byte order.
    u32::from_ne_bytes(ip.octets())
}

fn key6(ip: Ipv6Addr) -> [u32; 4] {
    let o = ip.octets();
    std::array::from_fn(|i| {
        u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
    })
}

impl Allowlist {
    /// Installs the policy's fixed part (CIDRs, loopback ports) and keeps the per-address maps.
    pub fn new(mut maps: NetworkMaps, policy: &NetworkPolicy) -> Result<Self, MapError> {
        for (net, rule) in &policy.cidrs {
            match net {
                ipnet::IpNet::V4(n) => maps.cidr4.insert(
                    &Key::new(u32::from(n.prefix_len()), n.network().octets()),
                    rule,
                    0,
                )?,
                ipnet::IpNet::V6(n) => maps.cidr6.insert(
                    &Key::new(u32::from(n.prefix_len()), n.network().octets()),
                    rule,
                    0,
                )?,
            }
        }
        for (port, rule) in &policy.loopback_ports {
            maps.loopback_ports.insert(port, rule, 0)?;
        }
        Ok(Self {
            v4: maps.allow4,
            v6: maps.allow6,
            names: StdHashMap::new(),
        })
    }

    /// Allows `ip` until `until_boot_ns` (an existing later expiry is kept).
    pub fn allow(
        &mut self,
        ip: IpAddr,
        until_boot_ns: u64,
        rule: u32,
        name: &str,
    ) -> Result<(), MapError> {
        let entry = |old: Option<AllowEntry>| AllowEntry {
            expires_boot_ns: old.map_or(until_boot_ns, |o| o.expires_boot_ns.max(until_boot_ns)),
            rule,
            _pad: 0,
        };
        match ip {
            IpAddr::V4(a) => {
                let k = key4(a);
                let e = entry(self.v4.get(&k, 0).ok());
                self.v4.insert(k, e, 0)?;
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.allow(IpAddr::V4(v4), until_boot_ns, rule, name);
                }
                let k = key6(a);
                let e = entry(self.v6.get(&k, 0).ok());
                self.v6.insert(k, e, 0)?;
            }
        }
        self.names.insert(ip, name.to_string());
        Ok(())
    }

    pub fn name_of(&self, ip: &IpAddr) -> Option<&str> {
        self.names.get(ip).map(String::as_str)
    }

    /// Removes entries that expired before `now_boot_ns` (the kernel already ignores them;
    /// this keeps the maps small). Returns the addresses removed.
    pub fn remove_expired(&mut self, now_boot_ns: u64) -> Vec<IpAddr> {
        let expired = |e: &AllowEntry| e.expires_boot_ns != 0 && e.expires_boot_ns <= now_boot_ns;
        let v4: Vec<u32> = self
            .v4
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, e)| expired(e))
            .map(|(k, _)| k)
            .collect();
        let v6: Vec<[u32; 4]> = self
            .v6
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, e)| expired(e))
            .map(|(k, _)| k)
            .collect();
        let mut removed = Vec::new();
        for k in v4 {
            if self.v4.remove(&k).is_ok() {
                removed.push(IpAddr::V4(Ipv4Addr::from(k.to_ne_bytes())));
            }
        }
        for k in v6 {
            if self.v6.remove(&k).is_ok() {
                let bytes: Vec<u8> = k.iter().flat_map(|w| w.to_ne_bytes()).collect();
                let octets: [u8; 16] = bytes.try_into().expect("16 bytes");
                removed.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
        }
        for ip in &removed {
            self.names.remove(ip);
        }
        removed
    }
}

/// How long an answer's addresses stay allowed: the record's TTL, but at least `floor`
/// (applications cache answers longer than they should).
pub fn lifetime(ttl_secs: u32, floor: Duration) -> Duration {
    Duration::from_secs(u64::from(ttl_secs)).max(floor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_in_network_byte_order() {
        assert_eq!(
            key4(Ipv4Addr::new(127, 0, 0, 1)).to_ne_bytes(),
            [127, 0, 0, 1]
        );
        let k = key6(Ipv6Addr::LOCALHOST);
        assert_eq!(k[3].to_ne_bytes(), [0, 0, 0, 1]);
        assert_eq!(lifetime(1, Duration::from_secs(5)), Duration::from_secs(5));
        assert_eq!(
            lifetime(300, Duration::from_secs(5)),
            Duration::from_secs(300)
        );
    }
}
