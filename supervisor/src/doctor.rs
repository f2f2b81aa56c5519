//! `warden doctor`: what this machine gives Warden, checked by trying it.
use std::{fmt::Write as _, path::Path};

use aya::{
    Btf, Ebpf,
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSockAddr, FEntry, KProbe, Lsm, RawTracePoint,
        TracePoint,
    },
};

use crate::{
    cgroup::{self, SessionCgroup},
    kernel::hook_tier::{HookTier, TierReport},
    kernel::{
        bpffs, btf,
        programs::{KernelPrograms, LoadOptions, PROBES_OBJECT},
        tracefs,
    },
    layers::{self, LayerState},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Warden refuses to run without it.
    Required,
    /// A layer Warden uses when present (reported, not fatal).
    Optional,
}

#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub need: Need,
    pub result: Result<String, String>,
    pub fix: &'static str,
}

/// `state_dir`: where a verifier refusal's whole log is saved. Also returns the hook tier
/// Warden's programs got, when they loaded.
pub fn run_checks(state_dir: &Path) -> (Vec<Check>, Option<TierReport>) {
    let mut tier = None;
    let mut checks = Vec::new();
    let mut add = |name, need, result, fix| {
        checks.push(Check {
            name,
            need,
            result,
            fix,
        })
    };
    let root = nix::unistd::Uid::effective().is_root();
    add(
        "running as root",
        Need::Required,
        if root {
            Ok("euid 0".into())
        } else {
            Err("not root".into())
        },
        "run warden with sudo",
    );
    add(
        "kernel version",
        Need::Optional,
        kernel_version(),
        "the checks below decide whether Warden runs; docs/kernels.md says what older kernels lack",
    );
    add(
        "BTF (kernel type information)",
        Need::Required,
        btf_check(),
        "boot a kernel built with CONFIG_DEBUG_INFO_BTF=y",
    );
    let cg_root = cgroup::find_cgroup2_mount();
    add(
        "cgroup v2",
        Need::Required,
        cg_root
            .as_ref()
            .map(|p| format!("mounted at {}", p.display()))
            .map_err(|e| e.to_string()),
        "mount -t cgroup2 none /sys/fs/cgroup/unified (or boot with systemd.unified_cgroup_hierarchy)",
    );
    add(
        "tracefs",
        Need::Required,
        tracefs::ensure_mounted()
            .and_then(|r| tracefs::Format::read(&r, "sched", "sched_process_exec"))
            .map(|_| format!("{} (mounted by Warden when missing)", tracefs::MOUNT_POINT))
            .map_err(|e| e.to_string()),
        "mount -t tracefs nodev /sys/kernel/tracing",
    );
    add(
        "bpffs",
        Need::Required,
        bpffs::ensure_mounted()
            .map(|p| {
                format!(
                    "{} (mounted by Warden when missing; holds pinned network programs)",
                    p.display()
                )
            })
            .map_err(|e| e.to_string()),
        "mount -t bpf bpf /sys/fs/bpf",
    );

    // Each program type, by loading (and where it matters attaching) a trivial program.
    let test_cgroup = cg_root
        .as_ref()
        .ok()
        .and_then(|r| SessionCgroup::create(r, &format!("doctor-{}", std::process::id())).ok());
    add(
        "cgroup.kill",
        Need::Required,
        match &test_cgroup {
            Some(cg) if cg.path().join("cgroup.kill").exists() => Ok("present".into()),
            Some(_) => Err("absent (kernel older than 5.14)".into()),
            None => Err("could not create a test cgroup".into()),
        },
        "upgrade to Linux 5.14 or newer",
    );
    for probe in program_probes(test_cgroup.as_ref().map(|c| c.path())) {
        add(probe.0, probe.1, probe.2, probe.3);
    }
    drop(test_cgroup);
    add(
        "Warden's kernel programs",
        Need::Required,
        // Loading resolves the kernel's offsets first (BTF, tracefs): their errors come out here.
        KernelPrograms::load(LoadOptions {
            session_level: 2,
            ring_buffer_bytes: None,
            verifier_log_dir: state_dir.join(crate::session::VERIFIER_LOGS),
            net: Default::default(),
            icmp: true,
            hook_tier: Default::default(),
            protected: Vec::new(),
        })
        .map_err(|e| e.to_string())
        .map(|(programs, _)| {
            let t = programs.tier().tier;
            tier = Some(programs.tier().clone());
            format!("load, pass the verifier and attach (hook tier {t})")
        }),
        "see the error; `warden doctor` output is worth attaching to a bug report",
    );
    add(
        "Landlock",
        Need::Required,
        landlock_abi(),
        "boot with landlock in the lsm= list (CONFIG_SECURITY_LANDLOCK=y)",
    );
    add(
        "seccomp user notification",
        Need::Required,
        seccomp_notify(),
        "Linux 5.5 or newer with CONFIG_SECCOMP_FILTER=y",
    );
    (checks, tier)
}

/// The `lsm=` value that turns BPF LSM on and keeps every active LSM: the active list with
/// `bpf` appended (None when it is there already, or the list cannot be read).
fn lsm_with_bpf() -> Option<String> {
    let active = crate::kernel::hook_tier::active_lsms().ok()?;
    (!active.iter().any(|l| l == "bpf")).then(|| {
        let mut v = active;
        v.push("bpf".into());
        v.join(",")
    })
}

/// The hook-tier section of `warden doctor`: the tier sessions get, what each tier gives, and
/// what a better one needs.
pub fn report_tiers(report: Option<&TierReport>) -> String {
    let mut out = String::from(
        "\nHook tiers (best first; sessions take the best one here, `warden run --hook-tier` \
         names one):\n",
    );
    let width = HookTier::ALL
        .iter()
        .map(|t| t.as_str().len())
        .max()
        .unwrap_or(0);
    for &t in HookTier::ALL {
        let state = match report {
            None => "unknown (Warden's programs did not load)".to_string(),
            Some(r) if r.tier == t => "IN USE".to_string(),
            Some(r) => match r.unavailable.iter().find(|(u, _)| *u == t) {
                Some((_, why)) => format!("not here: {why}"),
                None => "available (a better tier is in use)".to_string(),
            },
        };
        let _ = writeln!(out, "  {:width$}  {state}", t.as_str());
        let _ = writeln!(out, "  {:width$}  gives: {}", "", t.gives());
        if report.is_some_and(|r| r.unavailable.iter().any(|(u, _)| *u == t)) {
            let _ = writeln!(out, "  {:width$}  needs: {}", "", t.needs());
            if t == HookTier::BpfLsm
                && let Some(value) = lsm_with_bpf()
            {
                let _ = writeln!(
                    out,
                    "  {:width$}  on this machine: lsm={value} on the kernel command line \
                     (the active list with bpf appended; docs/kernels.md)",
                    ""
                );
            }
        }
    }
    out
}

/// The oldest kernel the VM matrix runs the suite on (Debian 12's 6.1). Older kernels are
/// judged by the feature checks alone: a distribution kernel (RHEL's 5.14) may carry what
/// mainline added later.
const OLDEST_TESTED: (u32, u32) = (6, 1);

fn kernel_version() -> Result<String, String> {
    let uts = nix::sys::utsname::uname().map_err(|e| e.to_string())?;
    let release = uts.release().to_string_lossy().into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) >= OLDEST_TESTED {
        Ok(release)
    } else {
        Err(format!(
            "{release}: older than {}.{}, the oldest kernel Warden is tested on",
            OLDEST_TESTED.0, OLDEST_TESTED.1
        ))
    }
}

fn btf_check() -> Result<String, String> {
    let b = btf::Btf::from_file(btf::VMLINUX).map_err(|e| e.to_string())?;
    b.member_offset("task_struct", "real_parent")
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "{} (task_struct and mm_struct resolved)",
        btf::VMLINUX
    ))
}

type Probe = (&'static str, Need, Result<String, String>, &'static str);

fn program_probes(cgroup: Option<&Path>) -> Vec<Probe> {
    let mut ebpf = match Ebpf::load(PROBES_OBJECT) {
        Ok(e) => e,
        Err(e) => {
            return vec![(
                "eBPF",
                Need::Required,
                Err(format!("cannot load the probe object: {e}")),
                "is the bpf() system call allowed?",
            )];
        }
    };
    let btf = Btf::from_sys_fs();
    let lsm_fix =
        "boot with `bpf` in the lsm= list, e.g. lsm=lockdown,capability,landlock,yama,bpf";
    let loaded = "loads and attaches".to_string();
    let show = |e: &dyn std::error::Error| {
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(inner) = src {
            let _ = write!(s, ": {inner}");
            src = inner.source();
        }
        s
    };
    macro_rules! try_prog {
        ($name:literal, $ty:ty, |$p:ident| $body:expr) => {{
            let r: Result<String, String> = (|| {
                let $p: &mut $ty = ebpf
                    .program_mut($name)
                    .ok_or("missing from the probe object")?
                    .try_into()
                    .map_err(|e| show(&e))?;
                $body
            })();
            r
        }};
    }
    let btf_ref = btf.as_ref().map_err(|e| show(e));
    vec![
        (
            "eBPF tracepoint",
            Need::Required,
            try_prog!("probe_tp", TracePoint, |p| {
                p.load().map_err(|e| show(&e))?;
                p.attach("sched", "sched_process_exec")
                    .map_err(|e| show(&e))?;
                Ok(loaded.clone())
            }),
            "CONFIG_BPF_EVENTS=y",
        ),
        (
            "eBPF raw tracepoint",
            Need::Required,
            try_prog!("probe_raw_tp", RawTracePoint, |p| {
                p.load().map_err(|e| show(&e))?;
                p.attach("sched_process_fork").map_err(|e| show(&e))?;
                Ok(loaded.clone())
            }),
            "CONFIG_BPF_EVENTS=y",
        ),
        (
            "eBPF tp_btf",
            Need::Optional,
            try_prog!("probe_tp_btf", BtfTracePoint, |p| {
                p.load("sched_process_fork", btf_ref.clone()?)
                    .map_err(|e| show(&e))?;
                p.attach().map_err(|e| show(&e))?;
                Ok(loaded.clone())
            }),
            "CONFIG_DEBUG_INFO_BTF=y",
        ),
        (
            "eBPF cgroup sock_addr",
            Need::Required,
            try_prog!("probe_connect4", CgroupSockAddr, |p| {
                p.load().map_err(|e| show(&e))?;
                let dir = cgroup.ok_or("no test cgroup")?;
                let f = std::fs::File::open(dir).map_err(|e| e.to_string())?;
                p.attach(f, CgroupAttachMode::Single)
                    .map_err(|e| show(&e))?;
                Ok(loaded.clone())
            }),
            "CONFIG_CGROUP_BPF=y",
        ),
        (
            "eBPF kprobe",
            Need::Optional,
            try_prog!("probe_kprobe", KProbe, |p| {
                p.load().map_err(|e| show(&e))?;
                p.attach("do_sys_openat2", 0).map_err(|e| show(&e))?;
                Ok(loaded.clone())
            }),
            "CONFIG_KPROBES=y (Warden does not need kprobes)",
        ),
        (
            "eBPF LSM (BPF_LSM_MAC)",
            Need::Optional,
            try_prog!("probe_lsm", Lsm, |p| {
                p.load("file_open", btf_ref.clone()?)
                    .map_err(|e| show(&e))?;
                p.attach().map_err(|e| show(&e))?;
                Ok(format!("{loaded}: in-kernel denial layer available"))
            }),
            lsm_fix,
        ),
        (
            "eBPF fentry",
            Need::Optional,
            try_prog!("probe_fentry", FEntry, |p| {
                p.load("do_sys_openat2", btf_ref.clone()?)
                    .map_err(|e| show(&e))?;
                p.attach().map_err(|e| show(&e))?;
                Ok(loaded.clone())
            }),
            "CONFIG_BPF_JIT and BTF; refused under some lockdown setups",
        ),
    ]
}

fn landlock_abi() -> Result<String, String> {
    match warden_agent::fs_confinement::landlock_abi() {
        0 => Err("unavailable (not built, or not in the lsm= list)".into()),
        abi => Ok(format!("ABI {abi}")),
    }
}

/// Whether session cgroups get a pids controller: tried on a test cgroup, as a session does.
fn pids_controller(root: Option<&Path>) -> bool {
    let Some(root) = root else { return false };
    let Ok(mut cg) = SessionCgroup::create(root, &format!("doctor-pids-{}", std::process::id()))
    else {
        return false;
    };
    cg.limit_pids(1024).is_ok() && cg.pids_limited()
}

/// The kernel-dependent layers, each in force or with what Warden does without it; `tier`:
/// what Warden's programs got (`run_checks`).
pub fn layers(tier: Option<&TierReport>) -> Vec<LayerState> {
    let root = cgroup::find_cgroup2_mount().ok();
    layers::on_kernel(layers::KernelFacts {
        landlock_abi: warden_agent::fs_confinement::landlock_abi(),
        pids_controller: pids_controller(root.as_deref()),
        unix_socket_hooks: crate::kernel::unix_programs::kernel_has_hooks()
            || tier.is_some_and(|t| crate::kernel::lsm::decides_unix_sockets(t.tier)),
        bpf_lsm: tier.is_some_and(|t| t.tier == HookTier::BpfLsm),
    })
}

fn seccomp_notify() -> Result<String, String> {
    const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;
    const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
    let action = SECCOMP_RET_USER_NOTIF;
    // SAFETY: reads a u32 through a valid pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    if r == 0 {
        Ok("SECCOMP_RET_USER_NOTIF available".into())
    } else {
        Err(format!("unavailable ({})", std::io::Error::last_os_error()))
    }
}

/// The table `warden doctor` prints, and whether every required check passed.
pub fn report(checks: &[Check]) -> (String, bool) {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut ok = true;
    for c in checks {
        let (status, detail) = match (&c.result, c.need) {
            (Ok(d), _) => ("ok", d.as_str()),
            (Err(d), Need::Required) => {
                ok = false;
                ("MISSING", d.as_str())
            }
            (Err(d), Need::Optional) => ("unavailable", d.as_str()),
        };
        let _ = writeln!(out, "{:width$}  {:11}  {}", c.name, status, detail);
        if c.result.is_err() {
            let _ = writeln!(out, "{:width$}  {:11}  fix: {}", "", "", c.fix);
        }
    }
    (out, ok)
}

/// The layer section of `warden doctor`.
pub fn report_layers(states: &[LayerState]) -> String {
    let width = states
        .iter()
        .map(|s| s.layer.as_str().len())
        .max()
        .unwrap_or(0);
    let mut out = String::from(
        "\nConfinement layers (requirement `required_layers` can refuse sessions without one):\n",
    );
    for s in states {
        match s.missing {
            None => {
                let _ = writeln!(out, "  {:width$}  in force", s.layer.as_str());
            }
            Some(m) => {
                let _ = writeln!(
                    out,
                    "  {:width$}  not here: needs {}: {}",
                    s.layer.as_str(),
                    m.needs,
                    m.instead
                );
            }
        }
    }
    out
}

/// The closing line: whether Warden can run.
pub fn verdict(ok: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}",
        if ok {
            "Everything Warden requires is here (\"unavailable\" lines are optional layers)."
        } else {
            "Warden cannot run here: fix the MISSING lines above."
        }
    );
    out
}
