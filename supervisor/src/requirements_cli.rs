//! `warden requirements ...`: for platform teams writing requirements and signing bundles.
use std::{
    fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use warden_requirements::{
    BundleCache, Layer, LayerKind, PublicKey, SecretKey, Signature, merge, sign, verify,
};

use crate::settings::{self, Sources};

/// Parses and validates each file; returns whether all are valid. A file with a `[bundle]`
/// table is checked as a cloud bundle, any other as a local or managed layer.
pub fn check(files: &[PathBuf]) -> anyhow::Result<bool> {
    let mut ok = true;
    for f in files {
        let text = fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let kind = match toml::from_str::<toml::Table>(&text) {
            Ok(t) if t.contains_key("bundle") => LayerKind::CloudBundle,
            _ => LayerKind::Local,
        };
        match Layer::parse(kind, f.display().to_string(), &text) {
            Ok(_) => println!("{}: ok", f.display()),
            Err(e) => {
                println!("{e}");
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// Every requirement key, its value and where it came from.
pub fn show_effective(sources: &Sources, json: bool) -> anyhow::Result<()> {
    let entries = merge(&settings::layers(sources, &mut Vec::new())?).entries();
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        for e in entries {
            println!("{e}");
        }
    }
    Ok(())
}

/// Writes PREFIX.key (the secret key, readable by its owner only) and PREFIX.pub.
pub fn keygen(prefix: &Path) -> anyhow::Result<()> {
    let key = SecretKey::generate()?;
    let secret = prefix.with_extension("key");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .and_then(|mut f| writeln!(f, "{}", key.to_base64()))
        .with_context(|| format!("writing {}", secret.display()))?;
    let public = prefix.with_extension("pub");
    fs::write(&public, format!("{}\n", key.public_key()))
        .with_context(|| format!("writing {}", public.display()))?;
    println!(
        "secret key: {}\npublic key: {} (pin it as cloud.public_key)",
        secret.display(),
        public.display()
    );
    Ok(())
}

fn read_value<T: std::str::FromStr>(path: &Path, what: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: not {what}: {e}", path.display()))
}

fn signature_path(bundle: &Path) -> PathBuf {
    let mut p = bundle.as_os_str().to_owned();
    p.push(".sig");
    p.into()
}

/// Signs a bundle: writes BUNDLE.sig.
pub fn sign_bundle(key: &Path, bundle: &Path) -> anyhow::Result<()> {
    let key: SecretKey = read_value(key, "a secret key")?;
    let bytes = fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
    let sig = signature_path(bundle);
    fs::write(&sig, format!("{}\n", sign(&bytes, &key)))
        .with_context(|| format!("writing {}", sig.display()))?;
    println!("{}", sig.display());
    Ok(())
}

/// Verifies a bundle (signature, version against the cache's last accepted one, expiry) and,
/// with `store`, caches it for sessions to use.
pub fn verify_bundle(public: &Path, bundle: &Path, cache_dir: Option<&Path>) -> anyhow::Result<()> {
    let key: PublicKey = read_value(public, "a public key")?;
    let signature: Signature = read_value(&signature_path(bundle), "a signature")?;
    let bytes = fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
    let cache = cache_dir.map(BundleCache::new);
    let last = match &cache {
        Some(c) => c.last_accepted_version(&key)?,
        None => None,
    };
    let name = bundle.display().to_string();
    let verified = verify(
        &name,
        &bytes,
        &signature,
        &key,
        time::OffsetDateTime::now_utc(),
        last,
    )?;
    println!(
        "{name}: valid, version {}, expires {}",
        verified.version(),
        verified.expires_at()
    );
    if let Some(c) = cache {
        c.store(&verified)?;
        println!("stored in {}", c.path().display());
    }
    Ok(())
}
