//! The proxy: accepts the agent's TLS connections for the routed hosts, injects credentials and
//! forwards each request to the real host, redacting the values from the responses.
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::{ClientConfig, ServerConfig, server::Acceptor};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc},
    task::JoinSet,
    time::{sleep, timeout},
};
use tokio_rustls::{LazyConfigAcceptor, server::TlsStream};

use crate::{
    ca::SessionCa,
    redact::{RedactedBody, Redactor},
    report::{Outcome, Report, Reporter},
    request,
    route::{Route, RouteError, Site},
    tls,
    upstream::{Resolve, Sender, Upstream, UpstreamError},
};

/// What the proxy serves and how it reaches the real hosts.
pub struct ProxyConfig {
    pub routes: Vec<Route>,
    /// Must permit every routed host.
    pub ca: SessionCa,
    /// Verifies the real hosts: the caller chooses the roots; verification is never disabled.
    pub upstream_tls: ClientConfig,
    pub resolver: Arc<dyn Resolve>,
    pub limits: Limits,
}

/// Bounds on what one agent can make the proxy hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections served at once; more are closed on accept (and counted).
    pub max_connections: usize,
    /// How long a connection may wait for (the headers of) its next request.
    pub idle_timeout: Duration,
    /// For the agent's TLS handshake.
    pub handshake_timeout: Duration,
    /// For connecting to the real host, each of TCP and TLS.
    pub upstream_connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            upstream_connect_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error("host {0} is outside the session CA's name constraints")]
    HostOutsideCa(String),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

pub struct Proxy {
    sites: HashMap<String, Arc<Site>>,
    server_tls: Arc<ServerConfig>,
    upstream: Upstream,
    limits: Limits,
    refused: AtomicU64,
}

type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

impl Proxy {
    pub fn new(config: ProxyConfig) -> Result<Self, ConfigError> {
        let mut routes_by_host: HashMap<String, Vec<Route>> = HashMap::new();
        for mut route in config.routes {
            route.validate()?;
            route.host.make_ascii_lowercase();
            if !config.ca.permits(&route.host) {
                return Err(ConfigError::HostOutsideCa(route.host));
            }
            routes_by_host
                .entry(route.host.clone())
                .or_default()
                .push(route);
        }
        let sites = routes_by_host
            .into_iter()
            .map(|(host, routes)| (host.clone(), Arc::new(Site { host, routes })))
            .collect();
        Ok(Self {
            sites,
            server_tls: tls::server_config(Arc::new(config.ca))?,
            upstream: Upstream {
                resolver: config.resolver,
                tls: tls::connector(config.upstream_tls),
                connect_timeout: config.limits.upstream_connect_timeout,
            },
            limits: config.limits,
            refused: AtomicU64::new(0),
        })
    }

    /// Connections closed on accept because `max_connections` were being served.
    pub fn refused_connections(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Serves the agent's connections on `listener` until this future is dropped, which ends
    /// the connections too.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, reports: mpsc::Sender<Report>) {
        let reporter = Reporter::new(reports);
        let permits = Arc::new(Semaphore::new(self.limits.max_connections));
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            connections.spawn(self.clone().connection(tcp, reporter.clone(), permit));
                        }
                        Err(_) => {
                            self.refused.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("connection refused: at the connection limit");
                        }
                    },
                    Err(e) => {
                        // Out of file descriptors, most likely: give connections time to end.
                        tracing::warn!(error = %e, "accept failed");
                        sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next() => {}
            }
        }
    }

    async fn connection(
        self: Arc<Self>,
        tcp: TcpStream,
        reporter: Reporter,
        _permit: OwnedSemaphorePermit,
    ) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "set_nodelay");
        }
        let Some((tls, site)) = self.handshake(tcp, &reporter).await else {
            return;
        };
        let connection = Arc::new(Connection {
            proxy: self.clone(),
            site,
            reporter,
            upstream: Mutex::new(None),
        });
        let service = service_fn(move |req| {
            let connection = connection.clone();
            async move { Ok::<_, Infallible>(connection.handle(req).await) }
        });
        let served = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.idle_timeout)
            .serve_connection(TokioIo::new(tls), service)
            .await;
        if let Err(e) = served {
            tracing::debug!(error = %e, "agent connection ended");
        }
    }

    /// The TLS handshake, for a routed server name only: for any other the connection is closed
    /// after the ClientHello, before any certificate is sent.
    async fn handshake(
        &self,
        tcp: TcpStream,
        reporter: &Reporter,
    ) -> Option<(TlsStream<TcpStream>, Arc<Site>)> {
        let limit = self.limits.handshake_timeout;
        let hello = timeout(limit, LazyConfigAcceptor::new(Acceptor::default(), tcp)).await;
        let start = match hello {
            Ok(Ok(start)) => start,
            Ok(Err(e)) => return log_handshake_error(&e),
            Err(_) => return log_handshake_error(&"timed out"),
        };
        let sni = start
            .client_hello()
            .server_name()
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let Some(site) = self.sites.get(&sni).cloned() else {
            reporter
                .send(Report {
                    host: sni.clone(),
                    credential: None,
                    outcome: Outcome::UnlistedHost { sni },
                })
                .await;
            return None;
        };
        match timeout(limit, start.into_stream(self.server_tls.clone())).await {
            Ok(Ok(tls)) => Some((tls, site)),
            Ok(Err(e)) => log_handshake_error(&e),
            Err(_) => log_handshake_error(&"timed out"),
        }
    }
}

fn log_handshake_error<T>(error: &dyn std::fmt::Display) -> Option<T> {
    tracing::debug!(%error, "agent TLS handshake failed");
    None
}

/// One agent connection: one host, and one upstream connection reused across its requests.
struct Connection {
    proxy: Arc<Proxy>,
    site: Arc<Site>,
    reporter: Reporter,
    upstream: Mutex<Option<Sender>>,
}

impl Connection {
    async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        if let Some(requested) = request::misdirected(&req, &self.site.host) {
            self.report(None, Outcome::MisdirectedHost { host: requested })
                .await;
            return status(StatusCode::MISDIRECTED_REQUEST);
        }
        match self.forward(req).await {
            Ok(response) => self.redacted(response),
            Err(e) => {
                let reason = e.to_string();
                self.report(None, Outcome::UpstreamFailed { reason }).await;
                status(StatusCode::BAD_GATEWAY)
            }
        }
    }

    /// Connects first, so that the value is put in a request only once there is a verified
    /// connection to send it on.
    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Incoming>, ForwardError> {
        let (mut sender, reused) = self.sender().await?;
        let (mut parts, body) = req.into_parts();
        request::for_upstream(&mut parts, &self.site.host)?;
        for route in &self.site.routes {
            let outcome = match request::inject(&mut parts.headers, route) {
                true => Outcome::Injected,
                false => Outcome::PlaceholderAbsent,
            };
            self.report(Some(route), outcome).await;
        }
        let req = Request::from_parts(parts, body);
        let req = match sender.try_send_request(req).await {
            Ok(response) => return Ok(self.keep(sender, response).await),
            Err(mut e) => match e.take_message() {
                // The reused connection closed before the request went out: once more, on a
                // new one.
                Some(req) if reused => req,
                _ => return Err(UpstreamError::Http(e.into_error()).into()),
            },
        };
        let mut sender = self.proxy.upstream.connect(&self.site.host).await?;
        let response = sender
            .send_request(req)
            .await
            .map_err(UpstreamError::Http)?;
        Ok(self.keep(sender, response).await)
    }

    /// The upstream connection of the previous request if it is still open, else a new one.
    async fn sender(&self) -> Result<(Sender, bool), UpstreamError> {
        let previous = self.upstream.lock().await.take();
        if let Some(mut sender) = previous
            && sender.ready().await.is_ok()
        {
            return Ok((sender, true));
        }
        Ok((self.proxy.upstream.connect(&self.site.host).await?, false))
    }

    async fn keep(&self, sender: Sender, response: Response<Incoming>) -> Response<Incoming> {
        *self.upstream.lock().await = Some(sender);
        response
    }

    fn redacted(&self, response: Response<Incoming>) -> Response<ProxyBody> {
        let (mut parts, body) = response.into_parts();
        request::strip_hop_by_hop(&mut parts.headers);
        let mut redactor = Redactor::new(self.site.clone());
        redactor.headers(&mut parts.headers);
        if !self.site.same_length() {
            // The body's length may change: hyper frames it as chunked instead.
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let body = RedactedBody::new(body, redactor, self.reporter.clone());
        Response::from_parts(parts, BodyExt::boxed_unsync(body))
    }

    async fn report(&self, route: Option<&Route>, outcome: Outcome) {
        self.reporter
            .send(Report {
                host: self.site.host.clone(),
                credential: route.map(|r| r.credential.clone()),
                outcome,
            })
            .await;
    }
}

#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("request: {0}")]
    Request(#[from] http::Error),
}

/// A response of the proxy's own; its body is the reason phrase, never request data.
fn status(code: StatusCode) -> Response<ProxyBody> {
    let reason = code.canonical_reason().unwrap_or("error");
    let body = Full::new(Bytes::from(format!("warden credential proxy: {reason}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response
}
