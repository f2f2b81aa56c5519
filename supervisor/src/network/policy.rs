//! The session's network policy: which names may be resolved, which addresses reached, and
//! which rule decided. Pure data and matching; the kernel maps and the DNS proxy apply it.
use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;
use warden_common::{RULE_DEFAULT_DENY, RULE_DNS_OVER_TLS, RULE_DNS_PROXY, RULE_FIRST_POLICY};

/// Package registries and code hosts an agent usually needs; used when nothing else is set.
pub const DEFAULT_ALLOWED_DOMAINS: &[&str] = &[
    "crates.io",
    "static.crates.io",
    "index.crates.io",
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "github.com",
    "api.github.com",
    "*.githubusercontent.com",
    "deb.debian.org",
];

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{source_name}: `{value}` is not a valid {what}: {reason}")]
pub struct PolicyError {
    pub source_name: String,
    pub value: String,
    pub what: &'static str,
    pub reason: String,
}

/// `example.com` (that name only) or `*.example.com` (any name below it, not itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainPattern {
    Exact(String),
    /// Stored with its leading dot: `.example.com`.
    Below(String),
}

impl FromStr for DomainPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, lower.clone()),
        };
        if name.is_empty() || name.len() > 253 {
            return Err("a domain name has 1 to 253 characters".into());
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("label `{label}` must have 1 to 63 characters"));
            }
            if !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "label `{label}` may only hold letters, digits, `-` and `_` \
                     (wildcards only as a leading `*.`)"
                ));
            }
        }
        Ok(if wild {
            DomainPattern::Below(format!(".{name}"))
        } else {
            DomainPattern::Exact(name)
        })
    }
}

impl DomainPattern {
    /// `name` must already be normalised (see `normalise`).
    pub fn matches(&self, name: &str) -> bool {
        match self {
            DomainPattern::Exact(n) => name == n,
            DomainPattern::Below(suffix) => name.ends_with(suffix.as_str()),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(n) => f.write_str(n),
            DomainPattern::Below(s) => write!(f, "*{s}"),
        }
    }
}

/// Lower case, without the root's trailing dot.
pub fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Where a rule came from and what it says, for the record of every decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The setting, e.g. `allowed_domains`.
    pub key: &'static str,
    pub value: String,
    /// e.g. `--allow-domain`, `built-in default`, or a file and line.
    pub source: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameVerdict {
    Allow(u32),
    Deny(u32),
}

/// Whether unlisted destinations are refused (enforce) or only recorded (observe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    Enforce,
    Observe,
}

#[derive(Clone, Debug)]
pub struct NetworkPolicy {
    pub mode: NetworkMode,
    allowed: Vec<(DomainPattern, u32)>,
    denied: Vec<(DomainPattern, u32)>,
    pub cidrs: Vec<(IpNet, u32)>,
    pub loopback_ports: Vec<(u16, u32)>,
    /// Policy rules by id - RULE_FIRST_POLICY.
    rules: Vec<Rule>,
}

impl NetworkPolicy {
    pub fn new(mode: NetworkMode) -> Self {
        Self {
            mode,
            allowed: Vec::new(),
            denied: Vec::new(),
            cidrs: Vec::new(),
            loopback_ports: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn add_rule(&mut self, key: &'static str, value: String, source: &str) -> u32 {
        self.rules.push(Rule {
            key,
            value,
            source: source.to_string(),
        });
        RULE_FIRST_POLICY + self.rules.len() as u32 - 1
    }

    fn pattern(value: &str, source: &str) -> Result<DomainPattern, PolicyError> {
        value.parse().map_err(|reason| PolicyError {
            source_name: source.to_string(),
            value: value.to_string(),
            what: "domain pattern",
            reason,
        })
    }

    pub fn allow_domain(&mut self, value: &str, source: &str) -> Result<(), PolicyError> {
        let p = Self::pattern(value, source)?;
        let id = self.add_rule("allowed_domains", p.to_string(), source);
        self.allowed.push((p, id));
        Ok(())
    }

    pub fn deny_domain(&mut self, value: &str, source: &str) -> Result<(), PolicyError> {
        let p = Self::pattern(value, source)?;
        let id = self.add_rule("denied_domains", p.to_string(), source);
        self.denied.push((p, id));
        Ok(())
    }

    pub fn allow_cidr(&mut self, value: &str, source: &str) -> Result<(), PolicyError> {
        // A bare address is a /32 or /128.
        let net = value
            .parse::<IpNet>()
            .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
            .map_err(|e| PolicyError {
                source_name: source.to_string(),
                value: value.to_string(),
                what: "CIDR",
                reason: e.to_string(),
            })?;
        let id = self.add_rule("allowed_cidrs", net.to_string(), source);
        self.cidrs.push((net.trunc(), id));
        Ok(())
    }

    pub fn allow_loopback_port(&mut self, port: u16, source: &str) {
        let id = self.add_rule("loopback_ports", port.to_string(), source);
        self.loopback_ports.push((port, id));
    }

    /// Deny wins over allow; a name no rule names is denied by the default rule.
    pub fn decide(&self, name: &str) -> NameVerdict {
        let name = normalise(name);
        if let Some((_, id)) = self.denied.iter().find(|(p, _)| p.matches(&name)) {
            return NameVerdict::Deny(*id);
        }
        match self.allowed.iter().find(|(p, _)| p.matches(&name)) {
            Some((_, id)) => NameVerdict::Allow(*id),
            None => NameVerdict::Deny(RULE_DEFAULT_DENY),
        }
    }

    /// The rule's name as recorded (`allowed_domains=*.example.com`, `default-deny`...).
    pub fn rule_name(&self, id: u32) -> String {
        match id {
            RULE_DEFAULT_DENY => "default-deny".into(),
            RULE_DNS_PROXY => "dns-proxy".into(),
            RULE_DNS_OVER_TLS => "dns-over-tls".into(),
            _ => match self.rule(id) {
                Some(r) => format!("{}={}", r.key, r.value),
                None => format!("rule-{id}"),
            },
        }
    }

    pub fn rule(&self, id: u32) -> Option<&Rule> {
        id.checked_sub(RULE_FIRST_POLICY)
            .and_then(|i| self.rules.get(i as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> NetworkPolicy {
        let mut p = NetworkPolicy::new(NetworkMode::Enforce);
        p.allow_domain("allowed.test", "--allow-domain").unwrap();
        p.allow_domain("*.wild.test", "--allow-domain").unwrap();
        p.deny_domain("bad.wild.test", "--deny-domain").unwrap();
        p
    }

    #[test]
    fn exact_wildcard_and_deny_wins() {
        let p = policy();
        let allow = |n| matches!(p.decide(n), NameVerdict::Allow(_));
        assert!(allow("allowed.test"));
        assert!(
            allow("ALLOWED.test."),
            "case and the root dot do not matter"
        );
        assert!(
            !allow("sub.allowed.test"),
            "an exact rule does not cover subdomains"
        );
        assert!(allow("a.wild.test"));
        assert!(allow("a.b.wild.test"));
        assert!(
            !allow("wild.test"),
            "`*.` covers names below, not the name itself"
        );
        assert!(!allow("notwild.test"));
        let NameVerdict::Deny(id) = p.decide("bad.wild.test") else {
            panic!()
        };
        assert_eq!(p.rule_name(id), "denied_domains=bad.wild.test");
        assert_eq!(p.rule(id).unwrap().source, "--deny-domain");
        assert_eq!(p.decide("other.test"), NameVerdict::Deny(RULE_DEFAULT_DENY));
        assert_eq!(p.rule_name(RULE_DEFAULT_DENY), "default-deny");
    }

    #[test]
    fn rejects_bad_patterns_and_cidrs_with_their_source() {
        let mut p = NetworkPolicy::new(NetworkMode::Enforce);
        let e = p.allow_domain("a.*.test", "config.toml:3").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config.toml:3: `a.*.test` is not a valid domain pattern"),
            "{e}"
        );
        assert!(p.allow_domain("", "x").is_err());
        assert!(p.allow_domain(&"a".repeat(64), "x").is_err());
        assert!(p.allow_domain("with space.test", "x").is_err());
        assert!(p.allow_cidr("10.0.0.0/33", "--allow-cidr").is_err());
        p.allow_cidr("10.1.2.3/8", "--allow-cidr").unwrap();
        p.allow_cidr("::1", "--allow-cidr").unwrap();
        assert_eq!(p.cidrs[0].0.to_string(), "10.0.0.0/8");
        assert_eq!(p.cidrs[1].0.to_string(), "::1/128");
    }
}
