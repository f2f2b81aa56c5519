//! Secrets in the user's environment do not reach the agent (issue #15, the environment
//! scrub): the agent's environment, its `/proc/self/environ` and every file it could read in
//! the log lack them; `session.start` names them, never their values.
use warden::events::Event;
use warden_integration_tests::{keyring, *};

#[test]
fn secret_variables_are_not_inherited() {
    let state = private_dir();
    let secrets = [
        ("GITHUB_TOKEN", "ghp_w4rd3nTestValue0001"),
        ("AWS_SECRET_ACCESS_KEY", "w4rd3nTestValue0002"),
        ("AWS_ACCESS_KEY_ID", "AKIAW4RD3NTEST0003"),
        ("OPENAI_API_KEY", "sk-w4rd3nTestValue0004"),
        ("PGPASSWORD", "w4rd3nTestValue0005"),
    ];
    let ordinary = [
        ("TOKENIZERS_PARALLELISM", "false"),
        ("WARDEN_TEST_PLAIN", "plain-value"),
    ];
    let mut c = warden_command(
        state.path(),
        &[],
        &[
            "sh",
            "-c",
            "env; echo ENVIRON=$(tr '\\0' ' ' </proc/self/environ)",
        ],
    );
    c.envs(secrets.iter().chain(ordinary.iter()).copied());
    let s = finish(state, c.output().expect("running warden"));
    assert!(s.status.success(), "{}", s.stderr);
    for (name, value) in secrets {
        assert!(
            !s.stdout.contains(value),
            "{name}'s value reached the agent"
        );
        assert!(
            !s.stdout.contains(&format!("{name}=")),
            "{name} reached the agent"
        );
        assert!(
            s.start().env_removed.iter().any(|n| n == name),
            "{name} not in env_removed: {:?}",
            s.start().env_removed
        );
    }
    for (name, value) in ordinary {
        assert!(
            s.stdout.contains(&format!("{name}={value}")),
            "{name} did not reach the agent"
        );
    }
    let log = std::fs::read_to_string(&s.log).unwrap();
    for (name, value) in secrets {
        assert!(!log.contains(value), "{name}'s value is in the log");
    }
}

/// `--pass-env NAME` hands one such variable over on purpose; the others stay out.
#[test]
fn a_secret_variable_passes_only_when_named() {
    let state = private_dir();
    let mut c = warden_command(
        state.path(),
        &["--pass-env", "OPENAI_API_KEY"],
        &[
            "sh",
            "-c",
            "echo KEY=${OPENAI_API_KEY:-unset}; echo TOKEN=${GITHUB_TOKEN:-unset}",
        ],
    );
    c.env("OPENAI_API_KEY", "sk-w4rd3nPassed0006")
        .env("GITHUB_TOKEN", "ghp_w4rd3nKept0007");
    let s = finish(state, c.output().expect("running warden"));
    assert!(s.status.success(), "{}", s.stderr);
    assert_eq!(status_of(&s, "KEY"), "sk-w4rd3nPassed0006");
    assert_eq!(status_of(&s, "TOKEN"), "unset");
    let removed = &s.start().env_removed;
    assert!(removed.iter().any(|n| n == "GITHUB_TOKEN"), "{removed:?}");
    assert!(
        !removed.iter().any(|n| n == "OPENAI_API_KEY"),
        "{removed:?}"
    );
}

/// An HTTPS server for `api.provider.test` and `other.provider.test` on `ip:443` (Python's
/// http.server, a self-signed certificate): it writes each request's Authorization header to
/// its log and echoes it in the body, as an API that reflects headers would.
struct ProviderStub {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl ProviderStub {
    fn start(ip: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::generate_simple_self_signed(vec![
            "api.provider.test".to_string(),
            "other.provider.test".to_string(),
        ])
        .unwrap();
        let (cert, pkey) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, key.cert.pem()).unwrap();
        std::fs::write(&pkey, key.signing_key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
        let script = format!(
            "import http.server, ssl\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       a = self.headers.get('Authorization', '-')\n\
             \x20       open('{log}', 'a').write(self.headers.get('Host', '-') + ' ' + a + '\\n')\n\
             \x20       body = ('auth=' + a + '\\n').encode()\n\
             \x20       self.send_response(200)\n\
             \x20       self.send_header('Content-Length', str(len(body)))\n\
             \x20       self.end_headers()\n\
             \x20       self.wfile.write(body)\n\
             \x20   def log_message(self, *a): pass\n\
             s = http.server.HTTPServer(('{ip}', 443), H)\n\
             c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('{c}', '{k}')\n\
             s.socket = c.wrap_socket(s.socket, server_side=True)\n\
             print('ready', flush=True)\n\
             s.serve_forever()\n",
            log = dir.path().join("requests").display(),
            c = cert.display(),
            k = pkey.display()
        );
        let (child, line) = warden_integration_tests::net::python_server(&script);
        assert_eq!(line, "ready");
        Self { child, dir }
    }

    fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// What the server received: `host authorization` per request.
    fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests")).unwrap_or_default()
    }
}

impl Drop for ProviderStub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const API_VALUE: &str = "sk-w4rd3nInjectedValue-0123456789";

/// `inject`: the agent holds a placeholder; the provider gets the value, in the header only;
/// the value echoed back reaches the agent as the placeholder; a host the credential is not
/// for gets the placeholder; every use is a record without the value.
#[test]
fn an_injected_credential_never_enters_the_sandbox() {
    let Some(ss) = keyring::SecretService::new() else {
        return;
    };
    let stub = ProviderStub::start("127.0.40.2");
    let dns = warden_integration_tests::net::Dnsmasq::start(
        "127.0.40.1".parse().unwrap(),
        &[
            ("api.provider.test", "127.0.40.2"),
            ("other.provider.test", "127.0.40.2"),
        ],
        60,
    );
    let add = ss.run(
        true,
        &format!(
            "printf %s {API_VALUE} | $W credentials add provider --provider openai \
             --host api.provider.test --env PROVIDER_API_KEY"
        ),
    );
    assert!(add.status.success(), "{}", keyring::text(&add));

    // Each use also goes to a collector where one is installed (not in the stock-kernel VMs).
    use warden_integration_tests::collector::{Collector, rotel_available};
    let collector = match rotel_available() {
        Some(_) => Some(Collector::start("127.0.40.7", 4741)),
        None => {
            println!("OTLP part skipped: rotel-agent is not installed here");
            None
        }
    };
    let otlp_args: Vec<String> = collector
        .iter()
        .flat_map(|c| {
            [
                "--otlp-endpoint".into(),
                c.grpc_url(),
                "--otlp-protocol".into(),
                "grpc".into(),
            ]
        })
        .collect();
    let state = private_dir();
    let upstream = dns.addr.to_string();
    let ca = stub.ca().display().to_string();
    let script = format!(
        "echo KEY=$PROVIDER_API_KEY; \
         curl -sS https://api.provider.test/v1 -H \"Authorization: Bearer $PROVIDER_API_KEY\"; \
         curl -sS --cacert {ca} https://other.provider.test/v1 -H \"Authorization: Bearer $PROVIDER_API_KEY\"; \
         tr '\\0' '\\n' </proc/self/environ"
    );
    let inner = warden_command(
        state.path(),
        &[
            "--dns-upstream",
            &upstream,
            "--no-default-domains",
            "--allow-domain",
            "other.provider.test",
            "--credential",
            "provider",
            "--credential-ca",
            &ca,
        ]
        .into_iter()
        .chain(otlp_args.iter().map(String::as_str))
        .collect::<Vec<_>>(),
        &["sh", "-c", &script],
    );
    // An inherited variable of the same name is removed; the placeholder takes its place.
    let mut inner = inner;
    inner.env("PROVIDER_API_KEY", "inherited-value-w4rd3n");
    let out = ss.wrap(true, &inner).output().unwrap();
    let s = finish(state, out);
    assert!(s.status.success(), "{}\n{}", s.stdout, s.stderr);

    let placeholder = status_of(&s, "KEY");
    assert!(!s.stdout.contains("inherited-value-w4rd3n"), "{}", s.stdout);
    assert!(placeholder.starts_with("warden-"), "{placeholder}");
    assert_eq!(placeholder.len(), API_VALUE.len());
    // The provider got the value; the other host only the placeholder.
    let received = stub.requests();
    assert!(
        received.contains(&format!("api.provider.test Bearer {API_VALUE}")),
        "{received}"
    );
    assert!(
        received.contains(&format!("other.provider.test Bearer {placeholder}")),
        "{received}"
    );
    // The agent saw the echo as the placeholder, never the value, nor in its environment.
    assert!(!s.stdout.contains(API_VALUE), "{}", s.stdout);
    assert_eq!(
        s.stdout
            .matches(&format!("auth=Bearer {placeholder}"))
            .count(),
        2,
        "{}",
        s.stdout
    );

    let uses: Vec<_> = picked!(s, Event::CredentialUse(c) => c);
    let injected: Vec<_> = uses
        .iter()
        .filter(|c| c.outcome == warden::events::CredentialOutcome::Injected)
        .collect();
    assert_eq!(injected.len(), 1, "{uses:?}");
    assert_eq!(injected[0].credential.as_deref(), Some("provider"));
    assert_eq!(injected[0].host.as_deref(), Some("api.provider.test"));
    assert!(
        uses.iter()
            .any(|c| c.outcome == warden::events::CredentialOutcome::ResponseRedacted),
        "{uses:?}"
    );
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(!log.contains(API_VALUE), "the value is in the log");
    // Each use is one OTLP log record too, without the value.
    if let Some(collector) = &collector {
        let got = collector.wait_for_session(&s.records[0].session, s.records.len());
        for r in &s.records {
            let Event::CredentialUse(c) = &r.event else {
                continue;
            };
            let rx = &got[&r.seq];
            assert_eq!(rx.name, "warden.credential.use");
            assert_eq!(
                rx.attr("warden.credential.outcome"),
                Some(c.outcome.as_str())
            );
            assert_eq!(rx.attr("server.address"), c.host.as_deref());
        }
        assert!(
            !collector.output().contains(API_VALUE),
            "the value went to the collector"
        );
    }
    // The lookup was answered with the proxy, and the connect allowed by its rule.
    let dns_records: Vec<_> = picked!(s, Event::DnsQuery(q) => q);
    let steered = dns_records
        .iter()
        .find(|q| q.name == "api.provider.test" && q.qtype == "A")
        .expect("the lookup of api.provider.test");
    assert_eq!(steered.rule, "credential-proxy");
    assert!(steered.answers[0].starts_with("127."), "{steered:?}");
    let connects: Vec<_> = picked!(s, Event::NetConnect(n) => n);
    assert!(
        connects.iter().any(|n| n.address == steered.answers[0]
            && n.port == 443
            && n.rule == "credential-proxy"),
        "{connects:?}"
    );
}

/// `warden run` inside the keyring's bus, with `args`, running `script`; the bus address is
/// copied to BUS_FOR_TEST, a name the scrub lets through, so the agent can try it.
fn session_in(ss: &keyring::SecretService, args: &[&str], script: &str) -> Session {
    let state = private_dir();
    let inner = warden_command(state.path(), args, &["sh", "-c", script]);
    let mut with_bus = std::process::Command::new("sh");
    with_bus
        .args([
            "-c",
            "BUS_FOR_TEST=$DBUS_SESSION_BUS_ADDRESS exec \"$@\"",
            "sh",
        ])
        .arg(inner.get_program())
        .args(inner.get_args());
    let out = ss.wrap(true, &with_bus).output().unwrap();
    finish(state, out)
}

fn add_in(ss: &keyring::SecretService, value: &str, args: &str) -> std::process::Output {
    ss.run(
        true,
        &format!("printf %s {value} | $W credentials add {args}"),
    )
}

/// `env` and `helper`: the variable is set; git's credential helper answers for the
/// credential's host and nothing else; the agent reaches neither the Secret Service (even
/// with its address) nor the kernel keyring.
#[test]
fn env_and_helper_deliveries_and_no_way_to_the_keyring() {
    let Some(ss) = keyring::SecretService::new() else {
        return;
    };
    let (npm, gh) = ("npm_w4rd3nEnvValue0201", "ghp_w4rd3nHelperValue0202");
    for (value, args) in [
        (npm, "npm --provider npm --delivery env --env NPM_TOKEN"),
        (
            gh,
            "gh --provider github --host github.com --delivery helper",
        ),
    ] {
        let add = add_in(&ss, value, args);
        assert!(add.status.success(), "{}", keyring::text(&add));
    }
    let script = "echo NPM=$NPM_TOKEN; \
        printf 'protocol=https\\nhost=github.com\\n\\n' | git credential fill; \
        echo APIKEY=$($REPORT api-key gh); $REPORT api-key nope; echo NOPE=$?; \
        printf 'protocol=https\\nhost=gitlab.com\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill >/dev/null 2>&1; echo GITLAB=$?; \
        DBUS_SESSION_BUS_ADDRESS=$BUS_FOR_TEST secret-tool search --all service warden; echo SECRET_TOOL=$?; \
        keyctl show @u; echo KEYCTL=$?";
    // The auto-reviewer approves a request for the credential's own host (before the probing
    // below, after which it leaves every request to a person).
    let report = warden_bin().with_file_name("warden-agent-report");
    let script = format!("REPORT={}; {script}", report.display());
    let s = session_in(
        &ss,
        &[
            "--reviewer",
            "auto-review",
            "--credential",
            "npm",
            "--credential",
            "gh",
        ],
        &script,
    );
    assert!(s.status.success(), "{}\n{}", s.stdout, s.stderr);
    assert_eq!(status_of(&s, "NPM"), npm);
    // An agent's API-key helper command gets it by name, and nothing for another name.
    assert_eq!(status_of(&s, "APIKEY"), gh);
    assert_ne!(status_of(&s, "NOPE"), "0");
    assert!(
        s.stdout.contains(&format!("password={gh}")),
        "git got no password:\n{}\n{}",
        s.stdout,
        s.stderr
    );
    assert_ne!(status_of(&s, "GITLAB"), "0");
    assert_ne!(status_of(&s, "SECRET_TOOL"), "0", "{}", s.stdout);
    assert_ne!(status_of(&s, "KEYCTL"), "0", "{}", s.stdout);
    assert_eq!(s.stdout.matches(gh).count(), 2, "{}", s.stdout);

    use warden::events::CredentialOutcome::{Handed, Refused};
    let uses: Vec<_> = picked!(s, Event::CredentialUse(c) => c);
    let find = |name: Option<&str>, host: Option<&str>| {
        uses.iter()
            .find(|c| c.credential.as_deref() == name && c.host.as_deref() == host)
            .unwrap_or_else(|| panic!("no record for {name:?} {host:?}: {uses:?}"))
    };
    assert_eq!(find(Some("npm"), None).outcome, Handed);
    let handed = find(Some("gh"), Some("github.com"));
    assert_eq!(handed.outcome, Handed);
    assert!(handed.pid.is_some_and(|p| p > 0));
    assert_eq!(find(None, Some("gitlab.com")).outcome, Refused);
    let approvals: Vec<_> = picked!(s, Event::Approval(a) => a);
    assert!(
        approvals.iter().any(
            |a| a.subject.request == warden::events::RequestKind::Credential
                && a.subject.credential.as_deref() == Some("gh")
                && a.verdict == warden::events::Verdict::Allow
        ),
        "{approvals:?}"
    );
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(!log.contains(gh), "the helper's value is in the log");

    // With nobody to approve it (unattended, a person as reviewer), git gets nothing.
    let s = session_in(
        &ss,
        &["--credential", "gh"],
        "printf 'protocol=https\\nhost=github.com\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill; echo FILL=$?",
    );
    assert_ne!(status_of(&s, "FILL"), "0", "{}", s.stdout);
    assert!(!s.stdout.contains(gh), "{}", s.stdout);
    let uses: Vec<_> = picked!(s, Event::CredentialUse(c) => c);
    assert!(
        uses.iter().any(|c| c.outcome == Refused
            && c.detail
                .as_deref()
                .is_some_and(|d| d.contains("not approved"))),
        "{uses:?}"
    );
}

/// At session start: an expired credential, and one whose delivery the requirements do not
/// allow, are not handed over; each is a `refused` record that says why. `add` refuses the
/// disallowed delivery before anything is stored.
#[test]
fn expired_and_disallowed_credentials_are_refused() {
    let Some(ss) = keyring::SecretService::new() else {
        return;
    };
    for (value, args) in [
        (
            "old_w4rd3nValue0301",
            "old --provider x --delivery env --env OLD_TOKEN --expires 2020-01-01T00:00:00Z",
        ),
        (
            "env_w4rd3nValue0302",
            "plain --provider x --delivery env --env PLAIN_TOKEN",
        ),
        // An inject credential for a host the requirements do not allow: it would open a way
        // there that the requirements keep closed.
        (
            "corp_w4rd3nValue0304",
            "corp --provider x --host api.corp.test",
        ),
    ] {
        let add = add_in(&ss, value, args);
        assert!(add.status.success(), "{}", keyring::text(&add));
    }
    let dir = private_dir();
    let req = requirements_file(
        dir.path(),
        "[credentials]\nallowed_deliveries = [\"inject\", \"helper\"]\n\
         [network]\nallowed_domains = [\"crates.io\"]\nmanaged_allowed_domains_only = true\n",
    );
    let refused_add = add_in(
        &ss,
        "env_w4rd3nValue0303",
        &format!("later --provider x --delivery env --env LATER_TOKEN --requirements {req}"),
    );
    assert!(
        !refused_add.status.success(),
        "{}",
        keyring::text(&refused_add)
    );
    let err = String::from_utf8_lossy(&refused_add.stderr);
    assert!(err.contains("credentials.allowed_deliveries"), "{err}");
    assert!(err.contains(&req), "the error names the file: {err}");
    let listed = ss.run(true, "$W credentials list --json");
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("later"));

    let s = session_in(
        &ss,
        &[
            "--requirements",
            &req,
            "--credential",
            "old",
            "--credential",
            "plain",
            "--credential",
            "corp",
        ],
        "echo OLD=${OLD_TOKEN:-unset} PLAIN=${PLAIN_TOKEN:-unset}",
    );
    assert!(s.status.success(), "{}\n{}", s.stdout, s.stderr);
    assert!(s.stdout.contains("OLD=unset PLAIN=unset"), "{}", s.stdout);
    let uses: Vec<_> = picked!(s, Event::CredentialUse(c) => c);
    let detail = |name: &str| {
        let u = uses
            .iter()
            .find(|c| c.credential.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no record for {name}: {uses:?}"));
        assert_eq!(u.outcome, warden::events::CredentialOutcome::Refused);
        u.detail.clone().unwrap_or_default()
    };
    assert!(detail("old").contains("expired at 2020-01-01"), "{uses:?}");
    assert!(detail("plain").contains("allowed_deliveries"), "{uses:?}");
    assert!(
        detail("corp").contains("managed_allowed_domains_only"),
        "{uses:?}"
    );
    assert!(
        !picked!(s, Event::DnsQuery(q) => q)
            .iter()
            .any(|q| q.rule == "credential-proxy"),
        "no proxy for a host the requirements keep closed"
    );
    assert!(
        s.stderr.contains("credential old not handed over"),
        "{}",
        s.stderr
    );
}

/// An issuer's signing key (P-256) and its public JWK.
struct IssuerKey {
    jwk: jsonwebtoken::jwk::Jwk,
    encoding: jsonwebtoken::EncodingKey,
}

impl IssuerKey {
    fn new(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let encoding =
            jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::ES256)
                .unwrap();
        jwk.common.key_id = Some(kid.into());
        Self { jwk, encoding }
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = self.jwk.common.key_id.clone();
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn login_claims(workspace: Option<&str>, expires_in: i64) -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut c = serde_json::json!({
        "iss": "https://auth.provider.test",
        "aud": "warden",
        "sub": "user-1",
        "exp": now + expires_in,
    });
    if let Some(w) = workspace {
        c["org_id"] = w.into();
    }
    c
}

/// A login pinned by requirements: a token's workspace counts only when its signature checks
/// against the issuer's keys, fetched from its JWKS endpoint (HTTPS on loopback). Refused at
/// `add` with the expected and the actual workspace, and at session start with a record.
#[test]
fn a_pinned_login_is_verified_against_the_issuers_keys() {
    let Some(ss) = keyring::SecretService::new() else {
        return;
    };
    let key = IssuerKey::new("k1");
    let impostor = IssuerKey::new("k1");
    let dir = private_dir();
    std::fs::create_dir_all(dir.path().join("www")).unwrap();
    let set = jsonwebtoken::jwk::JwkSet {
        keys: vec![key.jwk.clone()],
    };
    std::fs::write(
        dir.path().join("www/jwks.json"),
        serde_json::to_vec(&set).unwrap(),
    )
    .unwrap();
    let server = warden_integration_tests::net::HttpsServer::start(dir.path());
    let pin = |workspace: &str| {
        format!(
            "[login]\nprovider = \"openai\"\nmethod = \"chatgpt\"\nworkspace_id = \"{workspace}\"\n\
             issuer = \"https://auth.provider.test\"\n\
             jwks_url = \"https://127.0.0.1:{}/jwks.json\"\njwks_ca_file = \"{}\"\n\
             audience = \"warden\"\nworkspace_claim = \"/org_id\"\n",
            server.port,
            server.ca.display()
        )
    };
    let req_dir = private_dir();
    let req = requirements_file(req_dir.path(), &pin("ws-team"));
    let state = private_dir();
    let add = |name: &str, token: &str, method: &str| {
        add_in(
            &ss,
            token,
            &format!(
                "{name} --provider openai --host api.provider.test --login-method {method} \
                 --requirements {req} --state-dir {}",
                state.path().display()
            ),
        )
    };
    let none = {
        use base64::Engine as _;
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.",
            b(serde_json::json!({"alg": "none", "kid": "k1"})),
            b(login_claims(Some("ws-team"), 600))
        )
    };
    // (name, token, login method, accepted, what the refusal says)
    let cases = [
        (
            "good",
            key.sign(&login_claims(Some("ws-team"), 600)),
            "chatgpt",
            true,
            "",
        ),
        (
            "other",
            key.sign(&login_claims(Some("ws-other"), 600)),
            "chatgpt",
            false,
            "\"ws-other\"",
        ),
        (
            "noclaim",
            key.sign(&login_claims(None, 600)),
            "chatgpt",
            false,
            "/org_id",
        ),
        (
            "expired",
            key.sign(&login_claims(Some("ws-team"), -3600)),
            "chatgpt",
            false,
            "expired",
        ),
        (
            "forged",
            impostor.sign(&login_claims(Some("ws-team"), 600)),
            "chatgpt",
            false,
            "signature",
        ),
        ("algnone", none, "chatgpt", false, "none"),
        (
            "apikey",
            "sk-w4rd3nApiKey0401".into(),
            "api-key",
            false,
            "allow only chatgpt",
        ),
    ];
    for (name, token, method, accepted, says) in &cases {
        let out = add(name, token, method);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.success(),
            *accepted,
            "{name}: {}",
            keyring::text(&out)
        );
        assert!(
            err.contains(says),
            "{name}: the refusal should say {says:?}: {err}"
        );
        if !accepted {
            assert!(err.contains(&format!("credential {name} refused")), "{err}");
        }
    }
    let refused_other =
        String::from_utf8_lossy(&add("other", &cases[1].1, "chatgpt").stderr).into_owned();
    assert!(
        refused_other.contains("ws-team"),
        "names the pinned workspace: {refused_other}"
    );
    // A provider the pin is not about is not its business.
    let gh = add_in(
        &ss,
        "ghp_w4rd3nNotPinned0402",
        &format!("gh --provider github --host github.com --requirements {req}"),
    );
    assert!(gh.status.success(), "{}", keyring::text(&gh));
    let listed = String::from_utf8_lossy(&ss.run(true, "$W credentials list").stdout).into_owned();
    assert!(listed.contains("good") && listed.contains("gh"), "{listed}");
    assert!(
        !listed.contains("forged") && !listed.contains("other"),
        "{listed}"
    );

    // Pins for two providers (`[[login.pins]]`): `credentials test` checks each credential
    // against its provider's pin.
    let pins_dir = private_dir();
    let pins = requirements_file(
        pins_dir.path(),
        &format!(
            "[[login.pins]]\nprovider = \"openai\"\nmethods = [\"chatgpt\"]\n\
             workspaces = [\"ws-team\"]\nissuer = \"https://auth.provider.test\"\n\
             jwks_url = \"https://127.0.0.1:{}/jwks.json\"\njwks_ca_file = \"{}\"\n\
             workspace_claim = \"/org_id\"\n\n\
             [[login.pins]]\nprovider = \"github\"\nmethods = [\"oauth\"]\n",
            server.port,
            server.ca.display()
        ),
    );
    let tested = ss.run(
        true,
        &format!(
            "$W credentials test --requirements {pins} --state-dir {}",
            state.path().display()
        ),
    );
    let out = String::from_utf8_lossy(&tested.stdout);
    assert_eq!(tested.status.code(), Some(1), "{}", keyring::text(&tested));
    assert!(out.contains("ok    good"), "{out}");
    assert!(
        out.contains("FAIL  gh: its login method is api-key; the requirements allow only oauth"),
        "{out}"
    );

    // The pin moves to another workspace: the stored credential is refused at session start.
    let moved_dir = private_dir();
    let moved = requirements_file(moved_dir.path(), &pin("ws-new"));
    let s = session_in(
        &ss,
        &["--requirements", &moved, "--credential", "good"],
        "echo KEY=${OPENAI_API_KEY:-unset}",
    );
    assert!(s.status.success(), "{}\n{}", s.stdout, s.stderr);
    let uses: Vec<_> = picked!(s, Event::CredentialUse(c) => c);
    assert_eq!(uses.len(), 1, "{uses:?}");
    assert_eq!(uses[0].outcome, warden::events::CredentialOutcome::Refused);
    let detail = uses[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("ws-team") && detail.contains("ws-new"),
        "the record names the actual and the expected workspace: {detail}"
    );
    assert!(
        !picked!(s, Event::DnsQuery(q) => q)
            .iter()
            .any(|q| q.rule == "credential-proxy"),
        "no proxy for a refused credential"
    );
}

/// The requirements scrub more names (`credentials.scrub_env`) and nothing passes them on;
/// the user's config passes a secret-looking name on like `--pass-env`; a name that is not
/// UTF-8 (which nothing can judge) is not inherited.
#[test]
fn scrubbed_by_requirements_passed_by_the_user_config() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = private_dir();
    let req = requirements_file(
        dir.path(),
        "[credentials]\nscrub_env = [\"CORP_*\", \"BUILD_SIGNING\"]\n",
    );
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[credentials]\npass_env = [\"OPENAI_API_KEY\"]\n").unwrap();
    let config = config.display().to_string();
    let script = "echo CORP=${CORP_DB_URL:-unset} SIGN=${BUILD_SIGNING:-unset} \
                  KEY=${OPENAI_API_KEY:-unset} GH=${GITHUB_TOKEN:-unset}; \
                  env | grep -c '^W4RD3N' || true";
    let state = private_dir();
    let mut c = warden_command(
        state.path(),
        &["--requirements", &req, "--config", &config],
        &["sh", "-c", script],
    );
    c.env("CORP_DB_URL", "postgres://corp")
        .env("BUILD_SIGNING", "on")
        .env("OPENAI_API_KEY", "sk-w4rd3nPassedByConfig")
        .env("GITHUB_TOKEN", "ghp_w4rd3nStillScrubbed")
        .env(
            std::ffi::OsStr::from_bytes(b"W4RD3N_\xff_NAME"),
            "not-utf8-name",
        );
    let s = finish(state, c.output().unwrap());
    assert!(s.status.success(), "{}", s.stderr);
    assert!(
        s.stdout
            .contains("CORP=unset SIGN=unset KEY=sk-w4rd3nPassedByConfig GH=unset"),
        "{}",
        s.stdout
    );
    assert!(s.stdout.trim_end().ends_with('0'), "{}", s.stdout);
    let removed = &s.start().env_removed;
    for name in [
        "CORP_DB_URL",
        "BUILD_SIGNING",
        "GITHUB_TOKEN",
        "W4RD3N_\\xff_NAME",
    ] {
        assert!(
            removed.iter().any(|n| n == name),
            "{name} not in {removed:?}"
        );
    }

    // Passing a scrubbed name on is refused before the session starts, naming the requirement.
    let state = private_dir();
    let out = warden_command(
        state.path(),
        &["--requirements", &req, "--pass-env", "CORP_TOKEN"],
        &["true"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("--pass-env") && err.contains("credentials.scrub_env") && err.contains(&req),
        "{err}"
    );
    assert!(the_log(state.path()).is_none(), "no session was recorded");
}

/// The credential proxy is reachable by its own session only: another session connecting to
/// its address is refused in the kernel, and so is the session itself when it goes to the
/// credential's real address around the proxy.
#[test]
fn a_credential_proxy_serves_its_own_session_only() {
    let Some(ss) = keyring::SecretService::new() else {
        return;
    };
    let stub = ProviderStub::start("127.0.41.2");
    let dns = warden_integration_tests::net::Dnsmasq::start(
        "127.0.41.1".parse().unwrap(),
        &[("api.provider.test", "127.0.41.2")],
        60,
    );
    let add = add_in(
        &ss,
        API_VALUE,
        "provider --provider openai --host api.provider.test --env PROVIDER_API_KEY",
    );
    assert!(add.status.success(), "{}", keyring::text(&add));
    let work = tempfile::tempdir().unwrap();
    let addr_file = work.path().join("proxy");
    let probe = warden_integration_tests::net::net_probe();
    let upstream = dns.addr.to_string();
    let ca = stub.ca().display().to_string();
    // A: finds its proxy through DNS, tries the real address, then waits for B.
    let script_a = format!(
        "echo DIRECT=$({p} connect 127.0.41.2:443); \
         {p} resolve api.provider.test > {f}.tmp; mv {f}.tmp {f}; sleep 6",
        p = probe.display(),
        f = addr_file.display()
    );
    let state_a = private_dir();
    let a = warden_command(
        state_a.path(),
        &[
            "--dns-upstream",
            &upstream,
            "--credential",
            "provider",
            "--credential-ca",
            &ca,
        ],
        &["sh", "-c", &script_a],
    );
    let a = ss
        .wrap(true, &a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(std::time::Duration::from_secs(30), || addr_file.exists()),
        "session A did not resolve"
    );
    let resolved = std::fs::read_to_string(&addr_file).unwrap();
    let proxy = resolved
        .trim()
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("{resolved}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        proxy.starts_with("127.") && proxy != "127.0.41.2",
        "{proxy}"
    );
    // B: a session of its own whose policy allows all of loopback: the kernel still refuses
    // another session's proxy.
    let b = run_session(
        &["--allow-cidr", "127.0.0.0/8"],
        &[
            probe.display().to_string(),
            "connect".into(),
            format!("{proxy}:443"),
        ],
    );
    assert_eq!(b.stdout.trim(), "err EPERM", "{}", b.stderr);
    let denied: Vec<_> = picked!(b, Event::NetConnect(n) if n.address == proxy => n);
    assert_eq!(
        denied[0].verdict,
        warden::events::Verdict::Deny,
        "{denied:?}"
    );
    // ... nor through an IPv6 socket, at the v4-mapped spelling of the address.
    let b6 = run_session(
        &["--allow-cidr", "127.0.0.0/8"],
        &[
            probe.display().to_string(),
            "connect".into(),
            format!("[::ffff:{proxy}]:443"),
        ],
    );
    assert_eq!(b6.stdout.trim(), "err EPERM", "{}", b6.stderr);

    let out = a.wait_with_output().unwrap();
    let s = finish(state_a, out);
    assert_eq!(status_of(&s, "DIRECT"), "err EPERM", "{}", s.stdout);
    assert!(stub.requests().is_empty(), "{}", stub.requests());
}
