//! The session's network policy: which names may be resolved, which addresses reached, and
//! which rule decided. Pure data and matching; the kernel maps and the DNS proxy apply it.
use ipnet::IpNet;
use std::path::PathBuf;

use warden_common::{
    RULE_APPROVED, RULE_CREDENTIAL_PROXY, RULE_DEFAULT_DENY, RULE_DNS_BUDGET, RULE_DNS_OVER_TLS,
    RULE_DNS_PROXY, RULE_FIRST_POLICY, RULE_UNIX_ABSTRACT_SCOPED, RULE_UNIX_AGENT_API,
    RULE_UNIX_NOT_CANONICAL, RULE_UNIX_SESSION_DIR,
};
use warden_requirements::values::DomainPattern;

/// Where a rule came from and what it says, for the record of every decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The setting, e.g. `allowed_domains`.
    pub key: &'static str,
    pub value: String,
    /// e.g. `--allow-domain`, `built-in default`, or a file and line.
    pub source: String,
    /// An administrator's requirement (decisions by it have the source `requirements`).
    pub from_requirements: bool,
}

/// Where a rule came from: its description, and whether it is a requirement.
pub struct RuleSource {
    pub text: String,
    pub from_requirements: bool,
}

impl From<&str> for RuleSource {
    fn from(text: &str) -> Self {
        Self {
            text: text.to_string(),
            from_requirements: false,
        }
    }
}

impl From<&warden_requirements::Source> for RuleSource {
    fn from(source: &warden_requirements::Source) -> Self {
        Self {
            text: source.to_string(),
            from_requirements: matches!(source, warden_requirements::Source::Requirement { .. }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameVerdict {
    Allow(u32),
    Deny(u32),
}

warden_wire::string_enum! {
    /// Whether unlisted destinations are refused (enforce) or only recorded (observe).
    NetworkMode, "network mode" {
        Enforce = "enforce",
        Observe = "observe",
    }
}

#[derive(Clone, Debug)]
pub struct NetworkPolicy {
    pub mode: NetworkMode,
    allowed: Vec<(DomainPattern, u32)>,
    denied: Vec<(DomainPattern, u32)>,
    pub cidrs: Vec<(IpNet, u32)>,
    pub loopback_ports: Vec<(u16, u32)>,
    /// Pathname UNIX sockets outside the session that it may reach.
    pub unix_sockets: Vec<(PathBuf, u32)>,
    /// ICMP echo (ping sockets) to the addresses the rest of the policy allows.
    pub allow_icmp: bool,
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
            unix_sockets: Vec::new(),
            allow_icmp: false,
            rules: Vec::new(),
        }
    }

    fn add_rule(&mut self, key: &'static str, value: String, source: RuleSource) -> u32 {
        self.rules.push(Rule {
            key,
            value,
            source: source.text,
            from_requirements: source.from_requirements,
        });
        RULE_FIRST_POLICY + self.rules.len() as u32 - 1
    }

    pub fn allow_domain(&mut self, pattern: DomainPattern, source: impl Into<RuleSource>) {
        let id = self.add_rule("allowed_domains", pattern.to_string(), source.into());
        self.allowed.push((pattern, id));
    }

    pub fn deny_domain(&mut self, pattern: DomainPattern, source: impl Into<RuleSource>) {
        let id = self.add_rule("denied_domains", pattern.to_string(), source.into());
        self.denied.push((pattern, id));
    }

    pub fn allow_cidr(&mut self, net: IpNet, source: impl Into<RuleSource>) {
        let id = self.add_rule("allowed_cidrs", net.to_string(), source.into());
        self.cidrs.push((net.trunc(), id));
    }

    pub fn allow_loopback_port(&mut self, port: u16, source: impl Into<RuleSource>) {
        let id = self.add_rule("loopback_ports", port.to_string(), source.into());
        self.loopback_ports.push((port, id));
    }

    pub fn allow_unix_socket(&mut self, path: PathBuf, source: impl Into<RuleSource>) {
        let id = self.add_rule(
            "allowed_unix_sockets",
            path.display().to_string(),
            source.into(),
        );
        self.unix_sockets.push((path, id));
    }

    /// Deny wins over allow; a name no rule names is denied by the default rule.
    pub fn decide(&self, name: &str) -> NameVerdict {
        if let Some((_, id)) = self.denied.iter().find(|(p, _)| p.matches(name)) {
            return NameVerdict::Deny(*id);
        }
        match self.allowed.iter().find(|(p, _)| p.matches(name)) {
            Some((_, id)) => NameVerdict::Allow(*id),
            None => NameVerdict::Deny(RULE_DEFAULT_DENY),
        }
    }

    /// The name of the allowing rule's pattern without its `*.` (`*.example.com` ->
    /// `example.com`): the registrable domain of the names it allows, for DNS budgets.
    pub fn allowed_base(&self, rule: u32) -> Option<&str> {
        self.allowed
            .iter()
            .find(|(_, id)| *id == rule)
            .map(|(p, _)| p.name())
    }

    /// The rule's name as recorded (`allowed_domains=*.example.com`, `default-deny`...).
    pub fn rule_name(&self, id: u32) -> String {
        match id {
            RULE_DEFAULT_DENY => "default-deny".into(),
            RULE_DNS_PROXY => "dns-proxy".into(),
            RULE_DNS_OVER_TLS => "dns-over-tls".into(),
            RULE_CREDENTIAL_PROXY => "credential-proxy".into(),
            RULE_APPROVED => "approval".into(),
            RULE_UNIX_SESSION_DIR => "session-socket-dir".into(),
            RULE_UNIX_NOT_CANONICAL => "not-canonical".into(),
            RULE_UNIX_ABSTRACT_SCOPED => "abstract-scoped".into(),
            RULE_UNIX_AGENT_API => "agent-api".into(),
            RULE_DNS_BUDGET => "dns-budget".into(),
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
    use std::net::IpAddr;

    use super::*;

    fn policy() -> NetworkPolicy {
        let mut p = NetworkPolicy::new(NetworkMode::Enforce);
        p.allow_domain("allowed.test".parse().unwrap(), "--allow-domain");
        p.allow_domain("*.wild.test".parse().unwrap(), "--allow-domain");
        p.deny_domain("bad.wild.test".parse().unwrap(), "--deny-domain");
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
        let NameVerdict::Allow(wild) = p.decide("a.b.wild.test") else {
            panic!()
        };
        assert_eq!(p.allowed_base(wild), Some("wild.test"));
        assert_eq!(p.allowed_base(RULE_DEFAULT_DENY), None);
    }

    #[test]
    fn cidrs_are_normalised() {
        let mut p = NetworkPolicy::new(NetworkMode::Enforce);
        p.allow_cidr("10.1.2.3/8".parse().unwrap(), "--allow-cidr");
        p.allow_cidr(
            IpNet::from("::1".parse::<IpAddr>().unwrap()),
            "--allow-cidr",
        );
        assert_eq!(p.cidrs[0].0.to_string(), "10.0.0.0/8");
        assert_eq!(p.cidrs[1].0.to_string(), "::1/128");
    }
}
