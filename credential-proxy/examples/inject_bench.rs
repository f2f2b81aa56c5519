//! Latency the proxy adds: N HTTPS requests on loopback through the proxy and the same number
//! straight to the upstream stub, interleaved so that both see the same machine load, each on
//! one keep-alive connection. Then the cost of a new connection (TLS to the proxy, and the
//! proxy's own TLS to the upstream on the first request).
//!
//! cargo run --release -p warden-credential-proxy --example inject_bench [-- N]
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Client, HOST, Harness, Options, get, trusting};
use tokio::sync::mpsc;

const WARM_UP: usize = 100;
const NEW_CONNECTIONS: usize = 200;

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let mut h = Harness::start(Options::default()).await;
    let mut reports = std::mem::replace(&mut h.reports, mpsc::channel(1).1);
    tokio::spawn(async move { while reports.recv().await.is_some() {} });

    let bearer = h.bearer();
    let direct_tls = trusting(h.upstream_root.clone());
    let mut direct = Client::connect(h.stub.addr, HOST, direct_tls.clone())
        .await
        .unwrap();
    let mut proxied = h.connect(HOST).await.unwrap();
    let (mut via_direct, mut via_proxy) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..WARM_UP + n {
        let direct_time = timed(&mut direct, &bearer).await;
        let proxy_time = timed(&mut proxied, &bearer).await;
        if i >= WARM_UP {
            via_direct.push(direct_time);
            via_proxy.push(proxy_time);
        }
    }
    println!("{n} requests on one keep-alive connection each (loopback, TLS both legs):");
    compare(&mut via_direct, &mut via_proxy);

    let (mut new_direct, mut new_proxy) = (Vec::new(), Vec::new());
    for _ in 0..NEW_CONNECTIONS {
        let start = Instant::now();
        let mut client = Client::connect(h.stub.addr, HOST, direct_tls.clone())
            .await
            .unwrap();
        timed(&mut client, &bearer).await;
        new_direct.push(start.elapsed());
        let start = Instant::now();
        let mut client = h.connect(HOST).await.unwrap();
        timed(&mut client, &bearer).await;
        new_proxy.push(start.elapsed());
    }
    println!("\n{NEW_CONNECTIONS} new connections, handshake and first request:");
    compare(&mut new_direct, &mut new_proxy);
}

async fn timed(client: &mut Client, bearer: &str) -> Duration {
    let start = Instant::now();
    let response = client.send(get("/v1/models", bearer)).await;
    let elapsed = start.elapsed();
    assert!(response.status().is_success());
    elapsed
}

fn compare(direct: &mut [Duration], proxy: &mut [Duration]) {
    let (d50, d90) = (percentile(direct, 50), percentile(direct, 90));
    let (p50, p90) = (percentile(proxy, 50), percentile(proxy, 90));
    println!(
        "  direct      p50 {:>8.1} us  p90 {:>8.1} us",
        us(d50),
        us(d90)
    );
    println!(
        "  via proxy   p50 {:>8.1} us  p90 {:>8.1} us",
        us(p50),
        us(p90)
    );
    println!(
        "  added       p50 {:>8.1} us  p90 {:>8.1} us",
        us(p50) - us(d50),
        us(p90) - us(d90)
    );
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort_unstable();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
