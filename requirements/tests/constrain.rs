//! User config and command line flags against the requirements: inside is applied, outside is
//! an error naming the requirement (file, line) and the user's value (file, line, or flag).

mod common;

use std::path::{Path, PathBuf};

use common::layer;
use warden_requirements::constrain::{DEFAULT_ALLOWED_DOMAINS, Source};
use warden_requirements::values::{ApprovalPolicy, Decision, Reviewer, SandboxMode};
use warden_requirements::{
    CliOverrides, ConstraintError, Effective, LayerKind, Settings, UserConfig, merge, resolve,
};

const REQ: &str = "/etc/warden/requirements.toml";
const USER: &str = "/home/u/.config/warden/config.toml";
const HOME: &str = "/home/u";

fn requirements(text: &str) -> Effective {
    merge(&[layer(LayerKind::Local, REQ, text)])
}

fn user(text: &str) -> UserConfig {
    UserConfig::parse(USER, text).unwrap_or_else(|e| panic!("{e}"))
}

fn run(req: &str, user_text: &str, cli: &CliOverrides) -> Result<Settings, Vec<ConstraintError>> {
    resolve(
        &requirements(req),
        Some(&user(user_text)),
        cli,
        Path::new(HOME),
    )
}

fn ok(req: &str, user_text: &str) -> Settings {
    run(req, user_text, &CliOverrides::default()).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// The one error `user_text` causes, as a message.
fn error(req: &str, user_text: &str) -> String {
    let errors = run(req, user_text, &CliOverrides::default()).expect_err("accepted");
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].to_string()
}

fn user_line(settings_source: &Source) -> usize {
    match settings_source {
        Source::UserConfig { location, .. } => location.line(),
        other => panic!("not from the user config: {other:?}"),
    }
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let settings = resolve(
        &Effective::default(),
        None,
        &CliOverrides::default(),
        Path::new(HOME),
    )
    .unwrap();
    assert_eq!(settings.sandbox_mode.value, SandboxMode::WorkspaceWrite);
    assert_eq!(settings.sandbox_mode.source, Source::Default);
    assert_eq!(settings.approval_policy.value, ApprovalPolicy::OnRequest);
    assert_eq!(settings.reviewer.value, Reviewer::User);
    assert_eq!(settings.network.dns_ttl_floor_secs.value, 60);
    assert!(settings.network.dns_upstream.is_empty());
    let domains: Vec<String> = settings
        .network
        .allowed_domains
        .iter()
        .map(|d| d.value.to_string())
        .collect();
    assert_eq!(domains, DEFAULT_ALLOWED_DOMAINS);
    assert!(settings.telemetry.otlp_endpoint.is_none());
    assert!(!settings.telemetry.log_prompts.value);
    assert!(settings.exec.required_rules.is_empty());
    assert!(settings.credentials_store.is_none());
    assert!(settings.login.method.is_none());
}

#[test]
fn a_sandbox_mode_inside_the_requirements_applies() {
    let settings = ok(
        "allowed_sandbox_modes = [\"read-only\", \"workspace-write\"]",
        "\nsandbox_mode = \"read-only\"\n",
    );
    assert_eq!(settings.sandbox_mode.value, SandboxMode::ReadOnly);
    assert_eq!(user_line(&settings.sandbox_mode.source), 2);
    assert_eq!(
        settings.sandbox_mode.source.to_string(),
        format!("sandbox_mode at {USER} line 2")
    );
}

#[test]
fn a_sandbox_mode_outside_the_requirements_names_both_sides() {
    let message = error(
        "schema_version = 1\nallowed_sandbox_modes = [\"read-only\", \"workspace-write\"]\n",
        "approval_policy = \"on-request\"\nsandbox_mode = \"danger-full-access\"\n",
    );
    assert_eq!(
        message,
        format!(
            "sandbox_mode at {USER} line 2: \"danger-full-access\" is not allowed; requirement \
             allowed_sandbox_modes = [\"read-only\", \"workspace-write\"] at {REQ} line 2 (local layer)"
        )
    );
}

#[test]
fn command_line_flags_override_the_file_and_are_checked_too() {
    let req = "allowed_approval_policies = [\"untrusted\", \"on-request\"]";
    let cli = CliOverrides {
        approval_policy: Some(ApprovalPolicy::Untrusted),
        ..CliOverrides::default()
    };
    let settings = run(req, "approval_policy = \"on-request\"", &cli).unwrap();
    assert_eq!(settings.approval_policy.value, ApprovalPolicy::Untrusted);
    assert_eq!(
        settings.approval_policy.source,
        Source::CommandLine {
            flag: "--approval-policy"
        }
    );

    let cli = CliOverrides {
        approval_policy: Some(ApprovalPolicy::Never),
        ..CliOverrides::default()
    };
    let errors = run(req, "", &cli).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        format!(
            "command line flag --approval-policy: \"never\" is not allowed; requirement \
             allowed_approval_policies = [\"untrusted\", \"on-request\"] at {REQ} line 1 (local layer)"
        )
    );
}

#[test]
fn an_unchosen_value_falls_back_inside_the_requirements() {
    let settings = ok("allowed_sandbox_modes = [\"read-only\"]", "");
    assert_eq!(settings.sandbox_mode.value, SandboxMode::ReadOnly);
    assert!(matches!(
        settings.sandbox_mode.source,
        Source::Requirement {
            key: "allowed_sandbox_modes",
            ..
        }
    ));

    let message = error("allowed_reviewers = []", "");
    assert_eq!(
        message,
        format!(
            "built-in default: \"user\" is not allowed, and the requirement allows no value at \
             all; requirement allowed_reviewers = [] at {REQ} line 1 (local layer)"
        )
    );
}

#[test]
fn an_external_reviewer_needs_the_required_command() {
    let req = "allowed_reviewers = [\"user\", \"external\"]\n";
    let message = error(req, "reviewer = \"external\"");
    assert!(
        message.contains("needs the requirement reviewer_command"),
        "{message}"
    );
    let settings = ok(
        &format!("{req}reviewer_command = [\"/opt/review\", \"--strict\"]"),
        "reviewer = \"external\"",
    );
    assert_eq!(settings.reviewer.value, Reviewer::External);
    assert_eq!(
        settings.reviewer_command.unwrap().value.args(),
        ["/opt/review", "--strict"]
    );
}

#[test]
fn users_add_domains_unless_the_requirements_forbid_it() {
    let user_text =
        "[network]\nallowed_domains = [\n  \"docs.rs\",\n]\ndenied_domains = [\"ads.example\"]\n";
    let settings = ok("", user_text);
    let added = settings.network.allowed_domains.last().unwrap();
    assert_eq!(added.value.to_string(), "docs.rs");
    assert_eq!(user_line(&added.source), 3);
    assert_eq!(settings.network.denied_domains.len(), 1);

    // The requirement's list replaces the defaults; the user's domains still add to it.
    let settings = ok(
        "[network]\nallowed_domains = [\"*.corp.example\"]",
        user_text,
    );
    let domains: Vec<String> = settings
        .network
        .allowed_domains
        .iter()
        .map(|d| d.value.to_string())
        .collect();
    assert_eq!(domains, ["*.corp.example", "docs.rs"]);

    // Requirement denials are always there, and a user cannot allow what they deny.
    let req = "[network]\ndenied_domains = [\"*.pastebin.example\"]\n";
    let settings = ok(req, user_text);
    let denied: Vec<String> = settings
        .network
        .denied_domains
        .iter()
        .map(|d| d.value.to_string())
        .collect();
    assert_eq!(denied, ["*.pastebin.example", "ads.example"]);
    let message = error(
        req,
        "[network]\nallowed_domains = [\"docs.rs\", \"x.pastebin.example\"]",
    );
    assert_eq!(
        message,
        format!(
            "network.allowed_domains[1] at {USER} line 2: \"x.pastebin.example\" is denied; \
             requirement network.denied_domains = [\"*.pastebin.example\"] at {REQ} line 2 (local layer)"
        )
    );
}

#[test]
fn managed_allowed_domains_only_stops_users_adding_domains() {
    let req =
        "[network]\nallowed_domains = [\"*.corp.example\"]\nmanaged_allowed_domains_only = true\n";
    let message = error(req, "[network]\nallowed_domains = [\"docs.rs\"]");
    assert_eq!(
        message,
        format!(
            "network.allowed_domains[0] at {USER} line 2: \"docs.rs\" cannot be added: only the \
             requirements' domains are allowed; requirement network.managed_allowed_domains_only \
             = true at {REQ} line 3 (local layer)"
        )
    );
    // Naming an already allowed domain adds nothing and is fine.
    let settings = ok(req, "[network]\nallowed_domains = [\"git.corp.example\"]");
    assert_eq!(settings.network.allowed_domains.len(), 1);
    // The flag set to false changes nothing.
    ok(
        "[network]\nmanaged_allowed_domains_only = false",
        "[network]\nallowed_domains = [\"docs.rs\"]",
    );
    // Flags cannot add either.
    let cli = CliOverrides {
        allowed_domains: vec!["docs.rs".parse().unwrap()],
        ..CliOverrides::default()
    };
    let errors = run(req, "", &cli).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .starts_with("command line flag --allow-domain: \"docs.rs\"")
    );
}

#[test]
fn user_cidrs_must_lie_inside_the_allowed_ones() {
    let req = "[network]\nallowed_cidrs = [\"10.0.0.0/8\", \"fd00::/8\"]\n";
    let settings = ok(
        req,
        "[network]\nallowed_cidrs = [\"10.1.0.0/16\", \"fd00:1::/32\", \"10.2.3.4\"]",
    );
    assert_eq!(settings.network.allowed_cidrs.len(), 3);
    let message = error(
        req,
        "[network]\nallowed_cidrs = [\"10.1.0.0/16\",\n  \"192.168.0.0/16\"]",
    );
    assert_eq!(
        message,
        format!(
            "network.allowed_cidrs[1] at {USER} line 3: \"192.168.0.0/16\" is outside every \
             allowed network; requirement network.allowed_cidrs = [\"10.0.0.0/8\", \"fd00::/8\"] \
             at {REQ} line 2 (local layer)"
        )
    );
    // Without the requirement, any network may be allowed.
    ok("", "[network]\nallowed_cidrs = [\"0.0.0.0/0\"]");
}

#[test]
fn user_loopback_ports_must_be_a_subset() {
    let req = "[network]\nloopback_ports = [3000, 8080]\n";
    let settings = ok(req, "[network]\nloopback_ports = [8080]");
    assert_eq!(settings.network.loopback_ports[0].value, 8080);
    let message = error(req, "[network]\nloopback_ports = [8080, 5432]");
    assert!(message.starts_with(&format!("network.loopback_ports[1] at {USER} line 2: 5432 is not an allowed loopback port; requirement network.loopback_ports = [3000, 8080] at {REQ} line 2")), "{message}");
    let message = error(
        "[network]\nloopback_ports = []",
        "[network]\nloopback_ports = [3000]",
    );
    assert!(
        message.contains("3000 is not an allowed loopback port"),
        "{message}"
    );
}

#[test]
fn dns_settings_come_from_the_user() {
    let settings = ok(
        "",
        "[network]\ndns_upstream = [\"192.0.2.53\", \"[2001:db8::53]:5353\"]\ndns_ttl_floor_secs = 30\n",
    );
    let upstream: Vec<String> = settings
        .network
        .dns_upstream
        .iter()
        .map(|d| d.value.to_string())
        .collect();
    assert_eq!(upstream, ["192.0.2.53:53", "[2001:db8::53]:5353"]);
    assert_eq!(settings.network.dns_ttl_floor_secs.value, 30);
    assert_eq!(user_line(&settings.network.dns_ttl_floor_secs.source), 3);
}

#[test]
fn required_exec_rules_stay_beside_user_rules() {
    let req = "[[exec.rules]]\nprefix = [\"git\", \"push\", \"--force\"]\ndecision = \"forbidden\"\nreason = \"rewrites history\"\n\n\
               [[exec.rules]]\nprefix = [\"curl\"]\ndecision = \"prompt\"\n";
    let user_text = "[[exec.rules]]\nprefix = [\"git\", \"push\"]\ndecision = \"allow\"\n";
    let settings = ok(req, user_text);
    let required = &settings.exec.required_rules;
    assert_eq!(required.len(), 2);
    assert_eq!(required[0].value.decision, Decision::Forbidden);
    assert_eq!(
        required[0].value.reason.as_deref(),
        Some("rewrites history")
    );
    let line = |source: &Source| match source {
        Source::Requirement {
            key: "exec.rules",
            origin,
        } => origin.location.line(),
        other => panic!("{other:?}"),
    };
    assert_eq!(line(&required[0].source), 1);
    assert_eq!(line(&required[1].source), 6);
    assert_eq!(settings.exec.user_rules.len(), 1);
    assert_eq!(settings.exec.user_rules[0].value.decision, Decision::Allow);
    assert_eq!(user_line(&settings.exec.user_rules[0].source), 1);
}

#[test]
fn write_roots_must_be_inside_an_allowed_root_and_outside_forbidden_ones() {
    let req = "[filesystem]\nallowed_write_roots = [\"~/src\", \"/srv/data\"]\nforbidden_write_roots = [\"~/src/secrets\"]\n";
    let settings = ok(
        req,
        "[filesystem]\nwrite_roots = [\"~/src/app\", \"/srv/data\"]\ndenied_reads = [\"~/.aws\"]",
    );
    let roots: Vec<&PathBuf> = settings
        .filesystem
        .write_roots
        .iter()
        .map(|r| &r.value)
        .collect();
    assert_eq!(
        roots,
        [Path::new("/home/u/src/app"), Path::new("/srv/data")]
    );
    assert_eq!(
        settings.filesystem.forbidden_write_roots[0].value,
        Path::new("/home/u/src/secrets")
    );
    assert_eq!(
        settings.filesystem.denied_reads[0].value,
        Path::new("/home/u/.aws")
    );

    // An absolute path is compared after `~` is expanded.
    ok(req, "[filesystem]\nwrite_roots = [\"/home/u/src/other\"]");

    let message = error(req, "[filesystem]\nwrite_roots = [\"/srv/database\"]");
    assert_eq!(
        message,
        format!(
            "filesystem.write_roots[0] at {USER} line 2: \"/srv/database\" is not inside any \
             allowed write root; requirement filesystem.allowed_write_roots = [\"~/src\", \
             \"/srv/data\"] at {REQ} line 2 (local layer)"
        )
    );
    let message = error(
        req,
        "[filesystem]\nwrite_roots = [\"/home/u/src/secrets/keys\"]",
    );
    assert!(message.contains("\"/home/u/src/secrets/keys\" is inside a forbidden write root; requirement filesystem.forbidden_write_roots = [\"~/src/secrets\"] at /etc/warden/requirements.toml line 3"), "{message}");
}

#[test]
fn denied_reads_add_up() {
    let settings = ok(
        "[filesystem]\ndenied_reads = [\"~/.ssh\", \"/etc/shadow\"]",
        "[filesystem]\ndenied_reads = [\"~/.aws\"]",
    );
    let denied: Vec<&PathBuf> = settings
        .filesystem
        .denied_reads
        .iter()
        .map(|r| &r.value)
        .collect();
    assert_eq!(
        denied,
        [
            Path::new("/home/u/.ssh"),
            Path::new("/etc/shadow"),
            Path::new("/home/u/.aws")
        ]
    );
}

#[test]
fn telemetry_the_requirements_set_is_forced() {
    let req = "[telemetry]\notlp_endpoint = \"https://otel.corp.example:4317\"\notlp_protocol = \"grpc\"\nlog_prompts = false\n";
    let settings = ok(req, "");
    assert_eq!(
        settings.telemetry.otlp_endpoint.unwrap().value.as_str(),
        "https://otel.corp.example:4317"
    );
    assert!(matches!(
        settings.telemetry.log_prompts.source,
        Source::Requirement {
            key: "telemetry.log_prompts",
            ..
        }
    ));
    // Repeating the forced value is fine.
    ok(req, "[telemetry]\notlp_protocol = \"grpc\"");
    let message = error(
        req,
        "[telemetry]\notlp_endpoint = \"http://localhost:4317\"",
    );
    assert_eq!(
        message,
        format!(
            "telemetry.otlp_endpoint at {USER} line 2: \"http://localhost:4317\" differs from the \
             value the requirements force; requirement telemetry.otlp_endpoint = \
             \"https://otel.corp.example:4317\" at {REQ} line 2 (local layer)"
        )
    );
    // Without requirements the user's choice applies.
    let settings = ok(
        "",
        "[telemetry]\notlp_endpoint = \"http://localhost:4317\"\notlp_protocol = \"http/protobuf\"",
    );
    assert_eq!(
        user_line(&settings.telemetry.otlp_protocol.unwrap().source),
        3
    );
}

#[test]
fn telemetry_headers_ca_and_backlog() {
    // Defaults: no headers, no CA, 256 MiB, pause.
    let settings = ok("", "");
    let t = &settings.telemetry;
    assert!(t.otlp_headers.is_empty() && t.otlp_ca_file.is_none());
    assert_eq!(t.max_export_backlog_mib.value, 256);
    assert_eq!(t.export_backlog_policy.value.as_str(), "pause");

    let req = "[telemetry]\notlp_headers = [\"authorization=Bearer org\"]\notlp_ca_file = \"/etc/warden/otel-ca.pem\"\nmax_export_backlog_mib = 64\nexport_backlog_policy = \"drop\"\n";
    let settings = ok(
        req,
        "[telemetry]\notlp_headers = [\"x-user=me\"]\nmax_export_backlog_mib = 16\n",
    );
    let t = &settings.telemetry;
    let names: Vec<&str> = t.otlp_headers.iter().map(|h| h.value.name()).collect();
    assert_eq!(names, ["authorization", "x-user"]);
    assert_eq!(
        t.otlp_ca_file.as_ref().unwrap().value,
        Path::new("/etc/warden/otel-ca.pem")
    );
    assert_eq!(t.max_export_backlog_mib.value, 16);
    assert_eq!(t.export_backlog_policy.value.as_str(), "drop");
    // The ceiling applies when the user says nothing.
    assert_eq!(ok(req, "").telemetry.max_export_backlog_mib.value, 64);

    let message = error(req, "[telemetry]\nmax_export_backlog_mib = 100\n");
    assert!(
        message.contains("is more than the requirements allow"),
        "{message}"
    );
    assert!(
        message.contains("telemetry.max_export_backlog_mib = 64"),
        "{message}"
    );
    let message = error(
        req,
        "[telemetry]\notlp_headers = [\"Authorization=mine\"]\n",
    );
    assert!(
        message.contains("sets a header the requirements set"),
        "{message}"
    );
    // The secret is never printed, not even in errors.
    assert!(
        !message.contains("mine") && !message.contains("Bearer org"),
        "{message}"
    );
    let message = error(req, "[telemetry]\nexport_backlog_policy = \"pause\"\n");
    assert!(
        message.contains("differs from the value the requirements force"),
        "{message}"
    );
    let message = error(req, "[telemetry]\notlp_ca_file = \"/tmp/ca.pem\"\n");
    assert!(message.contains("telemetry.otlp_ca_file"), "{message}");
    let message = error("", "[telemetry]\nmax_export_backlog_mib = 0\n");
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn credentials_and_login_come_from_the_requirements() {
    let settings = ok(
        "[credentials]\nstore = \"keyring\"\n[login]\nmethod = \"chatgpt\"\nworkspace_id = \"ws-42\"\n",
        "",
    );
    assert!(settings.credentials_store.is_some());
    assert_eq!(settings.login.method.unwrap().value.as_str(), "chatgpt");
    assert_eq!(settings.login.workspace_id.unwrap().value.as_str(), "ws-42");
}

#[test]
fn nothing_is_half_applied_every_error_is_reported() {
    let req = "allowed_sandbox_modes = [\"read-only\"]\n[network]\nloopback_ports = []\nallowed_cidrs = []\n";
    let user_text = "sandbox_mode = \"workspace-write\"\n[network]\nloopback_ports = [1, 2]\nallowed_cidrs = [\"10.0.0.0/8\"]\n";
    let errors = run(req, user_text, &CliOverrides::default()).unwrap_err();
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 4, "{lines:#?}");
    assert!(lines[0].starts_with("sandbox_mode at"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("network.loopback_ports[1] at {USER} line 3")))
    );
}

#[test]
fn settings_serialize_with_provenance() {
    let settings = ok(
        "allowed_sandbox_modes = [\"read-only\"]",
        "[network]\nallowed_domains = [\"docs.rs\"]",
    );
    let json = serde_json::to_value(&settings).unwrap();
    assert_eq!(
        json["sandbox_mode"],
        serde_json::json!({"value": "read-only", "source": {"kind": "requirement", "key": "allowed_sandbox_modes", "layer": "local", "file": REQ, "line": 1}})
    );
    assert_eq!(
        json["network"]["allowed_domains"][10],
        serde_json::json!({"value": "docs.rs", "source": {"kind": "user-config", "key": "network.allowed_domains[0]", "file": USER, "line": 2}})
    );
    assert_eq!(
        json["approval_policy"]["source"],
        serde_json::json!({"kind": "default"})
    );
}

#[test]
fn dns_budgets_are_ceilings_users_may_only_lower() {
    use warden_requirements::constrain::{
        DEFAULT_DNS_MAX_LABEL_ENTROPY_BITS, DEFAULT_DNS_UNIQUE_NAMES_PER_DOMAIN,
        DEFAULT_DNS_UNIQUE_NAMES_PER_SESSION,
    };
    let b = ok("", "").network.dns_budget;
    assert_eq!(
        (
            b.unique_names_per_session.value,
            b.unique_names_per_session.source
        ),
        (DEFAULT_DNS_UNIQUE_NAMES_PER_SESSION, Source::Default)
    );
    assert_eq!(
        b.max_label_entropy_bits.value.get(),
        DEFAULT_DNS_MAX_LABEL_ENTROPY_BITS
    );

    let req = "[network.dns_budget]\nunique_names_per_domain = 20\nmax_label_entropy_bits = 3.5\n";
    // Unset by the user: the ceiling where it is below the default, citing the requirement.
    let b = ok(req, "").network.dns_budget;
    const { assert!(20 < DEFAULT_DNS_UNIQUE_NAMES_PER_DOMAIN) };
    assert_eq!(b.unique_names_per_domain.value, 20);
    assert!(
        b.unique_names_per_domain
            .source
            .to_string()
            .starts_with("requirement network.dns_budget.unique_names_per_domain at /etc/warden/requirements.toml line 2"),
        "{}",
        b.unique_names_per_domain.source
    );
    assert_eq!(b.max_label_entropy_bits.value.get(), 3.5);
    // Lower is the user's to choose.
    let b = ok(
        req,
        "[network.dns_budget]\nunique_names_per_domain = 5\nmax_label_length = 30\n",
    )
    .network
    .dns_budget;
    assert_eq!(b.unique_names_per_domain.value, 5);
    assert_eq!(user_line(&b.unique_names_per_domain.source), 2);
    assert_eq!(b.max_label_length.value, 30);
    // Higher is refused, naming both files, lines and keys.
    let message = error(
        req,
        "\n[network.dns_budget]\nunique_names_per_domain = 21\n",
    );
    assert_eq!(
        message,
        format!(
            "network.dns_budget.unique_names_per_domain at {USER} line 3: 21 is more than the \
             requirements allow; requirement network.dns_budget.unique_names_per_domain = 20 \
             at {REQ} line 2 (local layer)"
        )
    );
    let message = error(req, "[network.dns_budget]\nmax_label_entropy_bits = 4.0\n");
    assert!(
        message.contains("network.dns_budget.max_label_entropy_bits = 3.5"),
        "{message}"
    );
    let message = error(
        "",
        "[network.dns_budget]\nquery_bytes_per_minute_per_domain = 0\n",
    );
    assert!(message.contains("at least 1"), "{message}");
    // Values that are no entropy, and unknown keys, do not parse.
    for bad in [
        "[network.dns_budget]\nmax_label_entropy_bits = 9.0\n",
        "[network.dns_budget]\nmax_label_entropy_bits = -1\n",
        "[network.dns_budget]\nunique_names = 3\n",
    ] {
        assert!(UserConfig::parse(USER, bad).is_err(), "{bad}");
    }
}

#[test]
fn vcs_protection_is_on_by_default_and_a_requirement_keeps_it_on() {
    let settings = ok("", "");
    assert!(settings.filesystem.protect_vcs_metadata.value);
    assert_eq!(
        settings.filesystem.protect_vcs_metadata.source,
        Source::Default
    );
    // The user may turn it off...
    let settings = ok("", "[filesystem]\nprotect_vcs_metadata = false\n");
    assert!(!settings.filesystem.protect_vcs_metadata.value);
    assert_eq!(
        user_line(&settings.filesystem.protect_vcs_metadata.source),
        2
    );
    // ...unless a requirement says otherwise; a requirement set to false changes nothing.
    let req = "[filesystem]\nrequire_vcs_protection = true\n";
    assert_eq!(
        error(req, "[filesystem]\nprotect_vcs_metadata = false\n"),
        format!(
            "filesystem.protect_vcs_metadata at {USER} line 2: false cannot turn off what the \
             requirements require; requirement filesystem.require_vcs_protection = true at \
             {REQ} line 2 (local layer)"
        )
    );
    let settings = ok(req, "[filesystem]\nprotect_vcs_metadata = true\n");
    assert!(matches!(
        settings.filesystem.protect_vcs_metadata.source,
        Source::Requirement {
            key: "filesystem.require_vcs_protection",
            ..
        }
    ));
    let settings = ok(
        "[filesystem]\nrequire_vcs_protection = false\n",
        "[filesystem]\nprotect_vcs_metadata = false\n",
    );
    assert!(!settings.filesystem.protect_vcs_metadata.value);
}

/// Names the user passes on: plain names, none the requirements scrub; both lists resolved
/// with where they came from.
#[test]
fn pass_env_is_checked_against_scrub_env() {
    use warden_requirements::values::EnvPattern;
    let req = "[credentials]\nscrub_env = [\"CORP_*\", \"SIGNING_KEY\"]\n";
    let user_text = "[credentials]\npass_env = [\"OPENAI_API_KEY\"]\n";
    let pass = |names: &[&str]| CliOverrides {
        pass_env: names
            .iter()
            .map(|n| n.parse::<EnvPattern>().unwrap())
            .collect(),
        ..CliOverrides::default()
    };
    /// Passed on the command line, and the refused ones with the words of their refusal.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        (&["GITHUB_TOKEN"], &[]),
        (
            &["CORP_TOKEN"],
            &[("\"CORP_TOKEN\"", "credentials.scrub_env")],
        ),
        (
            &["SIGNING_KEY", "A_TOKEN"],
            &[("\"SIGNING_KEY\"", "scrubbed")],
        ),
        (&["AWS_*"], &[("\"AWS_*\"", "is a prefix")]),
    ];
    for (flags, refused) in cases {
        match run(req, user_text, &pass(flags)) {
            Ok(s) => {
                assert!(refused.is_empty(), "{flags:?} resolved");
                let names: Vec<String> = s
                    .environment
                    .pass
                    .iter()
                    .map(|p| p.value.to_string())
                    .collect();
                let mut want = vec!["OPENAI_API_KEY".to_string()];
                want.extend(flags.iter().map(|f| f.to_string()));
                assert_eq!(names, want);
                assert_eq!(s.environment.scrub.len(), 2);
                assert!(s.environment.scrub[0].value.matches("CORP_DB"));
            }
            Err(errors) => {
                assert_eq!(errors.len(), refused.len(), "{flags:?}: {errors:?}");
                for (e, (value, words)) in errors.iter().zip(refused.iter()) {
                    let text = e.to_string();
                    assert!(text.contains(value) && text.contains(words), "{text}");
                    assert!(text.contains("--pass-env"), "{text}");
                }
            }
        }
    }
}
