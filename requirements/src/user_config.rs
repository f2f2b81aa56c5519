//! The user's own choices: `~/.config/warden/config.toml` and command line flags. Both pick
//! values inside the requirements; [`crate::resolve`] checks that they do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::layers::LoadError;
use crate::schema::DnsBudget;
use crate::source::{ParseError, SourceText};
use crate::values::{
    ApprovalPolicy, BacklogPolicy, Cidr, ConfigPath, DnsUpstream, DomainPattern, EnvPattern,
    ExecRule, HttpUrl, OtlpHeader, OtlpProtocol, Reviewer, SandboxMode,
};

/// Where the user config lives, relative to the user's home directory.
pub const USER_CONFIG_IN_HOME: &str = ".config/warden/config.toml";

/// The user config path for the user whose home is `home`.
pub fn default_user_config_path(home: &Path) -> PathBuf {
    home.join(USER_CONFIG_IN_HOME)
}

/// A parsed user config and the text it came from.
#[derive(Clone, Debug)]
pub struct UserConfig {
    source: Arc<SourceText>,
    settings: UserSettings,
}

impl UserConfig {
    pub fn parse(name: impl Into<String>, text: impl Into<String>) -> Result<Self, ParseError> {
        let source = SourceText::new(name, text);
        let settings = source.parse()?;
        Ok(Self { source, settings })
    }

    /// Reads the file at `path`; `Ok(None)` when there is none. The file belongs to the user,
    /// so no integrity check: everything in it is checked against the requirements instead.
    pub fn load(path: &Path) -> Result<Option<Self>, LoadError> {
        let bytes = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.map_err(|source| LoadError::Io {
                path: path.to_owned(),
                source,
            })?,
        };
        let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8(path.to_owned()))?;
        Ok(Some(Self::parse(path.display().to_string(), text)?))
    }

    pub fn source(&self) -> &Arc<SourceText> {
        &self.source
    }

    pub fn settings(&self) -> &UserSettings {
        &self.settings
    }
}

/// The user config schema. Lists add to what the requirements and built-in defaults give.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub sandbox_mode: Option<Spanned<SandboxMode>>,
    pub approval_policy: Option<Spanned<ApprovalPolicy>>,
    pub reviewer: Option<Spanned<Reviewer>>,
    #[serde(default)]
    pub network: UserNetwork,
    #[serde(default)]
    pub exec: UserExec,
    #[serde(default)]
    pub filesystem: UserFilesystem,
    #[serde(default)]
    pub telemetry: UserTelemetry,
    #[serde(default)]
    pub credentials: UserCredentials,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCredentials {
    /// Inherited variables passed on although their names look secret (plain names).
    #[serde(default)]
    pub pass_env: Vec<Spanned<EnvPattern>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserNetwork {
    #[serde(default)]
    pub allowed_domains: Vec<Spanned<DomainPattern>>,
    #[serde(default)]
    pub denied_domains: Vec<Spanned<DomainPattern>>,
    #[serde(default)]
    pub allowed_cidrs: Vec<Spanned<Cidr>>,
    #[serde(default)]
    pub loopback_ports: Vec<Spanned<u16>>,
    /// Host services on pathname UNIX sockets the agent may reach (canonical absolute paths).
    #[serde(default)]
    pub allowed_unix_sockets: Vec<Spanned<ConfigPath>>,
    /// ICMP echo (ping) to the allowed addresses.
    pub allow_icmp: Option<Spanned<bool>>,
    #[serde(default)]
    pub dns_upstream: Vec<Spanned<DnsUpstream>>,
    pub dns_ttl_floor_secs: Option<Spanned<u32>>,
    /// Lower budgets than the requirements' ceilings (or the defaults).
    #[serde(default)]
    pub dns_budget: DnsBudget,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserExec {
    #[serde(default)]
    pub rules: Vec<Spanned<ExecRule>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFilesystem {
    #[serde(default)]
    pub write_roots: Vec<Spanned<ConfigPath>>,
    #[serde(default)]
    pub denied_reads: Vec<Spanned<ConfigPath>>,
    /// VCS hooks and config in write roots read-only (default true).
    pub protect_vcs_metadata: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTelemetry {
    pub otlp_endpoint: Option<Spanned<HttpUrl>>,
    pub otlp_protocol: Option<Spanned<OtlpProtocol>>,
    #[serde(default)]
    pub otlp_headers: Vec<Spanned<OtlpHeader>>,
    pub otlp_ca_file: Option<Spanned<ConfigPath>>,
    pub max_export_backlog_mib: Option<Spanned<u32>>,
    pub export_backlog_policy: Option<Spanned<BacklogPolicy>>,
}

/// Values given as command line flags. A scalar flag overrides the user config; list flags
/// (each may be repeated) add to the user config's lists. [`flags`] names the flag each
/// field comes from, which is how errors cite it.
#[derive(Clone, Debug, Default)]
pub struct CliOverrides {
    pub sandbox_mode: Option<SandboxMode>,
    pub approval_policy: Option<ApprovalPolicy>,
    pub reviewer: Option<Reviewer>,
    pub allowed_domains: Vec<DomainPattern>,
    pub denied_domains: Vec<DomainPattern>,
    pub allowed_cidrs: Vec<Cidr>,
    pub loopback_ports: Vec<u16>,
    pub allowed_unix_sockets: Vec<ConfigPath>,
    pub allow_icmp: Option<bool>,
    pub dns_upstream: Vec<DnsUpstream>,
    pub dns_ttl_floor_secs: Option<u32>,
    pub exec_rules: Vec<ExecRule>,
    pub write_roots: Vec<ConfigPath>,
    pub denied_reads: Vec<ConfigPath>,
    pub otlp_endpoint: Option<HttpUrl>,
    pub otlp_protocol: Option<OtlpProtocol>,
    pub otlp_headers: Vec<OtlpHeader>,
    pub otlp_ca_file: Option<ConfigPath>,
    pub max_export_backlog_mib: Option<u32>,
    pub export_backlog_policy: Option<BacklogPolicy>,
    pub pass_env: Vec<EnvPattern>,
}

/// The command line flag behind each [`CliOverrides`] field, named in messages.
pub mod flags {
    pub const SANDBOX_MODE: &str = "--sandbox-mode";
    pub const APPROVAL_POLICY: &str = "--approval-policy";
    pub const REVIEWER: &str = "--reviewer";
    pub const PASS_ENV: &str = "--pass-env";
    pub const ALLOW_DOMAIN: &str = "--allow-domain";
    pub const DENY_DOMAIN: &str = "--deny-domain";
    pub const ALLOW_CIDR: &str = "--allow-cidr";
    pub const LOOPBACK_PORT: &str = "--loopback-port";
    pub const ALLOW_UNIX_SOCKET: &str = "--allow-unix-socket";
    pub const ALLOW_ICMP: &str = "--allow-icmp";
    pub const DNS_UPSTREAM: &str = "--dns-upstream";
    pub const DNS_TTL_FLOOR_SECS: &str = "--dns-ttl-floor-secs";
    pub const EXEC_RULE: &str = "--exec-rule";
    pub const WRITE_ROOT: &str = "--write-root";
    pub const DENY_READ: &str = "--deny-read";
    pub const OTLP_ENDPOINT: &str = "--otlp-endpoint";
    pub const OTLP_PROTOCOL: &str = "--otlp-protocol";
    pub const OTLP_HEADER: &str = "--otlp-header";
    pub const OTLP_CA_FILE: &str = "--otlp-ca";
    pub const MAX_EXPORT_BACKLOG_MIB: &str = "--max-export-backlog-mib";
    pub const EXPORT_BACKLOG_POLICY: &str = "--export-backlog-policy";
}
