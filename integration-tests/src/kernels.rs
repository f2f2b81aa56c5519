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
    /// `KernelLayer` names `warden doctor` and `session.start` must report missing.
    pub missing_layers: &'static [&'static str],
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
        missing_layers: &[],
    },
    // Debian 12's own kernel.
    KnownKernel {
        release_prefix: "6.1.0-",
        landlock_abi: 2,
        bpf_lsm: true,
        fentry: true,
        kprobe: true,
        missing_layers: LANDLOCK_3_AND_LATER_AND_UNIX_HOOKS,
    },
    // Debian 12's backported 6.12.
    KnownKernel {
        release_prefix: "6.12.",
        landlock_abi: 6,
        bpf_lsm: true,
        fentry: true,
        kprobe: true,
        missing_layers: &[],
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
