//! `warden manuals --out DIR`: the man pages and shell completions, generated from the one
//! command-line definition so that they cannot disagree with `--help`.
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

use super::args::Cli;

pub fn write(out: &Path) -> anyhow::Result<i32> {
    let man = out.join("man1");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let command = Cli::command().name("warden");
    clap_mangen::generate_to(command.clone(), &man)
        .with_context(|| format!("writing man pages to {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command.clone(), "warden", &completions)
            .with_context(|| format!("writing {shell} completions"))?;
    }
    Ok(0)
}
