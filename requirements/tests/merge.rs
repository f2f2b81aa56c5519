//! Merging layers: per key, the highest layer that sets the key wins, even to an empty list.

mod common;

use common::{layer, policy, trusted_dir, write};
use warden_requirements::{
    CliOverrides, Effective, Entry, LayerKind, LayerPaths, load_local_layers, merge, resolve,
};

const KINDS: [LayerKind; 3] = [LayerKind::CloudBundle, LayerKind::Managed, LayerKind::Local];

/// A document setting `key` to a value that differs for each `i` where the type allows it.
fn fragment(key: &str, i: usize) -> String {
    let bool_value = i.is_multiple_of(2);
    match key {
        "allowed_sandbox_modes" => format!(
            "allowed_sandbox_modes = [\"{}\"]",
            ["read-only", "workspace-write", "danger-full-access"][i]
        ),
        "allowed_approval_policies" => format!(
            "allowed_approval_policies = [\"{}\"]",
            ["untrusted", "on-request", "never"][i]
        ),
        "allowed_reviewers" => format!(
            "allowed_reviewers = [\"{}\"]",
            ["user", "auto-review", "external"][i]
        ),
        "reviewer_command" => format!("reviewer_command = [\"/usr/bin/review{i}\", \"--json\"]"),
        "network.allowed_domains" => format!("[network]\nallowed_domains = [\"d{i}.example\"]"),
        "network.denied_domains" => format!("[network]\ndenied_domains = [\"*.x{i}.example\"]"),
        "network.allowed_cidrs" => format!("[network]\nallowed_cidrs = [\"10.{i}.0.0/16\"]"),
        "network.managed_allowed_domains_only" => {
            format!("[network]\nmanaged_allowed_domains_only = {bool_value}")
        }
        "network.loopback_ports" => format!("[network]\nloopback_ports = [{}]", 8000 + i),
        "network.allow_icmp" => format!("[network]\nallow_icmp = {bool_value}"),
        "network.denied_unix_sockets" => {
            format!("[network]\ndenied_unix_sockets = [\"/run/s{i}.sock\"]")
        }
        "network.dns_budget.max_label_entropy_bits" => {
            format!("[network.dns_budget]\nmax_label_entropy_bits = 3.{i}")
        }
        budget if budget.starts_with("network.dns_budget.") => {
            let name = budget.trim_start_matches("network.dns_budget.");
            format!("[network.dns_budget]\n{name} = {}", 10 + i)
        }
        "exec.rules" => {
            format!("[[exec.rules]]\nprefix = [\"cmd{i}\"]\ndecision = \"forbidden\"")
        }
        "filesystem.denied_reads" => format!("[filesystem]\ndenied_reads = [\"/secret{i}\"]"),
        "filesystem.allowed_write_roots" => {
            format!("[filesystem]\nallowed_write_roots = [\"/srv/w{i}\"]")
        }
        "filesystem.forbidden_write_roots" => {
            format!("[filesystem]\nforbidden_write_roots = [\"~/f{i}\"]")
        }
        "filesystem.require_vcs_protection" => {
            format!("[filesystem]\nrequire_vcs_protection = {bool_value}")
        }
        "telemetry.otlp_endpoint" => {
            format!("[telemetry]\notlp_endpoint = \"https://otel{i}.example:4317\"")
        }
        "telemetry.otlp_protocol" => format!(
            "[telemetry]\notlp_protocol = \"{}\"",
            ["grpc", "http/protobuf"][i % 2]
        ),
        "telemetry.log_prompts" => format!("[telemetry]\nlog_prompts = {bool_value}"),
        "telemetry.otlp_headers" => format!("[telemetry]\notlp_headers = [\"x-team=t{i}\"]"),
        "telemetry.otlp_ca_file" => format!("[telemetry]\notlp_ca_file = \"/etc/ca{i}.pem\""),
        "telemetry.max_export_backlog_mib" => {
            format!("[telemetry]\nmax_export_backlog_mib = {}", 10 + i)
        }
        "telemetry.export_backlog_policy" => format!(
            "[telemetry]\nexport_backlog_policy = \"{}\"",
            ["pause", "drop"][i % 2]
        ),
        "required_layers" => format!(
            "required_layers = [\"{}\"]",
            ["pids_limit", "landlock.truncate"][i % 2]
        ),
        "credentials.store" => "[credentials]\nstore = \"keyring\"".into(),
        "login.method" => format!("[login]\nmethod = \"method{i}\""),
        "login.workspace_id" => format!("[login]\nworkspace_id = \"ws-{i}\""),
        "login.provider" => format!("[login]\nprovider = \"p{i}\""),
        "login.issuer" => format!("[login]\nissuer = \"https://auth{i}.example\""),
        "login.jwks_url" => format!("[login]\njwks_url = \"https://auth{i}.example/jwks\""),
        "login.jwks_ca_file" => format!("[login]\njwks_ca_file = \"/etc/jwks{i}.pem\""),
        "login.audience" => format!("[login]\naudience = \"aud{i}\""),
        "login.workspace_claim" => format!("[login]\nworkspace_claim = \"/org{i}\""),
        "login.pins" => format!("[[login.pins]]\nprovider = \"p{i}\"\nmethods = [\"m{i}\"]"),
        "credentials.scrub_env" => format!("[credentials]\nscrub_env = [\"CORP{i}_*\"]"),
        "credentials.allowed_deliveries" => format!(
            "[credentials]\nallowed_deliveries = [\"{}\"]",
            ["inject", "helper"][i % 2]
        ),
        "triage.live" => format!("[triage]\nlive = {bool_value}"),
        action if action.starts_with("triage.on_") => format!(
            "[triage]\n{} = \"{}\"",
            action.trim_start_matches("triage."),
            ["end", "record"][i % 2]
        ),
        "service.allowed_users" => format!("[service]\nallowed_users = [\"user{i}\"]"),
        "service.allowed_groups" => format!("[service]\nallowed_groups = [\"group{i}\"]"),
        "service.agent_programs" => {
            format!("[[service.agent_programs]]\npath = \"/opt/agent{i}/bin/agent\"")
        }
        "service.max_sessions_per_user" => {
            format!("[service]\nmax_sessions_per_user = {}", 1 + i)
        }
        "cloud.bundle_url" => format!("[cloud]\nbundle_url = \"https://policy{i}.example/b.toml\""),
        "cloud.public_key" => {
            let key = warden_requirements::SecretKey::generate()
                .unwrap()
                .public_key();
            format!("[cloud]\npublic_key = \"{key}\"")
        }
        other => panic!("no fragment for {other}"),
    }
}

/// The value `fragment` wrote, read back as plain TOML.
fn written_value(text: &str, key: &str) -> toml::Value {
    let mut value = toml::Value::Table(toml::from_str(text).unwrap());
    for part in key.split('.') {
        value = value[part].clone();
    }
    value
}

fn entry(effective: &Effective, key: &str) -> Entry {
    effective
        .entries()
        .into_iter()
        .find(|e| e.key == key)
        .unwrap()
}

#[test]
fn every_key_follows_layer_precedence() {
    let mut checked = 0;
    for &key in Effective::KEYS {
        // Every combination of layers that set the key; the others leave it unset.
        for mask in 1..8u8 {
            if key.starts_with("cloud.") && mask & 1 != 0 {
                continue; // a bundle cannot set [cloud]; tested in parse.rs
            }
            let texts: Vec<Option<String>> = (0..3)
                .map(|i| (mask & (1 << i) != 0).then(|| fragment(key, i)))
                .collect();
            let layers: Vec<_> = KINDS
                .iter()
                .zip(&texts)
                .map(|(&kind, text)| {
                    layer(kind, &format!("{kind}.toml"), text.as_deref().unwrap_or(""))
                })
                .collect();
            let winner = mask.trailing_zeros() as usize;
            let effective = merge(&layers);
            let got = entry(&effective, key);
            let origin = got.origin.as_ref().unwrap();
            assert_eq!(origin.layer, KINDS[winner], "{key} with mask {mask:03b}");
            assert_eq!(origin.location.file(), format!("{}.toml", KINDS[winner]));
            let text = texts[winner].as_deref().unwrap();
            // The line of the value (the rule's table header for exec.rules).
            let line = if key.contains('.') { 2 } else { 1 };
            let line = if ["exec.rules", "login.pins", "service.agent_programs"].contains(&key) {
                1
            } else {
                line
            };
            assert_eq!(origin.location.line(), line, "{key}");
            if key == "telemetry.otlp_headers" {
                // Header values are secrets: shown by size only.
                let shown = got.value.as_ref().unwrap().to_string();
                assert!(shown.contains("x-team=<2 bytes, not shown>"), "{shown}");
            } else if key != "cloud.public_key" {
                assert_eq!(got.value, Some(written_value(text, key)), "{key}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 51 * 7 + 2 * 3);
}

#[test]
fn unset_everywhere_means_unset() {
    let layers: Vec<_> = KINDS.iter().map(|&k| layer(k, "x", "")).collect();
    let effective = merge(&layers);
    assert_eq!(effective, Effective::default());
    let entries = effective.entries();
    assert_eq!(entries.len(), Effective::KEYS.len());
    assert!(
        entries
            .iter()
            .all(|e| e.value.is_none() && e.origin.is_none())
    );
    assert_eq!(entries[0].to_string(), "allowed_sandbox_modes is not set");
}

#[test]
fn an_empty_list_in_a_higher_layer_wins() {
    let layers = [
        layer(
            LayerKind::CloudBundle,
            "cloud",
            "allowed_reviewers = [\"user\"]",
        ),
        layer(
            LayerKind::Managed,
            "managed",
            "[network]\nallowed_domains = []",
        ),
        layer(
            LayerKind::Local,
            "local",
            "[network]\nallowed_domains = [\"a.example\"]\n[filesystem]\ndenied_reads = [\"/x\"]",
        ),
    ];
    let effective = merge(&layers);
    let domains = effective.allowed_domains.as_ref().unwrap();
    assert!(domains.value.is_empty());
    assert_eq!(domains.origin.layer, LayerKind::Managed);
    assert_eq!(
        effective.denied_reads.as_ref().unwrap().origin.layer,
        LayerKind::Local
    );

    // An empty list allows nothing: not even the built-in package registries.
    let settings = resolve(
        &effective,
        None,
        &CliOverrides::default(),
        "/home/u".as_ref(),
    )
    .unwrap();
    assert!(settings.network.allowed_domains.is_empty());
}

#[test]
fn managed_drop_ins_override_in_lexical_order_and_over_the_local_file() {
    let dir = trusted_dir();
    let managed = dir.path().join("managed.d");
    std::fs::create_dir(&managed).unwrap();
    write(
        &managed.join("10-base.toml"),
        "allowed_reviewers = [\"user\"]\n[login]\nmethod = \"api-key\"\n",
    );
    write(
        &managed.join("20-team.toml"),
        "# team override\nallowed_reviewers = [\"user\", \"auto-review\"]\n",
    );
    // Not drop-ins: ignored even though they would not parse.
    write(&managed.join("README"), "not toml");
    write(&managed.join("30-off.toml.disabled"), "not toml");
    let local = write(
        &dir.path().join("requirements.toml"),
        "[login]\nmethod = \"chatgpt\"\nworkspace_id = \"ws-1\"\n",
    );

    let paths = LayerPaths {
        managed_dir: managed.clone(),
        local_file: local.clone(),
    };
    let layers = load_local_layers(&paths, &policy()).unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l.name()).collect();
    let expect = [
        managed.join("20-team.toml"),
        managed.join("10-base.toml"),
        local.clone(),
    ];
    assert_eq!(
        names,
        expect
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect::<Vec<_>>()
    );

    let effective = merge(&layers);
    let reviewers = effective.allowed_reviewers.as_ref().unwrap();
    assert_eq!(reviewers.value.len(), 2);
    assert_eq!(
        reviewers.origin.location.file(),
        expect[0].to_str().unwrap()
    );
    assert_eq!(reviewers.origin.location.line(), 2);
    let method = effective.login_method.as_ref().unwrap();
    assert_eq!(method.value.as_str(), "api-key");
    assert_eq!(method.origin.location.file(), expect[1].to_str().unwrap());
    let workspace = effective.login_workspace_id.as_ref().unwrap();
    assert_eq!(workspace.origin.layer, LayerKind::Local);
}

#[test]
fn missing_layers_set_nothing() {
    let dir = trusted_dir();
    let paths = LayerPaths {
        managed_dir: dir.path().join("managed.d"),
        local_file: dir.path().join("requirements.toml"),
    };
    assert!(load_local_layers(&paths, &policy()).unwrap().is_empty());
    assert_eq!(
        LayerPaths::default().managed_dir,
        std::path::Path::new("/etc/warden/managed.d")
    );
    assert_eq!(
        LayerPaths::default().local_file,
        std::path::Path::new("/etc/warden/requirements.toml")
    );
}

#[test]
fn entries_serialize_to_json_with_their_origin() {
    let layers = [layer(
        LayerKind::Managed,
        "/etc/warden/managed.d/10.toml",
        "\n[network]\nallowed_domains = [\"*.corp.example\", \"github.com\"]\n",
    )];
    let effective = merge(&layers);
    let json = serde_json::to_value(effective.entries()).unwrap();
    let domains = json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "network.allowed_domains")
        .unwrap();
    assert_eq!(
        *domains,
        serde_json::json!({
            "key": "network.allowed_domains",
            "value": ["*.corp.example", "github.com"],
            "origin": {"layer": "managed", "file": "/etc/warden/managed.d/10.toml", "line": 3},
        })
    );
    let unset = json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "login.method")
        .unwrap();
    assert_eq!(
        *unset,
        serde_json::json!({"key": "login.method", "value": null, "origin": null})
    );
    assert_eq!(
        entry(&effective, "network.allowed_domains").to_string(),
        "network.allowed_domains = [\"*.corp.example\", \"github.com\"]  \
         # /etc/warden/managed.d/10.toml line 3 (managed layer)"
    );
}

#[test]
fn the_cloud_source_needs_both_keys() {
    let key = warden_requirements::SecretKey::generate()
        .unwrap()
        .public_key();
    let url = "[cloud]\nbundle_url = \"https://policy.example/b.toml\"\n";
    let both = [
        layer(
            LayerKind::Managed,
            "m",
            &format!("[cloud]\npublic_key = \"{key}\"\n"),
        ),
        layer(LayerKind::Local, "l", url),
    ];
    let source = merge(&both).cloud_source().unwrap().unwrap();
    assert_eq!(
        source.bundle_url.value.as_str(),
        "https://policy.example/b.toml"
    );
    assert_eq!(source.public_key.value, key);

    let only_url = [layer(
        LayerKind::Local,
        "/etc/warden/requirements.toml",
        url,
    )];
    let err = merge(&only_url).cloud_source().unwrap_err();
    assert_eq!(
        err.to_string(),
        "cloud.bundle_url is set at /etc/warden/requirements.toml line 2 (local layer) \
         but no layer sets cloud.public_key; set both or neither"
    );
    assert!(merge(&[]).cloud_source().unwrap().is_none());
}
