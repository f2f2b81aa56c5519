//! The pin: whose tokens are trusted, and which workspaces and login methods a credential may
//! belong to. Warden builds it from its requirements.
use serde::Deserialize;

/// What a login must be to be accepted.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LoginPin {
    /// The `iss` a token must carry, exactly.
    pub issuer: String,
    /// The accepted `aud` values: a token passes if one of its audiences is here. Empty: `aud`
    /// is not checked.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Where the issuer publishes its keys (a JWKS); `https://` only.
    pub jwks_url: String,
    /// An RFC 6901 pointer to the workspace in the claims, such as `/org_id` or
    /// `/https:~1~1api.openai.com~1auth/chatgpt_account_id`.
    pub workspace_claim: String,
    /// The workspaces a credential may belong to; none listed, none allowed.
    pub allowed_workspaces: Vec<String>,
    /// The login methods a credential may have used; absent: any.
    #[serde(default)]
    pub method: Option<MethodPin>,
}

/// Which login methods are accepted, and where the claims name the method.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MethodPin {
    /// An RFC 6901 pointer to the method: a string, or an array of strings such as `/amr`.
    pub claim: String,
    /// The accepted methods; empty: any, as long as the claim is there.
    #[serde(default)]
    pub allowed: Vec<String>,
}
