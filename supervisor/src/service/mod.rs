//! The Warden service (`wardend`): sessions for users without root, started through a Unix
//! socket whose peers are known by their kernel credentials.
pub mod activation;
pub mod authorize;
pub mod client;
pub mod daemon;
pub mod delivery;
pub mod guard;
pub mod protocol;
pub mod quota;
pub mod session_link;
