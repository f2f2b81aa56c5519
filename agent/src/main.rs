//! `warden-launcher`: started by `warden run` inside the session cgroup, as root. Confines
//! itself, drops to the invoking user, hands the seccomp listener to the supervisor and execs
//! the agent command. It never runs anything unconfined: any failure stops it before the exec.
use std::{
    ffi::{CString, OsString},
    fs::File,
    io::Read,
    os::{
        fd::{BorrowedFd, FromRawFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
    process::ExitCode,
};

use warden_agent::{
    capabilities, fd_passing,
    fs_confinement::{self},
    mount_ns::MountPlan,
    spec::{LaunchSpec, NOTIFY_SOCKET_FD, SPEC_FD},
    syscall_filter,
};

/// Exit status when the sandbox could not be set up (like a shell's "cannot execute").
const SETUP_FAILED: u8 = 126;
const NOT_FOUND: u8 = 127;
/// Set (to anything) in the environment: the launcher prints how long its mounts took.
const TIMING_ENV: &str = "WARDEN_LAUNCH_TIMING";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let err = match run(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!("warden-launcher: {}", err.0);
    ExitCode::from(err.1)
}

struct Failure(String, u8);

fn fail<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Failure + '_ {
    move |e| Failure(format!("{what}: {e}"), SETUP_FAILED)
}

/// The command's program: as given if it has a slash, else the first executable on PATH.
/// Resolved here so that only one exec reaches the exec gate.
fn resolve(program: &OsString) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.as_os_str().as_bytes().contains(&b'/') {
        return p.exists().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(p))
        .find(|c| nix::unistd::access(c, nix::unistd::AccessFlags::X_OK).is_ok() && c.is_file())
}

fn run(args: &[OsString]) -> Result<std::convert::Infallible, Failure> {
    let program = args
        .first()
        .ok_or_else(|| Failure("no command given".into(), SETUP_FAILED))?;
    // SAFETY: the supervisor opened these descriptors for us and nothing else owns them.
    let mut spec_file = unsafe { File::from_raw_fd(SPEC_FD) };
    let mut text = String::new();
    spec_file
        .read_to_string(&mut text)
        .map_err(fail("reading the launch spec"))?;
    drop(spec_file);
    let spec: LaunchSpec = serde_json::from_str(&text).map_err(fail("parsing the launch spec"))?;
    let path = resolve(program).ok_or_else(|| {
        Failure(
            format!("{}: command not found", program.to_string_lossy()),
            NOT_FOUND,
        )
    })?;

    // First, as root: Landlock's rules then name the paths as the command will see them.
    let plan = MountPlan::new(spec.mounts.clone());
    let took = plan.apply().map_err(fail("protecting paths"))?;
    if std::env::var_os(TIMING_ENV).is_some() {
        eprintln!(
            "warden-launcher: {} mounts in {} µs",
            spec.mounts.len(),
            took.as_micros()
        );
    }

    let ruleset = fs_confinement::build(&spec).map_err(fail("preparing Landlock"))?;
    let groups: Vec<nix::unistd::Gid> = spec
        .groups
        .iter()
        .map(|&g| nix::unistd::Gid::from_raw(g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(fail("setgroups"))?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(spec.gid)).map_err(fail("setgid"))?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(spec.uid)).map_err(fail("setuid"))?;
    // Another user's capabilities went with setuid; root keeps its own unless cut.
    if spec.uid == 0 {
        capabilities::limit_to_keep().map_err(fail("limiting root's capabilities"))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(fail("no_new_privs"))?;
    if let Some(ruleset) = ruleset.filter(|_| !warden_agent::test_layers::without("landlock")) {
        fs_confinement::enforce(ruleset).map_err(fail("Landlock"))?;
    }

    let filter = syscall_filter::build(
        spec.supervisor_pid,
        fs_confinement::landlock_abi(),
        spec.allow_icmp,
    )
    .map_err(fail("building the seccomp filter"))?;
    filter.load().map_err(fail("loading the seccomp filter"))?;
    let listener = filter.get_notify_fd().map_err(fail("seccomp listener"))?;
    // SAFETY: fd 4 is the socket the supervisor gave us; it stays open for this call.
    let socket = unsafe { BorrowedFd::borrow_raw(NOTIFY_SOCKET_FD) };
    fd_passing::send_fd(socket, listener)
        .map_err(fail("handing the listener to the supervisor"))?;
    for fd in [listener, NOTIFY_SOCKET_FD] {
        let _ = nix::unistd::close(fd);
    }

    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(fail("program path"))?;
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(fail("arguments"))?;
    // Rust's runtime ignores SIGPIPE in this launcher; the command must not inherit that.
    // SAFETY: setting a signal disposition to its default.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let err = nix::unistd::execv(&c_path, &c_args).unwrap_err();
    let code = if err == nix::errno::Errno::ENOENT {
        NOT_FOUND
    } else {
        SETUP_FAILED
    };
    Err(Failure(format!("{}: {err}", path.display()), code))
}
