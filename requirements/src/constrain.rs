//! Resolving the final settings: the user's choices (config file, then command line flags)
//! checked against the effective requirements, with built-in defaults for the rest.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml::Spanned;

use crate::effective::{Effective, Origin, Setting, to_value};
use crate::schema::DnsBudget;
use crate::source::Location;
use crate::user_config::{CliOverrides, UserConfig, UserSettings, flags};
use crate::values::{
    ApprovalPolicy, Argv, BacklogPolicy, Cidr, ConfigPath, CredentialsStore, DnsUpstream,
    DomainPattern, EntropyBits, EnvPattern, ExecRule, HttpUrl, KernelLayer, NonEmpty, OtlpHeader,
    OtlpProtocol, Reviewer, SandboxMode,
};

pub const DEFAULT_SANDBOX_MODE: SandboxMode = SandboxMode::WorkspaceWrite;
pub const DEFAULT_APPROVAL_POLICY: ApprovalPolicy = ApprovalPolicy::OnRequest;
pub const DEFAULT_REVIEWER: Reviewer = Reviewer::User;
pub const DEFAULT_DNS_TTL_FLOOR_SECS: u32 = 60;
/// Telemetry that may wait for the collector, by default (MiB of audit log).
pub const DEFAULT_MAX_EXPORT_BACKLOG_MIB: u32 = 256;
/// Nothing is lost by default: the session waits for the collector.
pub const DEFAULT_EXPORT_BACKLOG_POLICY: BacklogPolicy = BacklogPolicy::Pause;
/// DNS budgets by default. Measured in a real session through Warden's proxy (fresh caches:
/// `cargo fetch` of serde, serde_json, tokio, clap, anyhow, regex, reqwest, rand: 100+
/// crates; `pip download` of requests, numpy, flask, django, pytest, pandas, boto3; `npm
/// install` of express, react, lodash, typescript, webpack, eslint, jest; a `git clone` from
/// github.com, which could not connect from that machine): 12 queries of 5 names
/// (index.crates.io, pypi.org, files.pythonhosted.org, registry.npmjs.org, github.com), 1
/// name per registrable domain, longest label 12 (`pythonhosted`), highest entropy 3.68
/// bits/char (a whole name; no label lay below an allowed pattern's base), about 520 query
/// bytes in the busiest minute (176 for one domain, sizes estimated as header, question and
/// EDNS record). The defaults leave 100-200x on counts and bytes, 4x on length.
pub const DEFAULT_DNS_UNIQUE_NAMES_PER_SESSION: u32 = 1000;
pub const DEFAULT_DNS_UNIQUE_NAMES_PER_DOMAIN: u32 = 100;
/// Below the 63 that tunnels (iodine, dnscat2) fill; a 48-hex-digit label passes and is
/// bounded by the name counts instead.
pub const DEFAULT_DNS_MAX_LABEL_LENGTH: u32 = 52;
/// Ordinary long labels measure 3.2-3.9 (`crates-io-index-mirror-eu` 3.54); random base32 of
/// 48 characters averages 4.44, of 63 characters 4.6. Hex never exceeds 4 bits: the counts
/// bound it.
pub const DEFAULT_DNS_MAX_LABEL_ENTROPY_BITS: f64 = 4.4;
pub const DEFAULT_DNS_QUERY_BYTES_PER_MINUTE_PER_SESSION: u32 = 65_536;
pub const DEFAULT_DNS_QUERY_BYTES_PER_MINUTE_PER_DOMAIN: u32 = 16_384;
/// VCS hooks and config are protected unless the user turns it off.
pub const DEFAULT_PROTECT_VCS_METADATA: bool = true;
/// Package registries, allowed unless a requirement sets `network.allowed_domains`.
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

/// Where a final value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// Nothing chose it; it is Warden's built-in default.
    Default,
    Requirement {
        key: &'static str,
        #[serde(flatten)]
        origin: Origin,
    },
    UserConfig {
        /// Dotted key with the list index, e.g. `network.allowed_domains[1]`.
        key: String,
        #[serde(flatten)]
        location: Location,
    },
    CommandLine {
        flag: &'static str,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("built-in default"),
            Self::Requirement { key, origin } => write!(f, "requirement {key} at {origin}"),
            Self::UserConfig { key, location } => write!(f, "{key} at {location}"),
            Self::CommandLine { flag } => write!(f, "command line flag {flag}"),
        }
    }
}

/// A final value and where it came from, for the supervisor's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resolved<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Resolved<T> {
    fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Resolved<U> {
        Resolved::new(f(self.value), self.source)
    }
}

/// Everything the supervisor needs to run a session, each value with its provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub sandbox_mode: Resolved<SandboxMode>,
    pub approval_policy: Resolved<ApprovalPolicy>,
    pub reviewer: Resolved<Reviewer>,
    pub reviewer_command: Option<Resolved<Argv>>,
    pub network: NetworkSettings,
    pub exec: ExecSettings,
    pub filesystem: FilesystemSettings,
    pub telemetry: TelemetrySettings,
    /// When set, credentials must live in this store.
    pub credentials_store: Option<Resolved<CredentialsStore>>,
    pub login: LoginSettings,
    /// Kernel layers a session may not start without.
    pub required_layers: Vec<Resolved<KernelLayer>>,
    pub environment: EnvironmentSettings,
}

/// What of the inherited environment reaches the agent, beyond the built-in judgement of
/// names that look secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvironmentSettings {
    /// Passed on although their names look secret (the user's config and `--pass-env`).
    pub pass: Vec<Resolved<EnvPattern>>,
    /// Never passed on (the requirements' `credentials.scrub_env`).
    pub scrub: Vec<Resolved<EnvPattern>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetworkSettings {
    pub allowed_domains: Vec<Resolved<DomainPattern>>,
    /// Wins over `allowed_domains` wherever both match.
    pub denied_domains: Vec<Resolved<DomainPattern>>,
    pub allowed_cidrs: Vec<Resolved<Cidr>>,
    pub loopback_ports: Vec<Resolved<u16>>,
    /// Canonical absolute paths, none of them denied by the requirements.
    pub allowed_unix_sockets: Vec<Resolved<PathBuf>>,
    /// ICMP echo (ping) to the allowed addresses (default false).
    pub allow_icmp: Resolved<bool>,
    /// Empty: use the system's resolvers.
    pub dns_upstream: Vec<Resolved<DnsUpstream>>,
    pub dns_ttl_floor_secs: Resolved<u32>,
    /// Set (and true) when the requirements allow no domains but theirs: a name they do not
    /// allow cannot be approved during a session either.
    pub managed_allowed_domains_only: Option<Resolved<bool>>,
    pub dns_budget: DnsBudgetSettings,
}

/// The DNS budgets in force: each the user's value, at most the requirement's ceiling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsBudgetSettings {
    pub unique_names_per_session: Resolved<u32>,
    pub unique_names_per_domain: Resolved<u32>,
    pub max_label_length: Resolved<u32>,
    pub max_label_entropy_bits: Resolved<EntropyBits>,
    pub query_bytes_per_minute_per_session: Resolved<u32>,
    pub query_bytes_per_minute_per_domain: Resolved<u32>,
}

/// Both lists apply; where rules of both match a command, the strictest decision wins. A
/// user's `allow` never overrides a requirement's `prompt` or `forbidden`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExecSettings {
    pub required_rules: Vec<Resolved<ExecRule>>,
    pub user_rules: Vec<Resolved<ExecRule>>,
}

/// Paths with `~` expanded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilesystemSettings {
    /// Extra write roots, besides the workspace.
    pub write_roots: Vec<Resolved<PathBuf>>,
    pub denied_reads: Vec<Resolved<PathBuf>>,
    /// Must stay read-only even inside a write root.
    pub forbidden_write_roots: Vec<Resolved<PathBuf>>,
    /// VCS hooks and config in write roots are read-only in the session.
    pub protect_vcs_metadata: Resolved<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TelemetrySettings {
    pub otlp_endpoint: Option<Resolved<HttpUrl>>,
    pub otlp_protocol: Option<Resolved<OtlpProtocol>>,
    pub log_prompts: Resolved<bool>,
    /// The requirements' headers, then the user's.
    pub otlp_headers: Vec<Resolved<OtlpHeader>>,
    /// `~` expanded.
    pub otlp_ca_file: Option<Resolved<PathBuf>>,
    pub max_export_backlog_mib: Resolved<u32>,
    pub export_backlog_policy: Resolved<BacklogPolicy>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoginSettings {
    pub method: Option<Resolved<NonEmpty>>,
    pub workspace_id: Option<Resolved<NonEmpty>>,
}

/// The requirement a user value breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequirementRef {
    pub key: &'static str,
    /// The requirement's value, as TOML.
    pub value: String,
    pub origin: Origin,
}

impl RequirementRef {
    fn of<T: Serialize>(key: &'static str, setting: &Setting<T>) -> Self {
        debug_assert!(
            Effective::KEYS.contains(&key),
            "{key} is not a requirement key"
        );
        Self {
            key,
            value: to_value(&setting.value).to_string(),
            origin: setting.origin.clone(),
        }
    }
}

/// A user or command line value outside the requirements.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConstraintError {
    /// The offending value, as TOML.
    pub value: String,
    /// Where the value was given.
    pub given_by: Source,
    /// What is wrong with it, e.g. "is not allowed".
    pub problem: String,
    pub requirement: Option<RequirementRef>,
}

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.given_by, self.value, self.problem)?;
        if let Some(req) = &self.requirement {
            write!(
                f,
                "; requirement {} = {} at {}",
                req.key, req.value, req.origin
            )?;
        }
        Ok(())
    }
}

/// Checks the user's choices against `effective` and fills in defaults. `home` is the user's
/// home directory, for `~` in paths. Either every value is inside the requirements and the
/// complete settings come back, or every problem found does: nothing is half-applied.
pub fn resolve(
    effective: &Effective,
    user: Option<&UserConfig>,
    cli: &CliOverrides,
    home: &Path,
) -> Result<Settings, Vec<ConstraintError>> {
    let mut check = Checker {
        user,
        home,
        errors: Vec::new(),
    };
    let eff = effective;

    let sandbox_mode = check.choose(
        check.scalar(
            "sandbox_mode",
            |u| u.sandbox_mode.as_ref(),
            flags::SANDBOX_MODE,
            cli.sandbox_mode,
        ),
        DEFAULT_SANDBOX_MODE,
        "allowed_sandbox_modes",
        eff.allowed_sandbox_modes.as_ref(),
    );
    let approval_policy = check.choose(
        check.scalar(
            "approval_policy",
            |u| u.approval_policy.as_ref(),
            flags::APPROVAL_POLICY,
            cli.approval_policy,
        ),
        DEFAULT_APPROVAL_POLICY,
        "allowed_approval_policies",
        eff.allowed_approval_policies.as_ref(),
    );
    let reviewer = check.choose(
        check.scalar(
            "reviewer",
            |u| u.reviewer.as_ref(),
            flags::REVIEWER,
            cli.reviewer,
        ),
        DEFAULT_REVIEWER,
        "allowed_reviewers",
        eff.allowed_reviewers.as_ref(),
    );
    let reviewer_command = required("reviewer_command", eff.reviewer_command.as_ref());
    if reviewer.value == Reviewer::External && reviewer_command.is_none() {
        check.reject(
            &reviewer,
            "needs the requirement reviewer_command, which no layer sets",
            None,
        );
    }

    let network = check.network(eff, cli);
    let exec = ExecSettings {
        required_rules: eff.exec_rules.as_ref().map_or_else(Vec::new, |rules| {
            rules
                .value
                .iter()
                .map(|rule| {
                    Resolved::new(
                        ExecRule::from(rule.get_ref().clone()),
                        Source::Requirement {
                            key: "exec.rules",
                            origin: rules.origin.at(rule),
                        },
                    )
                })
                .collect()
        }),
        user_rules: check.list(
            "exec.rules",
            |u| &u.exec.rules,
            flags::EXEC_RULE,
            &cli.exec_rules,
        ),
    };
    let filesystem = check.filesystem(eff, cli);

    let otlp_endpoint = check.forced(
        check.scalar(
            "telemetry.otlp_endpoint",
            |u| u.telemetry.otlp_endpoint.as_ref(),
            flags::OTLP_ENDPOINT,
            cli.otlp_endpoint.clone(),
        ),
        "telemetry.otlp_endpoint",
        eff.otlp_endpoint.as_ref(),
    );
    let otlp_protocol = check.forced(
        check.scalar(
            "telemetry.otlp_protocol",
            |u| u.telemetry.otlp_protocol.as_ref(),
            flags::OTLP_PROTOCOL,
            cli.otlp_protocol,
        ),
        "telemetry.otlp_protocol",
        eff.otlp_protocol.as_ref(),
    );
    let telemetry = TelemetrySettings {
        otlp_endpoint,
        otlp_protocol,
        log_prompts: required("telemetry.log_prompts", eff.log_prompts.as_ref())
            .unwrap_or_else(|| Resolved::new(false, Source::Default)),
        ..check.telemetry(eff, cli)
    };
    let environment = check.environment(eff, cli);

    if !check.errors.is_empty() {
        return Err(check.errors);
    }
    Ok(Settings {
        sandbox_mode,
        approval_policy,
        reviewer,
        reviewer_command,
        network,
        exec,
        filesystem,
        telemetry,
        credentials_store: required("credentials.store", eff.credentials_store.as_ref()),
        login: LoginSettings {
            method: required("login.method", eff.login_method.as_ref()),
            workspace_id: required("login.workspace_id", eff.login_workspace_id.as_ref()),
        },
        required_layers: required_list("required_layers", eff.required_layers.as_ref()),
        environment,
    })
}

/// A value only requirements set.
fn required<T: Clone>(key: &'static str, setting: Option<&Setting<T>>) -> Option<Resolved<T>> {
    setting.map(|s| Resolved::new(s.value.clone(), requirement_source(key, s)))
}

fn requirement_source<T>(key: &'static str, setting: &Setting<T>) -> Source {
    Source::Requirement {
        key,
        origin: setting.origin.clone(),
    }
}

/// The elements of a requirement list, each citing the list.
fn required_list<T: Clone>(
    key: &'static str,
    setting: Option<&Setting<Vec<T>>>,
) -> Vec<Resolved<T>> {
    setting.map_or_else(Vec::new, |s| {
        s.value
            .iter()
            .map(|v| Resolved::new(v.clone(), requirement_source(key, s)))
            .collect()
    })
}

struct Checker<'a> {
    user: Option<&'a UserConfig>,
    home: &'a Path,
    errors: Vec<ConstraintError>,
}

impl Checker<'_> {
    fn user_source<T>(&self, key: String, value: &Spanned<T>) -> Option<Source> {
        self.user.map(|user| Source::UserConfig {
            key,
            location: Location::new(user.source(), value.span()),
        })
    }

    /// A single value: the command line flag, else the user config, else `None`.
    fn scalar<T: Clone>(
        &self,
        key: &str,
        get: impl Fn(&UserSettings) -> Option<&Spanned<T>>,
        flag: &'static str,
        cli: Option<T>,
    ) -> Option<Resolved<T>> {
        if let Some(value) = cli {
            return Some(Resolved::new(value, Source::CommandLine { flag }));
        }
        self.configured(key, get)
    }

    /// A single value of the user config (a key with no command line flag).
    fn configured<T: Clone>(
        &self,
        key: &str,
        get: impl Fn(&UserSettings) -> Option<&Spanned<T>>,
    ) -> Option<Resolved<T>> {
        let value = get(self.user?.settings())?;
        let source = self.user_source(key.to_owned(), value)?;
        Some(Resolved::new(value.get_ref().clone(), source))
    }

    /// A list: the user config's elements, then the command line's.
    fn list<T: Clone>(
        &self,
        key: &str,
        get: impl Fn(&UserSettings) -> &Vec<Spanned<T>>,
        flag: &'static str,
        cli: &[T],
    ) -> Vec<Resolved<T>> {
        let from_file = self.user.into_iter().flat_map(|user| {
            get(user.settings())
                .iter()
                .enumerate()
                .filter_map(move |(i, value)| {
                    let source = self.user_source(format!("{key}[{i}]"), value)?;
                    Some(Resolved::new(value.get_ref().clone(), source))
                })
        });
        let from_flags = cli
            .iter()
            .map(|value| Resolved::new(value.clone(), Source::CommandLine { flag }));
        from_file.chain(from_flags).collect()
    }

    fn reject<T: Serialize>(
        &mut self,
        value: &Resolved<T>,
        problem: impl Into<String>,
        requirement: Option<RequirementRef>,
    ) {
        self.errors.push(ConstraintError {
            value: to_value(&value.value).to_string(),
            given_by: value.source.clone(),
            problem: problem.into(),
            requirement,
        });
    }

    /// One value from an `allowed_*` list. With no choice made, the built-in default if the
    /// list allows it, else the list's first value.
    fn choose<T: Copy + PartialEq + Serialize>(
        &mut self,
        chosen: Option<Resolved<T>>,
        default: T,
        key: &'static str,
        allowed: Option<&Setting<Vec<T>>>,
    ) -> Resolved<T> {
        let Some(allowed) = allowed else {
            return chosen.unwrap_or_else(|| Resolved::new(default, Source::Default));
        };
        match chosen {
            Some(chosen) => {
                if !allowed.value.contains(&chosen.value) {
                    self.reject(
                        &chosen,
                        "is not allowed",
                        Some(RequirementRef::of(key, allowed)),
                    );
                }
                chosen
            }
            None if allowed.value.contains(&default) => Resolved::new(default, Source::Default),
            None => match allowed.value.first() {
                Some(&first) => Resolved::new(first, requirement_source(key, allowed)),
                None => {
                    let default = Resolved::new(default, Source::Default);
                    self.reject(
                        &default,
                        "is not allowed, and the requirement allows no value at all",
                        Some(RequirementRef::of(key, allowed)),
                    );
                    default
                }
            },
        }
    }

    /// Keeps the values lying `inside` some element of the requirement list `cap`, when it is
    /// set; the others are errors.
    fn within<T: Serialize, C: Serialize>(
        &mut self,
        values: Vec<Resolved<T>>,
        key: &'static str,
        cap: Option<&Setting<Vec<C>>>,
        problem: &str,
        inside: impl Fn(&C, &T) -> bool,
    ) -> Vec<Resolved<T>> {
        if let Some(cap) = cap {
            for value in &values {
                if !cap.value.iter().any(|c| inside(c, &value.value)) {
                    self.reject(value, problem, Some(RequirementRef::of(key, cap)));
                }
            }
        }
        values
    }

    /// A value under a requirement's ceiling: the user may choose less, never more. With no
    /// choice made, the default, or the ceiling where it is lower.
    fn at_most<T: Copy + PartialOrd + Serialize>(
        &mut self,
        chosen: Option<Resolved<T>>,
        default: T,
        key: &'static str,
        ceiling: Option<&Setting<T>>,
    ) -> Resolved<T> {
        match (chosen, ceiling) {
            (Some(chosen), Some(ceiling)) => {
                if chosen.value > ceiling.value {
                    self.reject(
                        &chosen,
                        "is more than the requirements allow",
                        Some(RequirementRef::of(key, ceiling)),
                    );
                }
                chosen
            }
            (Some(chosen), None) => chosen,
            (None, Some(ceiling)) if ceiling.value < default => {
                Resolved::new(ceiling.value, requirement_source(key, ceiling))
            }
            (None, _) => Resolved::new(default, Source::Default),
        }
    }

    /// A value a requirement may force: with it set, the user may only repeat it.
    fn forced<T: Clone + PartialEq + Serialize>(
        &mut self,
        chosen: Option<Resolved<T>>,
        key: &'static str,
        required: Option<&Setting<T>>,
    ) -> Option<Resolved<T>> {
        let Some(required) = required else {
            return chosen;
        };
        if let Some(chosen) = chosen.filter(|c| c.value != required.value) {
            self.reject(
                &chosen,
                "differs from the value the requirements force",
                Some(RequirementRef::of(key, required)),
            );
        }
        Some(Resolved::new(
            required.value.clone(),
            requirement_source(key, required),
        ))
    }

    fn network(&mut self, eff: &Effective, cli: &CliOverrides) -> NetworkSettings {
        let mut allowed_domains = match &eff.allowed_domains {
            Some(_) => required_list("network.allowed_domains", eff.allowed_domains.as_ref()),
            None => DEFAULT_ALLOWED_DOMAINS
                .iter()
                .filter_map(|d| d.parse().ok())
                .map(|d| Resolved::new(d, Source::Default))
                .collect(),
        };
        let managed_only = eff
            .managed_allowed_domains_only
            .as_ref()
            .filter(|s| s.value);
        let base_len = allowed_domains.len();
        for domain in self.list(
            "network.allowed_domains",
            |u| &u.network.allowed_domains,
            flags::ALLOW_DOMAIN,
            &cli.allowed_domains,
        ) {
            let denied = eff
                .denied_domains
                .as_ref()
                .filter(|denied| denied.value.iter().any(|d| d.covers(&domain.value)));
            if let Some(denied) = denied {
                self.reject(
                    &domain,
                    "is denied",
                    Some(RequirementRef::of("network.denied_domains", denied)),
                );
            } else if let Some(managed_only) = managed_only {
                // Naming a domain the requirements already allow adds nothing, so it is fine.
                let covered = allowed_domains[..base_len]
                    .iter()
                    .any(|a| a.value.covers(&domain.value));
                if !covered {
                    self.reject(
                        &domain,
                        "cannot be added: only the requirements' domains are allowed",
                        Some(RequirementRef::of(
                            "network.managed_allowed_domains_only",
                            managed_only,
                        )),
                    );
                }
            } else {
                allowed_domains.push(domain);
            }
        }

        let mut denied_domains =
            required_list("network.denied_domains", eff.denied_domains.as_ref());
        denied_domains.extend(self.list(
            "network.denied_domains",
            |u| &u.network.denied_domains,
            flags::DENY_DOMAIN,
            &cli.denied_domains,
        ));

        let cidrs = self.list(
            "network.allowed_cidrs",
            |u| &u.network.allowed_cidrs,
            flags::ALLOW_CIDR,
            &cli.allowed_cidrs,
        );
        let ports = self.list(
            "network.loopback_ports",
            |u| &u.network.loopback_ports,
            flags::LOOPBACK_PORT,
            &cli.loopback_ports,
        );
        let allowed_unix_sockets = self.unix_sockets(eff, cli);
        let icmp = self.scalar(
            "network.allow_icmp",
            |u| u.network.allow_icmp.as_ref(),
            flags::ALLOW_ICMP,
            cli.allow_icmp,
        );
        let allow_icmp = self
            .forced(icmp, "network.allow_icmp", eff.allow_icmp.as_ref())
            .unwrap_or_else(|| Resolved::new(false, Source::Default));
        NetworkSettings {
            allowed_domains,
            denied_domains,
            allowed_unix_sockets,
            allow_icmp,
            allowed_cidrs: self.within(
                cidrs,
                "network.allowed_cidrs",
                eff.allowed_cidrs.as_ref(),
                "is outside every allowed network",
                Cidr::contains,
            ),
            loopback_ports: self.within(
                ports,
                "network.loopback_ports",
                eff.loopback_ports.as_ref(),
                "is not an allowed loopback port",
                PartialEq::eq,
            ),
            dns_upstream: self.list(
                "network.dns_upstream",
                |u| &u.network.dns_upstream,
                flags::DNS_UPSTREAM,
                &cli.dns_upstream,
            ),
            dns_ttl_floor_secs: self
                .scalar(
                    "network.dns_ttl_floor_secs",
                    |u| u.network.dns_ttl_floor_secs.as_ref(),
                    flags::DNS_TTL_FLOOR_SECS,
                    cli.dns_ttl_floor_secs,
                )
                .unwrap_or_else(|| Resolved::new(DEFAULT_DNS_TTL_FLOOR_SECS, Source::Default)),
            managed_allowed_domains_only: required(
                "network.managed_allowed_domains_only",
                eff.managed_allowed_domains_only.as_ref(),
            )
            .filter(|r| r.value),
            dns_budget: self.dns_budget(eff),
        }
    }

    /// One counted budget: the user config's value under the requirement's ceiling. A budget
    /// of 0 would refuse every name (that is `denied_domains`' job), so it is an error.
    fn budget_count(
        &mut self,
        key: &'static str,
        get: fn(&DnsBudget) -> Option<&Spanned<u32>>,
        default: u32,
        ceiling: Option<&Setting<u32>>,
    ) -> Resolved<u32> {
        let chosen = self.configured(key, |u| get(&u.network.dns_budget));
        let value = self.at_most(chosen, default, key, ceiling);
        if value.value == 0 {
            self.reject(&value, "must be at least 1", None);
        }
        value
    }

    /// Each budget within its ceiling.
    fn dns_budget(&mut self, eff: &Effective) -> DnsBudgetSettings {
        let unique_names_per_session = self.budget_count(
            "network.dns_budget.unique_names_per_session",
            |b| b.unique_names_per_session.as_ref(),
            DEFAULT_DNS_UNIQUE_NAMES_PER_SESSION,
            eff.dns_unique_names_per_session.as_ref(),
        );
        let unique_names_per_domain = self.budget_count(
            "network.dns_budget.unique_names_per_domain",
            |b| b.unique_names_per_domain.as_ref(),
            DEFAULT_DNS_UNIQUE_NAMES_PER_DOMAIN,
            eff.dns_unique_names_per_domain.as_ref(),
        );
        let max_label_length = self.budget_count(
            "network.dns_budget.max_label_length",
            |b| b.max_label_length.as_ref(),
            DEFAULT_DNS_MAX_LABEL_LENGTH,
            eff.dns_max_label_length.as_ref(),
        );
        let query_bytes_per_minute_per_session = self.budget_count(
            "network.dns_budget.query_bytes_per_minute_per_session",
            |b| b.query_bytes_per_minute_per_session.as_ref(),
            DEFAULT_DNS_QUERY_BYTES_PER_MINUTE_PER_SESSION,
            eff.dns_query_bytes_per_minute_per_session.as_ref(),
        );
        let query_bytes_per_minute_per_domain = self.budget_count(
            "network.dns_budget.query_bytes_per_minute_per_domain",
            |b| b.query_bytes_per_minute_per_domain.as_ref(),
            DEFAULT_DNS_QUERY_BYTES_PER_MINUTE_PER_DOMAIN,
            eff.dns_query_bytes_per_minute_per_domain.as_ref(),
        );
        let entropy_key = "network.dns_budget.max_label_entropy_bits";
        let entropy = self.configured(entropy_key, |u| {
            u.network.dns_budget.max_label_entropy_bits.as_ref()
        });
        let max_label_entropy_bits = self.at_most(
            entropy,
            EntropyBits::new(DEFAULT_DNS_MAX_LABEL_ENTROPY_BITS).expect("a valid default"),
            entropy_key,
            eff.dns_max_label_entropy_bits.as_ref(),
        );
        DnsBudgetSettings {
            unique_names_per_session,
            unique_names_per_domain,
            max_label_length,
            max_label_entropy_bits,
            query_bytes_per_minute_per_session,
            query_bytes_per_minute_per_domain,
        }
    }

    /// The user's pathname sockets: canonical absolute paths (the kernel decides on the
    /// spelling, so another spelling of the same file would not be the same rule), none of them
    /// at or beneath a path the requirements deny.
    fn unix_sockets(&mut self, eff: &Effective, cli: &CliOverrides) -> Vec<Resolved<PathBuf>> {
        let home = self.home;
        let paths: Vec<Resolved<PathBuf>> = self
            .list(
                "network.allowed_unix_sockets",
                |u| &u.network.allowed_unix_sockets,
                flags::ALLOW_UNIX_SOCKET,
                &cli.allowed_unix_sockets,
            )
            .into_iter()
            .map(|p| p.map(|p| p.expand(home)))
            .collect();
        for p in &paths {
            if !is_canonical_absolute(&p.value) {
                self.reject(
                    p,
                    "is not a canonical absolute path (no `.`, `..`, `//` or trailing `/`)",
                    None,
                );
            }
            if let Some(denied) = &eff.denied_unix_sockets
                && denied
                    .value
                    .iter()
                    .any(|d| p.value.starts_with(d.expand(home)))
            {
                self.reject(
                    p,
                    "is a socket the requirements deny",
                    Some(RequirementRef::of("network.denied_unix_sockets", denied)),
                );
            }
        }
        paths
    }

    /// Headers, CA and backlog limits (endpoint, protocol and prompts are resolved by the
    /// caller, which overrides those fields).
    fn telemetry(&mut self, eff: &Effective, cli: &CliOverrides) -> TelemetrySettings {
        let mut otlp_headers = required_list("telemetry.otlp_headers", eff.otlp_headers.as_ref());
        let required_names: Vec<String> = otlp_headers
            .iter()
            .map(|h| h.value.name().to_owned())
            .collect();
        let user_headers = self.list(
            "telemetry.otlp_headers",
            |u| &u.telemetry.otlp_headers,
            flags::OTLP_HEADER,
            &cli.otlp_headers,
        );
        for header in user_headers {
            if required_names.iter().any(|n| n == header.value.name()) {
                let req = eff
                    .otlp_headers
                    .as_ref()
                    .map(|r| RequirementRef::of("telemetry.otlp_headers", r));
                self.reject(&header, "sets a header the requirements set", req);
            } else {
                otlp_headers.push(header);
            }
        }
        let home = self.home;
        let ca = self.scalar(
            "telemetry.otlp_ca_file",
            |u| u.telemetry.otlp_ca_file.as_ref(),
            flags::OTLP_CA_FILE,
            cli.otlp_ca_file.clone(),
        );
        let otlp_ca_file = self
            .forced(ca, "telemetry.otlp_ca_file", eff.otlp_ca_file.as_ref())
            .map(|p| p.map(|p| p.expand(home)));
        let chosen_backlog = self.scalar(
            "telemetry.max_export_backlog_mib",
            |u| u.telemetry.max_export_backlog_mib.as_ref(),
            flags::MAX_EXPORT_BACKLOG_MIB,
            cli.max_export_backlog_mib,
        );
        let max_export_backlog_mib = self.at_most(
            chosen_backlog,
            DEFAULT_MAX_EXPORT_BACKLOG_MIB,
            "telemetry.max_export_backlog_mib",
            eff.max_export_backlog_mib.as_ref(),
        );
        if max_export_backlog_mib.value == 0 {
            self.reject(&max_export_backlog_mib, "must be at least 1", None);
        }
        let policy = self.scalar(
            "telemetry.export_backlog_policy",
            |u| u.telemetry.export_backlog_policy.as_ref(),
            flags::EXPORT_BACKLOG_POLICY,
            cli.export_backlog_policy,
        );
        let export_backlog_policy = self
            .forced(
                policy,
                "telemetry.export_backlog_policy",
                eff.export_backlog_policy.as_ref(),
            )
            .unwrap_or_else(|| Resolved::new(DEFAULT_EXPORT_BACKLOG_POLICY, Source::Default));
        TelemetrySettings {
            otlp_endpoint: None,
            otlp_protocol: None,
            log_prompts: Resolved::new(false, Source::Default),
            otlp_headers,
            otlp_ca_file,
            max_export_backlog_mib,
            export_backlog_policy,
        }
    }

    fn filesystem(&mut self, eff: &Effective, cli: &CliOverrides) -> FilesystemSettings {
        let home = self.home;
        let expand = |paths: Vec<Resolved<ConfigPath>>| -> Vec<Resolved<PathBuf>> {
            paths
                .into_iter()
                .map(|p| p.map(|p| p.expand(home)))
                .collect()
        };
        let roots = expand(self.list(
            "filesystem.write_roots",
            |u| &u.filesystem.write_roots,
            flags::WRITE_ROOT,
            &cli.write_roots,
        ));
        let roots = self.within(
            roots,
            "filesystem.allowed_write_roots",
            eff.allowed_write_roots.as_ref(),
            "is not inside any allowed write root",
            |allowed: &ConfigPath, root: &PathBuf| root.starts_with(allowed.expand(home)),
        );
        if let Some(forbidden) = &eff.forbidden_write_roots {
            for root in &roots {
                if forbidden
                    .value
                    .iter()
                    .any(|f| root.value.starts_with(f.expand(home)))
                {
                    self.reject(
                        root,
                        "is inside a forbidden write root",
                        Some(RequirementRef::of(
                            "filesystem.forbidden_write_roots",
                            forbidden,
                        )),
                    );
                }
            }
        }

        let mut denied_reads = expand(required_list(
            "filesystem.denied_reads",
            eff.denied_reads.as_ref(),
        ));
        denied_reads.extend(expand(self.list(
            "filesystem.denied_reads",
            |u| &u.filesystem.denied_reads,
            flags::DENY_READ,
            &cli.denied_reads,
        )));
        FilesystemSettings {
            write_roots: roots,
            denied_reads,
            forbidden_write_roots: expand(required_list(
                "filesystem.forbidden_write_roots",
                eff.forbidden_write_roots.as_ref(),
            )),
            protect_vcs_metadata: self.protect_vcs_metadata(eff),
        }
    }

    /// Names to pass on are plain names, and none that the requirements scrub.
    fn environment(&mut self, eff: &Effective, cli: &CliOverrides) -> EnvironmentSettings {
        let pass = self.list(
            "credentials.pass_env",
            |u| &u.credentials.pass_env,
            flags::PASS_ENV,
            &cli.pass_env,
        );
        for p in &pass {
            if !p.value.is_name() {
                self.reject(p, "is a prefix: name each variable to pass on", None);
            } else if let Some(scrub) = &eff.scrub_env
                && scrub.value.iter().any(|s| s.matches(&p.value.to_string()))
            {
                self.reject(
                    p,
                    "is scrubbed by the requirements",
                    Some(RequirementRef::of("credentials.scrub_env", scrub)),
                );
            }
        }
        EnvironmentSettings {
            pass,
            scrub: required_list("credentials.scrub_env", eff.scrub_env.as_ref()),
        }
    }

    /// The user's choice, unless a requirement forbids turning protection off.
    fn protect_vcs_metadata(&mut self, eff: &Effective) -> Resolved<bool> {
        let key = "filesystem.require_vcs_protection";
        // No command line flag: only the config file chooses.
        let chosen = self.user.and_then(|user| {
            let value = user.settings().filesystem.protect_vcs_metadata.as_ref()?;
            let source = self.user_source("filesystem.protect_vcs_metadata".into(), value)?;
            Some(Resolved::new(*value.get_ref(), source))
        });
        match (
            chosen,
            eff.require_vcs_protection.as_ref().filter(|r| r.value),
        ) {
            (Some(chosen), Some(required)) => {
                if !chosen.value {
                    self.reject(
                        &chosen,
                        "cannot turn off what the requirements require",
                        Some(RequirementRef::of(key, required)),
                    );
                }
                Resolved::new(true, requirement_source(key, required))
            }
            (None, Some(required)) => Resolved::new(true, requirement_source(key, required)),
            (Some(chosen), None) => chosen,
            (None, None) => Resolved::new(DEFAULT_PROTECT_VCS_METADATA, Source::Default),
        }
    }
}

/// Absolute, and spelled the one way the kernel's UNIX socket check accepts.
pub fn is_canonical_absolute(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    bytes.len() > 1
        && bytes[0] == b'/'
        && !bytes.ends_with(b"/")
        && bytes[1..]
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}
