//! Signals the seccomp filter hands over: kill and its kin. Threat: the agent (possibly root)
//! ends or stops the supervisor, or disturbs the user's other processes. Landlock ABI 6
//! scopes signals to the sandbox; on older kernels the filter sends every signal call here,
//! elsewhere only those aimed at the supervisor's pid. A signal goes through only when every
//! process it can reach is in the session: a thread id of the supervisor, its process group
//! (which the command shares), kill(-1) and a pid with high bits set (the kernel reads an
//! int) are all outside.

/// Whether the call is decided here: the kill family, and `fcntl`, which the filter hands
/// over only for F_SETOWN and F_SETOWN_EX (the file's owner gets SIGIO). `pidfd_send_signal`
/// is refused outright: a pidfd can come from opening /proc/PID, and nothing tells its target.
pub fn decides(syscall: &str) -> bool {
    syscall == "fcntl" || warden_agent::syscall_filter::SIGNALS.contains(&syscall)
}

const F_SETOWN: u64 = 8;
const SIGIO: u64 = 29;

/// Whom a signal call would reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// This process or thread (a thread id reaches its whole process through kill).
    Task(u32),
    /// Every member of this process group; 0: the caller's own.
    Group(u32),
    /// Every process the caller may signal.
    Everyone,
    /// An argument the kernel refuses anyway (EINVAL, ESRCH): let it answer.
    Invalid,
}

/// The pid argument as the kernel reads it: a C int in the low 32 bits.
fn pid_arg(raw: u64) -> i32 {
    raw as u32 as i32
}

/// What `syscall` with `args` would reach, and the signal number.
pub fn targets(syscall: &str, args: &[u64; 6]) -> (Targets, u64) {
    let pid = pid_arg(args[0]);
    let task = if pid > 0 {
        Targets::Task(pid as u32)
    } else {
        Targets::Invalid
    };
    match syscall {
        "kill" => {
            let t = match pid {
                p if p > 0 => Targets::Task(p as u32),
                0 => Targets::Group(0),
                -1 => Targets::Everyone,
                // i32::MIN has no positive group id: the kernel answers ESRCH.
                p => p
                    .checked_neg()
                    .map_or(Targets::Invalid, |g| Targets::Group(g as u32)),
            };
            (t, args[1])
        }
        // F_SETOWN: a pid, or minus a process group; 0 clears the owner. F_SETOWN_EX names
        // its target in memory, which could change after a check: refused.
        "fcntl" if args[1] as u32 as u64 == F_SETOWN => {
            let t = match pid_arg(args[2]) {
                0 => Targets::Invalid,
                p if p > 0 => Targets::Task(p as u32),
                p => p
                    .checked_neg()
                    .map_or(Targets::Invalid, |g| Targets::Group(g as u32)),
            };
            (t, SIGIO)
        }
        "fcntl" => (Targets::Everyone, SIGIO),
        "tkill" | "rt_sigqueueinfo" => (task, args[1]),
        // tgkill(tgid, tid, sig): the kernel delivers only if tid is a thread of tgid.
        "tgkill" | "rt_tgsigqueueinfo" => (task, args[2]),
        _ => (Targets::Invalid, 0),
    }
}

/// What the decision needs to know of the system.
pub trait Processes {
    fn in_session(&self, pid: u32) -> bool;
    fn process_group(&self, pid: u32) -> Option<u32>;
    fn group_members(&self, pgid: u32) -> Vec<u32>;
}

/// Whether the call may proceed. Signal 0 sends nothing (it only asks whether the target
/// exists), so it always may.
pub fn permitted(syscall: &str, args: &[u64; 6], caller: u32, procs: &impl Processes) -> bool {
    let (targets, signal) = targets(syscall, args);
    if signal == 0 {
        return true;
    }
    match targets {
        Targets::Invalid => true,
        Targets::Everyone => false,
        Targets::Task(pid) => procs.in_session(pid),
        Targets::Group(pgid) => {
            let pgid = match pgid {
                0 => match procs.process_group(caller) {
                    Some(g) => g,
                    None => return false,
                },
                g => g,
            };
            let members = procs.group_members(pgid);
            !members.is_empty() && members.iter().all(|&m| procs.in_session(m))
        }
    }
}

/// The live system, read from /proc.
pub struct Proc<'a> {
    /// The session cgroup, as /proc/PID/cgroup shows it.
    pub session_cgroup: &'a str,
}

/// The process group field of /proc/PID/stat (after the command name, which may hold spaces
/// and parentheses: the last `)` ends it).
fn stat_pgrp(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

impl Processes for Proc<'_> {
    fn in_session(&self, pid: u32) -> bool {
        crate::cgroup::holds_pid(self.session_cgroup, pid)
    }

    fn process_group(&self, pid: u32) -> Option<u32> {
        stat_pgrp(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    fn group_members(&self, pgid: u32) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| self.process_group(pid) == Some(pgid))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session processes 100-199; the supervisor is 50 (threads 51, 52); groups: 50 holds the
    /// supervisor and the command, 100 only session processes.
    struct Fake;

    impl Processes for Fake {
        fn in_session(&self, pid: u32) -> bool {
            (100..200).contains(&pid)
        }
        fn process_group(&self, pid: u32) -> Option<u32> {
            match pid {
                101 => Some(50),
                100..200 => Some(100),
                _ => None,
            }
        }
        fn group_members(&self, pgid: u32) -> Vec<u32> {
            match pgid {
                50 => vec![50, 101],
                100 => vec![100, 102, 103],
                _ => vec![],
            }
        }
    }

    fn args(a: &[u64]) -> [u64; 6] {
        let mut out = [0; 6];
        out[..a.len()].copy_from_slice(a);
        out
    }

    #[test]
    fn a_signal_goes_through_only_inside_the_session() {
        const KILL: u64 = 9;
        const CONT: u64 = 18;
        let neg = |g: i64| g as u64;
        let cases: &[(&str, &[u64], u32, bool)] = &[
            ("kill", &[150, KILL], 102, true),
            ("kill", &[50, KILL], 102, false),
            // A thread of the supervisor reaches the supervisor.
            ("kill", &[51, KILL], 102, false),
            ("tkill", &[52, KILL], 102, false),
            ("tkill", &[103, KILL], 102, true),
            // The kernel reads an int: high bits do not hide the supervisor.
            ("kill", &[(1 << 32) | 50, KILL], 102, false),
            ("kill", &[(1 << 32) | 150, KILL], 102, true),
            ("kill", &[neg(-1), KILL], 102, false),
            ("kill", &[0xffff_ffff, CONT], 102, false),
            // The caller's own group: all in the session, or shared with the supervisor.
            ("kill", &[0, KILL], 102, true),
            ("kill", &[0, KILL], 101, false),
            ("kill", &[neg(-100), KILL], 102, true),
            ("kill", &[neg(-50), CONT], 102, false),
            // An empty group is nobody's to signal.
            ("kill", &[neg(-77), KILL], 102, false),
            ("tgkill", &[50, 51, KILL], 102, false),
            ("tgkill", &[150, 151, KILL], 102, true),
            ("rt_sigqueueinfo", &[50, KILL, 0], 102, false),
            ("rt_tgsigqueueinfo", &[50, 50, KILL, 0], 102, false),
            ("rt_tgsigqueueinfo", &[120, 121, KILL, 0], 102, true),
            // Signal 0 only asks whether the target exists.
            ("kill", &[50, 0], 102, true),
            // F_SETOWN makes the target the receiver of SIGIO.
            ("fcntl", &[3, 8, 50], 102, false),
            ("fcntl", &[3, 8, 150], 102, true),
            ("fcntl", &[3, 8, neg(-50)], 102, false),
            ("fcntl", &[3, 8, 0], 102, true),
            ("fcntl", &[3, 15, 0x7ffd_0000], 102, false),
            // Arguments the kernel refuses itself.
            ("tkill", &[0, KILL], 102, true),
            ("kill", &[0x8000_0000, KILL], 102, true),
        ];
        for &(call, a, caller, want) in cases {
            assert_eq!(
                permitted(call, &args(a), caller, &Fake),
                want,
                "{call}{a:?} from {caller}"
            );
        }
    }

    #[test]
    fn the_process_group_is_read_past_the_command_name() {
        assert_eq!(stat_pgrp("42 (a) b) c) S 1 42 42 0 -1"), Some(42));
        assert_eq!(stat_pgrp("7 (sh) R 3 9 9 0"), Some(9));
        assert_eq!(stat_pgrp("garbage"), None);
    }
}
