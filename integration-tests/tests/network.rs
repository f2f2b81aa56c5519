//! The network allowlist, enforced in the kernel, by domain, through the DNS proxy.
//! Every server is real (dnsmasq, TCP and UDP sockets) and on loopback.
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};
use warden::events::{DnsQuery, EndReason, Network, Verdict};
use warden_integration_tests::{net::*, *};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// `LABEL: result` lines printed by the session's script.
/// The `LABEL: result` lines of a session's output; a missing label panics with the output.
struct Results<'a> {
    found: HashMap<String, String>,
    session: &'a Session,
}

impl std::ops::Index<&str> for Results<'_> {
    type Output = String;

    fn index(&self, label: &str) -> &String {
        self.found.get(label).unwrap_or_else(|| {
            panic!(
                "no {label} result; exit {:?}\nstdout:\n{}\nstderr:\n{}",
                self.session.status, self.session.stdout, self.session.stderr
            )
        })
    }
}

fn results(s: &Session) -> Results<'_> {
    let found = s
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Results { found, session: s }
}

fn probe(label: &str, args: &str) -> String {
    format!("echo \"{label}: $({} {args})\"; ", net_probe().display())
}

fn dns_queries(s: &Session) -> Vec<&DnsQuery> {
    picked!(s, Event::DnsQuery(q) => q.as_ref())
}

fn net_events(s: &Session) -> Vec<(&'static str, &Network)> {
    picked!(s, Event::NetConnect(n) => ("connect", n), Event::NetSend(n) => ("send", n))
}

fn find_net<'a>(s: &'a Session, op: &str, addr: &str, port: u16) -> &'a Network {
    net_events(s)
        .into_iter()
        .find(|(o, n)| *o == op && n.address == addr && n.port == port)
        .map(|(_, n)| n)
        .unwrap_or_else(|| panic!("no network.{op} to {addr}:{port} in {:#?}", net_events(s)))
}

fn run_with(dns: &Dnsmasq, flags: &[&str], script: &str) -> Session {
    let upstream = dns.addr.to_string();
    let mut args = vec!["--dns-upstream", &upstream, "--no-default-domains"];
    args.extend_from_slice(flags);
    let s = run_session(&args, &["sh", "-c", script]);
    assert!(s.status.success(), "{}\n{}", s.stdout, s.stderr);
    s
}

#[test]
fn allowed_names_are_reachable_and_everything_else_is_not() {
    let dns = Dnsmasq::start(
        ip("127.0.1.2"),
        &[
            ("allowed.test", "127.0.1.10"),
            ("denied.test", "127.0.1.11"),
        ],
        60,
    );
    let a = greeter(sa("127.0.1.10:0"));
    let d = greeter(sa("127.0.1.11:0"));
    let script = [
        probe("A", &format!("connect allowed.test:{}", a.port())),
        probe("D", &format!("connect denied.test:{}", d.port())),
        probe("IP", &format!("connect 127.0.1.11:{}", d.port())),
    ]
    .concat();
    let s = run_with(&dns, &["--allow-domain", "allowed.test"], &script);
    let r = results(&s);
    assert_eq!(r["A"], format!("ok hello from {a}"));
    assert!(
        r["D"].starts_with("err") && !r["D"].contains("EPERM"),
        "denied.test must not resolve: {}",
        r["D"]
    );
    assert_eq!(
        r["IP"], "err EPERM",
        "a direct connect to an address no allowed name resolved to"
    );

    // The decisions, with the rule that made each one.
    let q = dns_queries(&s);
    let allowed = q
        .iter()
        .find(|q| q.name == "allowed.test" && q.qtype == "A")
        .expect("allowed.test A query");
    assert_eq!(
        (allowed.verdict, allowed.rule.as_str()),
        (Verdict::Allow, "allowed_domains=allowed.test")
    );
    assert_eq!(
        allowed.rule_source.as_deref(),
        Some("command line flag --allow-domain")
    );
    assert_eq!(allowed.answers, ["127.0.1.10"]);
    assert_eq!(
        allowed.upstream.as_deref(),
        Some(dns.addr.to_string().as_str())
    );
    let denied = q
        .iter()
        .find(|q| q.name == "denied.test")
        .expect("denied.test query");
    assert_eq!(
        (denied.verdict, denied.rule.as_str(), denied.rcode.as_str()),
        (Verdict::Deny, "default-deny", "REFUSED")
    );
    let ok = find_net(&s, "connect", "127.0.1.10", a.port());
    assert_eq!(
        (ok.verdict, ok.domain.as_deref()),
        (Verdict::Allow, Some("allowed.test"))
    );
    assert_eq!(ok.transport, "tcp");
    let no = find_net(&s, "connect", "127.0.1.11", d.port());
    assert_eq!(
        (no.verdict, no.rule.as_str()),
        (Verdict::Deny, "default-deny")
    );
    // Refused names never left the machine.
    let upstream_saw = dns.queried();
    assert!(
        upstream_saw.iter().any(|n| n == "allowed.test"),
        "{upstream_saw:?}"
    );
    assert!(
        !upstream_saw.iter().any(|n| n == "denied.test"),
        "{upstream_saw:?}"
    );
}

#[test]
fn ipv6_and_v4_mapped_addresses_are_enforced_the_same() {
    let dns = Dnsmasq::start(
        ip("127.0.2.2"),
        &[("six.test", "::1"), ("four.test", "127.0.2.10")],
        60,
    );
    let six = greeter(sa("[::1]:0"));
    let four = greeter(sa("127.0.2.10:0"));
    let script = [
        probe("V6_BEFORE", &format!("connect [::1]:{}", six.port())),
        probe(
            "MAPPED",
            &format!("connect [::ffff:127.0.2.10]:{}", four.port()),
        ),
        probe("V6_NAME", &format!("connect six.test:{}", six.port())),
    ]
    .concat();
    let s = run_with(&dns, &["--allow-domain", "six.test"], &script);
    let r = results(&s);
    assert_eq!(r["V6_BEFORE"], "err EPERM");
    assert_eq!(
        r["MAPPED"], "err EPERM",
        "a v4-mapped IPv6 address is checked as IPv4"
    );
    assert_eq!(r["V6_NAME"], format!("ok hello from {six}"));
    let q = dns_queries(&s);
    assert!(
        q.iter()
            .any(|q| q.name == "six.test" && q.qtype == "AAAA" && q.answers == ["::1"]),
        "{q:#?}"
    );
    assert_eq!(
        find_net(&s, "connect", "::1", six.port()).verdict,
        Verdict::Deny
    );
    assert_eq!(
        find_net(&s, "connect", "127.0.2.10", four.port()).verdict,
        Verdict::Deny
    );
}

#[test]
fn datagrams_dns_redirection_and_dns_over_tls() {
    let dns = Dnsmasq::start(
        ip("127.0.3.2"),
        &[
            ("allowed.test", "127.0.3.10"),
            ("denied.test", "127.0.3.11"),
        ],
        60,
    );
    let denied_sink = UdpSink::bind(sa("127.0.3.11:0"));
    let allowed_sink = UdpSink::bind(sa("127.0.3.10:0"));
    let script = [
        probe("UDP_DENIED", &format!("udp {}", denied_sink.addr)),
        // Another resolver address, where nothing listens: the kernel sends it to the proxy.
        probe("DNS_UDP", "dns 127.0.3.77:53 allowed.test"),
        probe("DNS_TCP", "dns 127.0.3.77:53 allowed.test tcp"),
        probe("DNS_V6", "dns [::1]:53 allowed.test"),
        probe("DNS_MAPPED", "dns [::ffff:127.0.3.78]:53 allowed.test"),
        probe("DNS_DENIED", "dns 127.0.3.77:53 denied.test"),
        probe("UDP_ALLOWED", &format!("udp {}", allowed_sink.addr)),
        probe("DOT", "connect 127.0.3.10:853"),
    ]
    .concat();
    let s = run_with(&dns, &["--allow-domain", "allowed.test"], &script);
    let r = results(&s);
    assert_eq!(r["UDP_DENIED"], "err EPERM");
    assert_eq!(
        denied_sink.count(),
        0,
        "the denied datagram must not arrive"
    );
    // The answer appears to come from where the query was sent.
    assert_eq!(r["DNS_UDP"], "ok NoError from 127.0.3.77:53: 127.0.3.10");
    assert!(
        r["DNS_TCP"].starts_with("ok NoError from ") && r["DNS_TCP"].ends_with(": 127.0.3.10"),
        "{}",
        r["DNS_TCP"]
    );
    assert_eq!(r["DNS_V6"], "ok NoError from [::1]:53: 127.0.3.10");
    assert_eq!(
        r["DNS_MAPPED"],
        "ok NoError from [::ffff:127.0.3.78]:53: 127.0.3.10"
    );
    assert_eq!(r["DNS_DENIED"], "ok Refused from 127.0.3.77:53: ");
    assert_eq!(r["UDP_ALLOWED"], "ok ");
    assert!(wait_for(Duration::from_secs(2), || allowed_sink.count() == 1));
    assert_eq!(
        r["DOT"], "err EPERM",
        "DNS over TLS is refused even to an allowed address"
    );

    let send = find_net(&s, "send", "127.0.3.11", denied_sink.addr.port());
    assert_eq!(
        (send.verdict, send.transport.as_str()),
        (Verdict::Deny, "udp")
    );
    let redirect = find_net(&s, "send", "127.0.3.77", 53);
    assert_eq!(
        (redirect.verdict, redirect.rule.as_str()),
        (Verdict::Redirect, "dns-proxy")
    );
    let tcp_redirect = find_net(&s, "connect", "127.0.3.77", 53);
    assert_eq!(
        (tcp_redirect.verdict, tcp_redirect.transport.as_str()),
        (Verdict::Redirect, "tcp")
    );
    let dot = find_net(&s, "connect", "127.0.3.10", 853);
    assert_eq!(
        (dot.verdict, dot.rule.as_str()),
        (Verdict::Deny, "dns-over-tls")
    );
    assert!(
        dns_queries(&s)
            .iter()
            .any(|q| q.transport == "tcp" && q.name == "allowed.test")
    );
}

#[test]
fn wildcards_deny_rules_and_ttl_expiry() {
    // dnsmasq answers every name below wild.test, with a TTL of 1 s.
    let dns = Dnsmasq::start(ip("127.0.4.2"), &[("wild.test", "127.0.4.12")], 1);
    let g = greeter(sa("127.0.4.12:0"));
    let script = [
        probe("WILD", &format!("connect a.wild.test:{}", g.port())),
        // An open connection outlives its address's allowance; new connects do not. It
        // connects at once (under emulation in the VM matrix the probes below take more
        // than the 1 s TTL) and talks after the expiry.
        format!(
            "{} hold 127.0.4.12:{} 5 > held.out & ",
            net_probe().display(),
            g.port()
        ),
        probe("DEEP", "resolve x.y.wild.test"),
        probe("APEX", "resolve wild.test"),
        probe("BAD", "resolve bad.wild.test"),
        "sleep 2.5; ".into(),
        probe("EXPIRED", &format!("connect 127.0.4.12:{}", g.port())),
        "wait; echo \"HELD: $(cat held.out)\"".into(),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let script = format!("cd {}; {script}", dir.path().display());
    let s = run_with(
        &dns,
        &[
            "--allow-domain",
            "*.wild.test",
            "--deny-domain",
            "bad.wild.test",
            "--dns-ttl-floor-secs",
            "1",
        ],
        &script,
    );
    let r = results(&s);
    assert_eq!(r["WILD"], format!("ok hello from {g}"));
    assert_eq!(r["DEEP"], "ok 127.0.4.12");
    assert!(
        r["APEX"].starts_with("err"),
        "`*.wild.test` does not cover wild.test: {}",
        r["APEX"]
    );
    assert!(
        r["BAD"].starts_with("err"),
        "deny wins over the wildcard: {}",
        r["BAD"]
    );
    assert_eq!(
        r["EXPIRED"], "err EPERM",
        "the address expired with its TTL"
    );
    assert_eq!(r["HELD"], format!("ok hello from {g}"));
    let q = dns_queries(&s);
    let wild = q
        .iter()
        .find(|q| q.name == "a.wild.test" && q.qtype == "A")
        .unwrap();
    assert_eq!(
        (wild.rule.as_str(), wild.ttl, wild.allowed_secs),
        ("allowed_domains=*.wild.test", Some(1), Some(1))
    );
    let bad = q.iter().find(|q| q.name == "bad.wild.test").unwrap();
    assert_eq!(
        (bad.verdict, bad.rule.as_str()),
        (Verdict::Deny, "denied_domains=bad.wild.test")
    );
    assert_eq!(
        bad.rule_source.as_deref(),
        Some("command line flag --deny-domain")
    );
}

#[test]
fn a_process_outside_the_session_is_not_affected() {
    let g = greeter(sa("127.0.5.11:0"));
    let state = private_dir();
    let script = format!("{} sleep 1.5", probe("IN", &format!("connect {g}")));
    let child = warden_command(state.path(), &[], &["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let outside = probe_outside(&["connect", &g.to_string()]);
    let outside_udp = probe_outside(&["udp", "127.0.5.11:9"]);
    let s = finish(state, child.wait_with_output().unwrap());
    assert_eq!(results(&s)["IN"], "err EPERM");
    assert_eq!(
        outside,
        format!("ok hello from {g}"),
        "the same connect outside the session"
    );
    assert_eq!(outside_udp, "ok");
}

#[test]
fn one_sessions_lookups_open_nothing_for_another() {
    let dns = Dnsmasq::start(ip("127.0.6.2"), &[("a.test", "127.0.6.10")], 60);
    let g = greeter(sa("127.0.6.10:0"));
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let upstream = dns.addr.to_string();
    let state_a = private_dir();
    let script_a = format!(
        "{} touch {}; sleep 3",
        probe("A", &format!("connect a.test:{}", g.port())),
        ready.display()
    );
    let a = warden_command(
        state_a.path(),
        &["--dns-upstream", &upstream, "--allow-domain", "a.test"],
        &["sh", "-c", &script_a],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let script_b = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; {}{}",
        ready.display(),
        probe("B_IP", &format!("connect 127.0.6.10:{}", g.port())),
        probe("B_NAME", "resolve a.test")
    );
    let b = run_session(&["--dns-upstream", &upstream], &["sh", "-c", &script_b]);
    let a = finish(state_a, a.wait_with_output().unwrap());
    assert_eq!(results(&a)["A"], format!("ok hello from {g}"));
    assert_eq!(
        results(&b)["B_IP"],
        "err EPERM",
        "A's lookup must not open the address for B"
    );
    assert!(results(&b)["B_NAME"].starts_with("err"));
}

#[test]
fn enforcement_survives_a_killed_supervisor_until_recovery_ends_the_session() {
    let g = greeter(sa("127.0.7.11:0"));
    let state = private_dir();
    let run_dir = private_dir();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let pidfile = work.path().join("pid");
    // One long-lived prober: once the supervisor is gone no exec succeeds, not even its own.
    let script = format!(
        "echo $$ > {pid}; exec {p} watch {g} 127.0.7.77:53 {out}",
        pid = pidfile.display(),
        p = net_probe().display(),
        out = out.display()
    );
    let run_dir_arg = run_dir.path().to_str().unwrap();
    // Whatever happens below, the orphaned session must not outlive the test.
    struct Recover<'a>(&'a str);
    impl Drop for Recover<'_> {
        fn drop(&mut self) {
            let _ = Command::new(warden_bin())
                .args(["recover", "--run-dir", self.0])
                .output();
        }
    }
    let _recover = Recover(run_dir_arg);
    let mut warden = warden_command(
        state.path(),
        &["--run-dir", run_dir_arg],
        &["sh", "-c", &script],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lines = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert!(wait_for(Duration::from_secs(30), || lines().len() >= 6));
    assert!(
        lines().contains(&"E ok exit status: 0".to_string()),
        "execs work while supervised"
    );
    nix::sys::signal::kill(Pid::from_raw(warden.id() as i32), Signal::SIGKILL).unwrap();
    warden.wait().unwrap();
    let at_kill = lines().len();
    assert!(
        wait_for(Duration::from_secs(10), || lines().len() >= at_kill + 6),
        "the session keeps running"
    );
    // Skip the round that was running when the supervisor died.
    let after: Vec<String> = lines()[at_kill + 3..].to_vec();
    for l in &after {
        match &l[..2] {
            "C " => assert_eq!(l, "C err EPERM", "still denied after the supervisor died"),
            "D " => assert!(
                l.starts_with("D err"),
                "DNS fails closed without the proxy: {l}"
            ),
            _ => assert!(
                l.starts_with("E err"),
                "exec fails closed without the gate: {l}"
            ),
        }
    }

    let log = the_log(state.path()).unwrap();
    let recovered = Command::new(warden_bin())
        .args(["recover", "--run-dir", run_dir_arg])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&recovered.stdout);
    assert!(recovered.status.success(), "{text}");
    assert!(text.starts_with("ended session "), "{text}");
    let shell: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_for(Duration::from_secs(2), || !alive(shell)));
    let records = warden::audit_log::read(&log).unwrap();
    assert_gap_free(&records);
    let Event::SessionStart(start) = &records[0].event else {
        panic!()
    };
    let Event::SessionEnd(end) = &records.last().unwrap().event else {
        panic!("{:?}", records.last())
    };
    assert_eq!(end.reason, EndReason::SupervisorLost);
    assert!(end.killed >= 1);
    assert!(!Path::new(&warden::kernel::bpffs::session_dir(&records[0].session)).exists());
    assert_nothing_left(start);
    let again = Command::new(warden_bin())
        .args(["recover", "--run-dir", run_dir_arg])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "no orphaned session\n"
    );
}

#[test]
fn loopback_ports_and_allowed_cidrs_open_exactly_what_they_name() {
    let open = greeter(sa("127.0.0.1:0"));
    let closed = greeter(sa("127.0.0.1:0"));
    let in_cidr = greeter(sa("127.0.9.50:0"));
    let outside_cidr = greeter(sa("127.0.10.50:0"));
    let script = [
        probe("OPEN", &format!("connect {open}")),
        probe("CLOSED", &format!("connect {closed}")),
        probe("IN_CIDR", &format!("connect {in_cidr}")),
        probe("OUTSIDE_CIDR", &format!("connect {outside_cidr}")),
    ]
    .concat();
    let port = open.port().to_string();
    let s = run_session(
        &[
            "--loopback-port",
            &port,
            "--allow-cidr",
            "127.0.9.0/24",
            "--no-default-domains",
        ],
        &["sh", "-c", &script],
    );
    let r = results(&s);
    assert_eq!(r["OPEN"], format!("ok hello from {open}"));
    assert_eq!(r["CLOSED"], "err EPERM");
    assert_eq!(r["IN_CIDR"], format!("ok hello from {in_cidr}"));
    assert_eq!(r["OUTSIDE_CIDR"], "err EPERM");
    assert_eq!(
        find_net(&s, "connect", "127.0.0.1", open.port()).rule,
        format!("loopback_ports={port}")
    );
    assert_eq!(
        find_net(&s, "connect", "127.0.9.50", in_cidr.port()).rule,
        "allowed_cidrs=127.0.9.0/24"
    );
    assert_eq!(
        find_net(&s, "connect", "127.0.0.1", closed.port()).rule,
        "default-deny"
    );
}

// DNS budgets: names as a data channel out of the machine.

/// A shell loop that looks up each name (A, over UDP, through the kernel's redirect to the
/// proxy) and prints `ok`/`err` per name.
fn lookups(names: &[String]) -> String {
    format!(
        "for n in {}; do {} dns 127.0.0.53:53 $n; done",
        names.join(" "),
        net_probe().display()
    )
}

/// `n` distinct labels of 48 hex digits, as a tunnel would encode data.
fn hex_labels(n: usize) -> Vec<String> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            (0..3)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    format!("{x:016x}")
                })
                .collect::<String>()
        })
        .collect()
}

/// The queries the proxy refused for a budget.
fn over_budget(s: &Session) -> Vec<&DnsQuery> {
    dns_queries(s)
        .into_iter()
        .filter(|q| q.budget.is_some())
        .collect()
}

/// How many of `names` the upstream was asked about.
fn reached(dns: &Dnsmasq, names: &[String]) -> usize {
    let seen: std::collections::HashSet<String> = dns.queried().into_iter().collect();
    names.iter().filter(|n| seen.contains(*n)).count()
}

#[test]
fn dns_budget_stops_a_tunnel_of_unique_hex_names() {
    use warden::network::dns_budget::{Amount, Budget, Scope};
    let dns = Dnsmasq::start(ip("127.0.20.2"), &[("example.test", "127.0.20.10")], 60);
    let names: Vec<String> = hex_labels(300)
        .into_iter()
        .map(|l| format!("{l}.example.test"))
        .collect();
    let s = run_with(
        &dns,
        &["--allow-domain", "*.example.test"],
        &lookups(&names),
    );

    // The default per-domain budget (100 unique names) lets 100 out; the other 200 never
    // leave the machine.
    assert_eq!(reached(&dns, &names), 100, "names that reached dnsmasq");
    let refused = over_budget(&s);
    assert_eq!(refused.len(), 200);
    for q in &refused {
        assert_eq!(
            (q.verdict, q.rule.as_str(), q.rcode.as_str()),
            (Verdict::Deny, "dns-budget", "REFUSED"),
            "{q:?}"
        );
        // Unattended: the approval flow decided (nobody to ask), and said so.
        assert!(q.approval.is_some(), "{q:?}");
        let b = q.budget.as_ref().unwrap();
        assert_eq!(
            (b.budget, b.scope, b.limit, b.value, b.domain.as_str()),
            (
                Budget::UniqueNames,
                Scope::Domain,
                Amount::Count(100),
                Amount::Count(101),
                "example.test"
            )
        );
    }
    // The first 100 went out, and the refusals are the last 200 names.
    assert!(refused.iter().all(|q| names[100..].contains(&q.name)));
    assert_eq!(s.count("approval"), 200);
    // On the wire: the budget as one object of the dns.query record.
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(
        log.contains(r#""budget":{"budget":"unique_names","scope":"domain","limit":100,"value":101,"domain":"example.test"}"#),
        "no budget object in the log"
    );
}

#[test]
fn dns_budget_lets_an_ordinary_workload_through() {
    let dns = Dnsmasq::start(ip("127.0.21.2"), &[("example.test", "127.0.21.10")], 60);
    let words = [
        "www",
        "api",
        "static",
        "cdn",
        "index",
        "registry",
        "files",
        "objects",
        "raw",
        "docs",
        "download",
        "mirror-eu",
        "mirror-us",
        "codeload",
        "uploads",
        "media",
        "assets",
        "auth",
        "login",
        "status",
    ];
    let names: Vec<String> = words
        .iter()
        .flat_map(|w| [format!("{w}.example.test"), format!("{w}.eu.example.test")])
        .collect();
    assert_eq!(names.len(), 40);
    // Each looked up twice, as programs do.
    let twice = [names.clone(), names.clone()].concat();
    let s = run_with(
        &dns,
        &["--allow-domain", "*.example.test"],
        &lookups(&twice),
    );
    assert!(over_budget(&s).is_empty(), "{:?}", over_budget(&s));
    let allowed = dns_queries(&s)
        .iter()
        .filter(|q| q.verdict == Verdict::Allow && q.rcode == "NOERROR")
        .count();
    assert_eq!(allowed, 80);
    assert_eq!(reached(&dns, &names), 40);
}

#[test]
fn dns_budget_ceiling_from_the_requirements_applies_and_cannot_be_raised() {
    let dir = private_dir();
    let req = requirements_file(
        dir.path(),
        "[network.dns_budget]\nunique_names_per_domain = 10\n",
    );
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[network.dns_budget]\nunique_names_per_domain = 50\n",
    )
    .unwrap();
    let dns = Dnsmasq::start(ip("127.0.22.2"), &[("example.test", "127.0.22.10")], 60);

    // A user value above the ceiling: refused before the session, naming key, file and line.
    let state = private_dir();
    let out = warden_command(
        state.path(),
        &[
            "--requirements",
            &req,
            "--config",
            config.to_str().unwrap(),
            "--dns-upstream",
            &dns.addr.to_string(),
        ],
        &["true"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "network.dns_budget.unique_names_per_domain at {} line 2: 50 is more than the requirements allow; requirement network.dns_budget.unique_names_per_domain = 10 at {req} line 2",
            config.display()
        )),
        "{stderr}"
    );

    // Without one, the ceiling is the session's budget.
    let names: Vec<String> = (0..20).map(|i| format!("host{i}.example.test")).collect();
    let s = run_with(
        &dns,
        &["--requirements", &req, "--allow-domain", "*.example.test"],
        &lookups(&names),
    );
    assert_eq!(reached(&dns, &names), 10);
    let refused = over_budget(&s);
    assert_eq!(refused.len(), 10);
    let b = refused[0].budget.as_ref().unwrap();
    assert_eq!(
        (b.limit, b.value),
        (
            warden::network::dns_budget::Amount::Count(10),
            warden::network::dns_budget::Amount::Count(11)
        )
    );
}

#[test]
fn dns_budget_long_or_random_labels_trip_with_few_names() {
    use warden::network::dns_budget::{Amount, Budget};
    let dns = Dnsmasq::start(ip("127.0.23.2"), &[("example.test", "127.0.23.10")], 60);
    let long = format!("{}.example.test", "a".repeat(60));
    // 36 distinct characters: log2(36) = 5.17 bits each.
    let random = "q7x2m9k4v1z8w3p6r0t5y8u2i7o4a1s6l3nj.example.test".to_string();
    let ordinary = "registry.example.test".to_string();
    let names = [long.clone(), random.clone(), ordinary.clone()];
    let s = run_with(
        &dns,
        &["--allow-domain", "*.example.test"],
        &lookups(&names),
    );

    let budget_of = |name: &str| {
        dns_queries(&s)
            .into_iter()
            .find(|q| q.name == name)
            .and_then(|q| q.budget.clone())
            .unwrap_or_else(|| panic!("{name}: no budget in {:#?}", dns_queries(&s)))
    };
    let b = budget_of(&long);
    assert_eq!(
        (b.budget, b.limit, b.value),
        (Budget::LabelLength, Amount::Count(52), Amount::Count(60))
    );
    let b = budget_of(&random);
    assert_eq!(
        (b.budget, b.limit),
        (Budget::LabelEntropy, Amount::Bits(4.4))
    );
    let Amount::Bits(v) = b.value else {
        panic!("{b:?}")
    };
    assert!(v > 4.4, "{v}");
    assert_eq!(
        dns.queried()
            .iter()
            .filter(|n| n.ends_with(".example.test"))
            .collect::<Vec<_>>(),
        [&ordinary],
        "only the ordinary name reached the upstream"
    );
}

/// `net.ipv4.ping_group_range` opened to every group while a test needs ping sockets (root's
/// group is outside the kernel's default), and put back after.
struct PingGroups(String);

impl PingGroups {
    const PATH: &str = "/proc/sys/net/ipv4/ping_group_range";

    fn open() -> Self {
        let old = std::fs::read_to_string(Self::PATH).unwrap();
        std::fs::write(Self::PATH, "0 2147483647").unwrap();
        Self(old)
    }
}

impl Drop for PingGroups {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, self.0.trim());
    }
}

#[test]
fn icmp_echo_is_refused_unless_allowed_and_then_goes_only_to_allowed_addresses() {
    let _groups = PingGroups::open();
    let e = warden_bin().with_file_name("escape").display().to_string();
    let script = format!(
        "echo \"P2: $({e} ping 127.0.0.2)\"; echo \"P3: $({e} ping 127.0.0.3)\"; \
         echo \"P6: $({e} ping ::1)\""
    );
    // By default a ping socket cannot even be made: the cgroup programs never see it.
    let s = run_session(&[], &["sh", "-c", &script]);
    let r = results(&s);
    for label in ["P2", "P3", "P6"] {
        assert_eq!(r[label], "err EPERM", "{label}");
    }
    let refused: Vec<_> = s
        .records
        .iter()
        .filter_map(|rec| match &rec.event {
            Event::SyscallDenied(d) => d.socket.as_ref(),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 3, "{refused:#?}");
    assert!(refused.iter().any(|k| k.protocol == "IPPROTO_ICMP"));
    assert!(refused.iter().any(|k| k.protocol == "IPPROTO_ICMPV6"));

    // Allowed: echo reaches the allowed CIDR, and nothing else.
    let s = run_session(
        &["--allow-icmp", "--allow-cidr", "127.0.0.2/32"],
        &["sh", "-c", &script],
    );
    let r = results(&s);
    assert_eq!(r["P2"], "ok reply");
    assert_eq!(r["P3"], "err EPERM");
    // IPv6's ping send does not hand the drop back to the caller: nothing leaves, nothing
    // answers.
    assert!(
        ["err EPERM", "ok noreply"].contains(&r["P6"].as_str()),
        "{}",
        r["P6"]
    );
    for (addr, transport) in [("127.0.0.3", "icmp"), ("::1", "icmpv6")] {
        let n = net_events(&s)
            .into_iter()
            .find(|(op, n)| *op == "send" && n.address == addr)
            .unwrap_or_else(|| panic!("no network.send to {addr}: {:#?}", net_events(&s)));
        assert_eq!(
            (n.1.transport.as_str(), n.1.verdict, n.1.rule.as_str()),
            (transport, Verdict::Deny, "default-deny")
        );
        assert_eq!(n.1.uid, 0, "the socket's owner");
    }
    assert!(
        !net_events(&s).iter().any(|(_, n)| n.address == "127.0.0.2"),
        "allowed echo is not recorded (like allowed datagrams)"
    );

    // A requirement that keeps ICMP off: the flag is refused before anything runs.
    let reqs = private_dir();
    let file = requirements_file(reqs.path(), "[network]\nallow_icmp = false\n");
    let out = warden_command(
        private_dir().path(),
        &["--requirements", &file, "--allow-icmp"],
        &["true"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--allow-icmp") && err.contains("network.allow_icmp"),
        "{err}"
    );
}
