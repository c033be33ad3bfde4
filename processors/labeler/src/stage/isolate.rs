//! Labeling one image in a child process, for an object that was in flight when a
//! labeler process died.
//!
//! A death inside the child (out of memory, an abort, a crash in a decoder) is seen
//! by a parent that lives on, so it is counted against that object alone and the run
//! goes on. A parent killed from outside (an operator's SIGKILL, a pod eviction, a
//! restart) is not a death of any child: it counts against nothing that was being
//! labeled alone. Without this, a good image in flight at a few unlucky restarts was
//! failed as `LabelerCrashed`.
//!
//! The protocol: the image's bytes on the child's stdin; one JSON [`Answer`] on its
//! stdout, then exit 0. Anything else is a death, described by how the child ended.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bucketlens_schemas::error_codes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::labeler::{LabelFailure, LabelSet, Labeler};

/// How to start a child labeler, and how many may run at once.
#[derive(Debug)]
pub struct Isolation {
    program: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
    slots: Semaphore,
}

/// What a child labeler answered, or how it died. (One a photo, moved once: a label
/// set inline costs nothing a box would save.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Isolated {
    Answered(Result<LabelSet, LabelFailure>),
    /// How it ended, as a phrase that follows "a process that": "was killed by
    /// signal 6 (SIGABRT)", "did not finish in 300 s and was killed", …
    Died(String),
}

/// The child's answer on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Labels(LabelSet),
    Failure { code: String, message: String, retryable: bool },
}

impl Isolation {
    /// Children run `program args…`; at most `at_once` at a time, each killed after
    /// `timeout` (a hang in a decoder is a death too).
    pub fn new(program: PathBuf, args: Vec<OsString>, at_once: usize, timeout: Duration) -> Self {
        Self { program, args, timeout, slots: Semaphore::new(at_once.max(1)) }
    }

    /// Labels `image` in a new child process.
    pub async fn label(&self, image: Vec<u8>) -> Isolated {
        let _slot = self.slots.acquire().await;
        let spawned = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal stops the parent, which
            // ends the child, instead of killing the child as if it had crashed.
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                // Not the object's doing: retried, then failed with the reason.
                return Isolated::Answered(Err(LabelFailure {
                    code: error_codes::LABELER_ERROR,
                    message: format!("cannot start a separate labeler process ({}): {e}", self.program.display()),
                    retryable: true,
                }));
            }
        };
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Isolated::Died("its pipes could not be opened".into());
        };
        let talk = async {
            // A child that dies before reading everything closes the pipe: not an error here.
            let write = async move {
                let _ = stdin.write_all(&image).await;
                drop(stdin);
            };
            let mut out = Vec::new();
            let read = stdout.read_to_end(&mut out);
            let ((), read) = tokio::join!(write, read);
            let status = child.wait().await;
            (read.map(|_| out), status)
        };
        let (out, status) = match tokio::time::timeout(self.timeout, talk).await {
            Ok(done) => done,
            // Dropping the child kills it.
            Err(_) => return Isolated::Died(format!("did not finish in {} s and was killed", self.timeout.as_secs())),
        };
        let status = match status {
            Ok(status) => status,
            Err(e) => return Isolated::Died(format!("its end could not be read: {e}")),
        };
        if let Some(signal @ (1 | 2 | 15)) = std::os::unix::process::ExitStatusExt::signal(&status) {
            // Stopped from outside (SIGHUP, SIGINT, SIGTERM), not crashed: tried again.
            return Isolated::Answered(Err(LabelFailure {
                code: error_codes::LABELER_ERROR,
                message: format!("a separate labeler process was stopped by signal {signal}"),
                retryable: true,
            }));
        }
        if !status.success() {
            return Isolated::Died(ended(status));
        }
        match out.map_err(|e| e.to_string()).and_then(|out| serde_json::from_slice(&out).map_err(|e| e.to_string())) {
            Ok(Answer::Labels(set)) => Isolated::Answered(Ok(set)),
            Ok(Answer::Failure { code, message, retryable }) => {
                let code = error_codes::ALL.into_iter().find(|c| *c == code).unwrap_or(error_codes::LABELER_ERROR);
                Isolated::Answered(Err(LabelFailure { code, message, retryable }))
            }
            Err(e) => Isolated::Died(format!("it exited 0 without a readable answer ({e})")),
        }
    }
}

/// How a child ended, in words.
fn ended(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => {
            let name = match signal {
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                9 => " (SIGKILL: out of memory, or killed)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            format!("was killed by signal {signal}{name}")
        }
        (None, None) => format!("ended ({status})"),
    }
}

/// The child's side: reads one image from stdin, labels it with `labeler` and writes
/// the [`Answer`] to stdout.
pub async fn answer_one(labeler: &dyn Labeler) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut image = Vec::new();
    // The child does nothing else meanwhile: plain blocking reads and writes.
    std::io::stdin().lock().read_to_end(&mut image)?;
    let answer = match labeler.label(image).await {
        Ok(set) => Answer::Labels(set),
        Err(f) => Answer::Failure { code: f.code.to_string(), message: f.message, retryable: f.retryable },
    };
    let text = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&text)?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Isolation {
        Isolation::new("sh".into(), vec!["-c".into(), script.into()], 1, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_child_that_aborts_is_a_death_named_by_its_signal() {
        match shell("cat >/dev/null; kill -ABRT $$").label(b"image".to_vec()).await {
            Isolated::Died(how) => assert_eq!(how, "was killed by signal 6 (SIGABRT)"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_child_that_exits_with_an_error_or_no_answer_is_a_death() {
        match shell("exit 3").label(vec![0; 1 << 20]).await {
            Isolated::Died(how) => assert_eq!(how, "exited with status 3"),
            other => panic!("{other:?}"),
        }
        match shell("cat >/dev/null; echo nonsense").label(b"x".to_vec()).await {
            Isolated::Died(how) => assert!(how.contains("without a readable answer"), "{how}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_child_stopped_from_outside_is_tried_again_not_counted() {
        match shell("cat >/dev/null; kill -TERM $$").label(b"image".to_vec()).await {
            Isolated::Answered(Err(f)) => assert!(f.retryable && f.code == error_codes::LABELER_ERROR, "{f:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_child_that_hangs_is_killed_at_the_timeout() {
        let hang =
            Isolation::new("sh".into(), vec!["-c".into(), "exec sleep 30".into()], 1, Duration::from_millis(300));
        let started = std::time::Instant::now();
        match hang.label(Vec::new()).await {
            Isolated::Died(how) => assert!(how.contains("did not finish"), "{how}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn an_answer_is_read_back_with_its_code() {
        let failure = r#"{"failure":{"code":"CorruptImage","message":"bad header","retryable":false}}"#;
        match shell(&format!("cat >/dev/null; echo '{failure}'")).label(b"x".to_vec()).await {
            Isolated::Answered(Err(f)) => {
                assert_eq!((f.code, f.message.as_str(), f.retryable), (error_codes::CORRUPT_IMAGE, "bad header", false))
            }
            other => panic!("{other:?}"),
        }
        let labels = serde_json::to_string(&Answer::Labels(LabelSet::default())).unwrap_or_default();
        match shell(&format!("cat >/dev/null; echo '{labels}'")).label(b"x".to_vec()).await {
            Isolated::Answered(Ok(set)) => assert!(set.labels.is_empty()),
            other => panic!("{other:?}"),
        }
    }
}
