//! The two TLS ends: toward the agent with leaves of the session CA, toward the real host with
//! the caller's roots. Both speak HTTP/1.1 only.
use std::{fmt, sync::Arc};

use rustls::{
    ClientConfig, ServerConfig,
    crypto::ring::default_provider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio_rustls::TlsConnector;

use crate::ca::SessionCa;

const HTTP_1_1: &[u8] = b"http/1.1";

/// The agent side: the certificate is chosen by server name, issued on first use.
pub(crate) fn server_config(ca: Arc<SessionCa>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(default_provider().into())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Leaves(ca)));
    config.alpn_protocols = vec![HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

/// The upstream side: verification is whatever the caller configured; only ALPN is set here.
pub(crate) fn connector(mut upstream: ClientConfig) -> TlsConnector {
    upstream.alpn_protocols = vec![HTTP_1_1.to_vec()];
    TlsConnector::from(Arc::new(upstream))
}

struct Leaves(Arc<SessionCa>);

impl fmt::Debug for Leaves {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Leaves")
    }
}

impl ResolvesServerCert for Leaves {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = client_hello.server_name()?.to_ascii_lowercase();
        self.0
            .leaf(&host)
            .inspect_err(|e| tracing::warn!(host, error = %e, "no certificate"))
            .ok()
    }
}
