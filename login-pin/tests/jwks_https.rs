//! The JWKS cache against a real HTTPS server on loopback, with a certificate from a test CA
//! that the cache is told to trust (and nothing else).
mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TestKey, jwks};
use jsonwebtoken::jwk::JwkSet;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use warden_login_pin::{JwksCache, JwksError, KeysOrigin, LoginError, LoginPin, LoginRefused};

/// A test CA: its PEM file, and the issuer that signs server certificates.
struct TestCa {
    pem: PathBuf,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let pem = dir.join(format!("{name}.pem"));
        std::fs::write(&pem, issuer.pem()).unwrap();
        Self { pem, issuer }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }
}

/// An issuer publishing a JWKS over HTTPS on 127.0.0.1, counting the requests it answers.
struct JwksServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    keys: Arc<Mutex<JwkSet>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JwksServer {
    fn start(tls: Arc<rustls::ServerConfig>, keys: JwkSet) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let keys = Arc::new(Mutex::new(keys));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, served, stopped) = (requests.clone(), keys.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let body = serde_json::to_string(&*served.lock().unwrap()).unwrap();
                if let Ok(tcp) = tcp
                    && answer(tcp, tls.clone(), &body)
                {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self {
            port,
            requests,
            keys,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/.well-known/jwks.json", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn publish(&self, keys: JwkSet) {
        *self.keys.lock().unwrap() = keys;
    }

    /// Stops answering: the port is closed afterwards.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Answers one request on `tcp` with the JWKS; false if no request arrived (a failed handshake).
fn answer(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, body: &str) -> bool {
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn = rustls::ServerConnection::new(tls).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: public, max-age=3600\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    stream.conn.send_close_notify();
    let _ = stream.flush();
    true
}

fn pin(jwks_url: String) -> LoginPin {
    LoginPin {
        issuer: "https://auth.example".into(),
        audience: vec!["warden-cli".into()],
        jwks_url,
        workspace_claim: "/org_id".into(),
        allowed_workspaces: vec!["org-1".into()],
        method: None,
    }
}

fn claims() -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "iss": "https://auth.example",
        "aud": "warden-cli",
        "sub": "user-1",
        "exp": now + 600,
        "org_id": "org-1",
    })
}

/// The one cache file in `dir`, as JSON.
fn cache_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Pretends the cached copy was fetched `ago` earlier.
fn age_cache(dir: &Path, ago: Duration) {
    let path = cache_file(dir);
    let mut entry: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let fetched_at = SystemTime::now() - ago;
    entry["fetched_at"] = json!(fetched_at.duration_since(UNIX_EPOCH).unwrap().as_secs());
    std::fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
}

#[test]
fn keys_are_fetched_cached_and_refetched_once_when_the_issuer_rotates_them() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "test-ca");
    let old = TestKey::es256("2026-a");
    let server = JwksServer::start(ca.server_config(), jwks(&[&old]));
    let pin = pin(server.url());
    let cache_dir = dir.path().join("cache");
    let cache = JwksCache::new(cache_dir.clone(), Some(&ca.pem)).unwrap();

    let first = cache.check_login(&old.sign(&claims()), &pin).unwrap();
    assert_eq!(first.login.workspace, "org-1");
    assert_eq!(first.keys, KeysOrigin::Fetched);
    assert_eq!(server.requests(), 1);
    let file = cache_file(&cache_dir);
    let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());

    let second = cache.check_login(&old.sign(&claims()), &pin).unwrap();
    assert_eq!(second.keys, KeysOrigin::Cached);
    // Another process (a new cache on the same directory) uses the copy on disk too.
    let again = JwksCache::new(cache_dir.clone(), Some(&ca.pem)).unwrap();
    assert_eq!(again.keys_for(&pin).unwrap().origin, KeysOrigin::Cached);
    assert_eq!(server.requests(), 1);

    // The issuer rotates: a token naming the new key refetches once, and passes.
    let new = TestKey::es384("2026-b");
    server.publish(jwks(&[&new]));
    let rotated = cache.check_login(&new.sign(&claims()), &pin).unwrap();
    assert_eq!(rotated.keys, KeysOrigin::Fetched);
    assert_eq!(server.requests(), 2);
    // The old key is gone; another unknown key within the minute does not refetch.
    let gone = cache.check_login(&old.sign(&claims()), &pin);
    assert!(
        matches!(&gone, Err(LoginError::Refused(LoginRefused::UnknownKey { kid })) if kid == "2026-a"),
        "{gone:?}"
    );
    assert_eq!(server.requests(), 2);
}

#[test]
fn a_down_issuer_is_survived_only_with_a_cached_copy_under_a_day_old() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "test-ca");
    let key = TestKey::es256("k1");
    let mut server = JwksServer::start(ca.server_config(), jwks(&[&key]));
    let pin = pin(server.url());
    let cache_dir = dir.path().join("cache");
    let cache = JwksCache::new(cache_dir.clone(), Some(&ca.pem)).unwrap();
    cache.check_login(&key.sign(&claims()), &pin).unwrap();
    server.stop();

    let fresh = cache.check_login(&key.sign(&claims()), &pin).unwrap();
    assert_eq!(fresh.keys, KeysOrigin::Cached);

    // Past its max-age, the copy is used only because the fetch fails, and that is said.
    age_cache(&cache_dir, Duration::from_secs(2 * 3600));
    let stale = cache.check_login(&key.sign(&claims()), &pin).unwrap();
    match stale.keys {
        KeysOrigin::Stale { age, reason } => {
            assert!(age >= Duration::from_secs(2 * 3600), "{age:?}");
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }

    age_cache(&cache_dir, Duration::from_secs(25 * 3600));
    let too_old = cache.keys_for(&pin).unwrap_err().to_string();
    assert!(too_old.contains(&server.url()), "{too_old}");
    assert!(
        too_old.contains("the cached copy is 25 h old, more than 24 h"),
        "{too_old}"
    );

    let empty = JwksCache::new(dir.path().join("empty"), Some(&ca.pem)).unwrap();
    let none = empty.keys_for(&pin).unwrap_err();
    assert!(matches!(none, JwksError::Unavailable { .. }), "{none:?}");
    let message = none.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot fetch the issuer's keys from {}",
            server.url()
        )) && message.ends_with("and there is no cached copy"),
        "{message}"
    );
}

#[test]
fn keys_come_only_over_https_from_a_server_the_given_ca_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "test-ca");
    let other_ca = TestCa::new(dir.path(), "other-ca");
    let key = TestKey::es256("k1");
    let server = JwksServer::start(ca.server_config(), jwks(&[&key]));

    let cache = JwksCache::new(dir.path().join("cache"), Some(&ca.pem)).unwrap();
    let plain = pin(server.url().replacen("https://", "http://", 1));
    let refused = cache.keys_for(&plain).unwrap_err();
    assert!(matches!(refused, JwksError::NotHttps { .. }), "{refused:?}");
    assert!(refused.to_string().contains("is not an https:// URL"));

    let distrustful = JwksCache::new(dir.path().join("other"), Some(&other_ca.pem)).unwrap();
    let untrusted = distrustful.keys_for(&pin(server.url())).unwrap_err();
    assert!(
        matches!(untrusted, JwksError::Unavailable { .. }),
        "{untrusted:?}"
    );
    assert_eq!(server.requests(), 0);
}
