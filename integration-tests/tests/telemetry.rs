//! OTLP export to a real collector (rotel on 127.0.7.x, ports 47xx): names and attributes over
//! gRPC and HTTP, a collector outage in the middle of a session, a backlog sent later by
//! `warden export`, the backlog limit.
use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use warden_integration_tests::{collector::Collector, *};

/// `warden run` exporting to `url` over gRPC, in the background, running `script`.
fn spawn_exporting(
    state: &std::path::Path,
    url: &str,
    extra: &[&str],
    script: &str,
) -> std::process::Child {
    let mut args = vec!["--otlp-endpoint", url, "--otlp-protocol", "grpc"];
    args.extend_from_slice(extra);
    warden_command(state, &args, &["sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn backlog_records(s: &Session) -> Vec<&warden::events::ExportBacklog> {
    picked!(s, Event::ExportBacklog(b) => b)
}

fn exported_session(transport: &str, collector: &Collector) -> Session {
    let url = match transport {
        "grpc" => collector.grpc_url(),
        _ => collector.http_url(),
    };
    let protocol = if transport == "grpc" {
        "grpc"
    } else {
        "http/protobuf"
    };
    run_session(
        &["--otlp-endpoint", &url, "--otlp-protocol", protocol],
        &["sh", "-c", "/bin/true; ls / >/dev/null; exit 3"],
    )
}

fn check_names_and_attributes(transport: &str, port: u16) {
    let collector = Collector::start("127.0.7.1", port);
    let s = exported_session(transport, &collector);
    assert_eq!(s.status.code(), Some(3), "{}", s.stderr);
    let id = &s.records[0].session;
    let got = collector.wait_for_session(id, s.records.len());
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..s.records.len() as u64).collect::<Vec<_>>(),
        "{transport}: every record once, by seq"
    );
    for r in &s.records {
        let rx = &got[&r.seq];
        assert_eq!(rx.name, format!("warden.{}", r.event.kind()), "{rx:?}");
        assert_eq!(
            rx.resource.get("service.name").map(String::as_str),
            Some("warden")
        );
        assert!(rx.resource.contains_key("host.name"), "{rx:?}");
    }
    let true_exec = s.exec_of("/bin/true");
    let rx = got
        .values()
        .find(|r| r.name == "warden.exec" && r.attr("process.executable.path") == Some("/bin/true"))
        .expect("the exec of /bin/true");
    assert_eq!(
        rx.attr("process.pid"),
        Some(true_exec.pid.to_string().as_str())
    );
    assert_eq!(
        rx.attr("process.parent_pid"),
        Some(true_exec.ppid.to_string().as_str())
    );
    assert_eq!(
        rx.attr("process.command_args"),
        Some("Slice(Str(/bin/true))")
    );
    assert!(rx.attr("user.id").is_some());
    // The exec gate's decisions, with their sources: the command given to `warden run` is
    // its caller's (`user`), what it runs is decided by the policy.
    let decision = |filename: &str| {
        got.values()
            .find(|r| {
                r.name == "warden.exec.request" && r.attr("warden.exec.filename") == Some(filename)
            })
            .unwrap_or_else(|| panic!("the exec decision on {filename}"))
    };
    assert_eq!(decision("/bin/true").attr("warden.decision"), Some("allow"));
    assert_eq!(
        decision("/bin/true").attr("warden.decision.source"),
        Some("policy")
    );
    let first = got
        .values()
        .find(|r| r.name == "warden.exec.request")
        .expect("an exec decision");
    assert_eq!(first.attr("warden.decision.source"), Some("user"));
    let end = &got[&(s.records.len() as u64 - 1)];
    assert_eq!(end.name, "warden.session.end");
    assert_eq!(end.attr("process.exit.code"), Some("3"));
    assert!(
        got.values().any(|r| r.name == "warden.file.open"
            && r.attr("file.path").is_some()
            && r.attr("warden.file.result").is_some()),
        "file records carry file.path"
    );
}

#[test]
fn grpc_delivers_every_record_with_its_name_and_attributes() {
    check_names_and_attributes("grpc", 4710);
}

#[test]
fn http_delivers_every_record_with_its_name_and_attributes() {
    check_names_and_attributes("http", 4712);
}

#[test]
fn a_collector_outage_in_the_middle_of_a_session_loses_nothing() {
    let mut collector = Collector::start("127.0.7.2", 4720);
    let state = private_dir();
    let url = collector.grpc_url();
    // About 3 s of activity, so that the collector is down in the middle of it.
    let child = spawn_exporting(
        state.path(),
        &url,
        &["--export-grace-secs", "20"],
        "for i in $(seq 30); do /bin/true; sleep 0.1; done",
    );
    std::thread::sleep(Duration::from_millis(800));
    collector.stop();
    std::thread::sleep(Duration::from_millis(1200));
    collector.restart();
    let s = finish(state, child.wait_with_output().unwrap());
    assert!(s.status.success(), "{}", s.stderr);
    let id = &s.records[0].session;
    let got = collector.wait_for_session(id, s.records.len());
    let missing: Vec<u64> = (0..s.records.len() as u64)
        .filter(|seq| !got.contains_key(seq))
        .collect();
    assert!(missing.is_empty(), "seqs never received: {missing:?}");
    assert_eq!(got.len(), s.records.len());
    // Some arrived before the outage, and the rest after it.
    let runs = collector.output_dir().read_dir().unwrap().count();
    assert_eq!(runs, 2);
    assert!(
        s.stderr.contains("reachable again"),
        "the outage was noticed and ended: {}",
        s.stderr
    );
    let trues = s
        .execs()
        .iter()
        .filter(|e| e.filename == "/bin/true")
        .count();
    assert_eq!(trues, 30);
    let cursor = std::fs::read_to_string(s.log.with_file_name("export.cursor")).unwrap();
    assert!(cursor.contains("\"done\":true"), "{cursor}");
}

#[test]
fn telemetry_missed_while_the_collector_was_down_is_sent_by_warden_export() {
    let state = private_dir();
    // Nothing listens there yet.
    let url = "http://127.0.7.3:4730";
    let started = Instant::now();
    let out = warden_command(
        state.path(),
        &[
            "--otlp-endpoint",
            url,
            "--otlp-protocol",
            "grpc",
            "--export-grace-secs",
            "1",
        ],
        &["sh", "-c", "/bin/true"],
    )
    .output()
    .unwrap();
    let s = finish(state, out);
    assert!(s.status.success(), "{}", s.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "bounded grace");
    assert!(
        s.stderr.contains("not all delivered") && s.stderr.contains("warden export"),
        "{}",
        s.stderr
    );
    let collector = Collector::start("127.0.7.3", 4730);
    let export = |expect: &str| {
        let out = std::process::Command::new(warden_bin())
            .args(["export", "--state-dir"])
            .arg(s.state.path())
            .args(["--otlp-endpoint", url, "--otlp-protocol", "grpc"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(expect), "{stdout}");
    };
    export(": sent");
    let got = collector.wait_for_session(&s.records[0].session, s.records.len());
    assert_eq!(got.len(), s.records.len());
    export("nothing pending");
}

#[test]
fn the_backlog_limit_drops_with_a_record_that_says_what() {
    let state = private_dir();
    // No collector at all, a 1 MiB limit, and a session that writes more than that.
    let out = warden_command(
        state.path(),
        &[
            "--otlp-endpoint",
            "http://127.0.7.4:4740",
            "--max-export-backlog-mib",
            "1",
            "--export-backlog-policy",
            "drop",
            "--export-grace-secs",
            "1",
        ],
        &["sh", "-c", "for i in $(seq 1500); do /bin/true; done"],
    )
    .output()
    .unwrap();
    let s = finish(state, out);
    assert!(s.status.success(), "{}", s.stderr);
    let dropped = backlog_records(&s);
    assert!(!dropped.is_empty(), "{}", s.stderr);
    let first = dropped[0];
    assert_eq!(first.action, warden::events::BacklogAction::Dropped);
    assert_eq!(first.from_seq, Some(0));
    assert!(first.backlog_bytes > 1 << 20 && first.limit_bytes == 1 << 20);
    assert_eq!(first.records, Some(first.to_seq.unwrap() + 1));
    // The log itself keeps every record (or counts it lost in the kernel, under load).
    assert!(s.count("exec") as u64 + s.lost().exec >= 1500);
}

#[test]
fn the_backlog_limit_pauses_the_session_until_the_collector_takes_it() {
    let mut collector = Collector::start("127.0.7.5", 4750);
    collector.stop();
    let state = private_dir();
    let url = collector.grpc_url();
    let child = spawn_exporting(
        state.path(),
        &url,
        &["--max-export-backlog-mib", "1", "--export-grace-secs", "20"],
        "for i in $(seq 1500); do /bin/true; done",
    );
    // Frozen at the limit, the session cannot finish while the collector is down.
    std::thread::sleep(Duration::from_secs(4));
    collector.restart();
    let s = finish(state, child.wait_with_output().unwrap());
    assert!(s.status.success(), "{}", s.stderr);
    let actions: Vec<warden::events::BacklogAction> =
        backlog_records(&s).iter().map(|b| b.action).collect();
    use warden::events::BacklogAction::*;
    assert_eq!(actions.first(), Some(&Paused), "{actions:?}");
    assert!(actions.contains(&Resumed), "{actions:?}");
    assert!(!actions.contains(&Dropped));
    let got = collector.wait_for_session(&s.records[0].session, s.records.len());
    assert_eq!(got.len(), s.records.len(), "nothing lost");
}

/// A TLS front for the collector's HTTP port (Python's ssl with a test certificate): it
/// records each request's path and headers, then passes the body on to rotel.
struct TlsFront {
    child: std::process::Child,
    requests: std::path::PathBuf,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    fn start(listen: &str, port: u16, upstream: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::generate_simple_self_signed(vec![listen.to_string()]).unwrap();
        let (cert, pkey) = (dir.path().join("ca.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, key.cert.pem()).unwrap();
        std::fs::write(&pkey, key.signing_key.serialize_pem()).unwrap();
        let requests = dir.path().join("requests.jsonl");
        let script = format!(
            "import http.server, json, ssl, urllib.request\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_POST(self):\n\
             \x20       body = self.rfile.read(int(self.headers['content-length']))\n\
             \x20       with open('{log}', 'a') as f:\n\
             \x20           f.write(json.dumps({{'path': self.path, 'headers': {{k.lower(): v for k, v in self.headers.items()}}}}) + '\\n')\n\
             \x20       req = urllib.request.Request('http://{up}' + self.path, data=body, method='POST',\n\
             \x20           headers={{'content-type': self.headers['content-type']}})\n\
             \x20       with urllib.request.urlopen(req) as r:\n\
             \x20           data, code = r.read(), r.status\n\
             \x20       self.send_response(code)\n\
             \x20       self.send_header('content-type', 'application/x-protobuf')\n\
             \x20       self.send_header('content-length', str(len(data)))\n\
             \x20       self.end_headers()\n\
             \x20       self.wfile.write(data)\n\
             \x20   def log_message(self, *a):\n\
             \x20       pass\n\
             s = http.server.ThreadingHTTPServer(('{listen}', {port}), H)\n\
             c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('{c}', '{k}')\n\
             s.socket = c.wrap_socket(s.socket, server_side=True)\n\
             s.serve_forever()\n",
            log = requests.display(),
            up = upstream,
            c = cert.display(),
            k = pkey.display(),
        );
        let child = std::process::Command::new("python3")
            .args(["-c", &script])
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let addr = format!("{listen}:{port}");
        assert!(wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        }));
        Self {
            child,
            requests,
            ca: cert,
            _dir: dir,
        }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.requests)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_with_a_private_ca_and_headers() {
    let collector = Collector::start("127.0.7.8", 4780);
    let front = TlsFront::start("127.0.7.8", 4782, &collector.http.to_string());
    let url = "https://127.0.7.8:4782";
    let ca = front.ca.display().to_string();
    let s = run_session(
        &[
            "--otlp-endpoint",
            url,
            "--otlp-ca",
            &ca,
            "--otlp-header",
            "Authorization=Bearer t0ken",
            "--otlp-header",
            "x-team=blue",
        ],
        &["sh", "-c", "/bin/true"],
    );
    assert!(s.status.success(), "{}", s.stderr);
    let got = collector.wait_for_session(&s.records[0].session, s.records.len());
    assert_eq!(got.len(), s.records.len(), "{}", s.stderr);
    let requests = front.requests();
    let logs: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| r["path"] == "/v1/logs")
        .collect();
    assert!(!logs.is_empty(), "{requests:?}");
    for r in &logs {
        assert_eq!(r["headers"]["authorization"], "Bearer t0ken", "{r}");
        assert_eq!(r["headers"]["x-team"], "blue", "{r}");
    }
    // The same collector, without trusting its CA: nothing goes, and Warden says so.
    let before = front.requests().len();
    let s = run_session(
        &["--otlp-endpoint", url, "--export-grace-secs", "1"],
        &["sh", "-c", "/bin/true"],
    );
    assert!(s.stderr.contains("not all delivered"), "{}", s.stderr);
    assert_eq!(front.requests().len(), before, "no request got through TLS");
}

#[test]
fn the_next_warden_run_sends_what_an_earlier_session_could_not() {
    let state = private_dir();
    let url = "http://127.0.7.10:4700";
    let args = [
        "--otlp-endpoint",
        url,
        "--otlp-protocol",
        "grpc",
        "--export-grace-secs",
        "3",
    ];
    // The collector is down for the first session...
    let first = warden_command(state.path(), &args, &["sh", "-c", "/bin/true"])
        .output()
        .unwrap();
    assert!(first.status.success());
    let sessions = state.path().join("sessions");
    let first_dir = std::fs::read_dir(&sessions)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let first_records = warden::audit_log::read(&first_dir.join("events.jsonl")).unwrap();
    // ... and up for the second, which sends the first one's backlog as well as its own.
    let collector = Collector::start("127.0.7.10", 4700);
    let second = warden_command(state.path(), &args, &["sh", "-c", "/bin/true"])
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let got = collector.wait_for_session(&first_records[0].session, first_records.len());
    assert_eq!(got.len(), first_records.len());
    let cursor = std::fs::read_to_string(first_dir.join("export.cursor")).unwrap();
    assert!(cursor.contains("\"done\":true"), "{cursor}");
    let received = collector.received();
    let sessions_seen: std::collections::HashSet<&str> = received
        .iter()
        .filter_map(|r| r.attr("warden.session.id"))
        .collect();
    assert_eq!(sessions_seen.len(), 2, "both sessions");
}
