//! Requirements and user configuration, enforced by `warden run` (issue #5) and the config
//! file keys of the network allowlist (issue #3).
use std::os::unix::fs::PermissionsExt;

use warden::events::{DnsQuery, ExecRequest, Verdict};
use warden_integration_tests::{net::*, *};

use warden_integration_tests::requirements_file as requirements;

fn dns_queries(s: &Session) -> Vec<&DnsQuery> {
    picked!(s, Event::DnsQuery(q) => q.as_ref())
}

#[test]
fn a_user_value_outside_the_requirements_is_refused_naming_file_and_line() {
    let dir = private_dir();
    let req = requirements(
        dir.path(),
        "schema_version = 1\n\n[network]\ndenied_domains = [\"*.evil.test\"]\n",
    );
    let state = private_dir();
    let out = warden_command(
        state.path(),
        &["--requirements", &req, "--allow-domain", "x.evil.test"],
        &["true"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("--allow-domain"), "names the flag: {err}");
    assert!(
        err.contains(&format!("{req} line 4")),
        "names the file and line: {err}"
    );
    assert!(
        the_log(state.path()).is_none(),
        "nothing started, nothing half-applied"
    );
}

#[test]
fn requirements_and_user_config_shape_the_session_with_provenance() {
    let dns = Dnsmasq::start(
        "127.0.8.2".parse().unwrap(),
        &[
            ("fromconfig.test", "127.0.8.10"),
            ("managed.test", "127.0.8.11"),
        ],
        60,
    );
    let a = greeter("127.0.8.10:0".parse().unwrap());
    let dir = private_dir();
    let req = requirements(
        dir.path(),
        "schema_version = 1\n\n[network]\nallowed_domains = [\"managed.test\"]\n\n\
         [exec]\nrules = [{ prefix = [\"touch\"], decision = \"forbidden\", reason = \"no new files\" }]\n",
    );
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[network]\nallowed_domains = [\"fromconfig.test\"]\ndns_upstream = [\"{}\"]\n",
            dns.addr
        ),
    )
    .unwrap();
    let ws = tempfile::tempdir().unwrap();
    let script = format!(
        "{} connect fromconfig.test:{}; touch {}/x; echo touch=$?",
        warden_bin().with_file_name("net-probe").display(),
        a.port(),
        ws.path().display()
    );
    // A script file: in `sh -c` the gate would see `touch` and refuse the whole shell.
    let script_file = ws.path().join("s.sh");
    std::fs::write(&script_file, script).unwrap();
    let s = run_session(
        &[
            "--requirements",
            &req,
            "--config",
            config.to_str().unwrap(),
            "--workspace",
            ws.path().to_str().unwrap(),
        ],
        &["sh", script_file.to_str().unwrap()],
    );
    assert!(
        s.stdout.contains(&format!("ok hello from {a}")),
        "{}\n{}",
        s.stdout,
        s.stderr
    );
    assert!(s.stdout.contains("touch=126"), "{}", s.stdout);
    assert!(!ws.path().join("x").exists());
    // Where every decision came from.
    let q = dns_queries(&s)
        .into_iter()
        .find(|q| q.name == "fromconfig.test" && q.qtype == "A")
        .expect("query");
    assert_eq!(q.verdict, Verdict::Allow);
    assert_eq!(
        q.rule_source.as_deref(),
        Some(format!("network.allowed_domains[0] at {} line 2", config.display()).as_str())
    );
    let refused: &ExecRequest = s
        .records
        .iter()
        .find_map(|r| match &r.event {
            Event::ExecRequest(e) if e.verdict == Verdict::Deny => Some(e),
            _ => None,
        })
        .expect("the touch refused");
    assert_eq!(refused.rule.as_deref(), Some("exec.rules=touch"));
    assert_eq!(
        refused.reason.as_deref(),
        Some("matches `touch`: no new files"),
        "the requirement's reason is shown"
    );
    assert_eq!(refused.source, warden::events::DecisionSource::Requirements);
    let source = refused.rule_source.as_deref().unwrap();
    assert!(
        source.starts_with("requirement exec.rules at ") && source.contains(&req),
        "{source}"
    );
    assert_eq!(
        s.start().settings_files,
        [req.clone(), config.display().to_string()]
    );
    // The managed domain replaced the built-in list; the user's was added to it.
    let allowed: Vec<&str> = dns_queries(&s).iter().map(|q| q.name.as_str()).collect();
    assert!(allowed.contains(&"fromconfig.test"));
}

#[test]
fn an_untrusted_requirements_file_stops_warden() {
    let dir = private_dir();
    let req = requirements(dir.path(), "schema_version = 1\n");
    std::fs::set_permissions(&req, std::fs::Permissions::from_mode(0o666)).unwrap();
    let state = private_dir();
    let out = warden_command(state.path(), &["--requirements", &req], &["true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains(&req) && err.contains("writable"), "{err}");
    assert!(the_log(state.path()).is_none());
}

#[test]
fn bundle_authors_sign_verify_and_store_and_downgrades_are_refused() {
    let dir = private_dir();
    let d = dir.path();
    let warden = |args: &[&str]| {
        std::process::Command::new(warden_bin())
            .arg("requirements")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    assert!(warden(&["keygen", "fleet"]).status.success());
    let bundle = |version: u32| {
        std::fs::write(
            d.join("bundle.toml"),
            format!(
                "schema_version = 1\n\n[bundle]\nversion = {version}\nexpires_at = 2099-01-01T00:00:00Z\n\n\
                 [network]\ndenied_domains = [\"*.exfil.test\"]\n"
            ),
        )
        .unwrap();
        assert!(
            warden(&["sign", "--key", "fleet.key", "bundle.toml"])
                .status
                .success()
        );
    };
    bundle(3);
    let ok = warden(&[
        "verify",
        "--public-key",
        "fleet.pub",
        "bundle.toml",
        "--store",
        "cache",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid, version 3"));
    bundle(2);
    let down = warden(&[
        "verify",
        "--public-key",
        "fleet.pub",
        "bundle.toml",
        "--store",
        "cache",
    ]);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("downgrade"));
    // A tampered bundle: the signature no longer matches.
    std::fs::write(d.join("bundle.toml"), "schema_version = 1\n").unwrap();
    let bad = warden(&["verify", "--public-key", "fleet.pub", "bundle.toml"]);
    assert!(!bad.status.success());
    // The linter names file, line and key.
    std::fs::write(
        d.join("bad.toml"),
        "schema_version = 1\n[network]\nallowed_cidrs = [\"10.0.0.0/33\"]\n",
    )
    .unwrap();
    let lint = warden(&["check", "bad.toml"]);
    assert_eq!(lint.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&lint.stdout)
            .contains("bad.toml line 3, key network.allowed_cidrs[0]")
    );
}

#[test]
fn the_cloud_bundle_is_fetched_verified_cached_and_never_applied_when_bad() {
    let dir = private_dir();
    let d = dir.path();
    let req_cli = |args: &[&str]| {
        let out = std::process::Command::new(warden_bin())
            .arg("requirements")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    req_cli(&["keygen", "fleet"]);
    let server = warden_integration_tests::net::HttpsServer::start(d);
    let www = d.join("www");
    let publish = |version: u32, expires: &str, tamper: bool| {
        let bundle = format!(
            "schema_version = 1\n\n[bundle]\nversion = {version}\nexpires_at = {expires}\n\n\
             [network]\ndenied_domains = [\"*.exfil.test\"]\n"
        );
        std::fs::write(www.join("bundle.toml"), &bundle).unwrap();
        req_cli(&["sign", "--key", "fleet.key", "www/bundle.toml"]);
        if tamper {
            std::fs::write(www.join("bundle.toml"), bundle.replace("exfil", "other")).unwrap();
        }
    };
    let public = std::fs::read_to_string(d.join("fleet.pub")).unwrap();
    let local = requirements(
        d,
        &format!(
            "schema_version = 1\n\n[cloud]\nbundle_url = \"https://127.0.0.1:{}/bundle.toml\"\npublic_key = \"{}\"\n",
            server.port,
            public.trim()
        ),
    );
    let cache = d.join("cache").display().to_string();
    let ca = server.ca.display().to_string();
    let base = [
        "--requirements",
        local.as_str(),
        "--bundle-cache",
        cache.as_str(),
        "--bundle-ca",
        ca.as_str(),
    ];
    // The bundle applies: its denied domain cannot be allowed.
    let refused_allow = || {
        let state = private_dir();
        let mut args = base.to_vec();
        args.extend(["--allow-domain", "x.exfil.test"]);
        let out = warden_command(state.path(), &args, &["true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains("cloud-bundle layer"), "{err}");
        err
    };
    let session = || run_session(&base, &["true"]);

    publish(3, "2099-01-01T00:00:00Z", false);
    refused_allow();
    let s = session();
    assert!(
        s.start().settings_warnings.is_empty(),
        "{:?}",
        s.start().settings_warnings
    );

    for (version, expires, tamper, why) in [
        (2, "2099-01-01T00:00:00Z", false, "downgrade"),
        (4, "2099-01-01T00:00:00Z", true, "signature"),
        (5, "2001-01-01T00:00:00Z", false, "expired"),
    ] {
        publish(version, expires, tamper);
        let s = session();
        let w = s.start().settings_warnings.join("\n");
        assert!(
            w.contains("refused, not applied") && w.contains(why),
            "{why}: {w}"
        );
        refused_allow(); // version 3 still applies
    }

    drop(server);
    let s = session();
    let w = s.start().settings_warnings.join("\n");
    assert!(
        w.contains("not fetched") && w.contains("using the cached one"),
        "{w}"
    );
    refused_allow();
}

#[test]
fn requirement_changes_during_a_session_are_recorded_valid_or_refused() {
    let dir = private_dir();
    let req = requirements(dir.path(), "schema_version = 1\n");
    let state = private_dir();
    let child = warden_command(state.path(), &["--requirements", &req], &["sleep", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(
        &req,
        "schema_version = 1\n[network]\ndenied_domains = [\"*.new.test\"]\n",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1800));
    std::fs::write(
        &req,
        "schema_version = 1\n[network]\nallowed_cidrs = [\"nonsense\"]\n",
    )
    .unwrap();
    let s = finish(state, child.wait_with_output().unwrap());
    let changes: Vec<&warden::events::RequirementsChange> =
        picked!(s, Event::RequirementsChanged(c) => c);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes[0].accepted && changes[0].error.is_none());
    assert!(!changes[1].accepted);
    let err = changes[1].error.as_deref().unwrap();
    assert!(err.contains(&req) && err.contains("line 3"), "{err}");
}

/// `warden requirements show | grep -q KEY` and the like: the reader goes away before the report
/// is written. The report ends as other tools' do, by SIGPIPE, and does not panic.
#[test]
fn a_report_whose_reader_went_away_ends_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = std::process::Command::new(warden_bin())
        .args(["requirements", "show"])
        .stdout(std::process::Stdio::from(write))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}
