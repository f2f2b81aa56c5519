//! Delivery `inject`: the agent holds a placeholder as long as the value; the DNS proxy
//! answers the credential's hosts with the session's credential proxy (a loopback address of
//! its own, which the kernel programs let the session reach on its port only), and the proxy
//! (warden-credential-proxy) terminates TLS with a per-session CA, swaps the placeholder for the
//! value and forwards over TLS verified against the system's roots.
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RData, RecordType},
};
use tokio::{sync::mpsc, task::JoinHandle};
use warden_credential_proxy::{Limits, Outcome, Proxy, ProxyConfig, Report, Route, SessionCa};
use warden_credentials::{Credential, Delivery};

use crate::{
    clock,
    events::{CredentialOutcome, CredentialUse, Event},
    network::upstream,
};

/// The system's trusted CAs, which the agent's CA file keeps next to the session's CA.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Its name, beside the agent API socket (a root-owned directory the sandbox can read).
fn ca_file_name(session_id: &str) -> String {
    format!("{session_id}-ca.pem")
}
/// The variables that tell TLS clients which CAs to trust: OpenSSL, curl, Python (requests,
/// pip), Node, git, cargo, Deno.
const CA_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "CARGO_HTTP_CAINFO",
    "DENO_CERT",
];
/// The proxy's port: HTTPS's, so that clients need no change.
const PORT: u16 = warden_common::CREDENTIAL_PROXY_PORT;
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A credential with the placeholder the agent gets instead.
pub struct Injected {
    pub credential: Credential,
    pub placeholder: String,
}

impl Injected {
    pub fn new(credential: Credential) -> anyhow::Result<Self> {
        debug_assert_eq!(credential.metadata.delivery, Delivery::Inject);
        let placeholder = Route::placeholder_for(credential.secret.expose().len())
            .context("making a placeholder")?;
        Ok(Self {
            credential,
            placeholder,
        })
    }
}

/// The proxy's listening socket, bound before the kernel programs are loaded (they get its
/// address).
pub struct Listener {
    pub addr: SocketAddrV4,
    socket: std::net::TcpListener,
}

/// Binds 127.X.Y.Z:443 on an address of the session's own (another session's proxy, or a host
/// service on 127.0.0.1, stays unreachable: the kernel allows this address and port only).
pub fn bind() -> anyhow::Result<Listener> {
    let mut last = None;
    for _ in 0..32 {
        let mut r = [0u8; 3];
        getrandom::fill(&mut r).context("random bytes")?;
        // 127.64.0.0/10, the kernel programs' range for credential proxies.
        let ip = Ipv4Addr::new(127, 64 | (r[0] & 0x3f), r[1], r[2].max(1));
        debug_assert!(warden_common::is_credential_proxy_address(ip.octets()));
        match std::net::TcpListener::bind((ip, PORT)) {
            Ok(socket) => {
                socket.set_nonblocking(true)?;
                return Ok(Listener {
                    addr: SocketAddrV4::new(ip, PORT),
                    socket,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    bail!(
        "binding the credential proxy on a loopback address, port {PORT}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )
}

/// The running proxy.
pub struct Running {
    serve: JoinHandle<()>,
    forward: JoinHandle<()>,
    /// The file of CAs the agent trusts: the system's and the session's.
    pub ca_file: PathBuf,
}

impl Running {
    /// Stops serving, then waits until every report made so far is on its way to the log;
    /// removes the CA file.
    pub async fn stop(self) {
        self.serve.abort();
        let _ = self.serve.await;
        let _ = self.forward.await;
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// What the proxy needs besides its credentials.
pub struct Setup<'a> {
    pub session_id: &'a str,
    /// Where the CA file goes (a directory the agent can read).
    pub dir: &'a Path,
    pub upstreams: Vec<SocketAddr>,
    /// Trust only this CA for the real servers (default: the system's).
    pub upstream_ca: Option<&'a Path>,
    pub events: mpsc::Sender<(u64, Event)>,
}

/// Starts the proxy for `injected` on `listener`; its reports become `credential.use` records.
pub fn start(injected: Vec<Injected>, listener: Listener, s: Setup<'_>) -> anyhow::Result<Running> {
    let hosts: Vec<String> = injected
        .iter()
        .flat_map(|i| i.credential.metadata.hosts.clone())
        .collect();
    let ca = SessionCa::generate(s.session_id, &hosts).context("making the session's CA")?;
    let ca_file = write_ca_file(&s.dir.join(ca_file_name(s.session_id)), &ca.ca_pem())?;
    let mut routes = Vec::new();
    for i in injected {
        let header = http::HeaderName::from_bytes(i.credential.metadata.inject_header().as_bytes())
            .context("the credential's header name")?;
        for host in &i.credential.metadata.hosts {
            routes.push(Route {
                host: host.clone(),
                credential: i.credential.name.to_string(),
                header: header.clone(),
                placeholder: i.placeholder.clone(),
                value: warden_credential_proxy::Secret::new(i.credential.secret.expose()),
            });
        }
    }
    let proxy = Proxy::new(ProxyConfig {
        routes,
        ca,
        upstream_tls: upstream_tls(s.upstream_ca)?,
        resolver: Arc::new(DnsResolver {
            upstreams: s.upstreams,
        }),
        limits: Limits::default(),
    })?;
    let listener = tokio::net::TcpListener::from_std(listener.socket)?;
    let (tx, mut reports) = mpsc::channel::<Report>(256);
    let events = s.events;
    let forward = tokio::spawn(async move {
        // Ends when the proxy and its connections are gone, after the last report.
        while let Some(r) = reports.recv().await {
            // Waits when the log is behind rather than dropping the record.
            if events.send((clock::boot_ns(), record(r))).await.is_err() {
                break;
            }
        }
    });
    let serve = tokio::spawn(Arc::new(proxy).serve(listener, tx));
    Ok(Running {
        serve,
        forward,
        ca_file,
    })
}

/// The variables that point the agent's TLS clients at `ca_file`.
pub fn ca_env(ca_file: &Path) -> Vec<(String, std::ffi::OsString)> {
    CA_VARIABLES
        .iter()
        .map(|v| (v.to_string(), ca_file.as_os_str().to_owned()))
        .collect()
}

/// The names the DNS proxy answers with the proxy's address.
pub fn steered(injected: &[Injected], addr: SocketAddrV4) -> HashMap<String, Ipv4Addr> {
    injected
        .iter()
        .flat_map(|i| i.credential.metadata.hosts.iter())
        .map(|h| (h.to_ascii_lowercase(), *addr.ip()))
        .collect()
}

fn write_ca_file(path: &Path, session_ca: &str) -> anyhow::Result<PathBuf> {
    let mut pem = std::fs::read_to_string(SYSTEM_CA_BUNDLE).unwrap_or_default();
    if !pem.is_empty() && !pem.ends_with('\n') {
        pem.push('\n');
    }
    pem.push_str(session_ca);
    let path = path.to_path_buf();
    std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    Ok(path)
}

/// TLS to the real servers: the system's roots, or only the given CA.
fn upstream_tls(ca: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let path = ca.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certificates(&pem) {
        // A bundle may hold certificates rustls cannot use; the others still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        bail!("{}: no usable CA certificate in it", path.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn pem_certificates(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// Resolves the real hosts through the session's DNS upstreams (the agent's own answers point
/// at the proxy).
struct DnsResolver {
    upstreams: Vec<SocketAddr>,
}

#[async_trait::async_trait]
impl warden_credential_proxy::Resolve for DnsResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<SocketAddr>> {
        let mut q = Message::query();
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(
            Name::from_ascii(host).map_err(io::Error::other)?,
            RecordType::A,
        ));
        let bytes = q.to_vec().map_err(io::Error::other)?;
        let mut last = io::Error::other("no DNS upstream configured");
        for &up in &self.upstreams {
            match upstream::exchange_udp(&bytes, up, RESOLVE_TIMEOUT).await {
                Ok(answer) => {
                    let msg = Message::from_vec(&answer).map_err(io::Error::other)?;
                    return Ok(msg
                        .answers
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::A(a) => Some(SocketAddr::new(IpAddr::V4(a.0), PORT)),
                            _ => None,
                        })
                        .collect());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn record(r: Report) -> Event {
    let (outcome, detail) = match r.outcome {
        Outcome::Injected => (CredentialOutcome::Injected, None),
        Outcome::PlaceholderAbsent => (CredentialOutcome::PlaceholderAbsent, None),
        Outcome::MisdirectedHost { host } => (
            CredentialOutcome::MisdirectedHost,
            Some(format!("the request named host {host}")),
        ),
        Outcome::UnlistedHost { sni } => (
            CredentialOutcome::UnlistedHost,
            Some(format!("TLS server name {sni}")),
        ),
        Outcome::UpstreamFailed { reason } => (CredentialOutcome::UpstreamFailed, Some(reason)),
        Outcome::ResponseRedacted { count } => (
            CredentialOutcome::ResponseRedacted,
            Some(format!("{count} occurrences")),
        ),
    };
    Event::CredentialUse(CredentialUse {
        credential: r.credential,
        delivery: Delivery::Inject,
        outcome,
        host: Some(r.host),
        pid: None,
        detail,
    })
}
