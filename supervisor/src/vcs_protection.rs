//! What must stay read-only in a write root so that no code is planted there for later.
//!
//! Threat: the agent writes `.git/hooks/*` or `.git/config` (`core.hooksPath`,
//! `core.fsmonitor`, `core.sshCommand`, filter and diff drivers, `include.path`) and the next
//! `git commit` the user runs outside Warden executes that code unsandboxed. The launcher makes
//! the paths listed here read-only bind mounts in the session's mount namespace
//! (`warden_agent::mount_ns`), and every directory on the way to them that the agent could
//! rename a mount point (EBUSY), so that `.git` cannot be moved away and replaced by a fresh
//! one with hostile hooks. Git's own files beside them (objects, refs, index, locks) stay
//! writable: commits in the session work.
//!
//! Bounded: only each write root's top-level `.git` (and the checkouts its `.gitmodules`
//! names) is looked at, never the whole tree; submodules nest at most [`MAX_DEPTH`] deep.
use std::{
    collections::BTreeSet,
    io,
    os::fd::{AsFd, OwnedFd},
    path::{Component, Path, PathBuf},
};

use nix::{
    fcntl::{OFlag, OpenHow, ResolveFlag},
    sys::stat::Mode,
};
use warden_agent::spec::MountOp;

/// How deep submodules (and nested includes) are followed.
pub const MAX_DEPTH: usize = 6;
/// Most entries read from one list (`.gitmodules` paths, worktrees, modules per level).
const MAX_ENTRIES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum VcsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: a symbolic link cannot be made read-only (the agent could replace it); replace \
         it by what it points to, or set [filesystem] protect_vcs_metadata = false",
        .0.display()
    )]
    Symlink(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VcsError + '_ {
    move |source| VcsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Who owns what is created here (the session's user), so that the user's own git works on it.
/// Only where that user could have created it: root making a user-owned hooks directory in a
/// repository the user cannot write (say root's own, named as a workspace through the service)
/// would hand the user code that root's git runs.
#[derive(Clone, Debug)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Every group of the user (for the permission bits of the directory created in).
    pub groups: Vec<u32>,
}

impl Owner {
    /// Whether the user may create entries in a directory of this mode and owner (DAC bits:
    /// write and search). Root may anywhere.
    fn may_create_in(&self, st: &nix::sys::stat::FileStat) -> bool {
        const WX: u32 = 0o3;
        let shift = if self.uid == 0 {
            return true;
        } else if st.st_uid == self.uid {
            6
        } else if self.groups.contains(&st.st_gid) || st.st_gid == self.gid {
            3
        } else {
            0
        };
        (st.st_mode >> shift) & WX == WX
    }
}

/// The protection of a session: read-only paths and the directories pinned as mount points.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protection {
    pub read_only: BTreeSet<PathBuf>,
    pub pinned: BTreeSet<PathBuf>,
}

impl Protection {
    /// The launcher's mount plan: ancestors first (path order), so that a later bind is made
    /// inside the earlier one rather than hidden by it.
    pub fn mounts(&self) -> Vec<MountOp> {
        let all: BTreeSet<&PathBuf> = self.read_only.iter().chain(&self.pinned).collect();
        all.into_iter()
            .map(|p| MountOp::BindSelf {
                path: p.clone(),
                read_only: self.read_only.contains(p),
            })
            .collect()
    }
}

/// Lists what to protect beneath `write_roots`, creating (owned by `owner`) what must exist
/// to be protected: a missing `hooks` directory or included config file would otherwise be
/// the agent's to create. `home` expands `~/` in include paths.
pub fn plan(write_roots: &[PathBuf], owner: Owner, home: &Path) -> Result<Protection, VcsError> {
    let roots: Vec<PathBuf> = write_roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    let mut p = Planner {
        roots: &roots,
        owner,
        home,
        out: Protection::default(),
        seen_gitdirs: BTreeSet::new(),
    };
    for root in &roots {
        p.checkout(root, 0)?;
        for sub in submodule_paths(root) {
            p.checkout(&root.join(sub), 1)?;
        }
    }
    let pinned: BTreeSet<PathBuf> = p
        .out
        .read_only
        .iter()
        .flat_map(|ro| ro.ancestors().skip(1))
        .filter(|a| a.parent().is_some_and(|parent| p.writable(parent)))
        .map(Path::to_path_buf)
        .collect();
    p.out.pinned = pinned;
    Ok(p.out)
}

struct Planner<'a> {
    roots: &'a [PathBuf],
    owner: Owner,
    home: &'a Path,
    out: Protection,
    seen_gitdirs: BTreeSet<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

impl Planner<'_> {
    /// Beneath a write root: the agent can change it, or the entries of it.
    fn writable(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r))
    }

    fn kind(&self, path: &Path) -> Result<Option<Kind>, VcsError> {
        kind_in(path, self.writable(path))
    }

    /// `dir/.git` of a checkout: a repository directory, or a `gitdir:` file.
    fn checkout(&mut self, dir: &Path, depth: usize) -> Result<(), VcsError> {
        let dotgit = dir.join(".git");
        match self.kind(&dotgit)? {
            None => Ok(()),
            Some(Kind::Dir) => self.gitdir(&dotgit, depth),
            Some(Kind::File) => {
                self.read_only(&dotgit);
                match gitdir_file(&dotgit) {
                    Some(target) => self.gitdir(&dir.join(target), depth),
                    None => Ok(()),
                }
            }
        }
    }

    fn read_only(&mut self, path: &Path) {
        if self.writable(path) {
            self.out.read_only.insert(path.to_path_buf());
        }
    }

    /// A git directory: its hooks and config, what its config includes, its common directory
    /// (a worktree's), its submodules' and its worktrees' files.
    fn gitdir(&mut self, gitdir: &Path, depth: usize) -> Result<(), VcsError> {
        let Ok(gitdir) = std::fs::canonicalize(gitdir) else {
            return Ok(());
        };
        if depth > MAX_DEPTH || !self.seen_gitdirs.insert(gitdir.clone()) {
            return Ok(());
        }
        let commondir = gitdir.join("commondir");
        // A worktree's own gitdir takes hooks and config from the common one.
        let is_common = self.kind(&commondir)?.is_none();
        if is_common {
            self.ensure(&gitdir.join("hooks"), Kind::Dir)?;
            self.ensure(&gitdir.join("config"), Kind::File)?;
        }
        for name in ["hooks", "config", "config.worktree", "commondir", "gitdir"] {
            let path = gitdir.join(name);
            if self.kind(&path)?.is_some() {
                self.read_only(&path);
            }
        }
        for name in ["config", "config.worktree"] {
            self.config(&gitdir.join(name), &gitdir, 0)?;
        }
        if !is_common && let Ok(text) = std::fs::read_to_string(&commondir) {
            self.gitdir(&gitdir.join(text.trim_end_matches(['\n', '\r'])), depth + 1)?;
        }
        self.modules(&gitdir.join("modules"), depth + 1)?;
        self.worktrees(&gitdir.join("worktrees"))
    }

    /// `.git/modules/NAME` (a name may have slashes: a directory without `HEAD` is a step of
    /// one), each a git directory with modules of its own.
    fn modules(&mut self, dir: &Path, depth: usize) -> Result<(), VcsError> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        for entry in dir_entries(dir) {
            if entry.join("HEAD").is_file() {
                self.gitdir(&entry, depth)?;
            } else {
                self.modules(&entry, depth + 1)?;
            }
        }
        Ok(())
    }

    /// `.git/worktrees/NAME`: the files that point a worktree at its repository, and the
    /// worktree's `.git` file they name back.
    fn worktrees(&mut self, dir: &Path) -> Result<(), VcsError> {
        for entry in dir_entries(dir) {
            for name in ["commondir", "gitdir", "config.worktree"] {
                let path = entry.join(name);
                if self.kind(&path)?.is_some() {
                    self.read_only(&path);
                }
            }
            if let Ok(text) = std::fs::read_to_string(entry.join("gitdir")) {
                let dotgit = resolved(Path::new(text.trim_end_matches(['\n', '\r'])));
                if dotgit.is_absolute() && self.kind(&dotgit)? == Some(Kind::File) {
                    self.read_only(&dotgit);
                }
            }
        }
        Ok(())
    }

    /// The files a config includes (read-only, created empty if missing) and the hooks
    /// directory it names, when they lie in a write root.
    fn config(&mut self, file: &Path, gitdir: &Path, depth: usize) -> Result<(), VcsError> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            return Ok(());
        };
        let base = file.parent().unwrap_or(gitdir);
        for entry in config_entries(&text) {
            if entry.key == "path" && (entry.section == "include" || entry.section == "includeif") {
                let included = self.expand(&entry.value, base);
                if self.writable(&included) && self.ensure(&included, Kind::File)? {
                    self.read_only(&included);
                    self.config(&included, gitdir, depth + 1)?;
                }
            } else if entry.section == "core" && entry.key == "hookspath" {
                // Relative to the worktree git runs hooks in: the repository's parent.
                let worktree = gitdir.parent().unwrap_or(gitdir);
                let hooks = self.expand(&entry.value, worktree);
                if self.writable(&hooks) && self.ensure(&hooks, Kind::Dir)? {
                    self.read_only(&hooks);
                }
            }
        }
        Ok(())
    }

    /// `~/` and relative paths as git resolves them, made normal (no `.` or `..`).
    fn expand(&self, value: &str, base: &Path) -> PathBuf {
        let path = match value.strip_prefix("~/") {
            Some(rest) => self.home.join(rest),
            None => base.join(value),
        };
        resolved(&normalize(&path))
    }

    /// Makes sure `path` exists (created owned by the user) and is no symlink; false when it
    /// does not, for the user could not have created it (nor can the agent).
    fn ensure(&mut self, path: &Path, want: Kind) -> Result<bool, VcsError> {
        if !self.writable(path) {
            return Ok(false);
        }
        if self.kind(path)?.is_some() {
            return Ok(true);
        }
        create_owned(path, want, &self.owner).map_err(io_err(path))
    }
}

/// What is at `path`: `None` when nothing; a symlink is an error (see [`VcsError::Symlink`])
/// only where the agent could replace it, elsewhere it counts as what it points to.
fn kind_in(path: &Path, writable: bool) -> Result<Option<Kind>, VcsError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() && writable => {
            Err(VcsError::Symlink(path.to_path_buf()))
        }
        Ok(m) if m.file_type().is_symlink() => {
            Ok(Some(if path.is_dir() { Kind::Dir } else { Kind::File }))
        }
        Ok(m) if m.is_dir() => Ok(Some(Kind::Dir)),
        Ok(_) => Ok(Some(Kind::File)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A component that is not a directory: nothing there either.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// `gitdir: PATH` of a `.git` file.
fn gitdir_file(file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().next()?.strip_prefix("gitdir:")?.trim();
    (!line.is_empty()).then(|| PathBuf::from(line))
}

/// The `path = ...` entries of `root/.gitmodules`, those that stay inside `root`.
fn submodule_paths(root: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(root.join(".gitmodules")) else {
        return Vec::new();
    };
    config_entries(&text)
        .into_iter()
        .filter(|e| e.section == "submodule" && e.key == "path")
        .map(|e| PathBuf::from(e.value))
        .filter(|p| {
            p.components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        })
        .take(MAX_ENTRIES)
        .collect()
}

/// Up to [`MAX_ENTRIES`] real directories in `dir`, sorted (symlinks are not followed).
fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .take(MAX_ENTRIES)
        .collect();
    out.sort();
    out
}

/// `path` with its parent's symlinks resolved, where the parent exists: the launcher refuses
/// any symlink on a path it mounts, and write roots are compared canonical.
fn resolved(path: &Path) -> PathBuf {
    match (path.parent().map(std::fs::canonicalize), path.file_name()) {
        (Some(Ok(parent)), Some(name)) => parent.join(name),
        _ => path.to_path_buf(),
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// One `key = value` of a git config file; section and key lowercased (git compares them so).
#[derive(Debug, PartialEq, Eq)]
struct ConfigEntry {
    section: String,
    key: String,
    value: String,
}

/// Enough of git's config syntax to find includes, hooks paths and submodule paths:
/// `[section]`, `[section "sub"]`, `[section.sub]`, `key = value` with quotes, escapes and
/// comments. A line it does not understand is skipped.
fn config_entries(text: &str) -> Vec<ConfigEntry> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            let Some((header, after)) = rest.split_once(']') else {
                continue;
            };
            let name = header.split(['"', ' ', '\t', '.']).next().unwrap_or("");
            section = name.to_ascii_lowercase();
            line = after.trim();
        }
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or((line, "true"));
        out.push(ConfigEntry {
            section: section.clone(),
            key: key.trim().to_ascii_lowercase(),
            value: config_value(value.trim()),
        });
    }
    out
}

/// A value without its quotes and comment, escapes resolved.
fn config_value(raw: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            '#' | ';' if !quoted => break,
            c => out.push(c),
        }
    }
    out.trim_end().to_string()
}

/// Creates `path` (its missing parents too) owned by `owner`, where `owner` could have; false
/// when they could not (nothing created). Every step is made relative to a descriptor of its
/// parent, found without following any symlink: another process of the user swapping a link
/// in cannot make root create the file elsewhere (say in /etc).
fn create_owned(path: &Path, want: Kind, owner: &Owner) -> io::Result<bool> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no parent"));
    };
    if std::fs::symlink_metadata(parent).is_err() && !create_owned(parent, Kind::Dir, owner)? {
        return Ok(false);
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let dir = nix::fcntl::openat2(nix::fcntl::AT_FDCWD, parent, how)?;
    if !owner.may_create_in(&nix::sys::stat::fstat(&dir)?) {
        tracing::info!(
            "not creating {}: its user could not have (the directory's permissions)",
            path.display()
        );
        return Ok(false);
    }
    match create_in(&dir, name, want) {
        Ok(created) => nix::unistd::fchown(
            created.as_fd(),
            Some(nix::unistd::Uid::from_raw(owner.uid)),
            Some(nix::unistd::Gid::from_raw(owner.gid)),
        )
        .map(|()| true)
        .map_err(io::Error::from),
        // Another session starting in the same workspace made it first: fine if it is what
        // we wanted, and not a link.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            let st = nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
            let kind = st.st_mode & libc::S_IFMT;
            let expected = match want {
                Kind::Dir => libc::S_IFDIR,
                Kind::File => libc::S_IFREG,
            };
            if kind == expected { Ok(true) } else { Err(e) }
        }
        Err(e) => Err(e),
    }
}

fn create_in(dir: &OwnedFd, name: &std::ffi::OsStr, want: Kind) -> io::Result<OwnedFd> {
    let created: OwnedFd = match want {
        Kind::Dir => {
            nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755))?;
            nix::fcntl::openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?
        }
        Kind::File => nix::fcntl::openat(
            dir,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )?,
    };
    Ok(created)
}

#[cfg(test)]
mod tests;
