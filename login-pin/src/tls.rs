//! TLS for Warden's HTTPS clients (the JWKS fetch here; the cloud bundle fetch and the
//! OTLP/HTTP exporter in the supervisor): ureq with rustls, trusting only a private CA when
//! one is configured.
use std::path::Path;

/// A TLS configuration that trusts only the CA certificates (PEM) in `ca`.
pub fn trust_only(ca: &Path) -> Result<ureq::tls::TlsConfig, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", ca.display()));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}
