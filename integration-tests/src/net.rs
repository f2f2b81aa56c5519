//! Real servers on loopback for the network tests: dnsmasq as the upstream resolver, TCP
//! servers that greet, and a UDP sink that counts what arrives. Each test uses its own
//! 127.0.N.0/24 so that tests running in parallel never share an address.
use std::{
    io::{BufRead, BufReader, Write},
    net::{IpAddr, SocketAddr, TcpListener, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::wait_for;

pub fn net_probe() -> PathBuf {
    crate::warden_bin().with_file_name("net-probe")
}

/// Runs net-probe outside any session and returns its line.
pub fn probe_outside(args: &[&str]) -> String {
    let out = Command::new(net_probe())
        .args(args)
        .output()
        .expect("net-probe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub struct Dnsmasq {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Serves `records` (name, address) on `listen`, with answers' TTL `ttl` seconds.
    pub fn start(listen: IpAddr, records: &[(&str, &str)], ttl: u32) -> Self {
        let port = UdpSocket::bind((listen, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--conf-file=/dev/null",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--user=root",
        ])
        .arg(format!("--listen-address={listen}"))
        .arg(format!("--port={port}"))
        .arg(format!("--local-ttl={ttl}"))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()))
        .arg("--log-queries")
        .arg(format!(
            "--log-facility={}",
            dir.path().join("log").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for (name, ip) in records {
            cmd.arg(format!("--address=/{name}/{ip}"));
        }
        let child = cmd.spawn().expect("dnsmasq (scripts/setup.sh installs it)");
        let d = Dnsmasq {
            addr: SocketAddr::new(listen, port),
            child,
            dir,
        };
        let name = records.first().map(|r| r.0).unwrap_or("x.test");
        let probe = format!("{}", d.addr);
        assert!(
            wait_for(Duration::from_secs(5), || probe_outside(&[
                "dns", &probe, name
            ])
            .starts_with("ok")),
            "dnsmasq on {probe} did not start"
        );
        d
    }
}

impl Dnsmasq {
    /// The names this server was asked about (from its query log).
    pub fn queried(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find("query[")?..];
                Some(rest.split_whitespace().nth(1)?.to_string())
            })
            .collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP server that answers each connection's first line with `hello from ADDR`.
pub fn greeter(addr: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind(addr).expect("binding a greeter");
    let local = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut line = String::new();
                if BufReader::new(&s).read_line(&mut line).is_ok() {
                    let _ = writeln!(s, "hello from {local}");
                }
            });
        }
    });
    local
}

/// A UDP socket counting the datagrams it receives.
pub struct UdpSink {
    pub addr: SocketAddr,
    pub received: Arc<AtomicUsize>,
}

impl UdpSink {
    pub fn bind(addr: SocketAddr) -> Self {
        let s = UdpSocket::bind(addr).unwrap();
        let addr = s.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let r = received.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while s.recv_from(&mut buf).is_ok() {
                r.fetch_add(1, Ordering::SeqCst);
            }
        });
        Self { addr, received }
    }

    pub fn count(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

/// An HTTPS server on loopback (Python's http.server with a test certificate) serving `dir`.
pub struct HttpsServer {
    child: std::process::Child,
    pub port: u16,
    /// Its certificate, for 127.0.0.1: the CA a client must trust.
    pub ca: std::path::PathBuf,
}

impl HttpsServer {
    /// Serves `dir/www` from `dir` (its certificate and key go there too).
    pub fn start(dir: &std::path::Path) -> Self {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (cert, pkey) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, key.cert.pem()).unwrap();
        std::fs::write(&pkey, key.signing_key.serialize_pem()).unwrap();
        let script = format!(
            "import functools, http.server, ssl, sys\n\
             h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='{d}')\n\
             s = http.server.HTTPServer(('127.0.0.1', 0), h)\n\
             c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('{c}', '{k}')\n\
             s.socket = c.wrap_socket(s.socket, server_side=True)\n\
             print(s.server_port, flush=True)\n\
             s.serve_forever()\n",
            d = dir.join("www").display(),
            c = cert.display(),
            k = pkey.display()
        );
        std::fs::create_dir_all(dir.join("www")).unwrap();
        let (child, line) = python_server(&script);
        Self {
            child,
            port: line.trim().parse().unwrap(),
            ca: cert,
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a Python server from `script`, which prints one line when it is ready; returns the
/// process and that line.
pub fn python_server(script: &str) -> (std::process::Child, String) {
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    (child, line.trim().to_string())
}
