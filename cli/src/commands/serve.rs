//! `bucketlens serve`: the HTTP search API and the web UI, until Ctrl-C. It reads
//! the index (never writes it), so it runs beside `index --watch` or `sink`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use bucketlens_runtime::config::ConfigError;
use bucketlens_serve::{Parts, StatusFn};

use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::status;
use bucketlens_pipeline::wiring;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen here instead of [serve] listen (default 127.0.0.1:7878): ADDRESS:PORT
    /// or HOST:PORT (localhost:7878); any address but loopback needs [serve] token
    /// (BUCKETLENS_SERVE__TOKEN).
    #[arg(long, value_name = "ADDRESS:PORT")]
    listen: Option<String>,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = settings.serve.clone();
    if let Some(listen) = args.listen {
        config.listen = resolve(&listen).await?;
    }
    config.validate().and_then(|()| config.check_exposure()).map_err(ConfigError::Invalid)?;
    let shutdown = bucketlens_runtime::shutdown::on_signals();
    let index = wiring::open_index_reader(settings).await?;
    let log = wiring::open_log(settings).await?;
    let source = wiring::object_sources(settings).await?;
    let status: StatusFn = {
        let (settings, log, index) = (settings.clone(), Arc::clone(&log), Arc::clone(&index));
        let local = status::index_here(&settings);
        Arc::new(move || {
            let (settings, log, index) = (settings.clone(), Arc::clone(&log), Arc::clone(&index));
            Box::pin(async move {
                let index = local.then_some(&*index);
                status::report(&settings, &*log, index).await.map_err(|e| format!("{e:#}"))
            })
        })
    };
    let parts = Parts {
        config,
        index,
        source,
        log,
        status,
        cache_dir: settings.thumbnails_path(),
        max_bytes: settings.labeler.max_bytes,
        max_pixels: settings.labeler.max_pixels,
        labeler: settings.labeler.clone(),
    };
    let (bound, server) = bucketlens_serve::start(parts, shutdown).await.map_err(anyhow::Error::msg)?;
    // The URL to open here, and the address really bound (all interfaces, a port the
    // system chose) when that differs.
    let host = if bound.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], bound.port())) } else { bound };
    let listening = if host == bound { String::new() } else { format!("listening on {bound}; ") };
    bucketlens_runtime::say!(
        "serving the index {} on http://{host}/ ({listening}Ctrl-C stops)",
        wiring::index_location(settings)
    );
    server.await??;
    Ok(ExitCode::SUCCESS)
}

/// `ADDRESS:PORT`, or `HOST:PORT` looked up (the first address it has).
async fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    let mut found = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {listen}: not ADDRESS:PORT, and not a HOST:PORT that resolves ({e})"))?;
    found.next().ok_or_else(|| anyhow::anyhow!("--listen {listen}: the host has no address"))
}
