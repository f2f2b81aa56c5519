//! Parsing requirements and user config: every error names the file, the line and the key.

mod common;

use warden_requirements::{Layer, LayerKind, ParseError, UserConfig};

const FILE: &str = "/etc/warden/requirements.toml";

fn parse_err(kind: LayerKind, text: &str) -> ParseError {
    Layer::parse(kind, FILE, text).expect_err("parsed")
}

fn local_err(text: &str) -> ParseError {
    parse_err(LayerKind::Local, text)
}

#[test]
fn a_bad_cidr_names_file_line_and_index() {
    let text = "schema_version = 1\n\
                \n\
                [network]\n\
                allowed_cidrs = [\n\
                \x20 \"10.0.0.0/8\",\n\
                \x20 \"192.168.0.0/16\",\n\
                \x20 \"10.0.0.300/8\",\n\
                ]\n";
    let err = local_err(text);
    assert_eq!(err.line, Some(7));
    assert_eq!(err.key.as_deref(), Some("network.allowed_cidrs[2]"));
    assert_eq!(
        err.to_string(),
        "/etc/warden/requirements.toml line 7, key network.allowed_cidrs[2]: \
         invalid CIDR `10.0.0.300/8`: expected ADDRESS/PREFIX"
    );
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    let err = local_err("allowed_sandbox_modes = [\"read-only\"]\nsandbox_modes = []\n");
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(2), Some("sandbox_modes"))
    );
    assert!(
        err.message.starts_with("unknown field `sandbox_modes`"),
        "{err}"
    );

    let err = local_err("[network]\nallowed_domains = [\"a.example\"]\nallowed_domain = []\n");
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(3), Some("network.allowed_domain"))
    );

    let err = local_err("[telemetry.extra]\nx = 1\n");
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(1), Some("telemetry.extra"))
    );

    let err = local_err("[[exec.rules]]\nprefix = [\"rm\"]\ndecision = \"prompt\"\nwhy = \"x\"\n");
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(4), Some("exec.rules[0].why"))
    );
}

#[test]
fn allow_in_requirements_is_refused_with_its_line() {
    let text = "[[exec.rules]]\n\
                prefix = [\"git\", \"push\"]\n\
                decision = \"prompt\"\n\
                \n\
                [[exec.rules]]\n\
                prefix = [\"curl\"]\n\
                decision = \"allow\"\n";
    let err = local_err(text);
    assert_eq!(err.line, Some(7));
    assert_eq!(err.key.as_deref(), Some("exec.rules[1].decision"));
    assert!(
        err.message.contains("`allow` is refused in requirements"),
        "{err}"
    );

    let inline = "[exec]\nrules = [\n  { prefix = [\"sudo\"], decision = \"allow\" },\n]\n";
    let err = local_err(inline);
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(3), Some("exec.rules[0].decision"))
    );
}

#[test]
fn schema_versions() {
    assert!(Layer::parse(LayerKind::Local, FILE, "schema_version = 1\n").is_ok());
    let err = local_err("\nschema_version = 2\n");
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(2), Some("schema_version"))
    );
    assert!(
        err.message
            .contains("schema_version 2 is newer than this Warden understands"),
        "{err}"
    );
    let err = local_err("schema_version = 0\n");
    assert!(err.message.contains("does not exist"), "{err}");
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "allowed_sandbox_modes = [\"read-only\", \"yolo\"]",
            1,
            "allowed_sandbox_modes[1]",
            "unknown sandbox mode `yolo`",
        ),
        (
            "allowed_reviewers = [\"robot\"]",
            1,
            "allowed_reviewers[0]",
            "unknown reviewer `robot`",
        ),
        (
            "reviewer_command = []",
            1,
            "reviewer_command",
            "must name at least the program",
        ),
        (
            "[network]\n\ndenied_domains = [\"ok.example\", \"bad_domain.example\"]",
            3,
            "network.denied_domains[1]",
            "invalid domain `bad_domain.example`",
        ),
        (
            "[network]\nloopback_ports = [8080, 70000]",
            2,
            "network.loopback_ports[1]",
            "expected u16",
        ),
        (
            "[network]\nmanaged_allowed_domains_only = \"yes\"",
            2,
            "network.managed_allowed_domains_only",
            "expected a boolean",
        ),
        (
            "[filesystem]\ndenied_reads = [\"relative/path\"]",
            2,
            "filesystem.denied_reads[0]",
            "must be absolute or start with `~/`",
        ),
        (
            "[filesystem]\nallowed_write_roots = [\"/srv/../etc\"]",
            2,
            "filesystem.allowed_write_roots[0]",
            "`..` is not allowed",
        ),
        (
            "[telemetry]\notlp_endpoint = \"otel.example:4317\"",
            2,
            "telemetry.otlp_endpoint",
            "invalid URL",
        ),
        (
            "[telemetry]\notlp_protocol = \"http/json\"",
            2,
            "telemetry.otlp_protocol",
            "expected one of `grpc`, `http/protobuf`",
        ),
        (
            "[credentials]\nstore = \"file\"",
            2,
            "credentials.store",
            "expected one of `keyring`",
        ),
        (
            "[login]\nmethod = \"\"",
            2,
            "login.method",
            "must not be empty",
        ),
        (
            "[cloud]\nbundle_url = \"http://example.com/b.toml\"",
            2,
            "cloud.bundle_url",
            "the scheme must be https",
        ),
        (
            "[cloud]\npublic_key = \"AAAA\"",
            2,
            "cloud.public_key",
            "3 bytes, expected 32",
        ),
        (
            "[[exec.rules]]\nprefix = []\ndecision = \"prompt\"",
            2,
            "exec.rules[0].prefix",
            "must name at least the program",
        ),
    ];
    for &(text, line, key, message) in cases {
        let err = local_err(text);
        assert_eq!(err.line, Some(line), "{text}: {err}");
        assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
        assert!(err.message.contains(message), "{text}: {err}");
        assert!(err.to_string().starts_with(FILE), "{err}");
    }
}

#[test]
fn dotted_keys_and_inline_tables_name_the_key_too() {
    let err = local_err("schema_version = 1\nnetwork.allowed_cidrs = [\"10.0.0.0/8\", \"bad\"]\n");
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(2), Some("network.allowed_cidrs[1]"))
    );
    let err = local_err("network = { loopback_ports = [1], extra = true }\n");
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(1), Some("network.extra"))
    );
}

#[test]
fn a_missing_field_names_its_table() {
    let err = local_err("[[exec.rules]]\nprefix = [\"rm\"]\n");
    assert_eq!(err.line, Some(1));
    assert_eq!(err.key.as_deref(), Some("exec.rules[0]"));
    assert!(err.message.contains("missing field `decision`"), "{err}");
}

#[test]
fn syntax_errors_name_the_line() {
    let err = local_err("allowed_sandbox_modes = [\"read-only\"]\n[network\n");
    assert_eq!(err.line, Some(2));
    let err = local_err("allowed_reviewers = []\nallowed_reviewers = []\n");
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("duplicate key"), "{err}");
}

#[test]
fn bundle_and_cloud_tables_belong_to_their_layers() {
    let err = local_err(
        "allowed_reviewers = []\n[bundle]\nversion = 1\nexpires_at = 2030-01-01T00:00:00Z\n",
    );
    assert_eq!((err.line, err.key.as_deref()), (Some(2), Some("bundle")));
    assert!(err.message.contains("only in a cloud bundle"), "{err}");

    let err = parse_err(
        LayerKind::CloudBundle,
        &common::bundle_text(
            1,
            "[cloud]\npublic_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
        ),
    );
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(2), Some("cloud.public_key"))
    );
    assert!(
        err.message.contains("[cloud] belongs in a local layer"),
        "{err}"
    );

    let err = parse_err(LayerKind::CloudBundle, "allowed_reviewers = []\n");
    assert_eq!((err.line, err.key.as_deref()), (None, None));
    assert!(err.message.contains("needs a [bundle] table"), "{err}");

    let err = parse_err(
        LayerKind::CloudBundle,
        "[bundle]\nversion = 3\nexpires_at = 2030-01-01T00:00:00\n",
    );
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(3), Some("bundle.expires_at"))
    );
    assert!(err.message.contains("UTC offset"), "{err}");

    let ok = Layer::parse(LayerKind::CloudBundle, "b", common::bundle_text(7, "")).unwrap();
    assert_eq!(ok.bundle_info().unwrap().version, 7);
}

#[test]
fn user_config_errors_name_file_line_and_key() {
    let name = "/home/u/.config/warden/config.toml";
    let err = UserConfig::parse(name, "sandbox_mode = \"read-only\"\nsandbox = 1\n").unwrap_err();
    assert_eq!((err.line, err.key.as_deref()), (Some(2), Some("sandbox")));
    assert!(err.to_string().starts_with(name), "{err}");

    let err = UserConfig::parse(
        name,
        "[network]\ndns_upstream = [\"192.0.2.53\", \"[2001:db8::1]:53\", \"resolver\"]\n",
    )
    .unwrap_err();
    assert_eq!(
        (err.line, err.key.as_deref()),
        (Some(2), Some("network.dns_upstream[2]"))
    );
    assert!(
        err.message.contains("invalid DNS upstream `resolver`"),
        "{err}"
    );

    // Users may allow commands; only requirements may not.
    let ok = UserConfig::parse(
        name,
        "[[exec.rules]]\nprefix = [\"ls\"]\ndecision = \"allow\"\n",
    );
    assert!(ok.is_ok(), "{ok:?}");
}

/// Every TOML example in docs/requirements.md parses as what its first line says it is.
#[test]
fn documented_examples_parse() {
    let doc = include_str!("../../docs/requirements.md");
    let mut count = 0;
    for block in doc.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        let first = text.lines().next().unwrap_or_default();
        let result = match first {
            "# /etc/warden/requirements.toml" => {
                Layer::parse(LayerKind::Local, first, text).map(drop)
            }
            f if f.starts_with("# /etc/warden/managed.d/") => {
                Layer::parse(LayerKind::Managed, first, text).map(drop)
            }
            "# bundle.toml" => Layer::parse(LayerKind::CloudBundle, first, text).map(drop),
            "# ~/.config/warden/config.toml" => UserConfig::parse(first, text).map(drop),
            _ => continue,
        };
        result.unwrap_or_else(|e| panic!("{e}"));
        count += 1;
    }
    assert!(count >= 4, "only {count} examples found");
}

#[test]
fn a_login_pin_that_cannot_be_checked_names_its_table() {
    // (the pin, a word of the error, its line and key)
    let cases = [
        (
            "provider = \"openai\"",
            "neither methods nor workspaces",
            4,
            "login.pins[0]",
        ),
        (
            "provider = \"openai\"\nworkspaces = [\"ws-1\"]\nissuer = \"https://auth.test\"",
            "jwks_url and workspace_claim",
            4,
            "login.pins[0]",
        ),
        (
            "provider = \"openai\"\nworkspaces = [\"ws-1\"]\nissuer = \"i\"\n\
             jwks_url = \"https://auth.test/jwks\"\nworkspace_claim = \"org_id\"",
            "RFC 6901",
            4,
            "login.pins[0]",
        ),
        (
            "provider = \"openai\"\nmethods = [\"chatgpt\"]\nworkspace = \"x\"",
            "unknown field",
            7,
            "login.pins[0].workspace",
        ),
    ];
    for (pin, says, line, key) in cases {
        let text = format!("[login]\nmethod = \"chatgpt\"\n\n[[login.pins]]\n{pin}\n");
        let err = local_err(&text);
        assert_eq!(err.line, Some(line), "{pin}: {err}");
        assert_eq!(err.key.as_deref(), Some(key), "{pin}: {err}");
        assert!(err.message.contains(says), "{pin}: {err}");
    }
    let ok = Layer::parse(
        LayerKind::Local,
        FILE,
        "[[login.pins]]\nprovider = \"github\"\nmethods = [\"oauth\"]\n",
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
}
