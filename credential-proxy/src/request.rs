//! What the proxy changes in the agent's requests and in the responses: the placeholder in the
//! route's header, and the hop-by-hop headers that belong to one connection, not to the message.
use http::{
    HeaderMap, HeaderName, HeaderValue, Request, Uri, Version,
    header::{self, Entry},
    request::Parts,
};
use memchr::memmem;
use zeroize::Zeroize;

use crate::{redact::replace, route::Route};

/// Headers about the connection they travel on (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The name the request asks for, when it is not `host`: the `Host` header and an absolute-form
/// authority must both name it (port 443 or none). A request naming no host is refused too.
pub(crate) fn misdirected<B>(req: &Request<B>, host: &str) -> Option<String> {
    let headers = req.headers().get_all(header::HOST).iter();
    let names: Vec<&str> = headers
        .map(|v| v.to_str().unwrap_or(""))
        .chain(req.uri().authority().map(|a| a.as_str()))
        .collect();
    if names.is_empty() {
        return Some(String::new());
    }
    names
        .into_iter()
        .find(|name| !same_host(name, host))
        .map(str::to_string)
}

fn same_host(authority: &str, host: &str) -> bool {
    let name = authority.strip_suffix(":443").unwrap_or(authority);
    name.eq_ignore_ascii_case(host)
}

/// Replaces the placeholder by the value in the route's header, and nowhere else. Returns
/// whether the placeholder was there.
pub(crate) fn inject(headers: &mut HeaderMap, route: &Route) -> bool {
    let Entry::Occupied(mut entry) = headers.entry(&route.header) else {
        return false;
    };
    let placeholder = route.placeholder.as_bytes();
    let mut injected = false;
    for value in entry.iter_mut() {
        if memmem::find(value.as_bytes(), placeholder).is_none() {
            continue;
        }
        let mut replaced = replace(value.as_bytes(), placeholder, route.value.as_bytes());
        // Valid: the value and the rest of the header are valid header bytes (route validation).
        if let Ok(mut with_value) = HeaderValue::from_bytes(&replaced) {
            with_value.set_sensitive(true);
            *value = with_value;
            injected = true;
        }
        replaced.zeroize();
    }
    injected
}

/// The request as the real host gets it: origin-form target, its host in `Host`, no hop-by-hop
/// headers, and no compression, so that an echoed value is still recognisable for redaction.
pub(crate) fn for_upstream(parts: &mut Parts, host: &str) -> Result<(), http::Error> {
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    parts.uri = Uri::try_from(target)?;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(header::HOST, HeaderValue::from_str(host)?);
    parts.headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    Ok(())
}

/// Removes the hop-by-hop headers and those the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn route() -> Route {
        Route {
            host: "api.provider.test".into(),
            credential: "provider".into(),
            header: header::AUTHORIZATION,
            placeholder: "warden-ph".into(),
            value: Secret::from("sk-real".to_string()),
        }
    }

    fn request(host: Option<&str>, uri: &str) -> Request<()> {
        let mut builder = Request::get(uri);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn authority() {
        let host = "api.provider.test";
        assert_eq!(misdirected(&request(Some(host), "/v1"), host), None);
        assert_eq!(
            misdirected(&request(Some("API.provider.test:443"), "/"), host),
            None
        );
        assert_eq!(
            misdirected(&request(Some("other.test"), "/"), host).as_deref(),
            Some("other.test")
        );
        assert_eq!(
            misdirected(&request(Some("api.provider.test:8443"), "/"), host).as_deref(),
            Some("api.provider.test:8443")
        );
        assert_eq!(
            misdirected(&request(Some(host), "https://other.test/x"), host).as_deref(),
            Some("other.test")
        );
        assert_eq!(misdirected(&request(None, "/"), host).as_deref(), Some(""));
    }

    #[test]
    fn injects_in_the_route_header_only() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer warden-ph".parse().unwrap());
        headers.insert("x-other", "warden-ph".parse().unwrap());
        assert!(inject(&mut headers, &route()));
        assert_eq!(headers[header::AUTHORIZATION], "Bearer sk-real");
        assert!(headers[header::AUTHORIZATION].is_sensitive());
        assert_eq!(headers["x-other"], "warden-ph");
    }

    #[test]
    fn absent_placeholder() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer mine".parse().unwrap());
        assert!(!inject(&mut headers, &route()));
        assert!(!inject(&mut HeaderMap::new(), &route()));
    }

    #[test]
    fn hop_by_hop() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, x-private".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        headers.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }
}
