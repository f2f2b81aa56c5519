//! Merging layers into the effective requirements, remembering where each value came from.
//!
//! The rule is per key: the highest layer that sets a key wins, even when it sets it to an
//! empty list. Lists are never concatenated across layers, so a higher layer can always narrow
//! what a lower one allowed.

use std::fmt;

use serde::Serialize;
use toml::Spanned;

use crate::keys::PublicKey;
use crate::layers::{Layer, LayerKind};
use crate::schema::Requirements;
use crate::source::Location;
use crate::values::{
    AgentProgram, ApprovalPolicy, Argv, BacklogPolicy, Cidr, ConfigPath, CredentialDelivery,
    CredentialsStore, DomainPattern, EntropyBits, EnvPattern, ExecRule, HttpUrl, HttpsUrl,
    KernelLayer, NonEmpty, OtlpHeader, OtlpProtocol, ProviderPin, RequiredDecision, Reviewer,
    SandboxMode, TriageAction,
};

/// Where an effective value was set: the layer, its file and the line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub layer: LayerKind,
    #[serde(flatten)]
    pub location: Location,
}

impl Origin {
    /// The same file, at another span (one element of the value set here).
    pub(crate) fn at<T>(&self, inner: &Spanned<T>) -> Self {
        Self {
            layer: self.layer,
            location: self.location.at(inner.span()),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} layer)", self.location, self.layer)
    }
}

/// An effective value and its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// The value of the highest layer that sets the key `get` reads.
fn pick<T: Clone>(
    layers: &[Layer],
    get: impl Fn(&Requirements) -> Option<&Spanned<T>>,
) -> Option<Setting<T>> {
    layers.iter().find_map(|layer| {
        get(layer.requirements()).map(|value| Setting {
            value: value.get_ref().clone(),
            origin: Origin {
                layer: layer.kind(),
                location: Location::new(layer.source(), value.span()),
            },
        })
    })
}

/// One line of `warden requirements show --effective`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// Dotted key, e.g. `network.allowed_domains`.
    pub key: &'static str,
    /// `None` when no layer sets the key.
    pub value: Option<toml::Value>,
    pub origin: Option<Origin>,
}

impl Entry {
    fn new<T: Serialize>(key: &'static str, setting: Option<&Setting<T>>) -> Self {
        Self {
            key,
            value: setting.map(|s| to_value(&s.value)),
            origin: setting.map(|s| s.origin.clone()),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.value, &self.origin) {
            (Some(value), Some(origin)) => write!(f, "{} = {value}  # {origin}", self.key),
            _ => write!(f, "{} is not set", self.key),
        }
    }
}

/// A value as TOML, for display and JSON. The types here all serialize to TOML; should one
/// ever fail, the error text stands in for the value rather than hiding the key.
pub(crate) fn to_value<T: Serialize>(value: &T) -> toml::Value {
    toml::Value::try_from(value).unwrap_or_else(|e| toml::Value::String(format!("<{e}>")))
}

/// Declares [`Effective`] from one list of keys, so the struct, the merge and `entries` cannot
/// drift apart.
macro_rules! effective {
    ($($field:ident: $ty:ty = $key:literal, $($path:ident).+;)+) => {
        /// The merged requirements: for each key, the value of the highest layer that sets it.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Effective {
            $(#[doc = concat!("`", $key, "`")] pub $field: Option<Setting<$ty>>,)+
        }

        impl Effective {
            /// Every key, in the order of [`Effective::entries`].
            pub const KEYS: &[&str] = &[$($key),+];

            fn from_layers(layers: &[Layer]) -> Self {
                Self {
                    $($field: pick(layers, |r: &Requirements| r.$($path).+.as_ref()),)+
                }
            }

            /// Every key with its value and origin, unset keys included.
            pub fn entries(&self) -> Vec<Entry> {
                vec![$(Entry::new($key, self.$field.as_ref())),+]
            }
        }
    };
}

effective! {
    allowed_sandbox_modes: Vec<SandboxMode> = "allowed_sandbox_modes", allowed_sandbox_modes;
    allowed_approval_policies: Vec<ApprovalPolicy> = "allowed_approval_policies",
        allowed_approval_policies;
    allowed_reviewers: Vec<Reviewer> = "allowed_reviewers", allowed_reviewers;
    reviewer_command: Argv = "reviewer_command", reviewer_command;
    required_layers: Vec<KernelLayer> = "required_layers", required_layers;
    allowed_domains: Vec<DomainPattern> = "network.allowed_domains", network.allowed_domains;
    denied_domains: Vec<DomainPattern> = "network.denied_domains", network.denied_domains;
    allowed_cidrs: Vec<Cidr> = "network.allowed_cidrs", network.allowed_cidrs;
    managed_allowed_domains_only: bool = "network.managed_allowed_domains_only",
        network.managed_allowed_domains_only;
    loopback_ports: Vec<u16> = "network.loopback_ports", network.loopback_ports;
    denied_unix_sockets: Vec<ConfigPath> = "network.denied_unix_sockets",
        network.denied_unix_sockets;
    allow_icmp: bool = "network.allow_icmp", network.allow_icmp;
    dns_unique_names_per_session: u32 = "network.dns_budget.unique_names_per_session",
        network.dns_budget.unique_names_per_session;
    dns_unique_names_per_domain: u32 = "network.dns_budget.unique_names_per_domain",
        network.dns_budget.unique_names_per_domain;
    dns_max_label_length: u32 = "network.dns_budget.max_label_length",
        network.dns_budget.max_label_length;
    dns_max_label_entropy_bits: EntropyBits = "network.dns_budget.max_label_entropy_bits",
        network.dns_budget.max_label_entropy_bits;
    dns_query_bytes_per_minute_per_session: u32 =
        "network.dns_budget.query_bytes_per_minute_per_session",
        network.dns_budget.query_bytes_per_minute_per_session;
    dns_query_bytes_per_minute_per_domain: u32 =
        "network.dns_budget.query_bytes_per_minute_per_domain",
        network.dns_budget.query_bytes_per_minute_per_domain;
    exec_rules: Vec<Spanned<ExecRule<RequiredDecision>>> = "exec.rules", exec.rules;
    denied_reads: Vec<ConfigPath> = "filesystem.denied_reads", filesystem.denied_reads;
    allowed_write_roots: Vec<ConfigPath> = "filesystem.allowed_write_roots",
        filesystem.allowed_write_roots;
    forbidden_write_roots: Vec<ConfigPath> = "filesystem.forbidden_write_roots",
        filesystem.forbidden_write_roots;
    require_vcs_protection: bool = "filesystem.require_vcs_protection",
        filesystem.require_vcs_protection;
    otlp_endpoint: HttpUrl = "telemetry.otlp_endpoint", telemetry.otlp_endpoint;
    otlp_protocol: OtlpProtocol = "telemetry.otlp_protocol", telemetry.otlp_protocol;
    log_prompts: bool = "telemetry.log_prompts", telemetry.log_prompts;
    otlp_headers: Vec<OtlpHeader> = "telemetry.otlp_headers", telemetry.otlp_headers;
    otlp_ca_file: ConfigPath = "telemetry.otlp_ca_file", telemetry.otlp_ca_file;
    max_export_backlog_mib: u32 = "telemetry.max_export_backlog_mib",
        telemetry.max_export_backlog_mib;
    export_backlog_policy: BacklogPolicy = "telemetry.export_backlog_policy",
        telemetry.export_backlog_policy;
    credentials_store: CredentialsStore = "credentials.store", credentials.store;
    credential_deliveries: Vec<CredentialDelivery> = "credentials.allowed_deliveries",
        credentials.allowed_deliveries;
    scrub_env: Vec<EnvPattern> = "credentials.scrub_env", credentials.scrub_env;
    login_method: NonEmpty = "login.method", login.method;
    login_workspace_id: NonEmpty = "login.workspace_id", login.workspace_id;
    login_provider: NonEmpty = "login.provider", login.provider;
    login_issuer: NonEmpty = "login.issuer", login.issuer;
    login_jwks_url: HttpsUrl = "login.jwks_url", login.jwks_url;
    login_jwks_ca_file: ConfigPath = "login.jwks_ca_file", login.jwks_ca_file;
    login_audience: NonEmpty = "login.audience", login.audience;
    login_workspace_claim: NonEmpty = "login.workspace_claim", login.workspace_claim;
    login_pins: Vec<Spanned<ProviderPin>> = "login.pins", login.pins;
    triage_live: bool = "triage.live", triage.live;
    triage_on_low: TriageAction = "triage.on_low", triage.on_low;
    triage_on_medium: TriageAction = "triage.on_medium", triage.on_medium;
    triage_on_high: TriageAction = "triage.on_high", triage.on_high;
    triage_on_critical: TriageAction = "triage.on_critical", triage.on_critical;
    service_allowed_users: Vec<NonEmpty> = "service.allowed_users", service.allowed_users;
    service_allowed_groups: Vec<NonEmpty> = "service.allowed_groups", service.allowed_groups;
    service_agent_programs: Vec<Spanned<AgentProgram>> = "service.agent_programs",
        service.agent_programs;
    service_max_sessions_per_user: u32 = "service.max_sessions_per_user",
        service.max_sessions_per_user;
    cloud_bundle_url: HttpsUrl = "cloud.bundle_url", cloud.bundle_url;
    cloud_public_key: PublicKey = "cloud.public_key", cloud.public_key;
}

/// Merges layers given in precedence order, highest first (see [`crate::layers`]).
pub fn merge(layers: &[Layer]) -> Effective {
    Effective::from_layers(layers)
}

/// Where to fetch the cloud bundle and the key it must be signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudSource {
    pub bundle_url: Setting<HttpsUrl>,
    pub public_key: Setting<PublicKey>,
}

/// `cloud.bundle_url` and `cloud.public_key` make sense only together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{set} is set at {origin} but no layer sets {missing}; set both or neither")]
pub struct IncompleteCloud {
    pub set: &'static str,
    pub missing: &'static str,
    pub origin: Origin,
}

impl Effective {
    /// The cloud bundle to fetch, if the local layers name one.
    pub fn cloud_source(&self) -> Result<Option<CloudSource>, IncompleteCloud> {
        match (&self.cloud_bundle_url, &self.cloud_public_key) {
            (Some(url), Some(key)) => Ok(Some(CloudSource {
                bundle_url: url.clone(),
                public_key: key.clone(),
            })),
            (Some(url), None) => Err(IncompleteCloud {
                set: "cloud.bundle_url",
                missing: "cloud.public_key",
                origin: url.origin.clone(),
            }),
            (None, Some(key)) => Err(IncompleteCloud {
                set: "cloud.public_key",
                missing: "cloud.bundle_url",
                origin: key.origin.clone(),
            }),
            (None, None) => Ok(None),
        }
    }
}
