//! TLS for Warden's HTTPS clients (the cloud bundle fetch, the OTLP/HTTP exporter): ureq with
//! rustls, trusting the public web PKI unless a private CA is configured. One implementation,
//! shared with the login pin's JWKS fetch.
pub use warden_login_pin::trust_only;
