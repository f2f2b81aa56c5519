//! The requirements' login pins: which login methods and workspaces a provider's credentials
//! may have (`[[login.pins]]`, and the `[login]` keys as one more pin). A workspace is trusted
//! only from a token whose signature checks against the issuer's published keys
//! (warden-login-pin); a declared one proves nothing.
use std::path::PathBuf;

use anyhow::bail;
use warden_credentials::Credential;
use warden_login_pin::{JwksCache, LoginError, LoginPin};
use warden_requirements::{Effective, Setting, values::ProviderPin};

/// Every pin the requirements set; empty when they set none.
#[derive(Clone, Debug, Default)]
pub struct LoginPolicy {
    pins: Vec<Pin>,
    /// Where the issuers' keys are kept.
    cache: PathBuf,
}

/// One provider's pin (`provider: None`: the `[login]` keys without `login.provider` pin every
/// provider), with where it was set.
#[derive(Clone, Debug)]
struct Pin {
    provider: Option<String>,
    methods: Vec<String>,
    workspaces: Vec<String>,
    verify: Option<Verify>,
    origin: String,
}

#[derive(Clone, Debug)]
struct Verify {
    pin: LoginPin,
    ca: Option<PathBuf>,
}

fn value<T: ToString>(s: &Option<Setting<T>>) -> Option<String> {
    s.as_ref().map(|s| s.value.to_string())
}

impl LoginPolicy {
    /// From the merged requirements; `jwks_cache` is where the issuers' keys are kept.
    pub fn from_requirements(eff: &Effective, jwks_cache: PathBuf) -> Self {
        let mut pins: Vec<Pin> = eff
            .login_pins
            .iter()
            .flat_map(|s| s.value.iter())
            .map(|p| Pin::from_spec(p.get_ref(), format!("login.pins, {}", origin_of(eff))))
            .collect();
        if let Some(pin) = Pin::from_keys(eff) {
            pins.push(pin);
        }
        Self {
            pins,
            cache: jwks_cache,
        }
    }

    /// Whether the credential may be used: for every pin of its provider, its login method is
    /// one the pin allows and, when the pin names workspaces, its value is a token signed by
    /// the issuer whose workspace claim is one of them.
    pub fn check(&self, c: &Credential) -> anyhow::Result<()> {
        let provider = &c.metadata.provider;
        for pin in self
            .pins
            .iter()
            .filter(|p| p.provider.as_ref().is_none_or(|p| p == provider))
        {
            pin.check(c, &self.cache)?;
        }
        Ok(())
    }
}

/// Where `login.pins` was set (the key is set by one layer: the highest that sets it).
fn origin_of(eff: &Effective) -> String {
    eff.login_pins
        .as_ref()
        .map(|s| s.origin.to_string())
        .unwrap_or_default()
}

impl Pin {
    fn from_spec(p: &ProviderPin, origin: String) -> Self {
        let verify = match (&p.issuer, &p.jwks_url, &p.workspace_claim) {
            (Some(issuer), Some(url), Some(claim)) if !p.workspaces.is_empty() => Some(Verify {
                pin: LoginPin {
                    issuer: issuer.to_string(),
                    audience: p.audience.iter().map(ToString::to_string).collect(),
                    jwks_url: url.to_string(),
                    workspace_claim: claim.to_string(),
                    allowed_workspaces: p.workspaces.iter().map(ToString::to_string).collect(),
                    method: None,
                },
                ca: p
                    .jwks_ca_file
                    .as_ref()
                    .map(|c| PathBuf::from(c.to_string())),
            }),
            _ => None,
        };
        Self {
            provider: Some(p.provider.to_string()),
            methods: p.methods.iter().map(ToString::to_string).collect(),
            workspaces: p.workspaces.iter().map(ToString::to_string).collect(),
            verify,
            origin,
        }
    }

    /// The `[login]` keys, when they pin anything.
    fn from_keys(eff: &Effective) -> Option<Self> {
        let method = value(&eff.login_method);
        let workspace = value(&eff.login_workspace_id);
        let set = eff
            .login_method
            .as_ref()
            .or(eff.login_workspace_id.as_ref())?;
        let origin = format!("login, {}", set.origin);
        let verify = match (
            value(&eff.login_issuer),
            value(&eff.login_jwks_url),
            value(&eff.login_workspace_claim),
            &workspace,
        ) {
            (Some(issuer), Some(jwks_url), Some(claim), Some(w)) => Some(Verify {
                pin: LoginPin {
                    issuer,
                    audience: value(&eff.login_audience).into_iter().collect(),
                    jwks_url,
                    workspace_claim: claim,
                    allowed_workspaces: vec![w.clone()],
                    method: None,
                },
                ca: value(&eff.login_jwks_ca_file).map(PathBuf::from),
            }),
            _ => None,
        };
        Some(Self {
            provider: value(&eff.login_provider),
            methods: method.into_iter().collect(),
            workspaces: workspace.into_iter().collect(),
            verify,
            origin,
        })
    }

    fn check(&self, c: &Credential, cache: &std::path::Path) -> anyhow::Result<()> {
        let origin = &self.origin;
        if !self.methods.is_empty() && !self.methods.contains(&c.metadata.login_method) {
            bail!(
                "its login method is {}; the requirements allow only {} ({origin})",
                c.metadata.login_method,
                self.methods.join(", ")
            );
        }
        if self.workspaces.is_empty() {
            return Ok(());
        }
        let pinned = self.workspaces.join(", ");
        if c.metadata.login_method == "api-key" {
            bail!(
                "the requirements pin its workspace to {pinned} ({origin}) and an API key \
                 carries no verifiable workspace"
            );
        }
        let Some(v) = &self.verify else {
            bail!(
                "the requirements pin its workspace to {pinned} ({origin}) but not all of \
                 issuer, jwks_url and workspace_claim, so no token's workspace can be verified"
            );
        };
        let keys = JwksCache::new(cache.to_path_buf(), v.ca.as_deref())?;
        match keys.check_login(c.secret.expose(), &v.pin) {
            Ok(_) => Ok(()),
            Err(LoginError::Refused(why)) => bail!("{why} (login pin of {origin})"),
            Err(e) => bail!("the login pin ({origin}) cannot be checked: {e}"),
        }
    }
}
