//! tracefs: mounting it when the system did not, and reading tracepoint record layouts from
//! the `format` files (they differ between kernels, so they are never hard-coded).
use std::path::{Path, PathBuf};

pub const MOUNT_POINT: &str = "/sys/kernel/tracing";

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("mounting tracefs on {MOUNT_POINT}: {0}")]
    Mount(std::io::Error),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no field `{field}` in the tracepoint format")]
    NoField { path: PathBuf, field: String },
}

/// Mounts tracefs at its usual place unless it is already there. Idempotent, and safe when
/// several Wardens start at once.
pub fn ensure_mounted() -> Result<PathBuf, TracefsError> {
    let root = PathBuf::from(MOUNT_POINT);
    super::mount_once::mount_once("tracefs", &root, None, || root.join("events").is_dir())
        .map_err(TracefsError::Mount)?;
    Ok(root)
}

/// A tracepoint's record layout.
pub struct Format {
    path: PathBuf,
    fields: Vec<(String, u32)>,
}

impl Format {
    pub fn read(root: &Path, category: &str, name: &str) -> Result<Self, TracefsError> {
        let path = root.join("events").join(category).join(name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| TracefsError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Self::parse(path, &text))
    }

    /// Parses lines like `field:__data_loc char[] filename; offset:8; size:4; signed:0;`.
    pub fn parse(path: PathBuf, text: &str) -> Self {
        let fields = text
            .lines()
            .filter_map(|line| {
                let decl = line.trim().strip_prefix("field:")?;
                let (decl, rest) = decl.split_once(';')?;
                let name = decl.split_whitespace().last()?;
                // Array fields are declared `char comm[16]`.
                let name = name.split('[').next()?;
                let offset = rest
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("offset:"))?;
                Some((name.to_string(), offset.trim().parse().ok()?))
            })
            .collect();
        Self { path, fields }
    }

    pub fn offset(&self, field: &str) -> Option<u32> {
        self.fields
            .iter()
            .find(|(n, _)| n == field)
            .map(|&(_, o)| o)
    }

    pub fn require(&self, field: &str) -> Result<u32, TracefsError> {
        self.offset(field).ok_or_else(|| TracefsError::NoField {
            path: self.path.clone(),
            field: field.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT_6_18: &str = "name: sched_process_exit
ID: 369
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:char comm[16];	offset:8;	size:16;	signed:0;
	field:pid_t pid;	offset:24;	size:4;	signed:1;
	field:int prio;	offset:28;	size:4;	signed:1;
	field:bool group_dead;	offset:32;	size:1;	signed:0;

print fmt: \"comm=%s\"";

    #[test]
    fn parses_fields_arrays_and_data_loc() {
        let f = Format::parse("x".into(), EXIT_6_18);
        assert_eq!(f.offset("comm"), Some(8));
        assert_eq!(f.offset("group_dead"), Some(32));
        assert_eq!(f.offset("common_pid"), Some(4));
        assert_eq!(f.offset("missing"), None);
        let exec = Format::parse(
            "x".into(),
            "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;",
        );
        assert_eq!(exec.offset("filename"), Some(8));
        assert!(matches!(
            exec.require("pid"),
            Err(TracefsError::NoField { .. })
        ));
    }

    #[test]
    fn reads_the_running_kernel() {
        let root = ensure_mounted().unwrap();
        let exec = Format::read(&root, "sched", "sched_process_exec").unwrap();
        assert!(exec.offset("filename").is_some());
        assert!(exec.offset("old_pid").is_some());
    }
}
