//! Loopback fixtures: an HTTPS upstream stub that records what it receives and can echo it, a
//! resolver pointing the routed host at it, the proxy, and a client trusting only the session
//! CA. Shared by the tests and the benchmark.
#![allow(dead_code)] // each test binary uses part of it

use std::{
    collections::HashMap,
    convert::Infallible,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, Uri};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{body::Incoming, client::conn::http1 as client, server::conn::http1 as server};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::ring::default_provider,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use warden_credential_proxy::{
    Limits, Proxy, ProxyConfig, Report, Resolve, Route, Secret, SessionCa,
};

pub const HOST: &str = "api.provider.test";
pub const CREDENTIAL: &str = "provider";
pub const VALUE: &str = "sk-test-REAL-0123456789abcdefghij";

/// A CA for the stub's certificate, standing in for the public web PKI.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub fn root(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A client configuration trusting only this CA.
    pub fn client_config(&self) -> ClientConfig {
        trusting(self.root())
    }

    /// The stub's server configuration, with a certificate for `host`.
    pub fn server_config(&self, host: &str) -> Arc<ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![host.to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(default_provider().into())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

pub fn trusting(root: CertificateDer<'static>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(root).unwrap();
    ClientConfig::builder_with_provider(default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// What the stub received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

/// The upstream: HTTPS on 127.0.0.2. Paths: `/echo` (the request headers back, as `x-echo-*`
/// headers and as the body), `/split?at=N` (the authorization header in two chunks, split at
/// byte N), `/big?mb=N` (N MB streamed with the authorization header every 1000 bytes), anything
/// else `hello`.
pub struct Stub {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Stub {
    pub async fn start(config: Arc<ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let acceptor = TlsAcceptor::from(config);
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let (acceptor, record) = (acceptor.clone(), record.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        stub_respond(req, peer, record.clone())
                    });
                    let _ = server::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self { addr, seen, task }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type StubBody = BoxBody<Bytes, Infallible>;

async fn stub_respond(
    req: Request<Incoming>,
    peer: SocketAddr,
    record: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<StubBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    record.lock().unwrap().push(Seen {
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        body,
        peer,
    });
    let auth = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let query = parts.uri.query().unwrap_or("");
    let number = |key: &str| -> usize {
        query
            .strip_prefix(key)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let response = match parts.uri.path() {
        "/echo" => echo(&parts.headers),
        "/split" => {
            let at = number("at=");
            let first = [b"start ".as_slice(), &auth[..at]].concat();
            let second = [&auth[at..], b" end".as_slice()].concat();
            Response::new(chunked(vec![first.into(), second.into()]))
        }
        "/big" => Response::new(chunked(big_body(&auth, number("mb=")))),
        _ => Response::new(Full::from("hello").boxed()),
    };
    Ok(response)
}

fn echo(headers: &HeaderMap) -> Response<StubBody> {
    let mut body = Vec::new();
    let mut response = Response::builder();
    for (name, value) in headers {
        body.extend_from_slice(format!("{name}: ").as_bytes());
        body.extend_from_slice(value.as_bytes());
        body.push(b'\n');
        response = response.header(format!("x-echo-{name}"), value);
    }
    response.body(Full::from(body).boxed()).unwrap()
}

/// The big body: `token` after every 1000 filler bytes, cut in chunks of a prime size so that
/// tokens straddle chunk boundaries.
pub fn big_body(token: &[u8], mb: usize) -> Vec<Bytes> {
    let mut whole = Vec::with_capacity(mb << 20);
    let filler: Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
    while whole.len() < mb << 20 {
        whole.extend_from_slice(&filler);
        whole.extend_from_slice(token);
    }
    whole.chunks(65_521).map(Bytes::copy_from_slice).collect()
}

/// A body sent one chunk at a time, with a pause between chunks so that each arrives on its own.
fn chunked(chunks: Vec<Bytes>) -> StubBody {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let pause = chunks.len() <= 4;
        for chunk in chunks {
            if tx.send(chunk).await.is_err() {
                return;
            }
            if pause {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    ChannelBody(rx).boxed()
}

struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

/// Every name to one address.
pub struct MapResolver(pub HashMap<String, SocketAddr>);

#[async_trait::async_trait]
impl Resolve for MapResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<SocketAddr>> {
        Ok(self.0.get(host).into_iter().copied().collect())
    }
}

/// The proxy on 127.0.0.1 in front of a stub, with one route.
pub struct Harness {
    pub addr: SocketAddr,
    pub proxy: Arc<Proxy>,
    pub stub: Stub,
    pub placeholder: String,
    pub ca: CertificateDer<'static>,
    /// The root the proxy verifies the stub with.
    pub upstream_root: CertificateDer<'static>,
    pub reports: mpsc::Receiver<Report>,
    task: JoinHandle<()>,
}

pub struct Options {
    pub placeholder: String,
    /// The stub's certificate comes from a CA the proxy does not trust.
    pub untrusted_upstream: bool,
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            placeholder: Route::placeholder_for(VALUE.len()).unwrap(),
            untrusted_upstream: false,
            limits: Limits::default(),
        }
    }
}

impl Harness {
    pub async fn start(options: Options) -> Self {
        let web_pki = TestCa::new();
        let stub_cert = match options.untrusted_upstream {
            true => TestCa::new().server_config(HOST),
            false => web_pki.server_config(HOST),
        };
        let stub = Stub::start(stub_cert).await;
        let session_ca = SessionCa::generate("test", [HOST]).unwrap();
        let ca = session_ca.ca_der().clone();
        let proxy = Proxy::new(ProxyConfig {
            routes: vec![Route {
                host: HOST.into(),
                credential: CREDENTIAL.into(),
                header: http::header::AUTHORIZATION,
                placeholder: options.placeholder.clone(),
                value: Secret::from(VALUE.to_string()),
            }],
            ca: session_ca,
            upstream_tls: web_pki.client_config(),
            resolver: Arc::new(MapResolver([(HOST.to_string(), stub.addr)].into())),
            limits: options.limits,
        })
        .unwrap();
        let proxy = Arc::new(proxy);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, reports) = mpsc::channel(64);
        let task = tokio::spawn(proxy.clone().serve(listener, tx));
        Self {
            addr,
            proxy,
            stub,
            placeholder: options.placeholder,
            ca,
            upstream_root: web_pki.root(),
            reports,
            task,
        }
    }

    /// A TLS connection to the proxy with server name `sni`, trusting only the session CA.
    pub async fn connect(&self, sni: &str) -> io::Result<Client> {
        Client::connect(self.addr, sni, trusting(self.ca.clone())).await
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.placeholder)
    }

    pub async fn next_report(&mut self) -> Report {
        tokio::time::timeout(Duration::from_secs(5), self.reports.recv())
            .await
            .expect("a report within 5 s")
            .expect("the report channel open")
    }

    /// No report other than those already read, after the in-flight ones had time to come.
    pub async fn no_more_reports(&mut self) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(report) = self.reports.try_recv() {
            panic!("unexpected report: {report}");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP/1.1 client connection over TLS.
pub struct Client {
    sender: client::SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, sni: &str, tls: ClientConfig) -> io::Result<Self> {
        let mut tls = tls;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(sni.to_string()).map_err(io::Error::other)?;
        let stream = TlsConnector::from(Arc::new(tls)).connect(name, tcp).await?;
        let (sender, connection) = client::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    /// Sends `req` and reads the whole response.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Response<Bytes> {
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(req).await.unwrap();
        let (parts, body) = response.into_parts();
        Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
    }
}

/// A GET to the routed host with the placeholder as the bearer token.
pub fn get(path: &str, authorization: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(http::header::HOST, HOST)
        .header(http::header::AUTHORIZATION, authorization)
        .body(Full::default())
        .unwrap()
}
