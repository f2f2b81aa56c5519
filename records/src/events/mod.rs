//! What Warden records: the audit-log record and the events it carries.
//!
//! The JSON shape is the audit-log schema documented in docs/audit-log.md; change both together.
pub mod dns_budget;
pub mod escape;
pub mod render;

use serde::{Deserialize, Serialize};
pub use warden_wire::TriageAction;
use warden_wire::string_enum;

/// Version of the record schema, written into every `session.start`.
pub const SCHEMA_VERSION: u32 = 1;

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub session: String,
    /// Gap-free, starting at 0 in each session.
    pub seq: u64,
    /// Wall-clock time, RFC 3339 with nanoseconds, UTC.
    pub time: String,
    /// CLOCK_BOOTTIME in nanoseconds (monotonic, counts suspend; what the kernel stamps).
    pub boot_ns: u64,
    /// SHA-256 (hex) of the previous line's exact bytes; the first record carries the seed of
    /// its session (`audit_log::chain_seed`). Empty only in logs written before the chain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prev_hash: String,
    /// The agent's tool call this event belongs to: the process, or an ancestor of it within
    /// the session, registered the call through the agent API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

/// Defines [`Event`] with each kind's name written once: the `kind` of the log, `Event::kind`,
/// the OTLP event name (`warden.<kind>`) and [`KINDS`] all come from it.
macro_rules! events {
    ($($variant:ident($payload:ty) = $kind:literal,)+) => {
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum Event {
            $(#[serde(rename = $kind)] $variant($payload),)+
        }

        /// Every record kind, as written in the log.
        pub const KINDS: &[&str] = &[$($kind),+];

        impl Event {
            /// The record's `kind` as written in the log.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => $kind,)+
                }
            }

            /// The name of the OTLP log event that carries this record.
            pub fn otlp_name(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => concat!("warden.", $kind),)+
                }
            }
        }
    };
}

events! {
    SessionStart(Box<SessionStart>) = "session.start",
    Exec(Exec) = "exec",
    ExecRequest(Box<ExecRequest>) = "exec.request",
    SyscallDenied(SyscallDenied) = "syscall.denied",
    Fork(Fork) = "fork",
    Exit(Exit) = "exit",
    NetConnect(Network) = "network.connect",
    NetSend(Network) = "network.send",
    UnixConnect(UnixSocket) = "unix.connect",
    UnixSend(UnixSocket) = "unix.send",
    DnsQuery(Box<DnsQuery>) = "dns.query",
    LsmDenied(LsmDenied) = "lsm.denied",
    FileOpen(FileAccess) = "file.open",
    FileLink(FileAccess) = "file.link",
    FileRename(FileAccess) = "file.rename",
    FileUnlink(FileAccess) = "file.unlink",
    FileSymlink(FileAccess) = "file.symlink",
    FileTruncate(FileAccess) = "file.truncate",
    ApprovalRequest(Box<ApprovalRequest>) = "approval.request",
    Approval(Box<Approval>) = "approval",
    ApprovalRefused(ApprovalRefused) = "approval.refused",
    RequirementsChanged(RequirementsChange) = "requirements.changed",
    LimitReached(LimitReached) = "limit.reached",
    CredentialUse(CredentialUse) = "credential.use",
    Finding(Box<FindingRecord>) = "finding",
    EventsLost(EventsLost) = "events.lost",
    AgentPrompt(AgentPrompt) = "agent.prompt",
    AgentToolCall(AgentToolCall) = "agent.tool_call",
    ExportBacklog(ExportBacklog) = "export.backlog",
    SessionEnd(SessionEnd) = "session.end",
    GuardArmed(Box<GuardArmed>) = "guard.armed",
    GuardKilled(Box<GuardKilled>) = "guard.killed",
    GuardDisarmed(GuardDisarmed) = "guard.disarmed",
}

impl Event {
    /// The file call, for the `file.*` kinds.
    pub fn file_access(&self) -> Option<&FileAccess> {
        match self {
            Event::FileOpen(f)
            | Event::FileLink(f)
            | Event::FileRename(f)
            | Event::FileUnlink(f)
            | Event::FileSymlink(f)
            | Event::FileTruncate(f) => Some(f),
            _ => None,
        }
    }

    /// The process the event is about, when it is about one.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Event::Exec(e) => Some(e.pid),
            Event::ExecRequest(e) => Some(e.pid),
            Event::SyscallDenied(e) => Some(e.pid),
            Event::Fork(e) => Some(e.pid),
            Event::Exit(e) => Some(e.pid),
            Event::NetConnect(e) | Event::NetSend(e) => Some(e.pid),
            Event::UnixConnect(e) | Event::UnixSend(e) => Some(e.pid),
            Event::LsmDenied(e) => Some(e.pid),
            Event::FileOpen(e)
            | Event::FileLink(e)
            | Event::FileRename(e)
            | Event::FileUnlink(e)
            | Event::FileSymlink(e)
            | Event::FileTruncate(e) => Some(e.pid),
            Event::AgentPrompt(e) => Some(e.pid),
            Event::AgentToolCall(e) => Some(e.pid),
            Event::GuardKilled(k) => Some(k.pid),
            Event::CredentialUse(c) => c.pid,
            // About the session: its evidence names the records (and their processes).
            Event::Finding(_) => None,
            // A DNS request's pid is 0: the proxy does not know the querying process.
            Event::ApprovalRequest(a) => (a.subject.pid != 0).then_some(a.subject.pid),
            Event::Approval(a) => (a.subject.pid != 0).then_some(a.subject.pid),
            // The peer is outside the session (or trying to reach it from another one).
            Event::ApprovalRefused(_)
            | Event::SessionStart(_)
            | Event::DnsQuery(_)
            | Event::RequirementsChanged(_)
            | Event::LimitReached(_)
            | Event::EventsLost(_)
            | Event::ExportBacklog(_)
            | Event::SessionEnd(_)
            | Event::GuardArmed(_)
            | Event::GuardDisarmed(_) => None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    pub schema: u32,
    pub warden_version: String,
    /// The command as given, escaped (see `escape`), at most `ARGV_MAX` bytes of it.
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub command_truncated: bool,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub cgroup: String,
    pub cgroup_id: u64,
    pub supervisor_pid: u32,
    pub hostname: String,
    /// Kernel ids of the eBPF programs that observe this session.
    pub kernel_programs: Vec<u32>,
    /// How the kernel programs hook file calls (`bpf_lsm`, `fentry`, `tracepoint`; see
    /// `kernel::hook_tier`). Empty in logs from before hook tiers.
    #[serde(default)]
    pub hook_tier: String,
    /// The better tiers this kernel did not give, each `TIER: why`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_tiers_unavailable: Vec<String>,
    /// The requirement and configuration files the session's settings came from.
    #[serde(default)]
    pub settings_files: Vec<String>,
    /// What went wrong loading them without stopping the session (a cloud bundle refused or
    /// not fetched: the last good one applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings_warnings: Vec<String>,
    /// The kernel-dependent confinement layers in force (`KernelLayer` names).
    #[serde(default)]
    pub layers: Vec<String>,
    /// Those this kernel does not give (`warden doctor` says what Warden does instead).
    #[serde(default)]
    pub missing_layers: Vec<String>,
    /// Environment variables not passed to the agent (names only): they name host sockets
    /// the session may not reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_removed: Vec<String>,
    /// VCS hooks and config made read-only in the session (escaped paths).
    #[serde(default)]
    pub vcs_read_only: Vec<String>,
    /// Directories made mount points so that they cannot be renamed away (escaped paths).
    #[serde(default)]
    pub vcs_pinned: Vec<String>,
    /// The workspace and the user's home directory (escaped paths), for triage: what the
    /// task's files are, and what is the user's. Absent in logs of older versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workspace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub home: String,
}

/// A new program image, seen before its first instruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct Exec {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cgroup_id: u64,
    /// Path as passed to execve, escaped.
    pub filename: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub filename_truncated: bool,
    /// Arguments, each escaped; the last one is partial when `argv_truncated`.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    /// Size in bytes of the whole argument area of the new image (NULs included).
    pub argv_bytes: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_unreadable: bool,
    /// Set when the kernel killed the new image before its first instruction because it was
    /// not what the exec gate approved: `missing` (no approval) or `mismatch` (the path or the
    /// arguments changed after the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_for_token: Option<TokenProblem>,
}

string_enum! {
    TokenProblem, "exec token problem" {
        Missing = "missing",
        Mismatch = "mismatch",
    }
}

/// An exec held by the exec gate, and what was decided before it could go on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The calling thread.
    pub pid: u32,
    /// `execve` or `execveat`.
    pub syscall: String,
    /// The path as the process passed it, escaped.
    pub filename: String,
    /// The file it names, as Warden resolved it (escaped), when it could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// The program's name for the rules: the file's name, or the program it is a copy of.
    pub program: String,
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    /// `allow`: the exec went on; `deny`: it failed with EPERM.
    pub verdict: Verdict,
    /// Who decided (see [`DecisionSource`]).
    pub source: DecisionSource,
    /// The approval request that decided it, when one was made (its `approval` record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// The rule's decision (`allow`, `prompt`, `forbidden`) when a rule matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<warden_requirements::values::Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The command the rule matched, when it is not the exec itself (inside `sh -c`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// The interpreters the kernel runs for this file, in the order it follows them (a `#!`
    /// line, a binfmt_misc handler, nested); the last is the program that really runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpreters: Vec<Interpreter>,
    /// Standard streams (0, 1, 2) that are network sockets: what a reverse shell looks like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdio_sockets: Vec<StdioSocket>,
    /// Time the exec was held, in microseconds.
    pub wait_us: u64,
}

/// A standard stream of an exec that is a TCP or UDP socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioSocket {
    /// 0, 1 or 2.
    pub fd: u8,
    /// `tcp` or `udp`.
    pub transport: String,
    /// The peer, `ADDRESS:PORT` (`[ADDRESS]:PORT` for IPv6); empty for an unconnected socket.
    pub peer: String,
}

/// One interpreter of an exec's chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interpreter {
    /// Its path as the kernel opens it, escaped.
    pub path: String,
    /// Its name for the rules (the file's name, or the program it is a copy of).
    pub program: String,
    /// `#!` or `binfmt_misc:<entry>`.
    pub via: String,
}

/// A system call the sandbox refuses (it failed with EPERM).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyscallDenied {
    pub pid: u32,
    pub syscall: String,
    /// The six argument registers, in hexadecimal.
    pub args: Vec<String>,
    pub rule: String,
    /// For `socket` and `socketpair`: what was asked for, by the kernel's names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<SocketCall>,
}

/// The arguments of a refused `socket` call: `AF_VSOCK`, `SOCK_STREAM`, `IPPROTO_ICMP`; a
/// number the kernel has no name for is written as the number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SocketCall {
    pub family: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub protocol: String,
}

/// A new process (threads are not reported).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fork {
    pub pid: u32,
    pub ppid: u32,
}

/// The last thread of a process exited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    pub pid: u32,
    pub ppid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub core_dumped: bool,
}

impl Exit {
    /// Decodes a wait(2) status as the kernel keeps it in `task_struct::exit_code`.
    pub fn from_wait_status(pid: u32, ppid: u32, status: u32) -> Self {
        let signal = (status & 0x7f) as i32;
        Exit {
            pid,
            ppid,
            exit_code: (signal == 0).then_some(((status >> 8) & 0xff) as i32),
            signal: (signal != 0).then_some(signal),
            core_dumped: signal != 0 && status & 0x80 != 0,
        }
    }
}

string_enum! {
    Verdict, "verdict" {
        Allow = "allow",
        Deny = "deny",
        /// A DNS query, sent to Warden's proxy instead of where it was addressed.
        Redirect = "redirect",
    }
}

/// A connect (`network.connect`) or an unconnected datagram (`network.send`), as the kernel
/// decided it. Datagrams are recorded when denied or redirected only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub pid: u32,
    pub uid: u32,
    /// `tcp`, `udp`, `icmp`, `icmpv6` (ping: the packet's record has pid 0), or `ip-proto-N`.
    pub transport: String,
    pub address: String,
    pub port: u16,
    pub verdict: Verdict,
    /// The rule that decided: `default-deny`, `dns-proxy`, `dns-over-tls`, or `key=value` of
    /// a policy rule such as `allowed_domains=*.example.com`.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_source: Option<String>,
    /// The allowed name this address was resolved from, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Allowed connects of a process to one destination within a second are one record:
    /// how many it stands for (absent: 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
    /// CLOCK_BOOTTIME of the last of them, when there were several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_boot_ns: Option<u64>,
}

/// A connect, or a datagram sent, to a UNIX socket address (the cgroup connect_unix and
/// sendmsg_unix programs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocket {
    pub pid: u32,
    pub uid: u32,
    /// The address, escaped (see `escape`); for an abstract one, the name after its NUL.
    pub path: String,
    /// An address in the abstract namespace, not a file.
    #[serde(rename = "abstract", default, skip_serializing_if = "is_false")]
    pub abstract_name: bool,
    pub verdict: Verdict,
    /// The rule that decided: `session-socket-dir`, `not-canonical`, `abstract-scoped`,
    /// `default-deny`, or `allowed_unix_sockets=PATH`.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_source: Option<String>,
}

/// Something a BPF LSM program refused in the kernel (the `bpf_lsm` hook tier).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsmDenied {
    pub pid: u32,
    pub hook: LsmHook,
    /// The error the call got (`EPERM`, `EACCES`).
    pub errno: String,
    /// Why: `protected-path`, `signal-outside-session`, `ptrace-outside-session`,
    /// `bpf-in-session`.
    pub rule: String,
    /// file_open and the inode hooks: the protected path the file is (or lies beneath),
    /// escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<String>,
    /// task_kill, ptrace: the process outside the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<u32>,
    /// ptrace: the access mode (`PTRACE_MODE_*` bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptrace_mode: Option<u32>,
    /// bpf: the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_cmd: Option<u32>,
}

string_enum! {
    /// The BPF LSM hook that denied.
    LsmHook, "LSM hook" {
        FileOpen = "file_open",
        InodeCreate = "inode_create",
        InodeLink = "inode_link",
        InodeUnlink = "inode_unlink",
        InodeRename = "inode_rename",
        InodeMkdir = "inode_mkdir",
        InodeMknod = "inode_mknod",
        InodeSymlink = "inode_symlink",
        InodeRmdir = "inode_rmdir",
        TaskKill = "task_kill",
        PtraceAccessCheck = "ptrace_access_check",
        Bpf = "bpf",
    }
}

impl LsmHook {
    /// A hook about protected files (its denials name the protected path).
    pub fn about_files(self) -> bool {
        self.rule() == LsmHook::FileOpen.rule()
    }

    /// The rule name a denial by this hook records.
    pub const fn rule(self) -> &'static str {
        match self {
            LsmHook::FileOpen
            | LsmHook::InodeCreate
            | LsmHook::InodeLink
            | LsmHook::InodeUnlink
            | LsmHook::InodeRename
            | LsmHook::InodeMkdir
            | LsmHook::InodeMknod
            | LsmHook::InodeSymlink
            | LsmHook::InodeRmdir => "protected-path",
            LsmHook::TaskKill => "signal-outside-session",
            LsmHook::PtraceAccessCheck => "ptrace-outside-session",
            LsmHook::Bpf => "bpf-in-session",
        }
    }
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// A DNS query the proxy answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnsQuery {
    /// The queried name, escaped, without the root's trailing dot.
    pub name: String,
    pub qtype: String,
    pub transport: String,
    /// Source address of the query (the querying socket).
    pub client: String,
    pub verdict: Verdict,
    /// Who decided (see [`DecisionSource`]).
    #[serde(default)]
    pub source: DecisionSource,
    /// The approval request that decided it, when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_source: Option<String>,
    /// Response code sent back (NoError, NXDomain, Refused, ServFail, ...).
    pub rcode: String,
    /// Addresses of the answer, each now allowed for `allowed_secs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Time from receiving the query to releasing the answer.
    pub duration_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The DNS budget the lookup exceeded, when it did (then refused, or approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<dns_budget::Exceeded>,
}

/// A file system call of the session, or identical calls of one process within a second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileAccess {
    pub pid: u32,
    /// The path as the process passed it (relative paths stay relative), escaped.
    pub path: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub path_truncated: bool,
    /// The path's memory could not be read (`path` is then empty).
    #[serde(default, skip_serializing_if = "is_false")]
    pub path_unreadable: bool,
    /// The directory descriptor a relative path was resolved from (other than the cwd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirfd: Option<i32>,
    /// The new name of link and rename, the target of symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path2: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub path2_truncated: bool,
    /// open: the flags, symbolically (`O_WRONLY|O_CREAT|O_TRUNC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
    /// `ok`, or an errno name (`EACCES`, `ENOENT`...).
    pub result: String,
    /// How many identical calls this record stands for (same process, paths, flags, result,
    /// within a second of the first).
    pub count: u64,
    /// CLOCK_BOOTTIME of the last of them, when there were several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_boot_ns: Option<u64>,
}

string_enum! {
    /// Who or what took a decision.
    #[derive(Default)]
    DecisionSource, "decision source" {
        /// An administrator's requirement.
        Requirements = "requirements",
        /// The session's policy: rules chosen by the user within the requirements, the built-in
        /// defaults, the approval policy.
        #[default]
        Policy = "policy",
        /// The deterministic risk classifier.
        AutoReview = "auto_review",
        /// A person: at the terminal or through `warden approvals`.
        User = "user",
        /// The external reviewer command.
        Reviewer = "reviewer",
        /// Nobody answered in time.
        Timeout = "timeout",
    }
}

string_enum! {
    /// How far an approval reaches.
    Scope, "approval scope" {
        /// This request only.
        Once = "once",
        /// Identical requests for the rest of the session.
        Session = "session",
    }
}

string_enum! {
    RequestKind, "request kind" {
        Exec = "exec",
        Dns = "dns",
        /// git's credential helper asks for a stored credential (delivery `helper`).
        Credential = "credential",
        /// Live triage asks whether a session with this finding may go on (`triage.on_<severity>
        /// = "ask"`); the session is frozen until answered.
        Finding = "finding",
    }
}

string_enum! {
    RiskLevel, "risk level" {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

/// The auto-reviewer's assessment of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    pub level: RiskLevel,
    /// What raised it (or why it is low), for the person or reviewer who decides.
    pub reasons: Vec<String>,
}

/// What an approval request is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub request: RequestKind,
    /// The process that asked (the calling thread of an exec; the querying process of a DNS
    /// lookup when known, else 0).
    pub pid: u32,
    /// exec: the program's name for the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// exec: the arguments, escaped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// dns: the name; credential: the host it is asked for; escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// credential: the credential's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qtype: Option<String>,
}

/// A request that went to a person or to the reviewer command (written when it starts
/// waiting; its `approval` record follows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub id: String,
    #[serde(flatten)]
    pub subject: Subject,
    /// Why it needs approval (the rule, an unknown domain, the approval policy).
    pub why: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// Who is asked: `user` or `reviewer`.
    pub asked: DecisionSource,
    /// After this long without an answer it is denied.
    pub timeout_ms: u64,
}

/// The decision on a request for approval, whoever took it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    #[serde(flatten)]
    pub subject: Subject,
    pub verdict: Verdict,
    pub scope: Scope,
    pub source: DecisionSource,
    pub reason: String,
    /// Who answered, when a person did: `terminal`, or `uid N (name)` through the socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// The session's approval policy and reviewer.
    pub policy: String,
    pub reviewer: String,
    /// Time from the request to the decision, in microseconds.
    pub waited_us: u64,
}

/// Someone was refused by the approvals socket (not the session's user, not an approver,
/// or a process of a session trying to approve its own requests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRefused {
    pub peer_pid: u32,
    pub peer_uid: u32,
    pub reason: String,
}

/// The requirement files changed while the session ran. Accepted: the new set applies to new
/// sessions (this one keeps its settings). Refused: invalid or untrusted, the last good set
/// stays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequirementsChange {
    pub accepted: bool,
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

string_enum! {
    /// What became of one use of a credential.
    CredentialOutcome, "credential outcome" {
        /// `env`: the variable was set at launch; `helper`: the value was given to the asker.
        Handed = "handed",
        /// `inject`: the placeholder in the request's header was swapped for the value.
        Injected = "injected",
        /// `inject`: a request to the credential's host without the placeholder, sent as it was.
        PlaceholderAbsent = "placeholder_absent",
        /// `inject`: the value came back in a response and was replaced by the placeholder.
        ResponseRedacted = "response_redacted",
        /// `inject`: a request whose Host was not the TLS server name (421, not sent).
        MisdirectedHost = "misdirected_host",
        /// `inject`: a TLS connection for a host no credential is for (no handshake).
        UnlistedHost = "unlisted_host",
        /// `inject`: the real server could not be reached or verified (502, not sent).
        UpstreamFailed = "upstream_failed",
        /// Not handed over: expired, outside the login pin, a delivery the requirements do
        /// not allow, a host it is not for, or a person said no.
        Refused = "refused",
    }
}

string_enum! {
    /// Where a finding came from.
    FindingSource, "finding source" {
        /// Warden's own detection library.
        Builtin = "builtin",
        /// A user's Sigma rule (`--rules DIR`).
        Sigma = "sigma",
        /// A deviation from what earlier sessions of the workspace did.
        Baseline = "baseline",
    }
}

/// Consecutive records of the log: `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    pub first: u64,
    pub last: u64,
}

/// A detection of live triage fired in this session: what the session did that an honest
/// coding task does not (`warden triage` explains each detection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// The detection's id, e.g. `secret-exfiltration`.
    pub detection: String,
    pub source: FindingSource,
    pub severity: RiskLevel,
    /// MITRE ATT&CK technique ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
    /// One line, naming the first record of the evidence (escaped).
    pub narrative: String,
    /// The calls matched when it fired.
    pub count: u64,
    /// The records that made it fire, as seq ranges of this log.
    pub evidence: Vec<SeqRange>,
    pub action: TriageAction,
    /// The requirement that chose the action (`triage.on_high` and its file), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_source: Option<String>,
}

/// One use of a credential, or a refusal to hand one over. Never the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialUse {
    /// The credential's name (absent for a TLS connection no credential is for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    pub delivery: warden_wire::CredentialDelivery,
    pub outcome: CredentialOutcome,
    /// The host the use was for (`inject`, `helper`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The process that asked (`helper`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Why, for refusals and failures; how many values were redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A resource limit of the session refused something (e.g. forks at `pids.max`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitReached {
    /// `pids`: processes and threads.
    pub resource: String,
    pub limit: String,
    /// How many times the limit refused (e.g. failed forks), over the session.
    pub hits: u64,
}

/// Events the kernel could not hand over since the previous `events.lost` record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventsLost {
    pub exec: u64,
    pub fork: u64,
    pub exit: u64,
    #[serde(default)]
    pub network: u64,
    /// File system calls.
    #[serde(default)]
    pub file: u64,
    /// UNIX socket decisions.
    #[serde(default)]
    pub unix: u64,
    /// BPF LSM denials (the denial itself still happened).
    #[serde(default)]
    pub lsm: u64,
    /// Kernel records Warden could not decode (a Warden bug; counted, never dropped silently).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub undecodable: u64,
    /// All events lost in this session so far, this record included.
    pub total: u64,
}

/// A prompt the agent reported through the agent API. The text is kept only where the
/// requirements allow it (`telemetry.log_prompts`); otherwise its size and hash stand in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentPrompt {
    /// The reporting process (SO_PEERCRED).
    pub pid: u32,
    /// Size of the prompt in bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of the prompt: the same prompt gives the same hash.
    pub sha256: String,
    /// The prompt, escaped, at most `PROMPT_MAX` bytes of it; absent when redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub text_truncated: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub redacted: bool,
}

/// Most bytes of a prompt kept in the log when prompts may be logged.
pub const PROMPT_MAX: usize = 16 * 1024;

string_enum! {
    ToolCallPhase, "tool call phase" {
        Start = "start",
        End = "end",
    }
}

/// The agent started or finished a tool call. Between the two, every kernel event of the
/// starting process and its descendants carries the call's id (`tool_call_id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentToolCall {
    pub pid: u32,
    /// The agent's id for the call, escaped.
    pub id: String,
    pub phase: ToolCallPhase,
    /// The tool's name, escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How it ended, in the agent's words (`ok`, `error`, ...), escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Processes tagged with the call when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u64>,
}

string_enum! {
    BacklogAction, "backlog action" {
        /// The session's processes were frozen: the backlog reached its limit.
        Paused = "paused",
        /// They run again: the backlog drained (or the session is ending).
        Resumed = "resumed",
        /// Records were skipped by the exporter (they stay in this log).
        Dropped = "dropped",
    }
}

/// Telemetry waiting for the collector reached its limit (`telemetry.max_export_backlog_mib`),
/// and what was done about it (`telemetry.export_backlog_policy`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportBacklog {
    pub action: BacklogAction,
    /// Bytes of log not yet acknowledged by the collector.
    pub backlog_bytes: u64,
    pub limit_bytes: u64,
    /// `dropped`: the records not sent, `from_seq` to `to_seq` inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

string_enum! {
    EndReason, "end reason" {
        /// The command ended by itself.
        Exited = "exited",
        /// Warden received a signal and ended the session.
        Interrupted = "interrupted",
        /// The command could not be started.
        SpawnFailed = "spawn_failed",
        /// The supervisor died; a later Warden ended the session (`status` is then -1).
        SupervisorLost = "supervisor_lost",
        /// Live triage found what the requirements say ends a session (`finding` records).
        Triage = "triage",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    pub reason: EndReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// What `warden run` exits with: the code, or 128 + signal.
    pub status: i32,
    /// Processes still in the session when the command ended, killed by Warden.
    pub killed: u32,
    pub duration_ms: u64,
    /// Records in this log before this one.
    pub records: u64,
    pub lost: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// The agent guard's records, in the machine's guard log (`STATE_DIR/guard/events.jsonl`, whose
// records carry the session `agent-guard`): listed agent programs may only run inside a
// session, and a start anywhere else is killed in the kernel.

string_enum! {
    /// How the guard came to enforce its list.
    GuardArming, "guard arming" {
        /// Loaded into the kernel by this Warden.
        Loaded = "loaded",
        /// Found pinned by an earlier Warden, whose kills meanwhile follow this record.
        Readopted = "readopted",
        /// The requirements changed.
        Updated = "updated",
        /// A listed file changed on disk (an update of the agent), and was looked up again.
        Refreshed = "refreshed",
    }
}

/// A listed agent program as the guard finds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardedProgram {
    /// The listed path, escaped.
    pub path: String,
    /// The listed digest (hex), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The file at the path as the kernel knows it, `MAJOR:MINOR:INODE`; absent when there is
    /// no file there (it is then found by its path alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A script: the kernel runs its interpreter, so it is found by the path it is started by.
    #[serde(default, skip_serializing_if = "is_false")]
    pub script: bool,
    /// Files of this size are hashed when they start outside a session: the size of the
    /// listed digest's content (known when the file at the path holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies_of_size: Option<u64>,
}

/// The guard enforces this list from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardArmed {
    pub how: GuardArming,
    pub programs: Vec<GuardedProgram>,
    /// What the guard cannot do as listed (a digest the file at the path does not have, a
    /// path too long to compare), escaped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub warden_version: String,
    pub supervisor_pid: u32,
    /// The kernel's id of the guard's program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_program: Option<u32>,
}

string_enum! {
    /// Why the guard killed an exec.
    GuardVerdict, "guard verdict" {
        /// The image is the listed file itself (its device and inode).
        Listed = "listed",
        /// It was started by a listed path: a script (whose interpreter the kernel runs), or a
        /// file put there since the guard last looked.
        ListedPath = "listed_path",
        /// A file of another name whose content has a listed digest.
        Copy = "copy",
        /// A file of the size of a listed digest's content, with other content: killed all the
        /// same (the kernel compares sizes only), and recorded so that it shows.
        SizeMatch = "size_match",
        /// Of a listed digest's size, but the file could not be found again to hash (gone, or
        /// started by a relative path that could not be resolved).
        Unverified = "unverified",
    }
}

/// An exec outside every session that the guard killed before its first instruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardKilled {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// The user's name, when the system knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The path as passed to execve, escaped.
    pub filename: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub filename_truncated: bool,
    /// Arguments, each escaped; the last one is partial when `argv_truncated`.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_unreadable: bool,
    pub verdict: GuardVerdict,
    /// The listed program it is (its listed path, escaped); absent when nothing listed now
    /// matches (the list changed since the kill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The file the image runs (for a script, its interpreter), `MAJOR:MINOR:INODE`.
    pub file: String,
    pub size: u64,
    /// The file's SHA-256 (hex), when it was hashed (`copy`, `size_match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A line telling how to start it under Warden went to its parent's terminal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub told_user: bool,
}

/// The guard stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardDisarmed {
    /// The pins were removed: nothing kills listed programs any more. Otherwise the kernel
    /// goes on killing them, unrecorded until a Warden re-adopts the guard.
    pub unpinned: bool,
    pub supervisor_pid: u32,
}
