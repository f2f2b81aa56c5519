//! The agent guard's kernel object (`warden-guard`, `ebpf/programs/src/bin/guard.rs`): loaded
//! once per machine, its link and maps pinned in bpffs so that it keeps killing while no Warden
//! runs, and re-adopted by the next one (which then reads what was killed meanwhile).
//!
//! Pins live in `<bpffs>/warden-guard/<build>/`, outside `warden/` (one directory per session,
//! which recovery clears of whatever is not a live session). `<build>` names the object's
//! content: a Warden of another build loads its own object, pins it, and only then removes the
//! old one, so that the guard never lapses; the maps of another build may not have the layout
//! this one expects.
use std::{
    collections::BTreeSet,
    fs::{self, File},
    io,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
};

use aya::{
    EbpfLoader,
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{
        TracePoint,
        links::{FdLink, PinnedLink},
    },
};
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};
use warden_common::{GuardConfig, GuardFileKey};

use super::{
    bpffs,
    programs::{KernelError, kernel_offsets, load_err, prog_err, program},
};

/// The compiled guard program, built by build.rs.
static GUARD_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/warden-guard"));

/// Below the bpffs mount point.
pub const PIN_DIR: &str = "warden-guard";
const PROGRAM: &str = "warden_guard_exec";
/// The link's pin (bpffs refuses names with a dot).
const LINK_PIN: &str = "exec_link";
const CONFIG: &str = "GUARD_CONFIG";
const FILES: &str = "GUARD_FILES";
const SIZES: &str = "GUARD_SIZES";
const PATHS: &str = "GUARD_PATHS";
const EVENTS: &str = "GUARD_EVENTS";
const LOST: &str = "GUARD_LOST";
/// Every map that is pinned (the per-CPU path buffer is the program's own).
const PINNED_MAPS: [&str; 6] = [CONFIG, FILES, SIZES, PATHS, EVENTS, LOST];

/// What the guard's maps should hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    pub config: GuardConfig,
    pub files: BTreeSet<GuardFileKey>,
    pub sizes: BTreeSet<u64>,
    /// FNV-1a of each listed path's bytes.
    pub paths: BTreeSet<u64>,
}

/// The guard's program, attached and pinned, and its maps.
pub struct GuardObject {
    /// This build's pin directory.
    dir: PathBuf,
    /// Held for as long as this process guards: one reader of the events, one writer of the maps.
    _lock: Flock<File>,
    link: FdLink,
    config: Array<MapData, GuardConfig>,
    files: HashMap<MapData, GuardFileKey, u32>,
    sizes: HashMap<MapData, u64, u32>,
    paths: HashMap<MapData, u64, u32>,
    lost: PerCpuArray<MapData, u64>,
    /// Taken by the reader of the events (`take_events`).
    events: Option<RingBuf<MapData>>,
    readopted: bool,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KernelError + '_ {
    move |source| KernelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> KernelError {
    move |source| KernelError::Map { name, source }
}

/// The pin directory's name for this build: the object's digest, shortened.
fn build_id() -> String {
    let digest = Sha256::digest(GUARD_OBJECT);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The typed maps, however they were obtained.
struct Maps {
    config: Array<MapData, GuardConfig>,
    files: HashMap<MapData, GuardFileKey, u32>,
    sizes: HashMap<MapData, u64, u32>,
    paths: HashMap<MapData, u64, u32>,
    events: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
}

impl Maps {
    fn from(
        mut get: impl FnMut(&'static str) -> Result<Map, KernelError>,
    ) -> Result<Self, KernelError> {
        Ok(Self {
            config: Array::try_from(get(CONFIG)?).map_err(map_err(CONFIG))?,
            files: HashMap::try_from(get(FILES)?).map_err(map_err(FILES))?,
            sizes: HashMap::try_from(get(SIZES)?).map_err(map_err(SIZES))?,
            paths: HashMap::try_from(get(PATHS)?).map_err(map_err(PATHS))?,
            events: RingBuf::try_from(get(EVENTS)?).map_err(map_err(EVENTS))?,
            lost: PerCpuArray::try_from(get(LOST)?).map_err(map_err(LOST))?,
        })
    }
}

impl GuardObject {
    /// Re-adopts this build's pinned guard, or loads, fills, attaches and pins a new one (and
    /// then removes other builds' pins). Fails when another process guards already.
    pub fn open(contents: &Contents, log_dir: &Path) -> Result<Self, KernelError> {
        let root = bpffs::ensure_mounted()
            .map_err(io_err(Path::new(bpffs::MOUNT_POINT)))?
            .join(PIN_DIR);
        match fs::DirBuilder::new().mode(0o700).create(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&root)(e)),
        }
        let dir_file = File::open(&root).map_err(io_err(&root))?;
        let lock = Flock::lock(dir_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| KernelError::GuardHeld(root.clone()))?;
        let dir = root.join(build_id());
        if dir.exists() {
            match Self::readopt(&dir) {
                Ok((link, maps)) => {
                    let mut guard = Self::assemble(dir, lock, link, maps, true);
                    guard.set(contents)?;
                    guard.remove_other_builds(&root);
                    return Ok(guard);
                }
                Err(e) => {
                    tracing::warn!(
                        "the pinned agent guard in {} cannot be re-adopted ({e}): loading a new one",
                        dir.display()
                    );
                }
            }
        }
        let (link, maps) = Self::load(&root, &dir, contents, log_dir)?;
        let guard = Self::assemble(dir, lock, link, maps, false);
        guard.remove_other_builds(&root);
        Ok(guard)
    }

    fn assemble(
        dir: PathBuf,
        lock: Flock<File>,
        link: FdLink,
        maps: Maps,
        readopted: bool,
    ) -> Self {
        Self {
            dir,
            _lock: lock,
            link,
            config: maps.config,
            files: maps.files,
            sizes: maps.sizes,
            paths: maps.paths,
            lost: maps.lost,
            events: Some(maps.events),
            readopted,
        }
    }

    fn readopt(dir: &Path) -> Result<(FdLink, Maps), KernelError> {
        let maps = Maps::from(|name| {
            let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
            Map::from_map_data(data).map_err(map_err(name))
        })?;
        let link =
            PinnedLink::from_pin(dir.join(LINK_PIN)).map_err(|source| KernelError::Link {
                name: PROGRAM,
                source,
            })?;
        Ok((link.into(), maps))
    }

    /// A new guard: filled before it is attached, so that it enforces the whole list from its
    /// first exec; pinned in a directory of its own that is renamed into place when complete.
    fn load(
        root: &Path,
        dir: &Path,
        contents: &Contents,
        log_dir: &Path,
    ) -> Result<(FdLink, Maps), KernelError> {
        let offsets = kernel_offsets()?;
        let mut ebpf = EbpfLoader::new()
            .override_global("OFFSETS", &offsets, true)
            .load(GUARD_OBJECT)?;
        let tp: &mut TracePoint = program(&mut ebpf, PROGRAM)?;
        tp.load().map_err(load_err(PROGRAM, log_dir))?;
        let partial = root.join(format!("{}-new", build_id()));
        if partial.exists() {
            remove_pins(&partial)?;
        }
        fs::create_dir(&partial).map_err(io_err(&partial))?;
        let mut maps = Maps::from(|name| {
            let map = ebpf.take_map(name).ok_or(KernelError::MissingMap(name))?;
            map.pin(partial.join(name))
                .map_err(|source| KernelError::Pin { name, source })?;
            Ok(map)
        })?;
        fill(&mut maps, contents)?;
        let tp: &mut TracePoint = program(&mut ebpf, PROGRAM)?;
        let id = tp
            .attach("sched", "sched_process_exec")
            .map_err(prog_err(PROGRAM))?;
        let link: FdLink = tp
            .take_link(id)
            .map_err(prog_err(PROGRAM))?
            .try_into()
            .map_err(|source| KernelError::Link {
                name: PROGRAM,
                source,
            })?;
        let pinned = link
            .pin(partial.join(LINK_PIN))
            .map_err(|source| KernelError::Pin {
                name: PROGRAM,
                source,
            })?;
        if dir.exists() {
            // A pinned guard of this build that could not be re-adopted: replaced, now that
            // the new one is attached.
            remove_pins(dir)?;
        }
        fs::rename(&partial, dir).map_err(io_err(dir))?;
        Ok((pinned.into(), maps))
    }

    /// Other builds' guards, and leftovers of a load that did not finish.
    fn remove_other_builds(&self, root: &Path) {
        let Ok(entries) = fs::read_dir(root) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path == self.dir {
                continue;
            }
            match remove_pins(&path) {
                Ok(()) => tracing::warn!(
                    "replaced the agent guard pinned in {} (another Warden build)",
                    path.display()
                ),
                Err(e) => tracing::error!("removing {}: {e}", path.display()),
            }
        }
    }

    /// Whether the guard was found pinned (a Warden before this one loaded it).
    pub fn readopted(&self) -> bool {
        self.readopted
    }

    /// The kernel's id of the attached program.
    pub fn program_id(&self) -> Option<u32> {
        self.link.info().ok().map(|i| i.program_id())
    }

    /// The ring buffer of kills (once).
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Makes the maps hold `contents`: new entries first, then the stale ones go, so that
    /// what stays listed is never out of the maps.
    pub fn set(&mut self, contents: &Contents) -> Result<(), KernelError> {
        let mut maps = (
            &mut self.config,
            &mut self.files,
            &mut self.sizes,
            &mut self.paths,
        );
        set_maps(&mut maps, contents)
    }

    /// Kills whose record did not fit in the ring buffer, since the guard was loaded.
    pub fn lost(&self) -> Result<u64, KernelError> {
        let per_cpu = self.lost.get(&0, 0).map_err(map_err(LOST))?;
        Ok(per_cpu.iter().sum())
    }

    /// Removes the pins: once this process lets go of its descriptors, the program detaches.
    pub fn unpin(self) -> Result<(), KernelError> {
        remove_pins(&self.dir)
    }
}

type MapsMut<'a> = (
    &'a mut Array<MapData, GuardConfig>,
    &'a mut HashMap<MapData, GuardFileKey, u32>,
    &'a mut HashMap<MapData, u64, u32>,
    &'a mut HashMap<MapData, u64, u32>,
);

fn fill(maps: &mut Maps, contents: &Contents) -> Result<(), KernelError> {
    set_maps(
        &mut (
            &mut maps.config,
            &mut maps.files,
            &mut maps.sizes,
            &mut maps.paths,
        ),
        contents,
    )
}

fn set_maps(maps: &mut MapsMut<'_>, contents: &Contents) -> Result<(), KernelError> {
    let (config, files, sizes, paths) = maps;
    config.set(0, contents.config, 0).map_err(map_err(CONFIG))?;
    replace(files, &contents.files, FILES)?;
    replace(sizes, &contents.sizes, SIZES)?;
    replace(paths, &contents.paths, PATHS)
}

fn replace<K: aya::Pod + Ord>(
    map: &mut HashMap<MapData, K, u32>,
    wanted: &BTreeSet<K>,
    name: &'static str,
) -> Result<(), KernelError> {
    for key in wanted {
        map.insert(key, 1, 0).map_err(map_err(name))?;
    }
    let stale: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !wanted.contains(k))
        .collect();
    for key in stale {
        map.remove(&key).map_err(map_err(name))?;
    }
    Ok(())
}

/// Removes a pin directory and what is pinned in it.
fn remove_pins(dir: &Path) -> Result<(), KernelError> {
    for name in PINNED_MAPS.iter().chain([&LINK_PIN]) {
        match fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir.join(name))(e)),
        }
    }
    // Anything else there is not the guard's: left, and then the directory stays too.
    fs::remove_dir(dir).map_err(io_err(dir))
}

/// Whether a guard is pinned on this machine (of any build).
pub fn pinned() -> bool {
    fs::read_dir(Path::new(bpffs::MOUNT_POINT).join(PIN_DIR))
        .is_ok_and(|mut entries| entries.next().is_some())
}
