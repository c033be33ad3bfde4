//! The `bucketlens` binary: argument parsing and wiring only; the work happens in
//! the stage crates (producers, processors, sinks).

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// jemalloc, not glibc's malloc: labeling 12 MP photos on two threads left glibc's
/// per-thread arenas holding 130–190 MiB more at the peak (bucketlens-bench 0 120).
/// It also takes the place of `malloc` for the C and C++ libraries (ONNX Runtime,
/// libjpeg-turbo, libheif): glibc kept their freed buffers of a few MiB (its mmap
/// threshold grows with what is freed), 32 MiB more at the peak on 12 MP JPEGs (254
/// against 222 MB) and 70 MiB more on 12 MP HEICs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Label every image in a bucket and keep a search index of the labels current.
#[derive(Debug, Parser)]
#[command(name = "bucketlens", version, about)]
struct Cli {
    /// Configuration file (TOML). Every setting can also be set as BUCKETLENS_SECTION__KEY.
    #[arg(long, global = true, env = "BUCKETLENS_CONFIG")]
    config: Option<PathBuf>,
    /// Where the log, the listing state and the index live [default: ./.bucketlens]
    #[arg(long, global = true, env = "BUCKETLENS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Backfill SOURCE (a folder, s3://bucket/prefix, or an inventory manifest.json), label every image, index the labels.
    #[command(
        after_help = "Examples:\n  bucketlens index ~/Pictures\n  bucketlens index ~/Pictures --watch\n  bucketlens index s3://photos/2024/ --max-images 1000\n  bucketlens index s3://photos/ --watch --sqs https://sqs.us-east-1.amazonaws.com/123456789012/photos-events\n  bucketlens index s3://photos/inventory/photos/all/2026-12-01T01-00Z/manifest.json"
    )]
    Index(bucketlens_pipeline::index::Args),
    /// Search the index by label: `cat`, `dog AND grass`, `cat OR "golden retriever"`, `cat -dog`.
    #[command(
        after_help = "Examples:\n  bucketlens search cat\n  bucketlens search \"espresso OR tripod\" --min-confidence 60\n  bucketlens search \"cat -dog year:2019\" --prefix trips/ --json\n  bucketlens search \"camera:x-t30 country:japan\" --sort taken\n  bucketlens search --failed"
    )]
    Search(commands::search::Args),
    /// Count documents per label.
    #[command(
        after_help = "Examples:\n  bucketlens labels\n  bucketlens labels --prefix trips/ --min-confidence 80 --json"
    )]
    Labels(commands::labels::Args),
    /// Groups of exact copies and near duplicates (resized, recompressed, converted), with the bytes keeping the largest of each would free.
    #[command(
        after_help = "Examples:\n  bucketlens duplicates\n  bucketlens duplicates --prefix backup/ --exact\n  bucketlens duplicates --min-similarity 0.95 --json"
    )]
    Duplicates(commands::duplicates::Args),
    /// Where else a photo is: the same picture copied, resized, recompressed or converted, most similar first.
    #[command(
        after_help = "Examples:\n  bucketlens similar photos/chelsea.png\n  bucketlens similar --image ~/Downloads/IMG_0042.jpg --json"
    )]
    Similar(commands::duplicates::SimilarArgs),
    /// The models fetched once from their publishers, pinned by SHA-256: `models list`, `models fetch NAME`.
    #[command(
        after_help = "Examples:\n  bucketlens models list\n  bucketlens models fetch clip-vit-b32 --catalogue my-pins.toml\n  bucketlens models fetch clip-vit-b32 --from http://mirror.internal/models\n  bucketlens models eval my-examples.toml"
    )]
    Models(commands::models::Args),
    /// Move a consumer group back (to earliest or a time); with --until-end, also
    /// reprocess up to the end offsets seen at start, then exit.
    #[command(
        after_help = "Examples:\n  bucketlens replay --group bucketlens-index --from earliest\n  bucketlens replay --group bucketlens-labeler --from 2026-11-24T10:00:00Z --until-end --force"
    )]
    Replay(bucketlens_pipeline::replay::Args),
    /// Rebuild the OpenSearch index into a new one from the label log while the old
    /// one serves, then move the alias to it at once (no downtime).
    #[command(
        after_help = "Examples:\n  bucketlens reindex\n  bucketlens reindex --to bucketlens-images-v2 --delete-old"
    )]
    Reindex(commands::reindex::Args),
    /// Label again what failed (`--failed [--code C]`), once the cause is fixed
    /// (a permission granted, an object restored).
    #[command(
        after_help = "Examples:\n  bucketlens relabel --failed\n  bucketlens relabel --failed --code AccessDenied"
    )]
    Relabel(bucketlens_pipeline::relabel::Args),
    /// Run one labeler group member until Ctrl-C (Kafka: start as many as you like).
    #[command(
        after_help = "Examples:\n  bucketlens label\n  BUCKETLENS_LABELER__BACKEND=rekognition bucketlens label"
    )]
    Label(commands::label::Args),
    /// Run the index sink until Ctrl-C: applies images.labeled.v1 to the index.
    #[command(after_help = "Examples:\n  bucketlens sink")]
    Sink(commands::sink::Args),
    /// Produce object changes to the log: `produce listing|inventory|events …` (--print shows them instead).
    #[command(
        after_help = "Examples:\n  bucketlens produce listing s3://photos/\n  bucketlens produce listing ~/Pictures --print\n  bucketlens produce inventory s3://inventory/photos/all/2026-12-01T01-00Z/manifest.json\n  bucketlens produce events --sqs https://sqs.us-east-1.amazonaws.com/123456789012/photos-events\n  bucketlens produce events --webhook 0.0.0.0:8080"
    )]
    Produce(bucketlens_pipeline::produce::Args),
    /// What a backfill of a folder, an S3 prefix or an inventory report would label, skip, cost and take; labels nothing.
    #[command(
        after_help = "Examples:\n  bucketlens plan ~/Pictures\n  bucketlens plan s3://photos/2024/ --rate 50 --labelers 4 --json"
    )]
    Plan(bucketlens_pipeline::plan::Args),
    /// Standing queries on the label log: `[[act.rules]]` tag objects, post webhooks and publish matches.
    #[command(
        after_help = "Examples:\n  bucketlens act\n  bucketlens act --until-end\n  bucketlens act --from earliest --until-end"
    )]
    Act(bucketlens_pipeline::act::Args),
    /// Documents in the index, and each group's position and lag on the log.
    #[command(after_help = "Examples:\n  bucketlens status\n  bucketlens status --json")]
    Status(bucketlens_pipeline::status::Args),
    /// Serve the HTTP search API and the web UI (thumbnails, facets, boxes, live changes).
    #[command(
        after_help = "Examples:\n  bucketlens serve\n  BUCKETLENS_SERVE__TOKEN=a-long-shared-secret bucketlens serve --listen 0.0.0.0:7878"
    )]
    Serve(commands::serve::Args),
    /// `config check`: name every wrong setting at once, connecting to nothing.
    #[command(
        after_help = "Examples:\n  bucketlens config check\n  bucketlens --config prod.toml config check -- label"
    )]
    Config(commands::config::Args),
    /// Print the shell completion script: `source <(bucketlens completions bash)`.
    #[command(
        after_help = "Examples:\n  source <(bucketlens completions bash)\n  bucketlens completions fish > ~/.config/fish/completions/bucketlens.fish"
    )]
    Completions(commands::docs::CompletionsArgs),
    /// Print the man page (`bucketlens man | man -l -`), or write every page with --dir.
    #[command(after_help = "Examples:\n  bucketlens man | man -l -\n  bucketlens man --dir /usr/local/share/man/man1")]
    Man(commands::docs::ManArgs),
    /// Label the image on stdin in this process alone (started by the labeler).
    #[command(hide = true)]
    LabelOne(commands::label::OneArgs),
}

impl Command {
    /// The long-running role this command starts, if it is one: it names itself and
    /// its settings at start-up, and waits for topics it may not create.
    fn role(&self) -> Option<&'static str> {
        match self {
            Self::Label(_) => Some("label"),
            Self::Sink(_) => Some("sink"),
            Self::Serve(_) => Some("serve"),
            Self::Act(args) if args.follows() => Some("act"),
            Self::Produce(args) if args.follows() => Some("produce"),
            _ => None,
        }
    }
}

/// A closed stdout (`bucketlens status | head -1`) ends the process quietly with
/// SIGPIPE's status (141), as it ends Unix tools: `println!` panics on it otherwise.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    bucketlens_runtime::telemetry::init("warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            bucketlens_runtime::say!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let (file, data_dir) = (cli.config, cli.data_dir);
        let role = cli.command.role();
        let load = || {
            let mut settings = bucketlens_pipeline::settings::Settings::load(file.as_deref(), data_dir.clone())?;
            match role {
                Some(role) => commands::config::started(role, file.as_deref(), &settings),
                // One-shot commands do not wait for topics: they say what is missing.
                None => settings.log.topic_wait = Some(std::time::Duration::ZERO),
            }
            anyhow::Ok(settings)
        };
        match cli.command {
            Command::Config(args) => commands::config::run(file.as_deref(), data_dir.clone(), args),
            Command::Completions(args) => commands::docs::completions(Cli::command(), args),
            Command::Man(args) => commands::docs::man(Cli::command(), args),
            Command::Models(args) => commands::models::run(args, load).await,
            Command::LabelOne(args) => commands::label::run_one(args).await,
            Command::Index(args) => bucketlens_pipeline::index::run(&load()?, args).await,
            Command::Search(args) => commands::search::run(&load()?, args).await,
            Command::Labels(args) => commands::labels::run(&load()?, args).await,
            Command::Duplicates(args) => commands::duplicates::run(&load()?, args).await,
            Command::Similar(args) => commands::duplicates::similar(&load()?, args).await,
            Command::Replay(args) => bucketlens_pipeline::replay::run(&load()?, args).await,
            Command::Reindex(args) => commands::reindex::run(&load()?, args).await,
            Command::Relabel(args) => bucketlens_pipeline::relabel::run(&load()?, args).await,
            Command::Status(args) => bucketlens_pipeline::status::run(&load()?, args).await,
            Command::Serve(args) => commands::serve::run(&load()?, args).await,
            Command::Label(args) => commands::label::run(&load()?, args).await,
            Command::Sink(args) => commands::sink::run(&load()?, args).await,
            Command::Produce(args) => bucketlens_pipeline::produce::run(&load()?, args).await,
            Command::Plan(args) => bucketlens_pipeline::plan::run(&load()?, args).await,
            Command::Act(args) => bucketlens_pipeline::act::run(&load()?, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            bucketlens_runtime::say!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
