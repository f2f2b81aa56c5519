//! Hook tiers: how the kernel programs see the session's file calls, and whether the kernel
//! also denies in the kernel with BPF LSM. Chosen at start-up, best first, from what the
//! running kernel accepts; `session.start` records the tier, `warden doctor` shows it.
//!
//! Exec, fork and exit are seen on `sched_process_*` tracepoints and the network on cgroup
//! programs in every tier: those cost nothing to tasks outside the session. Only file
//! observation differs, and what it costs differs a lot: a program on the syscall tracepoints
//! puts every task of the machine on the slow system-call path; fexit programs run only for
//! the calls they are attached to.
use std::path::Path;

use warden_wire::string_enum;

string_enum! {
    /// A hook tier, best first.
    HookTier, "hook tier" {
        /// BPF LSM programs deny in the kernel (beside Landlock and seccomp); file calls are
        /// observed with fexit.
        BpfLsm = "bpf_lsm",
        /// File calls observed with fexit on the system calls' own functions.
        Fentry = "fentry",
        /// File calls observed on their `syscalls:sys_enter_*`/`sys_exit_*` tracepoints.
        Tracepoint = "tracepoint",
    }
}

impl HookTier {
    /// What a user gets on this tier (for `warden doctor`).
    pub const fn gives(self) -> &'static str {
        match self {
            HookTier::BpfLsm => {
                "file calls observed by fexit on their system calls (no cost to other calls or \
                 other processes); in-kernel denial by BPF LSM beside Landlock and seccomp: \
                 signals and ptrace of processes outside the session, bpf(), protected files \
                 (even beneath write roots), UNIX sockets outside the session"
            }
            HookTier::Fentry => {
                "file calls observed by fexit on their system calls (no cost to other calls or \
                 other processes); denial by Landlock and seccomp only"
            }
            HookTier::Tracepoint => {
                "file calls observed on their syscall tracepoints: every system call of every \
                 process on the machine takes the kernel's slow path while a session runs; \
                 denial by Landlock and seccomp only"
            }
        }
    }

    /// What the kernel needs for this tier (for `warden doctor`, when it is not given).
    pub const fn needs(self) -> &'static str {
        match self {
            HookTier::BpfLsm => {
                "`bpf` in the kernel's active LSM list (CONFIG_BPF_LSM): append it to the \
                 current list, e.g. lsm=<the list in /sys/kernel/security/lsm>,bpf on the \
                 kernel command line; an lsm= without the current entries turns those off"
            }
            HookTier::Fentry => "BPF trampolines (CONFIG_BPF_JIT, CONFIG_FUNCTION_TRACER, BTF)",
            HookTier::Tracepoint => "CONFIG_BPF_EVENTS and CONFIG_FTRACE_SYSCALLS",
        }
    }
}

/// `--hook-tier`: the best the kernel gives, or exactly one tier (a session fails to start
/// when the kernel does not give it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TierChoice {
    #[default]
    Auto,
    Only(HookTier),
}

impl TierChoice {
    /// The tiers to try, best first.
    pub fn candidates(self) -> Vec<HookTier> {
        match self {
            TierChoice::Auto => HookTier::ALL.to_vec(),
            TierChoice::Only(t) => vec![t],
        }
    }
}

/// `auto` and the tiers' own names, spelled once (by [`HookTier`]).
impl clap::ValueEnum for TierChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            TierChoice::Auto,
            TierChoice::Only(HookTier::BpfLsm),
            TierChoice::Only(HookTier::Fentry),
            TierChoice::Only(HookTier::Tracepoint),
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            TierChoice::Auto => "auto",
            TierChoice::Only(t) => t.as_str(),
        }))
    }
}

/// The tier a session got, and why each better one was passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierReport {
    pub tier: HookTier,
    pub unavailable: Vec<(HookTier, String)>,
}

impl TierReport {
    /// `TIER: why` lines, as `session.start` records them.
    pub fn unavailable_lines(&self) -> Vec<String> {
        self.unavailable
            .iter()
            .map(|(t, why)| format!("{t}: {why}"))
            .collect()
    }
}

/// The kernel's active LSMs, in order (securityfs's `lsm` file; securityfs is mounted when
/// nothing did).
pub fn active_lsms() -> std::io::Result<Vec<String>> {
    const SECURITYFS: &str = "/sys/kernel/security";
    let file = Path::new(SECURITYFS).join("lsm");
    super::mount_once::mount_once("securityfs", Path::new(SECURITYFS), None, || file.exists())?;
    Ok(parse_lsm_list(&std::fs::read_to_string(&file)?))
}

fn parse_lsm_list(text: &str) -> Vec<String> {
    text.trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The kernel function that implements system call `name` on this architecture.
pub fn syscall_function(name: &str) -> String {
    #[cfg(target_arch = "x86_64")]
    const PREFIX: &str = "__x64_sys_";
    #[cfg(target_arch = "aarch64")]
    const PREFIX: &str = "__arm64_sys_";
    format!("{PREFIX}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_best_first() {
        for &t in HookTier::ALL {
            assert_eq!(t.as_str().parse(), Ok(t));
        }
        assert!(HookTier::BpfLsm < HookTier::Fentry && HookTier::Fentry < HookTier::Tracepoint);
        assert!("kprobe".parse::<HookTier>().is_err());
    }

    #[test]
    fn choices_name_their_candidates() {
        for (choice, want) in [
            (TierChoice::Auto, HookTier::ALL.to_vec()),
            (TierChoice::Only(HookTier::BpfLsm), vec![HookTier::BpfLsm]),
            (TierChoice::Only(HookTier::Fentry), vec![HookTier::Fentry]),
            (
                TierChoice::Only(HookTier::Tracepoint),
                vec![HookTier::Tracepoint],
            ),
        ] {
            assert_eq!(choice.candidates(), want, "{choice:?}");
        }
        // `--hook-tier` takes `auto` and each tier's own name.
        use clap::ValueEnum;
        let names: Vec<String> = TierChoice::value_variants()
            .iter()
            .map(|c| c.to_possible_value().unwrap().get_name().to_string())
            .collect();
        assert_eq!(names, ["auto", "bpf_lsm", "fentry", "tracepoint"]);
    }

    #[test]
    fn lsm_lists() {
        for (text, want) in [
            (
                "lockdown,capability,landlock,bpf\n",
                &["lockdown", "capability", "landlock", "bpf"][..],
            ),
            ("capability,yama", &["capability", "yama"]),
            ("\n", &[]),
        ] {
            assert_eq!(parse_lsm_list(text), want, "{text:?}");
        }
    }

    #[test]
    fn syscall_functions_carry_the_architecture_prefix() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(syscall_function("openat"), "__x64_sys_openat");
    }
}
