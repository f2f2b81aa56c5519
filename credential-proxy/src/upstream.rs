//! The connection to the real host: resolved by Warden's resolver, TLS verified against the
//! caller's roots, HTTP/1.1.
use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use hyper::{body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::{net::TcpStream, time::timeout};
use tokio_rustls::TlsConnector;

/// Host name resolution for upstream connections; Warden answers with its own DNS upstream, not
/// the answers it gives the sandbox (which point here).
#[async_trait::async_trait]
pub trait Resolve: Send + Sync {
    /// The addresses of `host`, with the port to connect to (443 for HTTPS).
    async fn resolve(&self, host: &str) -> io::Result<Vec<SocketAddr>>;
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("resolving: {0}")]
    Resolve(io::Error),
    #[error("no address")]
    NoAddress,
    #[error("connecting: {0}")]
    Connect(io::Error),
    #[error("timed out connecting")]
    Timeout,
    #[error("TLS: {0}")]
    Tls(io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
}

/// Sends the agent's requests, their bodies streamed from the agent.
pub(crate) type Sender = http1::SendRequest<Incoming>;

pub(crate) struct Upstream {
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) tls: TlsConnector,
    pub(crate) connect_timeout: Duration,
}

impl Upstream {
    /// A new HTTP/1.1 connection to `host`, its driver running on a task of its own (it ends
    /// when the returned sender is dropped).
    pub(crate) async fn connect(&self, host: &str) -> Result<Sender, UpstreamError> {
        let addrs = self
            .resolver
            .resolve(host)
            .await
            .map_err(UpstreamError::Resolve)?;
        let tcp = timeout(self.connect_timeout, connect_any(&addrs))
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        // Requests are small and latency matters more than packets.
        tcp.set_nodelay(true).map_err(UpstreamError::Connect)?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| UpstreamError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let tls = timeout(self.connect_timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(UpstreamError::Tls)?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, UpstreamError> {
    let mut last = UpstreamError::NoAddress;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = UpstreamError::Connect(e),
        }
    }
    Err(last)
}
