//! The README's and the guide's examples as the tests read and run them.
//!
//! A fenced block's info string is its language and, after a space, a tag that says
//! where its commands run (a code host colours the block by the first word alone):
//! - `sh`: on this machine, against the example photos (`e2e_index`);
//! - `sh moto`, `sh tansu`: against the S3 server or the Kafka broker the suite starts
//!   (`e2e_s3`, `e2e_kafka`);
//! - `sh aws`, `sh kubernetes`, `sh docker`: they need what no test here has (an AWS
//!   account, a cluster, a Docker engine); the page says so, and the `bucketlens`
//!   lines in them are still parsed by the binary.
//!
//! A `console` block shows commands (`$ `) and what they print; its output is compared
//! with [`assert_shows`].
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The tags a `sh` block may carry, with what runs it.
pub const TAGS: [&str; 7] = ["", "moto", "tansu", "aws", "kubernetes", "docker", "models"];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every page of docs/.
pub fn pages() -> Vec<PathBuf> {
    let root = root();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// A fenced block of a page.
#[derive(Clone, Debug)]
pub struct Block {
    /// The page's file name, for messages.
    pub page: String,
    pub lang: String,
    pub tag: String,
    pub body: String,
}

/// The fenced blocks of a Markdown page, in order.
pub fn fenced(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(page).unwrap();
    let name = page.file_name().unwrap().to_string_lossy().into_owned();
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                let (lang, tag) = info.trim().split_once(' ').unwrap_or((info.trim(), ""));
                open =
                    Some(Block { page: name.clone(), lang: lang.into(), tag: tag.trim().into(), body: String::new() });
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(block), None) => {
                block.body.push_str(line);
                block.body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The `sh` blocks with `tag` of every page.
pub fn sh_blocks(tag: &str) -> Vec<Block> {
    pages().iter().flat_map(|p| fenced(p)).filter(|b| b.lang == "sh" && b.tag == tag).collect()
}

/// A documented command: its environment, and its arguments after `bucketlens`.
pub type Documented = (Vec<(String, String)>, Vec<String>);

/// The line without its `# comment`.
pub fn without_comment(line: &str) -> &str {
    line.split("  #").next().unwrap().trim()
}

/// A shell line of the docs, as the test reads it: the `bucketlens` command in it
/// (inside `<( )`, before a pipe or a redirection, after `NAME=value` words, the
/// binary named as `bucketlens`, `target/release/bucketlens` or `cargo run --release
/// --`), with its environment. `None` for a line that runs something else. Words are
/// split (and `~` expanded) by bash, with `home` as `$HOME` when given.
pub fn documented_command_in(line: &str, home: Option<&Path>) -> Option<Documented> {
    let line = without_comment(line);
    let line = line.split_once("<(").map_or(line, |(_, rest)| rest.trim_end_matches(')'));
    let line = line.split(['|', '>']).next().unwrap().trim();
    let mut bash = Command::new("bash");
    bash.args(["-c", "eval \"set -- $1\"; printf '%s\\0' \"$@\"", "_", line]);
    if let Some(home) = home {
        bash.env("HOME", home);
    }
    let words = bash.output().unwrap();
    let words: Vec<String> =
        String::from_utf8(words.stdout).unwrap().split('\0').filter(|w| !w.is_empty()).map(str::to_string).collect();
    let mut env = Vec::new();
    let mut rest = words.as_slice();
    while let Some((name, value)) = rest
        .first()
        .and_then(|w| w.split_once('='))
        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    {
        env.push((name.to_string(), value.to_string()));
        rest = &rest[1..];
    }
    let args = match rest {
        [program, args @ ..] if program == "bucketlens" || program.ends_with("/bucketlens") => args,
        [cargo, run, release, dashes, args @ ..]
            if cargo == "cargo" && run == "run" && release == "--release" && dashes == "--" =>
        {
            args
        }
        _ => return None,
    };
    Some((env, args.to_vec()))
}

pub fn documented_command(line: &str) -> Option<Documented> {
    documented_command_in(line, None)
}

/// Whether a command runs until it is stopped (a follower, a server, a Kafka role).
pub fn runs_until_stopped(args: &[String]) -> bool {
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let command = args.iter().find(|a| !a.starts_with('-')).map(String::as_str);
    has("--watch")
        || matches!(command, Some("serve" | "sink" | "label"))
        || (command == Some("act") && !has("--until-end"))
        || (command == Some("produce") && args.iter().any(|a| a == "events") && !has("--from-file"))
}

/// What a command prints, with the decimals (confidences, which the engines round
/// apart, and times and rates) masked.
pub fn masked(output: &str) -> String {
    let mut out = String::new();
    for word in output.split_inclusive([' ', '\n']) {
        let bare = word.trim_end();
        let number = bare.chars().any(|c| c.is_ascii_digit()) && bare.chars().all(|c| c.is_ascii_digit() || c == '.');
        out.push_str(if number && bare.contains('.') { "#" } else { bare });
        out.push_str(&word[bare.len()..]);
    }
    out
}

/// Asserts that `printed` is what a page shows: line by line after [`masked`], where
/// a shown line `…` stands for any lines (none included) and `…` within a line for
/// any text (`/…/examples/photos`: a path).
pub fn assert_shows(printed: &str, shown: &str, what: &str) {
    fn matches(printed: &[&str], shown: &[&str]) -> bool {
        match shown.split_first() {
            None => printed.is_empty(),
            Some((&"…", rest)) => (0..=printed.len()).any(|skip| matches(&printed[skip..], rest)),
            Some((line, rest)) => printed.split_first().is_some_and(|(first, more)| {
                let ok = match line.split('…').collect::<Vec<_>>().as_slice() {
                    [whole] => first == whole,
                    [head, middle @ .., tail] => {
                        let mut rest = match first.strip_prefix(head) {
                            Some(rest) if rest.len() >= tail.len() => &rest[..rest.len() - tail.len()],
                            _ => return false,
                        };
                        first.ends_with(tail)
                            && middle.iter().all(|part| match rest.find(part) {
                                Some(at) => {
                                    rest = &rest[at + part.len()..];
                                    true
                                }
                                None => false,
                            })
                    }
                    [] => unreachable!(),
                };
                ok && matches(more, rest)
            }),
        }
    }
    let (printed, shown) = (masked(printed), masked(shown));
    let p: Vec<&str> = printed.lines().collect();
    let s: Vec<&str> = shown.lines().collect();
    assert!(matches(&p, &s), "{what}: the page shows\n{shown}\nbut it prints\n{printed}");
}

/// Where a page's commands run: the binary first on `PATH`, a `$HOME`, a working
/// directory, the environment (a data dir, servers), and values for the page's
/// placeholders (words in capitals such as `QUEUE_URL`).
pub struct Shell {
    pub home: PathBuf,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub placeholders: Vec<(String, String)>,
    pub logs: PathBuf,
}

/// A command of a page that runs until stopped, started by [`Shell::start`]; ended by
/// its PID (SIGTERM) when dropped.
pub struct Started {
    pub line: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Started {
    pub fn printed(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for it to exit; it must exit cleanly.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "`{}` did not exit after SIGTERM", self.line);
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "`{}` exited with {status} after SIGTERM:\n{}", self.line, self.printed());
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
        }
    }
}

impl Shell {
    pub fn new(home: PathBuf, cwd: PathBuf, logs: PathBuf) -> Self {
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&logs).unwrap();
        Self { home, cwd, env: Vec::new(), placeholders: Vec::new(), logs }
    }

    fn filled(&self, line: &str) -> String {
        let mut line = without_comment(line).to_string();
        for (name, value) in &self.placeholders {
            line = line.replace(name.as_str(), value);
        }
        line
    }

    fn bash(&self, line: &str) -> Command {
        let bin = Path::new(super::BIN).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("bash");
        cmd.args(["-o", "pipefail", "-c", line]).current_dir(&self.cwd);
        cmd.env_remove("BUCKETLENS_CONFIG").env("PATH", path).env("HOME", &self.home).env("NO_COLOR", "1");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs a line as a user types it (pipes and `<( )` included), whatever its
    /// exit status.
    pub fn output(&self, line: &str) -> Output {
        self.bash(&self.filled(line)).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs a line as a user types it and returns what it printed; it must succeed.
    pub fn run(&self, line: &str) -> Output {
        let filled = self.filled(line);
        let out = self.output(line);
        assert!(
            out.status.success(),
            "`{filled}` failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts a line that runs until stopped and waits until it says it is ready (its
    /// `Ctrl-C` line) or `ready` holds for what it printed; it must not exit
    /// meanwhile.
    pub fn start(&self, line: &str, mut ready: impl FnMut(&str) -> bool) -> Started {
        let filled = self.filled(line);
        let n = std::fs::read_dir(&self.logs).unwrap().count();
        let log = self.logs.join(format!("{n}.log"));
        let file = std::fs::File::create(&log).unwrap();
        // A server the page binds to every interface (`0.0.0.0:8080`, as in a
        // container) binds them in a network namespace of its own (`unshare`,
        // util-linux): this machine's tests bind 127.0.0.1 only.
        let isolated = if filled.contains("0.0.0.0") { "unshare --user --map-root-user --net " } else { "" };
        let child = self
            .bash(&format!("exec {isolated}{filled}"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut started = Started { line: filled, child, log };
        let begun = Instant::now();
        loop {
            let printed = started.printed();
            if let Some(status) = started.child.try_wait().unwrap() {
                panic!("`{}` exited with {status} before it was ready:\n{printed}", started.line);
            }
            if printed.contains("Ctrl-C") || ready(&printed) {
                return started;
            }
            assert!(begun.elapsed() < Duration::from_secs(180), "`{}` not ready in 180 s:\n{printed}", started.line);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs the `bucketlens` lines of a `sh` block in order (others, such as
    /// `scripts/test`, are left to what runs them): a line that runs until stopped is
    /// started; any other is run as typed and must succeed. As typed in one terminal,
    /// a line that runs until stopped is stopped (Ctrl-C) before the next one; with
    /// `together` (roles a page starts side by side, in terminals of their own) they
    /// run on, and are stopped at the end of the block. `before` sees each line
    /// first, with what runs. Returns how many lines ran.
    pub fn run_block(
        &self,
        block: &Block,
        together: bool,
        mut before: impl FnMut(&str, &mut Vec<Started>),
        mut ready: impl FnMut(&str) -> bool,
    ) -> usize {
        let mut running: Vec<Started> = Vec::new();
        let mut ran = 0;
        for line in block.body.lines().filter(|l| !without_comment(l).is_empty()) {
            let Some((_, args)) = documented_command_in(&self.filled(line), Some(&self.home)) else {
                continue;
            };
            if !together {
                for started in running.drain(..) {
                    started.stop();
                }
            }
            before(line, &mut running);
            if runs_until_stopped(&args) {
                running.push(self.start(line, &mut ready));
            } else {
                self.run(line);
            }
            ran += 1;
        }
        for started in running {
            started.stop();
        }
        ran
    }
}
