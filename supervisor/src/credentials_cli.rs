//! `warden credentials add|list|show|remove|test`: the user's credential store.
use std::{
    io::{IsTerminal as _, Read as _, Write as _},
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context as _, bail};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use warden_credentials::{
    Credential, CredentialName, Delivery, Listed, Metadata, Secret, Store, StoreChoice,
};
use warden_requirements::{Effective, merge};

use crate::{credentials, events::escape::for_terminal, settings};

/// The longest value `add` accepts: far above any real token, far below a mistake.
const MAX_VALUE: u64 = 64 * 1024;

/// What `add` is told; the value is read from standard input.
pub struct NewCredential {
    pub name: String,
    pub metadata: Metadata,
    pub replace: bool,
}

/// `warden credentials add`.
pub fn add(
    new: NewCredential,
    choice: StoreChoice,
    sources: &settings::Sources,
    state_dir: &Path,
) -> anyhow::Result<i32> {
    let name: CredentialName = new
        .name
        .parse()
        .map_err(|e: warden_wire::InvalidValue| anyhow::anyhow!("{}", e.0))?;
    new.metadata
        .check()
        .map_err(|e| anyhow::anyhow!("{}", e.0))?;
    let eff = requirements(sources)?;
    credentials::check_delivery(allowed_deliveries(&eff).as_ref(), new.metadata.delivery)?;
    let store = Store::open(choice)?;
    let secret = read_value(&name)?;
    let credential = Credential {
        name,
        metadata: new.metadata,
        secret,
    };
    // Outside the login pin: refused before anything is stored.
    login_policy(&eff, state_dir)
        .check(&credential)
        .with_context(|| format!("credential {} refused", credential.name))?;
    store.add(&credential, new.replace)?;
    let m = &credential.metadata;
    println!(
        "stored {} in the {} keyring: {}",
        credential.name,
        store.backend(),
        delivery_summary(m)
    );
    Ok(0)
}

/// `warden credentials list`.
pub fn list(choice: StoreChoice, json: bool) -> anyhow::Result<i32> {
    let store = Store::open(choice)?;
    let listed = store.list()?;
    if json {
        let out: Vec<serde_json::Value> = listed.iter().map(listed_json).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if listed.is_empty() {
        println!(
            "no credentials in the {} keyring (`warden credentials add --help`)",
            store.backend()
        );
    } else {
        println!("{} keyring:", store.backend());
        for l in &listed {
            match &l.metadata {
                Ok(m) => println!("  {}  {}", l.name, metadata_line(m)),
                Err(e) => println!("  {}  unreadable: {e}", l.name),
            }
        }
    }
    Ok(if listed.iter().any(|l| l.metadata.is_err()) {
        1
    } else {
        0
    })
}

/// `warden credentials show`.
pub fn show(choice: StoreChoice, name: &str, reveal: bool, json: bool) -> anyhow::Result<i32> {
    let name = parse_name(name)?;
    let credential = Store::open(choice)?.get(&name)?;
    let m = &credential.metadata;
    if json {
        let mut v = serde_json::json!({ "name": name.as_str(), "metadata": m });
        if reveal {
            v["value"] = credential.secret.expose().into();
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("{name}");
    println!("  provider      {}", for_terminal(&m.provider));
    println!("  delivery      {}", delivery_summary(m));
    println!("  login method  {}", for_terminal(&m.login_method));
    if let Some(w) = &m.workspace {
        println!("  workspace     {}", for_terminal(w));
    }
    println!("  added         {}", rfc3339(m.added_at));
    if let Some(at) = m.expires_at {
        println!("  expires       {}", rfc3339(at));
    }
    if reveal {
        println!("  value         {}", credential.secret.expose());
    } else {
        println!("  value         (hidden; --reveal prints it)");
    }
    Ok(0)
}

/// `warden credentials remove`.
pub fn remove(choice: StoreChoice, name: &str) -> anyhow::Result<i32> {
    let name = parse_name(name)?;
    let store = Store::open(choice)?;
    store.remove(&name)?;
    println!("removed {name} from the {} keyring", store.backend());
    Ok(0)
}

/// `warden credentials test`: the store answers, and each credential is readable, unexpired
/// and allowed by the requirements. Prints the time each step took.
pub fn test(
    choice: StoreChoice,
    name: Option<&str>,
    sources: &settings::Sources,
    state_dir: &Path,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let eff = requirements(sources)?;
    let store = Store::open(choice)?;
    println!(
        "ok    the {} keyring answers ({})",
        store.backend(),
        millis(started)
    );
    let names = match name {
        Some(n) => vec![parse_name(n)?],
        None => store.names()?,
    };
    let now = OffsetDateTime::now_utc();
    let (allowed, login) = (allowed_deliveries(&eff), login_policy(&eff, state_dir));
    let mut failed = false;
    for name in names {
        let t = Instant::now();
        let verdict = store
            .get(&name)
            .map_err(anyhow::Error::from)
            .and_then(|c| credentials::usable(&c, allowed.as_ref(), &login, now));
        match verdict {
            Ok(()) => println!("ok    {name} ({})", millis(t)),
            Err(e) => {
                failed = true;
                println!("FAIL  {name}: {e:#}");
            }
        }
    }
    println!("total {}", millis(started));
    Ok(i32::from(failed))
}

/// The requirements' `credentials.allowed_deliveries`, with where it was set.
pub fn allowed_deliveries(eff: &Effective) -> Option<(Vec<Delivery>, String)> {
    eff.credential_deliveries
        .as_ref()
        .map(|s| (s.value.clone(), s.origin.to_string()))
}

/// The login pin, with the issuer's keys cached where this user may write.
fn login_policy(eff: &Effective, state_dir: &Path) -> credentials::login::LoginPolicy {
    let cache = if nix::unistd::Uid::effective().is_root() {
        state_dir.join(credentials::JWKS_CACHE)
    } else {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/warden")
            .join(credentials::JWKS_CACHE)
    };
    credentials::login::LoginPolicy::from_requirements(eff, cache)
}

/// The merged requirements (the user's configuration does not constrain credentials).
pub fn requirements(sources: &settings::Sources) -> anyhow::Result<Effective> {
    let mut warnings = Vec::new();
    Ok(merge(&settings::layers(sources, &mut warnings)?))
}

fn parse_name(s: &str) -> anyhow::Result<CredentialName> {
    s.parse()
        .map_err(|e: warden_wire::InvalidValue| anyhow::anyhow!("{}", e.0))
}

/// Reads the value from standard input: without echo from a terminal, else all of it (one
/// trailing newline dropped, as `echo` adds one).
fn read_value(name: &CredentialName) -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    let mut value = zeroize::Zeroizing::new(String::new());
    if stdin.is_terminal() {
        eprint!("value of {name} (not echoed): ");
        std::io::stderr().flush()?;
        let _echo_off = EchoOff::new(&stdin)?;
        stdin.read_line(&mut value).context("reading the value")?;
        eprintln!();
    } else {
        stdin
            .lock()
            .take(MAX_VALUE + 1)
            .read_to_string(&mut value)
            .context("reading the value from standard input (it must be UTF-8)")?;
        if value.len() as u64 > MAX_VALUE {
            bail!("the value on standard input is longer than {MAX_VALUE} bytes");
        }
    }
    let trimmed = value.strip_suffix('\n').unwrap_or(&value);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        bail!(
            "no value on standard input: pipe it in, e.g. `printf %s \"$KEY\" | warden credentials add ...`"
        );
    }
    Ok(Secret::new(trimmed.to_owned()))
}

/// The terminal's echo, off until dropped.
struct EchoOff {
    saved: nix::sys::termios::Termios,
    fd: std::os::fd::RawFd,
}

impl EchoOff {
    fn new(stdin: &std::io::Stdin) -> anyhow::Result<Self> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin).context("reading the terminal's settings")?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(stdin, SetArg::TCSANOW, &quiet).context("turning echo off")?;
        Ok(Self {
            saved,
            fd: std::os::fd::AsRawFd::as_raw_fd(stdin),
        })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: fd 0 stays open for the whole process.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
        let _ = nix::sys::termios::tcsetattr(fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

fn delivery_summary(m: &Metadata) -> String {
    let hosts = m.hosts.join(", ");
    match m.delivery {
        Delivery::Inject => format!(
            "inject into the {} header for {hosts}{}",
            m.inject_header(),
            m.env
                .as_ref()
                .map(|v| format!("; the agent's {v} holds a placeholder"))
                .unwrap_or_default()
        ),
        Delivery::Helper => format!("helper (git credential) for {hosts}"),
        Delivery::Env => format!("env {}", m.env.as_deref().unwrap_or("?")),
    }
}

fn metadata_line(m: &Metadata) -> String {
    let mut line = format!(
        "{}  {}  login {}",
        for_terminal(&m.provider),
        delivery_summary(m),
        for_terminal(&m.login_method)
    );
    if let Some(w) = &m.workspace {
        line.push_str(&format!("  workspace {}", for_terminal(w)));
    }
    if let Some(at) = m.expires_at {
        line.push_str(&format!("  expires {}", rfc3339(at)));
    }
    line
}

fn listed_json(l: &Listed) -> serde_json::Value {
    match &l.metadata {
        Ok(m) => serde_json::json!({ "name": l.name.as_str(), "metadata": m }),
        Err(e) => serde_json::json!({ "name": l.name.as_str(), "error": e.to_string() }),
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn millis(since: Instant) -> String {
    format!("{:.1} ms", since.elapsed().as_secs_f64() * 1e3)
}

/// Parses `--expires`.
pub fn parse_expiry(s: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .with_context(|| format!("--expires {s:?}: not an RFC 3339 time like 2027-01-31T00:00:00Z"))
}
