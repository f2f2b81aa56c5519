//! The proxy end to end on loopback: a real TLS client, the proxy, a real HTTPS upstream stub.
mod common;

use bytes::Bytes;
use common::{CREDENTIAL, HOST, Harness, Options, VALUE, big_body, get};
use http::{Request, StatusCode, header};
use http_body_util::Full;
use warden_credential_proxy::{Limits, Outcome, Report};

fn injected() -> Report {
    Report {
        host: HOST.into(),
        credential: Some(CREDENTIAL.into()),
        outcome: Outcome::Injected,
    }
}

fn redacted(count: u64) -> Report {
    Report {
        host: HOST.into(),
        credential: Some(CREDENTIAL.into()),
        outcome: Outcome::ResponseRedacted { count },
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injects_the_value_and_reports_it_without_the_value() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    let response = client.send(get("/v1/models", &h.bearer())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "hello");
    let seen = h.stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers[header::AUTHORIZATION],
        format!("Bearer {VALUE}").as_str()
    );
    assert_eq!(seen[0].uri, "/v1/models");
    assert_eq!(seen[0].headers[header::HOST], HOST);
    let report = h.next_report().await;
    assert_eq!(report, injected());
    assert!(!report.to_string().contains(VALUE));
    assert!(!format!("{report:?}").contains(VALUE));
    h.no_more_reports().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_server_name_gets_no_handshake() {
    let mut h = Harness::start(Options::default()).await;
    assert!(h.connect("other.test").await.is_err());
    let report = h.next_report().await;
    assert_eq!(
        report.outcome,
        Outcome::UnlistedHost {
            sni: "other.test".into()
        }
    );
    assert!(h.stub.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_other_than_the_server_name_is_misdirected() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    let req = Request::get("/v1/models")
        .header(header::HOST, "other.test")
        .header(header::AUTHORIZATION, h.bearer())
        .body(Full::default())
        .unwrap();
    let response = client.send(req).await;
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(
        h.next_report().await.outcome,
        Outcome::MisdirectedHost {
            host: "other.test".into()
        }
    );
    assert!(h.stub.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_elsewhere_is_left_alone() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    let ph = h.placeholder.clone();
    let req = Request::post(format!("/v1/files?key={ph}"))
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, h.bearer())
        .header("x-api-key", &ph)
        .body(Full::new(Bytes::from(format!("{{\"key\":\"{ph}\"}}"))))
        .unwrap();
    assert_eq!(client.send(req).await.status(), StatusCode::OK);
    let seen = &h.stub.seen()[0];
    assert_eq!(seen.uri.query(), Some(format!("key={ph}").as_str()));
    assert_eq!(seen.headers["x-api-key"], ph.as_str());
    assert_eq!(seen.body, format!("{{\"key\":\"{ph}\"}}"));
    assert_eq!(
        seen.headers[header::AUTHORIZATION],
        format!("Bearer {VALUE}").as_str()
    );
    assert_eq!(h.next_report().await, injected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoed_value_reaches_the_agent_as_the_placeholder() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    let response = client.send(get("/echo", &h.bearer())).await;
    let bearer = h.bearer();
    assert_eq!(response.headers()["x-echo-authorization"], bearer.as_str());
    assert!(contains(
        response.body(),
        &format!("authorization: {bearer}")
    ));
    assert!(!contains(response.body(), VALUE));
    assert_eq!(h.next_report().await, injected());
    assert_eq!(h.next_report().await, redacted(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_split_across_chunks_is_redacted() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    let bearer = h.bearer();
    // Splits inside "Bearer ", at the value's first byte, inside it, before its last byte.
    let value_start = "Bearer ".len();
    for at in [
        3,
        value_start,
        value_start + 1,
        value_start + 10,
        bearer.len() - 1,
    ] {
        let response = client.send(get(&format!("/split?at={at}"), &bearer)).await;
        assert_eq!(
            response.body(),
            format!("start {bearer} end").as_str(),
            "split at {at}"
        );
        assert_eq!(h.next_report().await, injected());
        assert_eq!(h.next_report().await, redacted(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streamed_body_is_redacted() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    let bearer = h.bearer();
    let response = client.send(get("/big?mb=4", &bearer)).await;
    let expected: Vec<u8> = big_body(bearer.as_bytes(), 4).concat();
    assert_eq!(response.body().len(), expected.len());
    assert!(response.body() == &expected[..], "the body differs");
    assert_eq!(h.next_report().await, injected());
    let occurrences = expected.len() / (1000 + bearer.len());
    assert!(matches!(
        h.next_report().await.outcome,
        Outcome::ResponseRedacted { count } if count as usize >= occurrences
    ));
}

/// A placeholder of another length than the value: the redacted bodies change length, so they
/// go out chunked instead of with the upstream's Content-Length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_of_another_length() {
    let h = Harness::start(Options {
        placeholder: "warden-short".into(),
        ..Options::default()
    })
    .await;
    let mut client = h.connect(HOST).await.unwrap();
    let bearer = h.bearer();
    let response = client.send(get("/echo", &bearer)).await;
    assert_eq!(response.headers().get(header::CONTENT_LENGTH), None);
    assert!(contains(
        response.body(),
        &format!("authorization: {bearer}")
    ));
    assert!(!contains(response.body(), VALUE));
    let response = client.send(get("/big?mb=1", &bearer)).await;
    let sent = big_body(format!("Bearer {VALUE}").as_bytes(), 1).concat();
    let expected = String::from_utf8(sent)
        .unwrap()
        .replace(VALUE, &h.placeholder);
    assert!(response.body() == expected.as_bytes(), "the body differs");
    let response = client.send(get("/plain", &bearer)).await;
    assert_eq!(response.body(), "hello");
    assert_eq!(h.stub.seen().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_certificate_from_another_ca_fails_before_the_value_is_sent() {
    let mut h = Harness::start(Options {
        untrusted_upstream: true,
        ..Options::default()
    })
    .await;
    let mut client = h.connect(HOST).await.unwrap();
    let response = client.send(get("/v1/models", &h.bearer())).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(!contains(response.body(), VALUE));
    let report = h.next_report().await;
    let Outcome::UpstreamFailed { reason } = &report.outcome else {
        panic!("not an upstream failure: {report}");
    };
    assert!(reason.contains("certificate"), "{reason}");
    assert!(h.stub.seen().is_empty());
    h.no_more_reports().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_are_each_injected() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    for _ in 0..2 {
        let response = client.send(get("/v1/models", &h.bearer())).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(h.next_report().await, injected());
    }
    let seen = h.stub.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!(
            request.headers[header::AUTHORIZATION],
            format!("Bearer {VALUE}").as_str()
        );
    }
    assert_eq!(seen[0].peer, seen[1].peer, "one upstream connection reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_without_the_placeholder_is_forwarded_unchanged() {
    let mut h = Harness::start(Options::default()).await;
    let mut client = h.connect(HOST).await.unwrap();
    let response = client.send(get("/v1/models", "Bearer agent-own-key")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        h.stub.seen()[0].headers[header::AUTHORIZATION],
        "Bearer agent-own-key"
    );
    assert_eq!(h.next_report().await.outcome, Outcome::PlaceholderAbsent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_refused_and_counted() {
    let h = Harness::start(Options {
        limits: Limits {
            max_connections: 1,
            ..Limits::default()
        },
        ..Options::default()
    })
    .await;
    let mut first = h.connect(HOST).await.unwrap();
    assert!(h.connect(HOST).await.is_err());
    assert_eq!(h.proxy.refused_connections(), 1);
    let response = first.send(get("/v1/models", &h.bearer())).await;
    assert_eq!(response.status(), StatusCode::OK);
}
