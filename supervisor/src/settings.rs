//! What a session runs under: the requirements (cloud bundle, managed preferences, local
//! file), the user's configuration and the command line, resolved by `warden-requirements`,
//! then turned into the session's options. Every value keeps where it came from; the rules
//! built here carry it into the audit log (`rule_source`).
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use warden_requirements::{
    BundleCache, CliOverrides, Layer, LayerPaths, Settings, TrustPolicy, UserConfig,
    constrain::Source,
    load_local_layers, merge, resolve,
    values::{Decision, OtlpProtocol, SandboxMode},
};

use crate::{
    cloud_bundle::{self, Refresh},
    exec_policy::{ExecPolicy, ExecRule},
    network::{
        dns_budget,
        policy::{NetworkMode, NetworkPolicy},
        upstream,
    },
    otlp::{ExportConfig, TelemetryOptions},
    session::{NetworkOptions, SandboxOptions},
};

/// Where requirements and user configuration are read from.
pub struct Sources {
    pub layers: LayerPaths,
    pub bundle_cache: PathBuf,
    /// Trust only this CA (PEM) when fetching the cloud bundle (default: the public web PKI).
    pub bundle_ca: Option<PathBuf>,
    pub user_config: UserConfigSource,
}

/// Where the user's configuration comes from.
pub enum UserConfigSource {
    /// A file (it need not exist), read by this process.
    File(PathBuf),
    /// Read by the user's own process and passed on (a session the service starts: root does
    /// not open files by the user's choice); `None`: the user has none.
    Given(Option<crate::service::protocol::UserConfigText>),
}

impl UserConfigSource {
    fn load(&self) -> anyhow::Result<Option<(UserConfig, String)>> {
        Ok(match self {
            Self::File(path) => UserConfig::load(path)?.map(|c| (c, path.display().to_string())),
            Self::Given(None) => None,
            Self::Given(Some(t)) => Some((
                UserConfig::parse(t.path.clone(), t.text.clone())?,
                t.path.clone(),
            )),
        })
    }
}

/// The resolved settings, the files they came from, and what went wrong on the way without
/// stopping the session (a refused or unreachable cloud bundle).
pub struct Loaded {
    pub settings: Settings,
    /// The merged requirements, for what only they decide (credentials, login pins).
    pub effective: warden_requirements::Effective,
    pub files: Vec<String>,
    pub warnings: Vec<String>,
}

/// Requirement layers, highest precedence first: the cloud bundle (fetched, verified and
/// cached; it is only ever used from the cache, after its checks), then the local layers.
pub fn layers(sources: &Sources, warnings: &mut Vec<String>) -> anyhow::Result<Vec<Layer>> {
    let mut layers = load_local_layers(&sources.layers, &TrustPolicy::default())?;
    if let Some(cloud) = merge(&layers).cloud_source()? {
        let cache = BundleCache::new(&sources.bundle_cache);
        match cloud_bundle::refresh(&cloud, &cache, sources.bundle_ca.as_deref()) {
            Refresh::Stored { version } => {
                tracing::info!("cloud requirements bundle version {version} verified and cached")
            }
            Refresh::Refused(why) => {
                let w = format!("cloud requirements bundle refused, not applied: {why}");
                eprintln!("warden: {w}");
                warnings.push(w);
            }
            Refresh::Unreachable(why) => {
                let w =
                    format!("cloud requirements bundle not fetched ({why}): using the cached one");
                eprintln!("warden: {w}");
                warnings.push(w);
            }
        }
        let now = time::OffsetDateTime::now_utc();
        match cache.load(&cloud.public_key.value, now).with_context(|| {
            format!(
                "the cached requirements bundle in {}",
                cache.path().display()
            )
        })? {
            Some(bundle) => layers.insert(0, bundle.layer().clone()),
            None => anyhow::bail!(
                "requirements name a cloud bundle ({}) and no verified copy is cached in {}: \
                 it could not be fetched or was refused (see above), and sessions do not start \
                 without it; fix the URL or the network, or place a signed bundle there with \
                 `warden requirements verify --store`",
                cloud.bundle_url.value,
                cache.path().display()
            ),
        }
    }
    Ok(layers)
}

/// The requirements' `service.agent_programs` (the user's configuration has no say).
pub fn agent_programs(
    sources: &Sources,
) -> anyhow::Result<Vec<warden_requirements::values::AgentProgram>> {
    let mut warnings = Vec::new();
    let effective = merge(&layers(sources, &mut warnings)?);
    Ok(effective
        .service_agent_programs
        .map(|s| s.value.into_iter().map(|p| p.into_inner()).collect())
        .unwrap_or_default())
}

pub fn load(sources: &Sources, cli: &CliOverrides, home: &Path) -> anyhow::Result<Loaded> {
    let mut warnings = Vec::new();
    let layers = layers(sources, &mut warnings)?;
    let effective = merge(&layers);
    let user = sources.user_config.load()?;
    let settings =
        resolve(&effective, user.as_ref().map(|(c, _)| c), cli, home).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow!("the settings break the requirements:\n{}", lines.join("\n"))
        })?;
    let mut files: Vec<String> = layers.iter().map(|l| l.name().to_string()).collect();
    if let Some((_, name)) = user {
        files.push(name);
    }
    Ok(Loaded {
        settings,
        effective,
        files,
        warnings,
    })
}

/// The network allowlist. `keep_defaults: false` drops the built-in allowed domains (never
/// the requirements' ones).
pub fn network(
    s: &Settings,
    mode: NetworkMode,
    keep_defaults: bool,
) -> anyhow::Result<NetworkOptions> {
    let n = &s.network;
    let mut policy = NetworkPolicy::new(mode);
    for d in &n.allowed_domains {
        if keep_defaults || d.source != Source::Default {
            policy.allow_domain(d.value.clone(), &d.source);
        }
    }
    for d in &n.denied_domains {
        policy.deny_domain(d.value.clone(), &d.source);
    }
    for c in &n.allowed_cidrs {
        policy.allow_cidr(c.value.net(), &c.source);
    }
    for p in &n.loopback_ports {
        policy.allow_loopback_port(p.value, &p.source);
    }
    for p in &n.allowed_unix_sockets {
        policy.allow_unix_socket(p.value.clone(), &p.source);
    }
    policy.allow_icmp = n.allow_icmp.value;
    let upstreams = if n.dns_upstream.is_empty() {
        let conf = Path::new(upstream::RESOLV_CONF);
        upstream::from_resolv_conf(conf)
            .with_context(|| format!("reading {} (or give --dns-upstream)", conf.display()))?
    } else {
        n.dns_upstream.iter().map(|u| u.value.addr()).collect()
    };
    Ok(NetworkOptions {
        policy,
        upstreams,
        ttl_floor: std::time::Duration::from_secs(u64::from(n.dns_ttl_floor_secs.value)),
        dns_budget: dns_budget_limits(&n.dns_budget),
    })
}

/// An allowed pathname socket beneath a write root could be replaced by the agent with a
/// link to any other socket (the kernel's check sees only the spelling): refused.
pub fn check_unix_sockets(net: &NetworkOptions, sandbox: &SandboxOptions) -> anyhow::Result<()> {
    if sandbox.mode != SandboxMode::WorkspaceWrite {
        return Ok(());
    }
    for (path, id) in &net.policy.unix_sockets {
        if let Some(root) = sandbox.write_roots.iter().find(|r| path.starts_with(r)) {
            let source = net
                .policy
                .rule(*id)
                .map(|r| r.source.as_str())
                .unwrap_or("?");
            anyhow::bail!(
                "{source}: allowed UNIX socket {} lies beneath the write root {}, where the \
                 agent could put a link to another socket in its place; move the service's \
                 socket elsewhere (e.g. ssh-agent -a /run/user/UID/ssh-agent.sock)",
                path.display(),
                root.display()
            );
        }
    }
    Ok(())
}

fn dns_budget_limits(b: &warden_requirements::constrain::DnsBudgetSettings) -> dns_budget::Limits {
    dns_budget::Limits {
        unique_names_per_session: b.unique_names_per_session.value,
        unique_names_per_domain: b.unique_names_per_domain.value,
        max_label_length: b.max_label_length.value,
        max_label_entropy_bits: b.max_label_entropy_bits.value.get(),
        query_bytes_per_minute_per_session: b.query_bytes_per_minute_per_session.value,
        query_bytes_per_minute_per_domain: b.query_bytes_per_minute_per_domain.value,
    }
}

/// Where telemetry goes: `None` when no endpoint is configured. The protocol defaults to
/// OTLP's, http/protobuf.
pub fn telemetry(s: &Settings, grace: std::time::Duration) -> Option<TelemetryOptions> {
    let t = &s.telemetry;
    let endpoint = t.otlp_endpoint.as_ref()?;
    let transport = t
        .otlp_protocol
        .as_ref()
        .map_or(OtlpProtocol::HttpProtobuf, |p| p.value);
    let mut export = ExportConfig::new(endpoint.value.as_str(), transport);
    export.headers = t
        .otlp_headers
        .iter()
        .map(|h| (h.value.name().to_string(), h.value.value().to_string()))
        .collect();
    export.ca_file = t.otlp_ca_file.as_ref().map(|p| p.value.clone());
    Some(TelemetryOptions {
        export,
        max_backlog_bytes: u64::from(t.max_export_backlog_mib.value) << 20,
        backlog_policy: t.export_backlog_policy.value,
        grace,
    })
}

/// The launcher's sandbox: the mode, the write roots (the workspace, temp directories and the
/// configured ones), extra protected paths, and the exec rules (the requirements' and the
/// user's: the strictest matching one decides).
pub fn sandbox(
    s: &Settings,
    workspace: PathBuf,
    builtin_rules: bool,
) -> anyhow::Result<SandboxOptions> {
    let mode = s.sandbox_mode.value;
    if mode == SandboxMode::WorkspaceWrite && workspace == Path::new("/") {
        anyhow::bail!(
            "the workspace would be / (the whole file system): run from a project directory, \
             or give --workspace DIR"
        );
    }
    let mut write_roots = vec![workspace.clone(), "/tmp".into(), "/var/tmp".into()];
    write_roots.extend(s.filesystem.write_roots.iter().map(|r| r.value.clone()));
    let rule = |from_requirements| {
        move |r: &warden_requirements::Resolved<warden_requirements::values::ExecRule>| ExecRule {
            decision: r.value.decision,
            prefix: r.value.prefix.args().to_vec(),
            source: r.source.to_string(),
            from_requirements,
            reason: r.value.reason.clone(),
        }
    };
    let rules = s
        .exec
        .required_rules
        .iter()
        .map(rule(true))
        .chain(s.exec.user_rules.iter().map(rule(false)))
        .collect();
    Ok(SandboxOptions {
        mode,
        workspace,
        write_roots,
        denied_paths: s
            .filesystem
            .denied_reads
            .iter()
            .map(|p| p.value.clone())
            .collect(),
        read_only_paths: s
            .filesystem
            .forbidden_write_roots
            .iter()
            .map(|p| p.value.clone())
            .collect(),
        protect_vcs_metadata: s.filesystem.protect_vcs_metadata.value,
        exec_policy: ExecPolicy::new(rules, builtin_rules),
    })
}

/// Who decides what needs approval: the approval policy and reviewer chosen within the
/// requirements, the reviewer command they name, and the session's own choices (timeouts,
/// whether anyone will answer, who besides the user may).
pub fn approvals(
    s: &Settings,
    timeout: std::time::Duration,
    reviewer_timeout: std::time::Duration,
    unattended: bool,
    approvers_group: Option<&str>,
) -> anyhow::Result<crate::approvals::Options> {
    let approvers_gid = approvers_group
        .map(|name| {
            nix::unistd::Group::from_name(name)
                .with_context(|| format!("looking up the group {name}"))?
                .map(|g| g.gid.as_raw())
                .ok_or_else(|| anyhow!("--approvers-group {name}: no such group"))
        })
        .transpose()?;
    Ok(crate::approvals::Options {
        policy: s.approval_policy.value,
        reviewer: s.reviewer.value,
        reviewer_command: s.reviewer_command.as_ref().map(|c| c.value.args().to_vec()),
        timeout,
        reviewer_timeout,
        unattended,
        approvers_gid,
        managed_domains_only: s.network.managed_allowed_domains_only.is_some(),
    })
}

/// `DECISION=WORDS` (`forbidden=git push`) as a command-line exec rule.
pub fn parse_exec_rule(s: &str) -> Result<warden_requirements::values::ExecRule, String> {
    let (d, words) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected DECISION=COMMAND, e.g. forbidden=git push"))?;
    let decision: Decision = d.trim().parse().map_err(|e| format!("`{s}`: {e}"))?;
    let prefix = warden_requirements::values::Argv::new(
        words.split_whitespace().map(String::from).collect(),
    )
    .map_err(|e| format!("`{s}`: {e}"))?;
    Ok(warden_requirements::values::ExecRule {
        prefix,
        decision,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_line_exec_rules() {
        let r = parse_exec_rule("forbidden=git push").unwrap();
        assert_eq!(
            (r.decision, r.prefix.args()),
            (
                Decision::Forbidden,
                &["git".to_string(), "push".to_string()][..]
            )
        );
        assert!(
            parse_exec_rule("maybe=ls")
                .unwrap_err()
                .contains("decision")
        );
        assert!(parse_exec_rule("forbidden=").is_err());
        assert!(
            parse_exec_rule("ls")
                .unwrap_err()
                .contains("DECISION=COMMAND")
        );
    }
}
