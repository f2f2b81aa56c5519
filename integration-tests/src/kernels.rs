//! What each kernel of the VM matrix (integration-tests/vm/kernels) and of this machine gives
//! Warden, as measured. Tests assert these facts, not whatever the machine happens to report,
//! so a kernel that loses a feature fails them.

pub struct KnownKernel {
    /// `uname -r` starts with this.
    pub release_prefix: &'static str,
    pub landlock_abi: u32,
    /// BPF LSM programs load and attach (lsm= includes `bpf`, as the VM boots them).
    pub bpf_lsm: bool,
    pub fentry: bool,
    pub kprobe: bool,
    /// bpf() runs the LSM `bpf` hook before refusing an unprivileged caller (6.9's per-command
    /// checks); before that the caller is refused first and the hook never sees the call.
    pub lsm_bpf_hook_first: bool,
    /// `KernelLayer` names `warden doctor` and `session.start` must report missing, but for
    /// `bpf_lsm`, which depends on the boot (see `missing_layers`).
    pub missing: &'static [&'static str],
}

impl KnownKernel {
    /// The hook tier Warden takes here: `bpf_lsm` where `bpf` is an active LSM of this boot
    /// (the VM matrix boots one kernel without it, as Ubuntu ships).
    pub fn best_tier(&self) -> &'static str {
        if self.bpf_lsm && bpf_lsm_active() {
            "bpf_lsm"
        } else if self.fentry {
            "fentry"
        } else {
            "tracepoint"
        }
    }

    /// Every layer this boot does not give, in `KernelLayer` order. On the bpf_lsm tier the
    /// LSM socket hooks stand in for missing cgroup UNIX socket hooks.
    pub fn missing_layers(&self) -> Vec<&'static str> {
        let lsm = self.best_tier() == "bpf_lsm";
        let mut v: Vec<&str> = self
            .missing
            .iter()
            .copied()
            .filter(|l| !(lsm && *l == "unix_socket_hooks"))
            .collect();
        if !lsm {
            v.push("bpf_lsm");
        }
        v
    }
}

/// `bpf` is in this boot's active LSM list (securityfs; Warden mounts it where nothing did).
pub fn bpf_lsm_active() -> bool {
    let list = std::path::Path::new("/sys/kernel/security/lsm");
    if !list.exists() {
        let _ = nix::mount::mount(
            Some("securityfs"),
            "/sys/kernel/security",
            Some("securityfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
    std::fs::read_to_string(list).is_ok_and(|l| l.trim().split(',').any(|m| m == "bpf"))
}

const LANDLOCK_3_AND_LATER_AND_UNIX_HOOKS: &[&str] = &[
    "landlock.truncate",
    "landlock.ioctl_dev",
    "landlock.scope_signal",
    "landlock.scope_abstract_unix",
    "unix_socket_hooks",
];

pub const KNOWN: &[KnownKernel] = &[
    // The project's machines (platform.md): built without kprobes; LSM and fentry refused.
    KnownKernel {
        release_prefix: "6.18.",
        landlock_abi: 7,
        bpf_lsm: false,
        fentry: false,
        kprobe: false,
        lsm_bpf_hook_first: true,
        missing: &[],
    },
    // Debian 12's own kernel.
    KnownKernel {
        release_prefix: "6.1.0-",
        landlock_abi: 2,
        bpf_lsm: true,
        fentry: true,
        kprobe: true,
        lsm_bpf_hook_first: false,
        missing: LANDLOCK_3_AND_LATER_AND_UNIX_HOOKS,
    },
    // Debian 12's backported 6.12.
    KnownKernel {
        release_prefix: "6.12.",
        landlock_abi: 6,
        bpf_lsm: true,
        fentry: true,
        kprobe: true,
        lsm_bpf_hook_first: true,
        missing: &[],
    },
];

pub fn release() -> String {
    nix::sys::utsname::uname()
        .expect("uname")
        .release()
        .to_string_lossy()
        .into_owned()
}

/// This kernel's measured facts, or `None` (with the reason printed) on a kernel not in the
/// table: tests then check only what does not depend on the kernel.
pub fn this_kernel() -> Option<&'static KnownKernel> {
    let release = release();
    let known = KNOWN.iter().find(|k| release.starts_with(k.release_prefix));
    if known.is_none() {
        println!("kernel {release} has no measured facts in integration-tests/src/kernels.rs");
    }
    known
}
