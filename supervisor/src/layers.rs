//! Which kernel-dependent confinement layers a session gets on this kernel, and what Warden
//! does where one is missing. `warden doctor` prints it, `session.start` records it, and the
//! `required_layers` requirement refuses a session without the layers it names.
use warden_requirements::{Resolved, values::KernelLayer};

/// What the kernel offers, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelFacts {
    /// 0: no Landlock.
    pub landlock_abi: u32,
    /// The cgroup pids controller reaches session cgroups (v2, or v1 beside it).
    pub pids_controller: bool,
    /// The cgroup connect_unix/sendmsg_unix hooks exist.
    pub unix_socket_hooks: bool,
    /// The BPF LSM programs run (the session's hook tier is `bpf_lsm`).
    pub bpf_lsm: bool,
}

/// One layer on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerState {
    pub layer: KernelLayer,
    /// `None`: in force.
    pub missing: Option<Missing>,
}

/// Why a layer is not in force, and what Warden does instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing {
    pub needs: &'static str,
    pub instead: &'static str,
}

/// The Landlock ABI each Landlock layer needs.
fn landlock_abi_for(layer: KernelLayer) -> Option<u32> {
    use KernelLayer::*;
    match layer {
        LandlockFilesystem => Some(1),
        LandlockRefer => Some(2),
        LandlockTruncate => Some(warden_agent::syscall_filter::LANDLOCK_TRUNCATE_ABI),
        LandlockIoctlDev => Some(5),
        LandlockScopeSignal | LandlockScopeAbstractUnix => {
            Some(warden_agent::syscall_filter::LANDLOCK_SCOPE_ABI)
        }
        PidsLimit | UnixSocketHooks | BpfLsm => None,
    }
}

/// What the layer needs from the kernel, and what a user gets without it.
fn without(layer: KernelLayer) -> Missing {
    use KernelLayer::*;
    let (needs, instead) = match layer {
        LandlockFilesystem => (
            "Landlock (Linux 5.13, `landlock` in the lsm= list)",
            "sessions do not start, except in danger-full-access mode",
        ),
        LandlockRefer => (
            "Landlock ABI 2 (Linux 5.19)",
            "every link or rename into another directory is refused inside the sandbox",
        ),
        LandlockTruncate => (
            "Landlock ABI 3 (Linux 6.2)",
            "the seccomp filter refuses truncate(2) by path everywhere, and records it \
             (ftruncate of a file opened for writing still works)",
        ),
        LandlockIoctlDev => (
            "Landlock ABI 5 (Linux 6.10)",
            "ioctls on the devices the sandbox may open are not confined (the seccomp filter \
             still refuses TIOCSTI and TIOCLINUX)",
        ),
        LandlockScopeSignal => (
            "Landlock ABI 6 (Linux 6.12)",
            "the supervisor decides every signal and F_SETOWN: only those whose targets are \
             all in the session go through (pidfd_send_signal is refused)",
        ),
        LandlockScopeAbstractUnix => (
            "Landlock ABI 6 (Linux 6.12)",
            "the agent can connect to abstract UNIX sockets of services outside the session",
        ),
        PidsLimit => (
            "the cgroup pids controller (CONFIG_CGROUP_PIDS)",
            "the session's process count is not limited",
        ),
        UnixSocketHooks => (
            "cgroup connect_unix/sendmsg_unix programs (Linux 6.7), or BPF LSM (the bpf_lsm \
             hook tier) before that",
            "pathname UNIX sockets outside the session stay reachable, except those in the \
             user's runtime directory (/run/user/UID), which the agent's mount namespace hides; \
             the variables naming host sockets are still not passed on",
        ),
        BpfLsm => (
            "`bpf` in the kernel's active LSM list (append it to the current lsm= list; \
             `warden doctor` shows the hook tiers)",
            "Landlock, seccomp and the supervisor's decisions hold alone",
        ),
    };
    Missing { needs, instead }
}

/// Every layer, in force or not, on a kernel with `facts`.
pub fn on_kernel(facts: KernelFacts) -> Vec<LayerState> {
    KernelLayer::ALL
        .iter()
        .map(|&layer| {
            let present = match (layer, landlock_abi_for(layer)) {
                (_, Some(abi)) => facts.landlock_abi >= abi,
                (KernelLayer::UnixSocketHooks, None) => facts.unix_socket_hooks,
                (KernelLayer::BpfLsm, None) => facts.bpf_lsm,
                (_, None) => facts.pids_controller,
            };
            LayerState {
                layer,
                missing: (!present).then(|| without(layer)),
            }
        })
        .collect()
}

/// The names of the layers in force and of those missing, as `session.start` records them.
pub fn names(states: &[LayerState]) -> (Vec<String>, Vec<String>) {
    let (present, missing): (Vec<_>, Vec<_>) = states.iter().partition(|s| s.missing.is_none());
    let name = |s: &&LayerState| s.layer.as_str().to_string();
    (
        present.iter().map(name).collect(),
        missing.iter().map(name).collect(),
    )
}

/// A requirement names a layer this kernel lacks.
#[derive(Debug, thiserror::Error)]
#[error(
    "requirement required_layers at {origin} names {layer}, which this kernel does not give \
     (it needs {}): no session starts here until it does (`warden doctor` lists the layers)",
    missing.needs
)]
pub struct MissingLayer {
    pub layer: KernelLayer,
    pub origin: String,
    pub missing: Missing,
}

/// Refuses the session when a required layer is missing (the first one, with its requirement).
pub fn check_required(
    states: &[LayerState],
    required: &[Resolved<KernelLayer>],
) -> Result<(), MissingLayer> {
    for req in required {
        let state = states.iter().find(|s| s.layer == req.value);
        if let Some(missing) = state.and_then(|s| s.missing) {
            let origin = match &req.source {
                warden_requirements::Source::Requirement { origin, .. } => origin.to_string(),
                other => other.to_string(),
            };
            return Err(MissingLayer {
                layer: req.value,
                origin,
                missing,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use KernelLayer::*;

    fn missing(facts: KernelFacts) -> Vec<KernelLayer> {
        on_kernel(facts)
            .into_iter()
            .filter(|s| s.missing.is_some())
            .map(|s| s.layer)
            .collect()
    }

    #[test]
    fn layers_follow_the_kernel() {
        let k = |landlock_abi, pids_controller, unix_socket_hooks| KernelFacts {
            landlock_abi,
            pids_controller,
            unix_socket_hooks,
            bpf_lsm: true,
        };
        let cases: &[(KernelFacts, &[KernelLayer])] = &[
            // Debian's 6.12 with `bpf` in its LSM list.
            (k(7, true, true), &[]),
            // This host (6.18): no BPF LSM.
            (
                KernelFacts {
                    bpf_lsm: false,
                    ..k(7, true, true)
                },
                &[BpfLsm],
            ),
            (k(6, false, true), &[PidsLimit]),
            // Debian 12's 6.1.
            (
                k(2, true, false),
                &[
                    LandlockTruncate,
                    LandlockIoctlDev,
                    LandlockScopeSignal,
                    LandlockScopeAbstractUnix,
                    UnixSocketHooks,
                ],
            ),
            // Ubuntu 22.04's 5.15.
            (
                k(1, true, false),
                &[
                    LandlockRefer,
                    LandlockTruncate,
                    LandlockIoctlDev,
                    LandlockScopeSignal,
                    LandlockScopeAbstractUnix,
                    UnixSocketHooks,
                ],
            ),
            (
                k(0, true, false),
                &[
                    LandlockFilesystem,
                    LandlockRefer,
                    LandlockTruncate,
                    LandlockIoctlDev,
                    LandlockScopeSignal,
                    LandlockScopeAbstractUnix,
                    UnixSocketHooks,
                ],
            ),
        ];
        for (facts, want) in cases {
            assert_eq!(missing(*facts), *want, "{facts:?}");
        }
    }

    #[test]
    fn names_split_present_from_missing() {
        let states = on_kernel(KernelFacts {
            landlock_abi: 5,
            pids_controller: true,
            unix_socket_hooks: true,
            bpf_lsm: true,
        });
        let (present, missing) = names(&states);
        assert_eq!(
            missing,
            ["landlock.scope_signal", "landlock.scope_abstract_unix"]
        );
        assert_eq!(present.len() + missing.len(), KernelLayer::ALL.len());
        assert!(present.contains(&"pids_limit".to_string()));
    }
}
