//! Session cgroups (cgroup v2): the boundary of a session.
//!
//! Every process of the session lives in `<cgroup2 mount>/warden/<session id>`; the kernel
//! programs scope on it, and ending the session kills everything in it.
use std::{
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Directory under the cgroup v2 mount that holds session cgroups.
pub const PARENT: &str = "warden";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup v2 (cgroup2) file system is mounted (looked in /proc/self/mountinfo)")]
    NoCgroup2,
    #[error("{0} is not in a cgroup v2 (cgroup2) file system (see /proc/self/mountinfo)")]
    NotCgroup2(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: processes still present {waited:?} after killing them")]
    NotEmpty { path: PathBuf, waited: Duration },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup/unified` on hybrid hosts like these).
pub fn find_cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    text.lines()
        .find_map(|line| {
            // "... mount-point options - fstype source super-options"
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .ok_or(CgroupError::NoCgroup2)
}

/// Where the cgroup directory `dir` sits in the cgroup v2 hierarchy: the path that
/// /proc/PID/cgroup shows for its processes (`/warden/<id>` when the mount is the root).
/// Worked out from the mount's own root in the hierarchy (a bind-mounted subtree starts below
/// it) and the path below the mount point, never assumed.
pub fn hierarchy_path(dir: &Path) -> Result<PathBuf, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let dir = fs::canonicalize(dir).map_err(io_err(dir))?;
    hierarchy_path_in(&text, &dir).ok_or(CgroupError::NotCgroup2(dir))
}

fn hierarchy_path_in(mountinfo: &str, dir: &Path) -> Option<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut fields = left.split_whitespace().skip(3);
            let (root, mount_point) = (Path::new(fields.next()?), Path::new(fields.next()?));
            let below = dir.strip_prefix(mount_point).ok()?;
            Some((mount_point.components().count(), root.join(below)))
        })
        // The innermost mount holding `dir` is the one that shows it.
        .max_by_key(|(mount_depth, _)| *mount_depth)
        .map(|(_, path)| path)
}

/// Depth of a hierarchy path (the root cgroup is 0): what the kernel programs give
/// `bpf_get_current_ancestor_cgroup_id`.
fn level_of(hierarchy_path: &Path) -> u32 {
    hierarchy_path.components().count() as u32 - 1
}

/// The directory that holds every session cgroup, `<root>/warden` (created if missing), with
/// its cgroup id and its depth in the hierarchy: a task whose ancestor at that depth is that
/// cgroup is in a session (what the agent guard asks the kernel).
pub fn sessions_parent(root: &Path) -> Result<(PathBuf, u64, u32), CgroupError> {
    let parent = root.join(PARENT);
    match fs::create_dir(&parent) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(&parent)(e)),
    }
    let id = fs::metadata(&parent).map_err(io_err(&parent))?.ino();
    let level = level_of(&hierarchy_path(&parent)?);
    Ok((parent, id, level))
}

/// Whether process (or thread) `pid` is in the cgroup at `hierarchy_path` or below it.
pub fn holds_pid(hierarchy_path: &str, pid: u32) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("0::"))
        .any(|path| {
            path == hierarchy_path
                || path
                    .strip_prefix(hierarchy_path)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// Where the session's process count is limited: the v2 cgroup itself when the pids
/// controller is there, else a cgroup of the v1 pids hierarchy (hybrid hosts like these).
struct PidsLimit {
    /// The cgroup directory holding pids.max and pids.events.
    dir: PathBuf,
    /// A separate v1 cgroup, which processes must join and which is removed at the end.
    v1: bool,
}

pub struct SessionCgroup {
    path: PathBuf,
    /// Where it sits in the hierarchy, as /proc/PID/cgroup shows it.
    hierarchy_path: PathBuf,
    id: u64,
    removed: bool,
    pids: Option<PidsLimit>,
}

/// The mount point of the cgroup v1 hierarchy with the pids controller.
fn find_pids_v1_mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut r = right.split_whitespace();
        let (fstype, _, options) = (r.next()?, r.next()?, r.next()?);
        (fstype == "cgroup" && options.split(',').any(|o| o == "pids"))
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

impl SessionCgroup {
    /// Creates `<root>/warden/<name>`. `root` is a cgroup v2 directory: the mount point, or a
    /// cgroup below it (a delegated subtree).
    pub fn create(root: &Path, name: &str) -> Result<Self, CgroupError> {
        let parent = root.join(PARENT);
        match fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&parent)(e)),
        }
        let path = parent.join(name);
        fs::create_dir(&path).map_err(io_err(&path))?;
        // A cgroup's id (what bpf_get_current_cgroup_id returns) is its directory's inode.
        let id = fs::metadata(&path).map_err(io_err(&path))?.ino();
        let hierarchy_path = hierarchy_path(&path)?;
        Ok(Self {
            path,
            hierarchy_path,
            id,
            removed: false,
            pids: None,
        })
    }

    /// Limits the session to `max` tasks (processes and threads), so that a fork bomb stops
    /// at the limit and the rest of the machine (and the session) go on.
    pub fn limit_pids(&mut self, max: u32) -> Result<(), CgroupError> {
        let name = self
            .path
            .file_name()
            .expect("a session cgroup has a name")
            .to_owned();
        if !self.path.join("pids.max").exists() {
            enable_v2_pids(self.path.parent().expect("under warden/"));
        }
        let limit = if self.path.join("pids.max").exists() {
            PidsLimit {
                dir: self.path.clone(),
                v1: false,
            }
        } else {
            let Some(mount) = find_pids_v1_mount() else {
                tracing::warn!(
                    "no pids controller (cgroup v1 or v2): the session's process count is not limited"
                );
                return Ok(());
            };
            let parent = mount.join(PARENT);
            match fs::create_dir(&parent) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&parent)(e)),
            }
            let dir = parent.join(name);
            fs::create_dir(&dir).map_err(io_err(&dir))?;
            PidsLimit { dir, v1: true }
        };
        let max_file = limit.dir.join("pids.max");
        let result = fs::write(&max_file, max.to_string()).map_err(io_err(&max_file));
        self.pids = Some(limit);
        result
    }

    /// Whether `limit_pids` found a pids controller (v2, or v1 beside it).
    pub fn pids_limited(&self) -> bool {
        self.pids.is_some()
    }

    /// Extra `cgroup.procs` files a new session process must write itself into (the v1 pids
    /// cgroup, when there is one).
    pub fn extra_procs_for_writing(&self) -> Result<Vec<File>, CgroupError> {
        match &self.pids {
            Some(PidsLimit { dir, v1: true }) => {
                let p = dir.join("cgroup.procs");
                Ok(vec![
                    OpenOptions::new()
                        .write(true)
                        .open(&p)
                        .map_err(io_err(&p))?,
                ])
            }
            _ => Ok(Vec::new()),
        }
    }

    /// How many times a fork failed because the session was at its pids limit.
    pub fn pids_limit_hits(&self) -> Option<(u64, String)> {
        let dir = &self.pids.as_ref()?.dir;
        let events = fs::read_to_string(dir.join("pids.events")).ok()?;
        let hits = events
            .lines()
            .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())?;
        let max = fs::read_to_string(dir.join("pids.max"))
            .ok()?
            .trim()
            .to_string();
        Some((hits, max))
    }

    /// Takes over an existing session cgroup (of a dead supervisor).
    pub fn open(path: &Path) -> Result<Self, CgroupError> {
        let id = fs::metadata(path).map_err(io_err(path))?.ino();
        let v1 = find_pids_v1_mount()
            .zip(path.file_name())
            .map(|(m, name)| m.join(PARENT).join(name))
            .filter(|d| d.is_dir());
        Ok(Self {
            path: path.to_path_buf(),
            hierarchy_path: hierarchy_path(path)?,
            id,
            removed: false,
            pids: v1.map(|dir| PidsLimit { dir, v1: true }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Depth below the cgroup v2 root (what `bpf_get_current_ancestor_cgroup_id` takes).
    pub fn level(&self) -> u32 {
        level_of(&self.hierarchy_path)
    }

    /// Where it sits in the hierarchy, as /proc/PID/cgroup shows it (`/warden/<id>`).
    pub fn hierarchy_path(&self) -> &Path {
        &self.hierarchy_path
    }

    /// `cgroup.procs` opened for writing: a process that writes "0" to it moves itself in.
    pub fn procs_for_writing(&self) -> Result<File, CgroupError> {
        let p = self.path.join("cgroup.procs");
        OpenOptions::new().write(true).open(&p).map_err(io_err(&p))
    }

    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        let p = self.path.join("cgroup.procs");
        let text = fs::read_to_string(&p).map_err(io_err(&p))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Kills every process in the session. Returns how many there were.
    pub fn kill_all(&self) -> Result<u32, CgroupError> {
        let n = self.pids()?.len() as u32;
        if n == 0 {
            return Ok(0);
        }
        let kill_file = self.path.join("cgroup.kill");
        match fs::write(&kill_file, "1") {
            Ok(()) => {}
            // Kernels before 5.14 have no cgroup.kill: signal each process, repeating to
            // catch the ones forked meanwhile (wait_empty gives up eventually).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                for pid in self.pids()? {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            Err(e) => return Err(io_err(&kill_file)(e)),
        }
        Ok(n)
    }

    /// Waits until no process is left (after their exit tracepoints have all fired).
    pub fn wait_empty(&self, timeout: Duration) -> Result<(), CgroupError> {
        let start = Instant::now();
        let events = self.path.join("cgroup.events");
        loop {
            let text = fs::read_to_string(&events).map_err(io_err(&events))?;
            if text.lines().any(|l| l == "populated 0") {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(CgroupError::NotEmpty {
                    path: self.path.clone(),
                    waited: timeout,
                });
            }
            self.kill_all()?;
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills what is left, waits for it, and removes the cgroup.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.kill_all()?;
        self.wait_empty(Duration::from_secs(10))?;
        self.remove_pids_v1();
        fs::remove_dir(&self.path).map_err(io_err(&self.path))?;
        self.removed = true;
        Ok(())
    }

    fn remove_pids_v1(&mut self) {
        if let Some(PidsLimit { dir, v1: true }) = self.pids.take()
            && let Err(e) = fs::remove_dir(&dir)
        {
            tracing::error!("removing {}: {e}", dir.display());
        }
    }
}

impl Drop for SessionCgroup {
    /// Last resort on error paths: nothing of a session may outlive its supervisor's exit.
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.kill_all();
            let _ = self.wait_empty(Duration::from_secs(5));
            self.remove_pids_v1();
            if let Err(e) = fs::remove_dir(&self.path) {
                tracing::error!("could not remove {}: {e}", self.path.display());
            }
        }
    }
}

/// Turns the pids controller on for the children of `parent`, when cgroup v2 has it.
/// Enables the cgroup v2 pids controller for the children of `parent` (`<root>/warden`),
/// starting at the root: without systemd nothing enables any controller in the root's
/// `cgroup.subtree_control`, and a controller reaches a cgroup only through all its ancestors.
/// Stops quietly where the kernel does not offer pids on v2 (a hybrid host keeps it on v1).
fn enable_v2_pids(parent: &Path) {
    let Some(root) = parent.parent() else { return };
    for dir in [root, parent] {
        let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        if !available.split_whitespace().any(|c| c == "pids") {
            return;
        }
        let control = dir.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&control).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == "pids")
            && let Err(e) = fs::write(&control, "+pids")
        {
            tracing::warn!("enabling the pids controller in {}: {e}", control.display());
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_in_the_hierarchy_counts_from_its_root() {
        let hybrid = "\
35 24 0:30 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
40 35 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let pure = "28 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        // A container's view: a subtree of the host's hierarchy bind-mounted as its own.
        let subtree = "\
28 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
90 28 0:26 /machine/box /srv/box-cgroup rw - cgroup2 cgroup2 rw
";
        let cases = [
            (hybrid, "/sys/fs/cgroup/unified/warden/s1", Some(2)),
            (hybrid, "/sys/fs/cgroup/unified", Some(0)),
            (hybrid, "/sys/fs/cgroup/pids/warden", None),
            (pure, "/sys/fs/cgroup/user.slice/warden/s1", Some(3)),
            (subtree, "/srv/box-cgroup/warden/s1", Some(4)),
            (subtree, "/sys/fs/cgroup/warden/s1", Some(2)),
            (pure, "/tmp/warden/s1", None),
        ];
        for (mountinfo, dir, want) in cases {
            let place = hierarchy_path_in(mountinfo, Path::new(dir));
            assert_eq!(place.as_deref().map(level_of), want, "{dir}");
        }
        let subtree_session = hierarchy_path_in(subtree, Path::new("/srv/box-cgroup/warden/s1"));
        assert_eq!(
            subtree_session.as_deref(),
            Some(Path::new("/machine/box/warden/s1"))
        );
    }

    #[test]
    fn only_the_cgroup_and_below_hold_a_pid() {
        let me = std::process::id();
        let mine = std::fs::read_to_string(format!("/proc/{me}/cgroup")).unwrap();
        let Some(path) = mine.lines().find_map(|l| l.strip_prefix("0::")) else {
            return; // no cgroup v2 here
        };
        assert!(holds_pid(path, me));
        if path != "/" {
            assert!(!holds_pid(&format!("{path}-other"), me));
        }
        assert!(!holds_pid("/warden/not-this-one", me));
    }

    #[test]
    fn finds_the_cgroup2_mount() {
        let mount = find_cgroup2_mount().unwrap();
        assert!(mount.join("cgroup.procs").exists(), "{}", mount.display());
    }

    #[test]
    fn create_kill_remove() {
        let root = find_cgroup2_mount().unwrap();
        let name = format!("unit-{}", std::process::id());
        let cg = SessionCgroup::create(&root, &name).unwrap();
        assert_eq!(cg.id(), fs::metadata(cg.path()).unwrap().ino());
        let procs = cg.procs_for_writing().unwrap();
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&procs);
        // SAFETY: only async-signal-safe calls (write) between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().unwrap();
        assert_eq!(cg.pids().unwrap(), [child.id()]);
        let path = cg.path().to_path_buf();
        cg.remove().unwrap();
        assert!(!path.exists());
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }
}
