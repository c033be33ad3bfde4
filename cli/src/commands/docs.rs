//! `bucketlens completions SHELL` and `bucketlens man`: the CLI's own documentation,
//! generated from the same clap definitions the parser uses, so it cannot drift.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write bucketlens.1 and a page per command (bucketlens-index.1 …) into DIR,
    /// instead of printing bucketlens.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the completion script of `args.shell` for `command`.
pub fn completions(mut command: clap::Command, args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let name = command.get_name().to_string();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Prints the man page of `command`, or writes every page into `args.dir`.
pub fn man(command: clap::Command, args: ManArgs) -> anyhow::Result<ExitCode> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("writing the pages into {}", dir.display()))?;
            bucketlens_runtime::say!("man pages written to {}", dir.display());
        }
        None => match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
            // Read by `head` or a pager that quit: the end of the reader, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::from(141)),
            other => other.context("writing the page")?,
        },
    }
    Ok(ExitCode::SUCCESS)
}
