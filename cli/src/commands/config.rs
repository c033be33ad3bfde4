//! `bucketlens config check`: loads the configuration (defaults, file, environment,
//! flags) and names every wrong setting at once, without connecting to anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bucketlens_pipeline::settings::{Backend, ConfigFile, Settings};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Check every setting (no IO beyond reading the file); exit 1 naming each wrong one.
    /// After `--`, a command line to check too, as a deployment gives it
    /// (`config check -- replay --group bucketlens-index --from earliest`): it must
    /// parse, required arguments and all, without running.
    Check {
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

pub fn run(file: Option<&Path>, data_dir: Option<PathBuf>, args: Args) -> anyhow::Result<ExitCode> {
    let Action::Check { command } = args.action;
    if !command.is_empty() {
        use clap::Parser;
        let line = std::iter::once("bucketlens".to_string()).chain(command.iter().cloned());
        match crate::Cli::try_parse_from(line) {
            Ok(_) => println!("command ok: bucketlens {}", command.join(" ")),
            Err(e) => {
                bucketlens_runtime::say!("the command `bucketlens {}` does not parse:", command.join(" "));
                eprint!("{e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let config = ConfigFile::load(file, data_dir)?;
    match config.validate() {
        Ok(settings) => {
            println!("configuration ok: {}", summary(&settings));
            // Only `serve` refuses to start on this; every other role reads the file too.
            if let Err(problems) = settings.serve.check_exposure() {
                for problem in problems {
                    println!("note: `bucketlens serve` would refuse to start: {problem}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            let s = if problems.len() == 1 { "" } else { "s" };
            bucketlens_runtime::say!("{} wrong setting{s}:", problems.len());
            for problem in problems {
                bucketlens_runtime::say!("  {problem}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Which parts the settings choose, in a line.
/// A long-running role's first line: what it is and which settings it runs with.
pub fn started(role: &str, file: Option<&std::path::Path>, settings: &Settings) {
    let from = match file {
        Some(file) => format!("{} and the BUCKETLENS_* environment", file.display()),
        None => "defaults and the BUCKETLENS_* environment (no config file)".to_string(),
    };
    bucketlens_runtime::say!("bucketlens {role}: {} (settings: {from})", summary(settings));
}

fn summary(settings: &Settings) -> String {
    let log = match settings.log.backend {
        Backend::Embedded => format!("embedded log in {}", settings.log_path().display()),
        Backend::Kafka => format!("Kafka at {}", settings.log.kafka.brokers),
    };
    let labeler = settings.labeler.backend.describe();
    format!("{log} · labeler: {labeler} · index: {}", bucketlens_pipeline::wiring::index_location(settings))
}
