//! `bucketlens reindex [--to NAME]`: a blue/green rebuild of the OpenSearch index
//! from the label log, with no downtime. The procedure is the index crate's
//! ([`bucketlens_index::reindex`]); this parses and wires.

use std::process::ExitCode;

use anyhow::bail;
use bucketlens_index::reindex::{Ended, Reindex};
use bucketlens_index::Backend;
use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::wiring;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new index [default: the next `<index>-vN`].
    #[arg(long)]
    to: Option<String>,
    /// When `index` is a plain index rather than an alias (made by hand, or by
    /// bucketlens before it made aliases): delete it in the same atomic step that
    /// gives its name to the alias. Without this flag such an index is refused.
    #[arg(long)]
    delete_old: bool,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    if settings.index.backend != Backend::OpenSearch {
        bail!(
            "reindex builds a new OpenSearch index; the embedded index (tantivy) is rebuilt in place: documents are \
             replaced by key, so it is never empty meanwhile. Run `bucketlens replay --group {} --from earliest` \
             (delete {} first for a clean rebuild)",
            settings.index.group,
            settings.index_path().display()
        );
    }
    let reindex = Reindex::plan(&settings.index, args.to, args.delete_old).await?;
    let log = wiring::open_log(settings).await?;
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    Ok(match reindex.run(log, &shutdown).await? {
        Ended::Done => ExitCode::SUCCESS,
        Ended::Interrupted => ExitCode::from(130),
    })
}
