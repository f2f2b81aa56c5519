//! Login pinning: a token's claims are trusted only after its signature is checked against the
//! issuer's published keys (JWKS, fetched over HTTPS and cached), and a credential outside the
//! pinned workspaces (or login methods) is refused with an error naming what was expected.
mod claims;
mod pin;
mod refused;
mod token;

pub use jsonwebtoken::jwk::JwkSet;
pub use pin::{LoginPin, MethodPin};
pub use refused::LoginRefused;
pub use token::{VerifiedLogin, verify};
