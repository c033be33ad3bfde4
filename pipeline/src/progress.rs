//! Progress of a run: a bar with rate and ETA on a terminal; otherwise (CI logs,
//! pipes, `docker compose logs`) a plain line every few seconds while something
//! changes, and one every few minutes while nothing does (an idle `--watch`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

/// Shared progress: `total` may grow while the run goes on.
#[derive(Default)]
pub struct Totals {
    pub total: AtomicU64,
}

/// Reports `done()` against `totals` until `stop` is cancelled.
pub fn spawn(
    totals: Arc<Totals>,
    done: impl Fn() -> u64 + Send + 'static,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message("indexing");
            bar
        });
        let start = Instant::now();
        let mut last_line = Instant::now();
        let mut last_said = (0, 0);
        loop {
            let stopped = stop.is_cancelled();
            let (pos, total) = (done(), totals.total.load(Ordering::Relaxed));
            if let Some(bar) = &bar {
                bar.set_message(if total == 0 { "scanning" } else { "indexing" });
                bar.set_length(total.max(pos).max(1));
                bar.set_position(pos);
            } else if !stopped && line_due(last_line.elapsed(), last_said != (pos, total)) {
                let rate = pos as f64 / start.elapsed().as_secs_f64().max(1e-3);
                bucketlens_runtime::say!("progress: {pos}/{total} indexed, {rate:.1}/s");
                last_line = Instant::now();
                last_said = (pos, total);
            }
            if stopped {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(if tty { 100 } else { 250 })) => {}
                () = stop.cancelled() => {}
            }
        }
    })
}

/// Without a terminal, a line is printed this often at most while progress is made…
const LINE_EVERY: Duration = Duration::from_secs(2);
/// …and this often while nothing changes (a heartbeat).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(300);

/// Whether a plain progress line is due, `since` the last one, and whether the
/// counts `changed` since.
fn line_due(since: Duration, changed: bool) -> bool {
    since >= if changed { LINE_EVERY } else { HEARTBEAT_EVERY }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_run_prints_a_heartbeat_only() {
        assert!(!line_due(Duration::from_secs(1), true));
        assert!(line_due(Duration::from_secs(2), true));
        assert!(!line_due(Duration::from_secs(60), false), "nothing changed: no line every 2 s");
        assert!(line_due(Duration::from_secs(300), false));
    }
}
