//! The requirements' login pin (`[login]`): which login method and workspace a provider's
//! credentials may have. A workspace is trusted only from a token whose signature checks
//! against the issuer's published keys (warden-login-pin); a declared one proves nothing.
use std::path::PathBuf;

use anyhow::bail;
use warden_credentials::Credential;
use warden_login_pin::{JwksCache, LoginError, LoginPin};
use warden_requirements::{Effective, Setting};

/// A value with where it came from (`file:line`).
type Pinned = (String, String);

/// The pin as the requirements set it; empty when they set none.
#[derive(Clone, Debug, Default)]
pub struct LoginPolicy {
    provider: Option<Pinned>,
    method: Option<Pinned>,
    workspace: Option<Pinned>,
    verify: Option<Verify>,
    /// What is missing to verify a workspace, when a workspace is pinned.
    incomplete: Option<String>,
}

#[derive(Clone, Debug)]
struct Verify {
    pin: LoginPin,
    ca: Option<PathBuf>,
    cache: PathBuf,
}

fn pinned<T: std::fmt::Display>(s: &Option<Setting<T>>) -> Option<Pinned> {
    s.as_ref()
        .map(|s| (s.value.to_string(), s.origin.to_string()))
}

impl LoginPolicy {
    /// From the merged requirements; `jwks_cache` is where the issuer's keys are kept.
    pub fn from_requirements(eff: &Effective, jwks_cache: PathBuf) -> Self {
        let workspace = pinned(&eff.login_workspace_id);
        let (issuer, jwks_url, claim) = (
            pinned(&eff.login_issuer),
            pinned(&eff.login_jwks_url),
            pinned(&eff.login_workspace_claim),
        );
        let mut policy = Self {
            provider: pinned(&eff.login_provider),
            method: pinned(&eff.login_method),
            workspace: workspace.clone(),
            verify: None,
            incomplete: None,
        };
        let Some((workspace, _)) = workspace else {
            return policy;
        };
        match (issuer, jwks_url, claim) {
            (Some((issuer, _)), Some((jwks_url, _)), Some((claim, _))) => {
                policy.verify = Some(Verify {
                    pin: LoginPin {
                        issuer,
                        audience: eff
                            .login_audience
                            .iter()
                            .map(|a| a.value.to_string())
                            .collect(),
                        jwks_url,
                        workspace_claim: claim,
                        allowed_workspaces: vec![workspace],
                        method: None,
                    },
                    ca: eff
                        .login_jwks_ca_file
                        .as_ref()
                        .map(|c| PathBuf::from(c.value.to_string())),
                    cache: jwks_cache,
                })
            }
            _ => {
                policy.incomplete = Some(
                    "login.workspace_id is pinned but login.issuer, login.jwks_url and \
                     login.workspace_claim are not all set, so no token's workspace can be \
                     verified"
                        .into(),
                )
            }
        }
        policy
    }

    /// Whether the credential may be used: a credential of the pinned provider must use the
    /// pinned method and, when a workspace is pinned, be a token signed by the issuer whose
    /// workspace claim is the pinned one.
    pub fn check(&self, c: &Credential) -> anyhow::Result<()> {
        if let Some((provider, _)) = &self.provider
            && *provider != c.metadata.provider
        {
            return Ok(());
        }
        if let Some((method, origin)) = &self.method
            && *method != c.metadata.login_method
        {
            bail!(
                "its login method is {}; the requirements allow only {method} (login.method, {origin})",
                c.metadata.login_method
            );
        }
        let Some((workspace, origin)) = &self.workspace else {
            return Ok(());
        };
        if c.metadata.login_method == "api-key" {
            bail!(
                "the requirements pin workspace {workspace} (login.workspace_id, {origin}) and an \
                 API key carries no verifiable workspace"
            );
        }
        let Some(v) = &self.verify else {
            bail!("{}", self.incomplete.as_deref().unwrap_or_default());
        };
        let cache = JwksCache::new(v.cache.clone(), v.ca.as_deref())?;
        match cache.check_login(c.secret.expose(), &v.pin) {
            Ok(_) => Ok(()),
            Err(LoginError::Refused(why)) => bail!("{why} (login pin of {origin})"),
            Err(e) => bail!("the login pin cannot be checked: {e}"),
        }
    }
}
