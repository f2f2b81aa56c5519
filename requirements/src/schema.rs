//! The requirements file schema. Every key is optional: a key that is absent leaves the
//! decision to a lower layer, while a key set to an empty list is a decision ("nothing").

use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;

use crate::keys::PublicKey;
use crate::values::{
    AgentProgram, ApprovalPolicy, Argv, BacklogPolicy, Cidr, ConfigPath, CredentialDelivery,
    CredentialsStore, DomainPattern, EntropyBits, EnvPattern, ExecRule, HttpUrl, HttpsUrl,
    KernelLayer, NonEmpty, OtlpHeader, OtlpProtocol, ProviderPin, RequiredDecision, Reviewer,
    SandboxMode, SchemaVersion, TriageAction,
};

/// One requirements document, as written. Each value keeps its span for messages.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Absent means 1.
    pub schema_version: Option<Spanned<SchemaVersion>>,
    pub allowed_sandbox_modes: Option<Spanned<Vec<SandboxMode>>>,
    pub allowed_approval_policies: Option<Spanned<Vec<ApprovalPolicy>>>,
    pub allowed_reviewers: Option<Spanned<Vec<Reviewer>>>,
    /// The program run for `reviewer = "external"`, with its arguments.
    pub reviewer_command: Option<Spanned<Argv>>,
    /// Kernel layers without which no session starts (on kernels that lack one).
    pub required_layers: Option<Spanned<Vec<KernelLayer>>>,
    #[serde(default)]
    pub network: NetworkRequirements,
    #[serde(default)]
    pub exec: ExecRequirements,
    #[serde(default)]
    pub filesystem: FilesystemRequirements,
    #[serde(default)]
    pub telemetry: TelemetryRequirements,
    #[serde(default)]
    pub credentials: CredentialsRequirements,
    #[serde(default)]
    pub login: LoginRequirements,
    #[serde(default)]
    pub triage: TriageRequirements,
    #[serde(default)]
    pub service: ServiceRequirements,
    /// Where the cloud bundle comes from; only in the managed and local layers.
    #[serde(default)]
    pub cloud: CloudRequirements,
    /// Version and expiry; only in a cloud bundle, where it is required.
    pub bundle: Option<Spanned<BundleHeader>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRequirements {
    /// Domains the agent may reach; replaces the built-in list of package registries.
    pub allowed_domains: Option<Spanned<Vec<DomainPattern>>>,
    /// Domains the agent may never reach, whatever else allows them.
    pub denied_domains: Option<Spanned<Vec<DomainPattern>>>,
    /// The networks users may allow; a user CIDR must lie inside one of them.
    pub allowed_cidrs: Option<Spanned<Vec<Cidr>>>,
    /// When true, users cannot add domains to `allowed_domains`.
    pub managed_allowed_domains_only: Option<Spanned<bool>>,
    /// The loopback ports users may open; theirs must be a subset.
    pub loopback_ports: Option<Spanned<Vec<u16>>>,
    /// Pathname UNIX sockets (or directories of them) that users may never allow, e.g. the
    /// Docker socket.
    pub denied_unix_sockets: Option<Spanned<Vec<ConfigPath>>>,
    /// Whether ICMP echo (ping) may reach the allowed addresses; users may only repeat it.
    pub allow_icmp: Option<Spanned<bool>>,
    /// Ceilings of the DNS budgets: users may choose lower values, never higher.
    #[serde(default)]
    pub dns_budget: DnsBudget,
}

/// `[network.dns_budget]`: bounds on what a session can carry out in the names it looks up
/// (DNS tunnelling). The same keys are ceilings in requirements and choices in the user config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsBudget {
    /// Distinct names the session may look up.
    pub unique_names_per_session: Option<Spanned<u32>>,
    /// Distinct names under one registrable domain.
    pub unique_names_per_domain: Option<Spanned<u32>>,
    /// The longest label below the registrable domain, in bytes.
    pub max_label_length: Option<Spanned<u32>>,
    /// Shannon entropy, bits per character, of the labels below the registrable domain.
    pub max_label_entropy_bits: Option<Spanned<EntropyBits>>,
    /// Bytes of DNS queries per minute, the whole session.
    pub query_bytes_per_minute_per_session: Option<Spanned<u32>>,
    /// Bytes of DNS queries per minute under one registrable domain.
    pub query_bytes_per_minute_per_domain: Option<Spanned<u32>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequirements {
    /// Each rule keeps its own span: one `[[exec.rules]]` table per rule.
    pub rules: Option<Spanned<Vec<Spanned<ExecRule<RequiredDecision>>>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemRequirements {
    /// Paths the agent may never read.
    pub denied_reads: Option<Spanned<Vec<ConfigPath>>>,
    /// Where users may add write roots; a user write root must lie inside one of them.
    pub allowed_write_roots: Option<Spanned<Vec<ConfigPath>>>,
    /// Where no user write root may lie.
    pub forbidden_write_roots: Option<Spanned<Vec<ConfigPath>>>,
    /// When true, users cannot turn off `protect_vcs_metadata` (VCS hooks and config in
    /// write roots stay read-only).
    pub require_vcs_protection: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryRequirements {
    pub otlp_endpoint: Option<Spanned<HttpUrl>>,
    pub otlp_protocol: Option<Spanned<OtlpProtocol>>,
    /// Whether prompts may appear in telemetry.
    pub log_prompts: Option<Spanned<bool>>,
    /// Headers always sent to the collector (users may add others, not change these).
    pub otlp_headers: Option<Spanned<Vec<OtlpHeader>>>,
    /// The CA (PEM) the collector's TLS certificate must chain to.
    pub otlp_ca_file: Option<Spanned<ConfigPath>>,
    /// The most telemetry, in MiB of the audit log, that may wait for the collector; users may
    /// choose less.
    pub max_export_backlog_mib: Option<Spanned<u32>>,
    /// What happens at that limit.
    pub export_backlog_policy: Option<Spanned<BacklogPolicy>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsRequirements {
    pub store: Option<Spanned<CredentialsStore>>,
    /// How credentials may reach the agent; absent allows every delivery.
    pub allowed_deliveries: Option<Spanned<Vec<CredentialDelivery>>>,
    /// Inherited variables the agent never gets, on top of the names that look secret
    /// (`NAME`, or `PREFIX*`); no user setting passes them on.
    pub scrub_env: Option<Spanned<Vec<EnvPattern>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriageRequirements {
    /// Whether the built-in detections run in each session's pipeline (absent: they do).
    pub live: Option<Spanned<bool>>,
    /// What a live finding of each severity makes Warden do (absent: `record`).
    pub on_low: Option<Spanned<TriageAction>>,
    pub on_medium: Option<Spanned<TriageAction>>,
    pub on_high: Option<Spanned<TriageAction>>,
    pub on_critical: Option<Spanned<TriageAction>>,
}

/// `[service]`: who may start sessions through `wardend`, and which programs may run only
/// inside one.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequirements {
    /// Users (names or uids) who may start sessions through the daemon's socket.
    pub allowed_users: Option<Spanned<Vec<NonEmpty>>>,
    /// Groups (names or gids) whose members may start sessions through the daemon's socket.
    pub allowed_groups: Option<Spanned<Vec<NonEmpty>>>,
    /// Programs the daemon kills (in the kernel, before their first instruction) when they
    /// are started outside a Warden session.
    pub agent_programs: Option<Spanned<Vec<Spanned<AgentProgram>>>>,
    /// How many sessions one user (root aside) may hold at once through the daemon.
    pub max_sessions_per_user: Option<Spanned<u32>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequirements {
    /// The only login method allowed, e.g. `chatgpt` or `api-key`.
    pub method: Option<Spanned<NonEmpty>>,
    /// The only workspace users may log in to.
    pub workspace_id: Option<Spanned<NonEmpty>>,
    /// The provider whose credentials `method` and `workspace_id` pin (absent: every one).
    pub provider: Option<Spanned<NonEmpty>>,
    /// A pinned token's `iss`, exactly.
    pub issuer: Option<Spanned<NonEmpty>>,
    /// Where the issuer publishes its signing keys (a JWKS).
    pub jwks_url: Option<Spanned<HttpsUrl>>,
    /// Trust only this CA (PEM) for the JWKS server (default: the public web PKI).
    pub jwks_ca_file: Option<Spanned<ConfigPath>>,
    /// An `aud` a pinned token must carry (absent: not checked).
    pub audience: Option<Spanned<NonEmpty>>,
    /// Where the workspace is in a token's claims: an RFC 6901 pointer such as `/org_id`.
    pub workspace_claim: Option<Spanned<NonEmpty>>,
    /// Pins per provider (`[[login.pins]]`), besides the one the keys above make.
    pub pins: Option<Spanned<Vec<Spanned<ProviderPin>>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudRequirements {
    pub bundle_url: Option<Spanned<HttpsUrl>>,
    /// base64 of the raw 32-byte ed25519 key that signs the bundle.
    pub public_key: Option<Spanned<PublicKey>>,
}

/// The `[bundle]` table of a cloud bundle.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    /// Grows with every published bundle; a lower one than last accepted is a downgrade.
    pub version: Spanned<u64>,
    /// A TOML offset date-time (RFC 3339), e.g. `2026-09-01T00:00:00Z`.
    pub expires_at: Spanned<Datetime>,
}
