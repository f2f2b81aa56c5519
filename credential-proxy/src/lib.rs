//! The credential injection proxy. The agent holds a placeholder; Warden's DNS proxy points the
//! credential's hosts at this proxy, which terminates TLS with a per-session CA the agent
//! trusts, puts the real value in place of the placeholder in the route's header, forwards the
//! request over verified TLS and gives the agent the response with every occurrence of the value
//! turned back into the placeholder. Each injection is reported (host and credential name, never
//! the value).
mod ca;
mod proxy;
mod redact;
mod report;
mod request;
mod route;
mod secret;
mod tls;
mod upstream;

pub use ca::{CaError, SessionCa};
pub use proxy::{ConfigError, Limits, Proxy, ProxyConfig};
pub use report::{Outcome, Report};
pub use route::{Route, RouteError};
pub use secret::Secret;
pub use upstream::Resolve;
