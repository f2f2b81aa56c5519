//! Login pinning: a token's claims are trusted only after its signature is checked against the
//! issuer's published keys (JWKS, fetched over HTTPS and cached), and a credential outside the
//! pinned workspaces (or login methods) is refused with an error naming what was expected.
mod cache;
mod claims;
mod fetch;
mod pin;
mod refused;
mod store;
mod tls;
mod token;

pub use cache::{CheckedLogin, JwksCache, JwksError, Keys, KeysOrigin, LoginError};
pub use jsonwebtoken::jwk::JwkSet;
pub use pin::{LoginPin, MethodPin};
pub use refused::LoginRefused;
pub use tls::trust_only;
pub use token::{VerifiedLogin, verify};
