//! The per-session CA the agent trusts for the routed hosts, and the leaf certificates it issues.
use std::{
    collections::HashMap,
    net::{Ipv4Addr, Ipv6Addr},
    sync::{Arc, Mutex},
};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use rustls::{
    crypto::ring::sign::any_supported_type,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    sign::CertifiedKey,
};
use time::{Duration, OffsetDateTime};

/// How long the CA and its leaves are valid: a session, not longer.
const VALIDITY: Duration = Duration::hours(24);
/// Allows for a clock in the sandbox slightly behind ours.
const BACKDATE: Duration = Duration::minutes(5);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("leaf key: {0}")]
    Key(#[from] rustls::Error),
    #[error("host {0} is outside the CA's name constraints")]
    NotPermitted(String),
}

/// A CA made for one session. Its name constraints permit only the routed host names (and no IP
/// address), so its key, were it stolen, could not vouch for any other site; its private key
/// stays in this value.
pub struct SessionCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem: String,
    hosts: Vec<String>,
    not_after: OffsetDateTime,
    /// One key for every leaf: leaves live as long as the CA and are served only by this process.
    leaf_key: KeyPair,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl SessionCa {
    /// A CA named after `session_label`, permitted to certify `hosts` (and their subdomains).
    pub fn generate<S: AsRef<str>>(
        session_label: &str,
        hosts: impl IntoIterator<Item = S>,
    ) -> Result<Self, CaError> {
        let hosts: Vec<String> = hosts
            .into_iter()
            .map(|h| h.as_ref().to_ascii_lowercase())
            .collect();
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(&format!("Warden session CA {session_label}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: hosts.iter().cloned().map(GeneralSubtree::DnsName).collect(),
            excluded_subtrees: vec![
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    Ipv4Addr::UNSPECIFIED.into(),
                    0,
                )),
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    Ipv6Addr::UNSPECIFIED.into(),
                    0,
                )),
            ],
        });
        params.not_before = now - BACKDATE;
        params.not_after = now + VALIDITY;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            pem: cert.pem(),
            cert: cert.der().clone(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
            hosts,
            leaf_key: KeyPair::generate()?,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, for the agent's trust store.
    pub fn ca_pem(&self) -> String {
        self.pem.clone()
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// Whether the name constraints permit `host`.
    pub(crate) fn permits(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts
            .iter()
            .any(|h| host == *h || host.ends_with(&format!(".{h}")))
    }

    /// The leaf for `host`, issued the first time it is asked for.
    pub(crate) fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        if !self.permits(host) {
            return Err(CaError::NotPermitted(host.to_string()));
        }
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(leaf) = leaves.get(host) {
            return Ok(leaf.clone());
        }
        let leaf = Arc::new(self.issue(host)?);
        leaves.insert(host.to_string(), leaf.clone());
        Ok(leaf)
    }

    fn issue(&self, host: &str) -> Result<CertifiedKey, CaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(host);
        params.subject_alt_names = vec![SanType::DnsName(host.try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = OffsetDateTime::now_utc() - BACKDATE;
        params.not_after = self.not_after;
        let cert = params.signed_by(&self.leaf_key, &self.issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        Ok(CertifiedKey::new(
            vec![cert.der().clone()],
            any_supported_type(&key)?,
        ))
    }
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

#[cfg(test)]
mod tests {
    use rustls::{
        RootCertStore,
        client::{WebPkiServerVerifier, danger::ServerCertVerifier},
        crypto::ring::default_provider,
        pki_types::{ServerName, UnixTime},
    };

    use super::*;

    fn verify(ca: &SessionCa, leaf: &CertifiedKey, name: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.ca_der().clone()).unwrap();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(roots.into(), default_provider().into())
                .build()
                .unwrap();
        verifier
            .verify_server_cert(
                &leaf.cert[0],
                &[],
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn leaves_verify_for_their_host_and_are_cached() {
        let ca = SessionCa::generate("s1", ["api.provider.test"]).unwrap();
        let leaf = ca.leaf("api.provider.test").unwrap();
        verify(&ca, &leaf, "api.provider.test").unwrap();
        assert!(Arc::ptr_eq(&leaf, &ca.leaf("api.provider.test").unwrap()));
        assert!(verify(&ca, &leaf, "other.test").is_err());
    }

    #[test]
    fn refuses_hosts_outside_the_constraints() {
        let ca = SessionCa::generate("s1", ["api.provider.test"]).unwrap();
        assert!(matches!(
            ca.leaf("other.test"),
            Err(CaError::NotPermitted(_))
        ));
        assert!(ca.leaf("evilapi.provider.test").is_err());
    }

    /// What a stolen CA key could do: a leaf for another host is refused by the verifier.
    #[test]
    fn name_constraints_bind_the_ca_key() {
        let ca = SessionCa::generate("s1", ["api.provider.test"]).unwrap();
        let forged = ca.issue("other.test").unwrap();
        let err = verify(&ca, &forged, "other.test").unwrap_err();
        assert!(format!("{err}").to_lowercase().contains("name"), "{err}");
    }

    #[test]
    fn pem_is_a_certificate() {
        let ca = SessionCa::generate("s1", ["api.provider.test"]).unwrap();
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
