//! Test signing keys and tokens, shared by the test programs.
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// An issuer's signing key (EC, made by rcgen) and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub jwk: Jwk,
    encoding: EncodingKey,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        Self::new(kid, &rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256)
    }

    pub fn es384(kid: &str) -> Self {
        Self::new(kid, &rcgen::PKCS_ECDSA_P384_SHA384, Algorithm::ES384)
    }

    fn new(kid: &str, curve: &'static rcgen::SignatureAlgorithm, alg: Algorithm) -> Self {
        let pair = rcgen::KeyPair::generate_for(curve).unwrap();
        let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        Self {
            kid: kid.to_string(),
            alg,
            jwk,
            encoding,
        }
    }

    /// A token with these claims, signed by this key and naming it.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// A token signed by this key but naming key `kid`.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

pub fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    }
}
