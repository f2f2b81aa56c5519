//! `warden events`: finding a recorded session and printing it.
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::{
    audit_log,
    events::{Record, render},
    process_tree::ProcessTree,
};

/// A session id, a unique prefix of one, `last`, a session directory or a log file.
pub fn locate(spec: &str, state_dir: &Path) -> anyhow::Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    if as_path.join(audit_log::FILE_NAME).is_file() {
        return Ok(as_path.join(audit_log::FILE_NAME));
    }
    let sessions = state_dir.join("sessions");
    let mut ids: Vec<String> = std::fs::read_dir(&sessions)
        .with_context(|| {
            format!(
                "{spec} is not a file, and {} cannot be read",
                sessions.display()
            )
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    ids.sort();
    let chosen = if spec == "last" {
        ids.last().cloned()
    } else {
        let matches: Vec<&String> = ids.iter().filter(|id| id.starts_with(spec)).collect();
        if matches.len() > 1 {
            bail!(
                "session `{spec}` is ambiguous: {}",
                matches
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        matches.first().map(|s| s.to_string())
    };
    let Some(id) = chosen else {
        bail!("no session `{spec}` in {}", sessions.display());
    };
    Ok(sessions.join(id).join(audit_log::FILE_NAME))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// The process tree, then every record.
    Both,
    Tree,
    List,
    /// The records as JSON lines, as stored.
    Json,
}

pub fn print(records: &[Record], view: View) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if matches!(view, View::Both | View::Tree) {
        write!(out, "{}", ProcessTree::build(records).render())?;
    }
    if view == View::Both {
        writeln!(out)?;
    }
    if matches!(view, View::Both | View::List) {
        for r in records {
            writeln!(out, "{}", render::line(r))?;
        }
    }
    if view == View::Json {
        for r in records {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
