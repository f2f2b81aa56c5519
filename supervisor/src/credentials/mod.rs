//! The credentials a session hands to its agent (`warden run --credential NAME`): read from
//! the user's keyring by a process running as that user, checked (expiry, the requirements'
//! deliveries and login pin), then delivered the narrowest way each one allows:
//! `inject` (the agent holds a placeholder, [`inject`] swaps it on the way out), `helper` (git's
//! credential helper over the agent socket, [`helper`]) or `env` (a variable at launch).
//!
//! Threat: an agent that holds a secret can send it anywhere it can reach, or keep it for
//! later. With `inject` it never holds it: the value exists only in this process, and goes
//! only to the credential's hosts over verified TLS.
pub mod helper;
pub mod inject;
pub mod login;

use std::{
    ffi::OsString,
    io::Read as _,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use warden_credentials::{Credential, CredentialName, Delivery, Metadata, Secret, StoreChoice};

use crate::{
    events::{CredentialOutcome, CredentialUse, Event},
    network::policy::{NameVerdict, NetworkPolicy},
    target_user::TargetUser,
};

/// Under the state directory: the login pins' issuer keys.
pub const JWKS_CACHE: &str = "jwks";

/// What `warden run` was asked to hand over, and what constrains it.
pub struct CredentialOptions {
    /// `--credential NAME`, in order.
    pub names: Vec<String>,
    pub store: StoreChoice,
    /// Trust only this CA (PEM) for the real servers behind `inject` (default: the system's).
    pub upstream_ca: Option<std::path::PathBuf>,
    /// The requirements' `credentials.allowed_deliveries` (None: every delivery), and where
    /// that came from.
    pub allowed_deliveries: Option<(Vec<Delivery>, String)>,
    pub login: login::LoginPolicy,
}

/// The credentials of a session, sorted by delivery, with the records of what was refused.
#[derive(Default)]
pub struct Prepared {
    /// Variables at launch: `env` values and `inject` placeholders.
    pub env: Vec<(String, Secret)>,
    pub inject: Vec<inject::Injected>,
    pub helper: Vec<Credential>,
    /// `credential.use` records to write after `session.start`.
    pub records: Vec<Event>,
}

impl Prepared {
    /// The variables the agent gets: `env` values, `inject` placeholders, the CA file that
    /// makes its TLS clients trust the credential proxy, and git's credential helper.
    pub fn launch_env(&self, ca_file: Option<&Path>, git_helper: bool) -> Vec<(String, OsString)> {
        let mut env: Vec<(String, OsString)> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().into()))
            .collect();
        if let Some(ca) = ca_file {
            env.extend(inject::ca_env(ca));
        }
        if git_helper {
            let report = std::env::current_exe()
                .map(|e| e.with_file_name("warden-agent-report"))
                .unwrap_or_else(|_| "warden-agent-report".into());
            env.extend(helper::git_env(&report));
        }
        env
    }
}

/// Reads and checks the named credentials. A credential that fails a check is not handed
/// over: it is recorded as refused and said on stderr; the session runs without it.
pub fn prepare(
    opts: &CredentialOptions,
    user: &TargetUser,
    network: &NetworkPolicy,
    managed_domains_only: bool,
) -> anyhow::Result<Prepared> {
    let mut prepared = Prepared::default();
    if opts.names.is_empty() {
        return Ok(prepared);
    }
    let credentials = read_as_user(user, opts.store, &opts.names)?;
    let now = OffsetDateTime::now_utc();
    for c in credentials {
        let allowed = |c: &Credential| hosts_allowed(c, network, managed_domains_only);
        if let Err(why) = check(&c, opts, now).and_then(|()| allowed(&c)) {
            eprintln!("warden: credential {} not handed over: {why}", c.name);
            prepared.records.push(use_record(
                &c,
                CredentialOutcome::Refused,
                Some(why.to_string()),
            ));
            continue;
        }
        match c.metadata.delivery {
            Delivery::Env => {
                let var = c.metadata.env.clone().expect("checked at add");
                prepared
                    .records
                    .push(use_record(&c, CredentialOutcome::Handed, None));
                prepared.env.push((var, c.secret));
            }
            Delivery::Inject => {
                let injected = inject::Injected::new(c)?;
                if let Some(var) = &injected.credential.metadata.env {
                    prepared
                        .env
                        .push((var.clone(), Secret::new(injected.placeholder.clone())));
                }
                prepared.inject.push(injected);
            }
            Delivery::Helper => prepared.helper.push(c),
        }
    }
    Ok(prepared)
}

fn check(c: &Credential, opts: &CredentialOptions, now: OffsetDateTime) -> anyhow::Result<()> {
    usable(c, opts.allowed_deliveries.as_ref(), &opts.login, now)
}

/// What a credential must be to be handed over, at session start and in `credentials test`:
/// unexpired, delivered a way the requirements allow, within the login pins.
pub fn usable(
    c: &Credential,
    allowed_deliveries: Option<&(Vec<Delivery>, String)>,
    login: &login::LoginPolicy,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    if c.metadata.is_expired(now) {
        bail!(
            "it expired at {}; add a fresh one with `warden credentials add {} --replace`",
            c.metadata
                .expires_at
                .map(crate::credentials_cli::rfc3339)
                .unwrap_or_default(),
            c.name
        );
    }
    check_delivery(allowed_deliveries, c.metadata.delivery)?;
    login.check(c)
}

/// A host the network policy denies by a rule gets no credential, nor, when the requirements
/// allow only their own domains, a host they do not allow (the DNS proxy answers an `inject`
/// host itself, so this is where the network requirements apply to it: a credential must not
/// open a way to a host the requirements keep closed).
fn hosts_allowed(
    c: &Credential,
    network: &NetworkPolicy,
    managed_domains_only: bool,
) -> anyhow::Result<()> {
    for host in &c.metadata.hosts {
        match network.decide(host) {
            NameVerdict::Deny(warden_common::RULE_DEFAULT_DENY) if managed_domains_only => bail!(
                "its host {host} is not among the domains the requirements allow \
                 (network.managed_allowed_domains_only)"
            ),
            NameVerdict::Deny(rule) if rule != warden_common::RULE_DEFAULT_DENY => {
                bail!("its host {host} is denied by {}", network.rule_name(rule))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A delivery the requirements do not list is refused, naming the requirement.
pub fn check_delivery(
    allowed: Option<&(Vec<Delivery>, String)>,
    delivery: Delivery,
) -> anyhow::Result<()> {
    let Some((allowed, origin)) = allowed else {
        return Ok(());
    };
    if !allowed.contains(&delivery) {
        let names: Vec<&str> = allowed.iter().map(|d| d.as_str()).collect();
        bail!(
            "delivery {delivery} is not allowed: credentials.allowed_deliveries = [{}] ({origin})",
            names.join(", ")
        );
    }
    Ok(())
}

pub fn use_record(c: &Credential, outcome: CredentialOutcome, detail: Option<String>) -> Event {
    Event::CredentialUse(CredentialUse {
        credential: Some(c.name.to_string()),
        delivery: c.metadata.delivery,
        outcome,
        host: None,
        pid: None,
        detail,
    })
}

/// One credential as the reading process hands it to the supervisor, over a pipe.
#[derive(Serialize, Deserialize)]
pub struct Exported {
    name: CredentialName,
    metadata: Metadata,
    secret: String,
}

/// `warden credentials session-export`: prints the named credentials as JSON for the
/// supervisor that started this process. Run as the session's user, in that user's keyring.
pub fn export(store: StoreChoice, names: &[String]) -> anyhow::Result<i32> {
    let store = warden_credentials::Store::open(store)?;
    let mut out = Vec::new();
    for n in names {
        let name: CredentialName = n
            .parse()
            .map_err(|e: warden_wire::InvalidValue| anyhow::anyhow!("{}", e.0))?;
        let c = store.get(&name)?;
        out.push(Exported {
            name: c.name,
            metadata: c.metadata,
            secret: c.secret.expose().to_owned(),
        });
    }
    let text = zeroize::Zeroizing::new(serde_json::to_string(&out)?);
    println!("{}", *text);
    Ok(0)
}

/// Reads credentials from the keyring of the session's user: a keyring answers its own user,
/// so a process of Warden's own runs as that user, with that user's bus, and hands them back
/// over a pipe (never a file).
fn read_as_user(
    user: &TargetUser,
    store: StoreChoice,
    names: &[String],
) -> anyhow::Result<Vec<Credential>> {
    let exe = std::env::current_exe().context("finding warden's own executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["credentials", "session-export", "--store", store_arg(store)])
        .arg("--")
        .args(names)
        .uid(user.uid)
        .gid(user.gid)
        .env_clear()
        .env("HOME", &user.home)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(bus) = session_bus(user) {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    let mut child = cmd.spawn().context("starting the credential reader")?;
    let mut text = zeroize::Zeroizing::new(String::new());
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut text)
        .context("reading the credentials")?;
    let mut err = String::new();
    let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "reading the credentials {} from {}'s keyring: {}",
            names.join(", "),
            user.name,
            err.trim().trim_start_matches("warden: ")
        );
    }
    let exported: Vec<Exported> =
        serde_json::from_str(&text).context("the credential reader's answer")?;
    Ok(exported
        .into_iter()
        .map(|e| Credential {
            name: e.name,
            metadata: e.metadata,
            secret: Secret::new(e.secret),
        })
        .collect())
}

fn store_arg(choice: StoreChoice) -> &'static str {
    match choice {
        StoreChoice::Auto => "auto",
        StoreChoice::Only(b) => b.as_str(),
    }
}

/// The user's session bus: the one Warden was started with when that is the user's own (root,
/// or a kept environment), else the user's systemd bus when it exists.
fn session_bus(user: &TargetUser) -> Option<OsString> {
    let inherited = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").filter(|v| !v.is_empty());
    if inherited.is_some() && (user.uid == nix::unistd::getuid().as_raw()) {
        return inherited;
    }
    let path = format!("/run/user/{}/bus", user.uid);
    std::path::Path::new(&path)
        .exists()
        .then(|| format!("unix:path={path}").into())
}
