//! Validated value types shared by requirements, user config and settings.
//!
//! Every value is checked while it is deserialized, inside the deserializer of that very value,
//! so toml attaches the value's own span to the error and the message can cite its line.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

pub use warden_wire::{CredentialDelivery, InvalidValue, ParseVisitor, SandboxMode, TriageAction};
use warden_wire::{serde_via_str, string_enum};

string_enum! {
    /// When the agent must ask before acting.
    ApprovalPolicy, "approval policy" {
        Untrusted = "untrusted",
        OnRequest = "on-request",
        Never = "never",
    }
}

string_enum! {
    /// Who reviews the agent's requests for approval.
    Reviewer, "reviewer" {
        User = "user",
        AutoReview = "auto-review",
        /// The program named by `reviewer_command`.
        External = "external",
    }
}

string_enum! {
    /// A confinement layer that depends on the running kernel. `warden doctor` shows which
    /// are in force, `session.start` records them, and `required_layers` refuses a session
    /// without the ones it names.
    KernelLayer, "kernel layer" {
        /// Landlock: writes confined to the write roots, protected paths unreadable.
        LandlockFilesystem = "landlock.filesystem",
        /// Landlock ABI 2 (Linux 5.19): links and renames into other directories decided by rule.
        LandlockRefer = "landlock.refer",
        /// Landlock ABI 3 (Linux 6.2): truncate(2) confined like writes.
        LandlockTruncate = "landlock.truncate",
        /// Landlock ABI 5 (Linux 6.10): ioctls on devices confined.
        LandlockIoctlDev = "landlock.ioctl_dev",
        /// Landlock ABI 6 (Linux 6.12): signals reach only the session's processes.
        LandlockScopeSignal = "landlock.scope_signal",
        /// Landlock ABI 6 (Linux 6.12): abstract UNIX sockets reach only the session's.
        LandlockScopeAbstractUnix = "landlock.scope_abstract_unix",
        /// The cgroup pids controller: `max_pids` bounds fork bombs.
        PidsLimit = "pids_limit",
        /// cgroup connect_unix/sendmsg_unix programs (Linux 6.7), or the BPF LSM socket hooks
        /// before that: pathname UNIX sockets outside the session are refused in the kernel
        /// unless the policy allows them.
        UnixSocketHooks = "unix_socket_hooks",
        /// BPF LSM programs (`bpf` in the kernel's active LSM list, the `bpf_lsm` hook tier):
        /// signals and ptrace-mode access outside the session, bpf() and protected files are
        /// also refused in the kernel by the objects themselves.
        BpfLsm = "bpf_lsm",
    }
}

string_enum! {
    /// What happens to a command that matches an exec rule.
    Decision, "decision" {
        Allow = "allow",
        Prompt = "prompt",
        Forbidden = "forbidden",
    }
}

string_enum! {
    /// Wire protocol of the OTLP exporter.
    OtlpProtocol, "OTLP protocol" {
        Grpc = "grpc",
        HttpProtobuf = "http/protobuf",
    }
}

string_enum! {
    /// What happens when the telemetry not yet acknowledged by the collector reaches its limit.
    BacklogPolicy, "backlog policy" {
        /// Freeze the session's processes until the backlog drains.
        Pause = "pause",
        /// Let the session run; skip the oldest backlog and say so in an `export.dropped` record.
        Drop = "drop",
    }
}

/// One header sent with every OTLP request, written `name=value`. Values are secrets more
/// often than not (tokens), so they are never displayed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OtlpHeader {
    name: String,
    value: String,
}

impl OtlpHeader {
    /// The name, in lower case (HTTP/2 and gRPC metadata want it so).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for OtlpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OtlpHeader({self})")
    }
}

impl FromStr for OtlpHeader {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let (name, value) = s.split_once('=').ok_or_else(|| {
            InvalidValue(
                "invalid header: expected NAME=VALUE, e.g. authorization=Bearer ...".into(),
            )
        })?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(InvalidValue(format!(
                "invalid header name `{}`: letters, digits, `-`, `_` and `.` only",
                name.escape_debug()
            )));
        }
        // Visible ASCII and spaces: anything else could split or smuggle headers.
        if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(InvalidValue(format!(
                "invalid value of header `{name}`: printable ASCII only"
            )));
        }
        Ok(Self {
            name: name.to_ascii_lowercase(),
            value: value.trim().to_owned(),
        })
    }
}

impl fmt::Display for OtlpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<{} bytes, not shown>", self.name, self.value.len())
    }
}

serde_via_str!(OtlpHeader, "OTLP header");

string_enum! {
    /// Where credentials may be stored; requirements can only demand the OS keyring.
    CredentialsStore, "credentials store" {
        Keyring = "keyring",
    }
}

/// A decision a requirement may impose: `prompt` or `forbidden`. A requirement that allowed a
/// command would loosen what users chose, so `allow` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequiredDecision(Decision);

impl RequiredDecision {
    pub fn decision(self) -> Decision {
        self.0
    }
}

impl fmt::Display for RequiredDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RequiredDecision {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "prompt" => Ok(Self(Decision::Prompt)),
            "forbidden" => Ok(Self(Decision::Forbidden)),
            "allow" => Err(InvalidValue(
                "decision `allow` is refused in requirements: they can only tighten, \
                 use `prompt` or `forbidden`"
                    .into(),
            )),
            _ => Err(InvalidValue(format!(
                "unknown decision `{s}`, expected `prompt` or `forbidden`"
            ))),
        }
    }
}

serde_via_str!(RequiredDecision, "decision");

/// A command line: a non-empty list of strings whose first one (the program) is not empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Argv(Vec<String>);

impl Argv {
    pub fn new(args: Vec<String>) -> Result<Self, InvalidValue> {
        match args.first() {
            None => Err(InvalidValue("must name at least the program".into())),
            Some(program) if program.is_empty() => {
                Err(InvalidValue("the program must not be empty".into()))
            }
            Some(_) => Ok(Self(args)),
        }
    }

    pub fn args(&self) -> &[String] {
        &self.0
    }

    /// True when `command` starts with these words.
    pub fn is_prefix_of(&self, command: &[String]) -> bool {
        command.starts_with(&self.0)
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArgvVisitor;

        impl<'de> Visitor<'de> for ArgvVisitor {
            type Value = Argv;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                Argv::new(args).map_err(de::Error::custom)
            }
        }

        d.deserialize_seq(ArgvVisitor)
    }
}

/// A rule for commands that start with `prefix`. In requirements `D` is [`RequiredDecision`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRule<D = Decision> {
    pub prefix: Argv,
    pub decision: D,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<ExecRule<RequiredDecision>> for ExecRule {
    fn from(rule: ExecRule<RequiredDecision>) -> Self {
        Self {
            prefix: rule.prefix,
            decision: rule.decision.decision(),
            reason: rule.reason,
        }
    }
}

/// A domain name, or `*.name` for every name below it (not `name` itself). Stored in lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainPattern {
    wildcard: bool,
    name: String,
}

impl DomainPattern {
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The name, without the `*.` of a wildcard.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when `host` is this name, or (for a wildcard) a name below it.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            is_below(&host, &self.name)
        } else {
            host == self.name
        }
    }

    /// True when every name `other` matches is matched by `self` too.
    pub fn covers(&self, other: &DomainPattern) -> bool {
        match (self.wildcard, other.wildcard) {
            (false, false) => self.name == other.name,
            (false, true) => false,
            (true, false) => is_below(&other.name, &self.name),
            (true, true) => other.name == self.name || is_below(&other.name, &self.name),
        }
    }
}

fn is_below(name: &str, parent: &str) -> bool {
    name.strip_suffix(parent)
        .is_some_and(|head| head.ends_with('.'))
}

impl FromStr for DomainPattern {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let invalid = |why: &str| InvalidValue(format!("invalid domain `{s}`: {why}"));
        let lower = s.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if name.is_empty() {
            return Err(invalid("empty name"));
        }
        if name.len() > 253 {
            return Err(invalid("longer than 253 characters"));
        }
        if name.contains('*') {
            return Err(invalid(
                "`*` is allowed only as a whole first label, as in `*.example.com`",
            ));
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(invalid("empty label (leading, trailing or doubled dot)"));
            }
            if label.len() > 63 {
                return Err(invalid("a label is longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(invalid("only letters, digits, `-` and `.` are allowed"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label starts or ends with `-`"));
            }
        }
        if name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "looks like an IP address; use network.allowed_cidrs",
            ));
        }
        Ok(Self {
            wildcard,
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)
    }
}

serde_via_str!(DomainPattern, "domain");

/// An IPv4 or IPv6 network in CIDR notation; a bare address means that one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// True when every address of `other` is in `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        self.0.contains(&other.0)
    }
}

impl FromStr for Cidr {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if !s.contains('/') {
            return s
                .parse::<IpAddr>()
                .map(|ip| Self(IpNet::from(ip)))
                .map_err(|_| InvalidValue(format!("invalid CIDR `{s}`: not an IP address")));
        }
        let net: IpNet = s
            .parse()
            .map_err(|_| InvalidValue(format!("invalid CIDR `{s}`: expected ADDRESS/PREFIX")))?;
        // A set host part usually means a typo in the prefix length; say what was meant.
        if net.trunc() != net {
            return Err(InvalidValue(format!(
                "invalid CIDR `{s}`: host bits are set, did you mean `{}`?",
                net.trunc()
            )));
        }
        Ok(Self(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

serde_via_str!(Cidr, "CIDR");

/// A DNS server: `IP` (port 53), `IP:port` or `[IPv6]:port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsUpstream(SocketAddr);

impl DnsUpstream {
    pub fn addr(&self) -> SocketAddr {
        self.0
    }
}

impl FromStr for DnsUpstream {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        s.parse::<SocketAddr>()
            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map(Self)
            .map_err(|_| {
                InvalidValue(format!(
                    "invalid DNS upstream `{s}`: expected IP, IP:port or [IPv6]:port"
                ))
            })
    }
}

impl fmt::Display for DnsUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

serde_via_str!(DnsUpstream, "DNS upstream");

/// A path written in a config file: absolute, or `~`/`~/...` for the user's home directory.
/// `..` is refused so that "inside a root" can be decided from the text alone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConfigPath {
    in_home: bool,
    /// Absolute, or relative to home when `in_home`; `.` parts and repeated `/` removed.
    path: PathBuf,
}

impl ConfigPath {
    /// The absolute path, with `~` replaced by `home`.
    pub fn expand(&self, home: &Path) -> PathBuf {
        if self.in_home {
            home.join(&self.path)
        } else {
            self.path.clone()
        }
    }
}

impl FromStr for ConfigPath {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let invalid = |why: &str| InvalidValue(format!("invalid path `{s}`: {why}"));
        let (in_home, rest) = if s == "~" {
            (true, "")
        } else if let Some(rest) = s.strip_prefix("~/") {
            (true, rest)
        } else if s.starts_with('/') {
            (false, s)
        } else {
            return Err(invalid("must be absolute or start with `~/`"));
        };
        if s.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        let mut path = PathBuf::new();
        for part in Path::new(rest).components() {
            match part {
                Component::ParentDir => return Err(invalid("`..` is not allowed")),
                Component::CurDir => {}
                other => path.push(other),
            }
        }
        Ok(Self { in_home, path })
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.in_home, self.path.as_os_str().is_empty()) {
            (true, true) => f.write_str("~"),
            (true, false) => write!(f, "~/{}", self.path.display()),
            (false, _) => write!(f, "{}", self.path.display()),
        }
    }
}

serde_via_str!(ConfigPath, "path");

/// Checks `scheme://authority...`, the shape every endpoint here needs.
fn check_url(s: &str, schemes: &[&str]) -> Result<(), InvalidValue> {
    let invalid = |why: String| InvalidValue(format!("invalid URL `{s}`: {why}"));
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| invalid("expected scheme://host".into()))?;
    if !schemes.contains(&scheme) {
        return Err(invalid(format!(
            "the scheme must be {}",
            schemes.join(" or ")
        )));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid("no host".into()));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters".into()));
    }
    Ok(())
}

/// An `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpUrl(String);

/// An `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpsUrl(String);

macro_rules! url_type {
    ($name:ident, $what:literal, $schemes:expr) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;

            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                check_url(s, $schemes).map(|()| Self(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        serde_via_str!($name, $what);
    };
}

url_type!(HttpUrl, "URL", &["http", "https"]);
url_type!(HttpsUrl, "https URL", &["https"]);

/// A string that must not be empty (a login method, a workspace id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NonEmpty(String);

impl NonEmpty {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NonEmpty {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if s.trim().is_empty() {
            Err(InvalidValue("must not be empty".into()))
        } else {
            Ok(Self(s.to_owned()))
        }
    }
}

impl fmt::Display for NonEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_via_str!(NonEmpty, "non-empty string");

/// An environment variable name (`[A-Za-z_][A-Za-z0-9_]*`), or with a trailing `*` every
/// name that starts with what precedes it (`CORP_*`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnvPattern {
    stem: String,
    prefix: bool,
}

impl EnvPattern {
    pub fn matches(&self, name: &str) -> bool {
        if self.prefix {
            name.starts_with(&self.stem)
        } else {
            name == self.stem
        }
    }

    /// A plain name, not a prefix.
    pub fn is_name(&self) -> bool {
        !self.prefix
    }
}

impl FromStr for EnvPattern {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let (stem, prefix) = match s.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (s, false),
        };
        let ok = stem.bytes().next().is_some_and(|b| !b.is_ascii_digit())
            && stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(InvalidValue(format!(
                "{s:?} is not a variable name (letters, digits, '_'; not starting with a digit), \
                 nor one followed by '*'"
            )));
        }
        Ok(Self {
            stem: stem.to_owned(),
            prefix,
        })
    }
}

impl fmt::Display for EnvPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.stem, if self.prefix { "*" } else { "" })
    }
}

serde_via_str!(EnvPattern, "environment variable name");

/// A login pin for one provider (`[[login.pins]]`): the login methods and the workspaces its
/// credentials may have; a workspace is trusted only from a token whose signature checks
/// against `jwks_url`'s keys, so a pin with workspaces names where they come from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, try_from = "RawProviderPin")]
pub struct ProviderPin {
    pub provider: NonEmpty,
    /// Allowed login methods (a credential's `--login-method`); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<NonEmpty>,
    /// Allowed workspaces; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workspaces: Vec<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<NonEmpty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<HttpsUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_ca_file: Option<ConfigPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<NonEmpty>,
    /// An RFC 6901 pointer into the token's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_claim: Option<NonEmpty>,
}

/// [`ProviderPin`] as written, before the checks that span its fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviderPin {
    provider: NonEmpty,
    #[serde(default)]
    methods: Vec<NonEmpty>,
    #[serde(default)]
    workspaces: Vec<NonEmpty>,
    issuer: Option<NonEmpty>,
    jwks_url: Option<HttpsUrl>,
    jwks_ca_file: Option<ConfigPath>,
    audience: Option<NonEmpty>,
    workspace_claim: Option<NonEmpty>,
}

impl TryFrom<RawProviderPin> for ProviderPin {
    type Error = InvalidValue;

    fn try_from(r: RawProviderPin) -> Result<Self, InvalidValue> {
        let bad = |m: String| Err(InvalidValue(m));
        if r.methods.is_empty() && r.workspaces.is_empty() {
            return bad(format!(
                "the pin for {} names neither methods nor workspaces",
                r.provider
            ));
        }
        let verifiable = r.issuer.is_some() && r.jwks_url.is_some() && r.workspace_claim.is_some();
        if !r.workspaces.is_empty() && !verifiable {
            return bad(format!(
                "the pin for {} names workspaces but not all of issuer, jwks_url and \
                 workspace_claim, without which no token's workspace can be verified",
                r.provider
            ));
        }
        if let Some(claim) = &r.workspace_claim
            && !claim.as_str().starts_with('/')
        {
            return bad(format!(
                "workspace_claim {:?} is not an RFC 6901 pointer (it starts with '/')",
                claim.as_str()
            ));
        }
        Ok(Self {
            provider: r.provider,
            methods: r.methods,
            workspaces: r.workspaces,
            issuer: r.issuer,
            jwks_url: r.jwks_url,
            jwks_ca_file: r.jwks_ca_file,
            audience: r.audience,
            workspace_claim: r.workspace_claim,
        })
    }
}

impl fmt::Display for ProviderPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pin for {}", self.provider)
    }
}

/// A program that may only run inside a Warden session (`[[service.agent_programs]]`): the
/// file at `path`, whatever it holds, and with `sha256` also a copy of that content anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProgram {
    /// An absolute path (no `~`: the service guards one machine, not one user's home).
    pub path: AbsolutePath,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
}

impl fmt::Display for AgentProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path.0.to_string_lossy())
    }
}

/// An absolute path, `.` parts and repeated `/` removed; `..` refused (it would name a file
/// other than the one it seems to).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AbsolutePath(PathBuf);

impl AbsolutePath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl FromStr for AbsolutePath {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let path = Path::new(s);
        if !path.is_absolute() {
            return Err(InvalidValue(format!("`{s}` is not an absolute path")));
        }
        if path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(InvalidValue(format!("`{s}` has a `..` part")));
        }
        Ok(Self(path.components().collect()))
    }
}

impl fmt::Display for AbsolutePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_string_lossy())
    }
}

serde_via_str!(AbsolutePath, "absolute path");

/// A SHA-256 digest, written as 64 hexadecimal digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl FromStr for Sha256 {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let invalid = || InvalidValue(format!("`{s}` is not a SHA-256 digest (64 hex digits)"));
        if s.len() != 64 || !s.is_ascii() {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Self(out))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

serde_via_str!(Sha256, "SHA-256 digest");

/// The version of the requirements schema a file is written against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SchemaVersion(u32);

impl SchemaVersion {
    /// The newest schema this library understands.
    pub const SUPPORTED: u32 = 1;
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct VersionVisitor;

        impl Visitor<'_> for VersionVisitor {
            type Value = SchemaVersion;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SchemaVersion, E> {
                match v {
                    1 => Ok(SchemaVersion(1)),
                    v if v > 1 => Err(E::custom(format!(
                        "schema_version {v} is newer than this Warden understands \
                         (it supports {}): upgrade Warden",
                        SchemaVersion::SUPPORTED
                    ))),
                    v => Err(E::custom(format!("schema_version {v} does not exist"))),
                }
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SchemaVersion, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }

        d.deserialize_i64(VersionVisitor)
    }
}

/// Shannon entropy in bits per character, as a DNS budget limit: finite and in (0, 8] (a byte
/// carries at most 8 bits), so it compares like an integer and never holds NaN.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct EntropyBits(f64);

impl EntropyBits {
    pub const MAX: f64 = 8.0;

    pub fn new(bits: f64) -> Result<Self, String> {
        if bits.is_finite() && bits > 0.0 && bits <= Self::MAX {
            Ok(Self(bits))
        } else {
            Err(format!(
                "{bits} is not an entropy in bits per character (more than 0, at most {})",
                Self::MAX
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

// NaN is refused by `new`, so equality is total.
impl Eq for EntropyBits {}

impl<'de> Deserialize<'de> for EntropyBits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bits = f64::deserialize(d)?;
        Self::new(bits).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn agent_program_paths_and_digests() {
        let p: AbsolutePath = "/usr/local//bin/./codex".parse().unwrap();
        assert_eq!(p.to_string(), "/usr/local/bin/codex");
        for bad in ["codex", "~/bin/codex", "/usr/../tmp/codex", ""] {
            assert!(bad.parse::<AbsolutePath>().is_err(), "{bad}");
        }
        let hex = "00ff".repeat(16);
        assert_eq!(hex.parse::<Sha256>().unwrap().to_string(), hex);
        for bad in ["00ff", &"zz".repeat(32), &"é".repeat(32), &"0".repeat(65)] {
            let err = bad.parse::<Sha256>().unwrap_err();
            assert!(err.to_string().contains("64 hex digits"), "{err}");
        }
    }
    use super::*;

    fn domain(s: &str) -> DomainPattern {
        s.parse().unwrap()
    }

    #[test]
    fn domains_validate_and_normalise() {
        assert_eq!(domain("Example.COM").to_string(), "example.com");
        assert_eq!(domain("*.example.com").to_string(), "*.example.com");
        for bad in [
            "",
            "*.",
            "a..b",
            ".a",
            "a.",
            "a_b.com",
            "-a.com",
            "a-.com",
            "*a.com",
            "a.*.com",
            "1.2.3.4",
            "ex ample.com",
        ] {
            assert!(bad.parse::<DomainPattern>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn domain_matching_and_covering() {
        let wild = domain("*.example.com");
        assert!(wild.matches("a.example.com"));
        assert!(wild.matches("A.B.Example.com."));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        assert!(wild.covers(&domain("a.example.com")));
        assert!(wild.covers(&domain("*.a.example.com")));
        assert!(wild.covers(&domain("*.example.com")));
        assert!(!wild.covers(&domain("example.com")));
        assert!(!domain("a.example.com").covers(&domain("*.a.example.com")));
        assert!(domain("a.com").covers(&domain("a.com")));
    }

    #[test]
    fn cidrs() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(&"10.1.0.0/16".parse().unwrap()));
        assert!(net.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!net.contains(&"11.0.0.0/8".parse().unwrap()));
        assert!(!net.contains(&"0.0.0.0/0".parse().unwrap()));
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().to_string(), "fd00::/8");
        let err = "10.0.0.1/8".parse::<Cidr>().unwrap_err().to_string();
        assert!(err.contains("did you mean `10.0.0.0/8`"), "{err}");
        assert!("10.0.0.300/8".parse::<Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    }

    #[test]
    fn dns_upstreams() {
        let plain: DnsUpstream = "192.0.2.1".parse().unwrap();
        assert_eq!(plain.to_string(), "192.0.2.1:53");
        let v6: DnsUpstream = "[2001:db8::1]:5353".parse().unwrap();
        assert_eq!(v6.addr().port(), 5353);
        assert_eq!(
            "2001:db8::1".parse::<DnsUpstream>().unwrap().addr().port(),
            53
        );
        assert!("dns.example".parse::<DnsUpstream>().is_err());
        assert!("192.0.2.1:99999".parse::<DnsUpstream>().is_err());
    }

    #[test]
    fn config_paths() {
        let home = Path::new("/home/u");
        let p: ConfigPath = "~/.ssh/".parse().unwrap();
        assert_eq!(p.to_string(), "~/.ssh");
        assert_eq!(p.expand(home), Path::new("/home/u/.ssh"));
        assert_eq!("~".parse::<ConfigPath>().unwrap().expand(home), home);
        assert_eq!(
            "/srv//./x".parse::<ConfigPath>().unwrap().expand(home),
            Path::new("/srv/x")
        );
        for bad in ["relative", "~alice/x", "/a/../etc", ""] {
            assert!(bad.parse::<ConfigPath>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn urls() {
        assert!("https://otel.example:4317".parse::<HttpUrl>().is_ok());
        assert!("http://localhost/v1".parse::<HttpUrl>().is_ok());
        assert!("ftp://x".parse::<HttpUrl>().is_err());
        assert!("https://".parse::<HttpUrl>().is_err());
        assert!("https://a b".parse::<HttpUrl>().is_err());
        assert!("http://x".parse::<HttpsUrl>().is_err());
        assert!("https://x/bundle.toml".parse::<HttpsUrl>().is_ok());
    }

    #[test]
    fn otlp_headers_are_checked_and_never_shown() {
        let h: OtlpHeader = "Authorization=Bearer abc".parse().unwrap();
        assert_eq!((h.name(), h.value()), ("authorization", "Bearer abc"));
        assert_eq!(h.to_string(), "authorization=<10 bytes, not shown>");
        assert!(format!("{h:?}").contains("not shown"));
        assert!("novalue".parse::<OtlpHeader>().is_err());
        assert!("bad name=x".parse::<OtlpHeader>().is_err());
        let err = "x=a\r\nInjected: 1".parse::<OtlpHeader>().unwrap_err();
        assert!(err.to_string().contains("printable ASCII"), "{err}");
        assert!("backlog".parse::<BacklogPolicy>().is_err());
        assert_eq!(
            "drop".parse::<BacklogPolicy>().unwrap(),
            BacklogPolicy::Drop
        );
    }

    #[test]
    fn allow_is_refused_as_a_required_decision() {
        assert!("prompt".parse::<RequiredDecision>().is_ok());
        let err = "allow".parse::<RequiredDecision>().unwrap_err().to_string();
        assert!(err.contains("`allow` is refused in requirements"), "{err}");
        let err = "maybe".parse::<RequiredDecision>().unwrap_err().to_string();
        assert!(err.contains("expected `prompt` or `forbidden`"), "{err}");
    }

    #[test]
    fn argv_needs_a_program() {
        assert!(Argv::new(vec![]).is_err());
        assert!(Argv::new(vec![String::new()]).is_err());
        let argv = Argv::new(vec!["git".into(), "push".into()]).unwrap();
        assert!(argv.is_prefix_of(&["git".into(), "push".into(), "-f".into()]));
        assert!(!argv.is_prefix_of(&["git".into()]));
    }
}
