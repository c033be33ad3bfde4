//! Mutation fuzzing on stable Rust for the code that reads input from outside.
//!
//! cargo-fuzz and its coverage-guided engines need a nightly compiler; this machine
//! has stable only. The harness here is a plain mutation fuzzer instead:
//!
//! - each target starts from seeds (AWS's documented payload shapes, generated Avro
//!   records and images, see `seeds/README.md`);
//! - each input is a seed or a corpus entry with 1–8 stacked mutations (bit flips,
//!   interesting bytes and integers, inserted tokens from the target's dictionary,
//!   deleted, duplicated or spliced ranges, truncation, deep nesting);
//! - an input whose outcome has a new *signature* (its result kind and the first
//!   words of its error) joins the corpus, a coarse stand-in for coverage feedback;
//! - a panic is caught and recorded with its input; an input that takes over
//!   [`SLOW`] is recorded as a hang; an abort (stack overflow, a failed allocation
//!   under the binary's address-space limit) kills the process, and the binary's
//!   parent saves the input it was running.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod runs;

use runs::*;

/// An input slower than this is a finding (a hang, or work out of proportion).
pub const SLOW: Duration = Duration::from_secs(2);
/// The most inputs kept in a target's corpus.
const CORPUS_MAX: usize = 4096;

/// One fuzzing target: a parser or decoder and where its inputs start.
pub struct Target {
    pub name: &'static str,
    pub what: &'static str,
    /// Inputs longer than this are cut (what a real caller bounds, or a size that
    /// keeps the rate useful).
    pub max_len: usize,
    pub dictionary: &'static [&'static [u8]],
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Runs the input; returns the outcome's signature.
    pub run: fn(&[u8]) -> String,
}

/// What a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Panic { message: String, input: Vec<u8> },
    Slow { millis: u128, input: Vec<u8> },
}

/// What a run of one target did.
#[derive(Debug)]
pub struct Report {
    pub inputs: u64,
    pub elapsed: Duration,
    pub corpus: usize,
    pub signatures: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How long a run goes on.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    Inputs(u64),
    Time(Duration),
}

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        Target {
            name: "events",
            what: "S3 / EventBridge / MinIO / Lambda SQS / SNS event documents (bucketlens_events::parse)",
            max_len: 64 << 10,
            dictionary: &[
                b"{\"Records\":[",
                b"]}",
                b"\"eventSource\":\"aws:sqs\"",
                b"\"body\":",
                b"\"Message\":",
                b"\"s3\":{",
                b"\"key\":\"",
                b"%2F",
                b"%",
                b"+",
                b"\\u0000",
                b"\\ud800",
                b"\"size\":-1",
                b"1e999",
                b"18446744073709551616",
                b"\"eventName\":\"ObjectRemoved:Delete\"",
                b"\"detail-type\":\"Object Created\"",
                b"\"Type\":\"Notification\"",
                b"null",
                b"[[[[[[[[",
                b"\"sequencer\":\"",
                b"\"eventVersion\":\"2.1\"",
            ],
            seeds: || {
                let mut seeds = read_dir_seeds(&["seeds/events", "../producers/events/tests/fixtures"]);
                seeds.push(b"{}".to_vec());
                seeds
            },
            run: run_events,
        },
        Target {
            name: "manifest",
            what: "S3 Inventory manifest.json (inventory::manifest::Manifest::parse)",
            max_len: 64 << 10,
            dictionary: &[
                b"\"fileFormat\":\"CSV\"",
                b"\"fileSchema\":\"",
                b"Bucket, Key",
                b"\"files\":[",
                b"\"MD5checksum\":\"",
                b"arn:aws:s3:::",
                b":::",
                b"\"size\":",
                b"ORC",
                b"null",
                b"[[[[[[[[",
            ],
            seeds: || read_dir_seeds(&["seeds/manifest"]),
            run: run_manifest,
        },
        Target {
            name: "csv",
            what: "S3 Inventory CSV rows (inventory::rows::Rows)",
            max_len: 64 << 10,
            dictionary: &[
                b"\"photos\",",
                b"%2F",
                b"%",
                b"+",
                b"%C3%A9",
                b"%FF",
                b"\"true\"",
                b"\"false\"",
                b"\"null\"",
                b"2026-11-30T12:00:00.000Z",
                b"99999999999999999999",
                b"\"\"",
                b"\n",
                b"\r\n",
                b",",
                b".jpg\"",
            ],
            seeds: || read_dir_seeds(&["seeds/csv"]),
            run: run_csv,
        },
        Target {
            name: "avro",
            what: "Avro single-object and Confluent-framed records (ObjectChanged, ImageLabeled)",
            max_len: 16 << 10,
            dictionary: &[
                &[0xC3, 0x01],
                &[0x00, 0, 0, 0, 7],
                &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
                &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                &[0x01],
                &[0x7F],
            ],
            seeds: avro_seeds,
            run: run_avro,
        },
        Target {
            name: "query",
            what: "the search query language (index::Expr::parse)",
            max_len: 16 << 10,
            dictionary: &[
                b"(",
                b")",
                b" AND ",
                b" OR ",
                b" NOT ",
                b"-",
                b"\"",
                b"*",
                b"((((((((",
                b"--------",
                b"NOT NOT NOT ",
            ],
            seeds: || lines("seeds/query"),
            run: run_query,
        },
        Target {
            name: "image",
            what: "image headers and decoding (labeler::image: properties, prepare, decode)",
            max_len: 64 << 10,
            dictionary: &[
                &[0xFF, 0xD8],
                &[0xFF, 0xC0],
                &[0xFF, 0xC2],
                &[0xFF, 0xC4],
                &[0xFF, 0xDA],
                &[0xFF, 0xD9],
                &[0xFF, 0xDD, 0, 4, 0, 0],
                &[0x27, 0x10, 0x27, 0x10],
                &[0xFF, 0xFF, 0xFF, 0xFF],
                &[0x00, 0x00, 0xEA, 0x60],
                b"IHDR",
                b"IDAT",
                b"IEND",
                b"PLTE",
                b"tRNS",
                &[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'],
            ],
            seeds: image_seeds,
            run: run_image,
        },
        Target {
            name: "metadata",
            what: "photo metadata: EXIF, XMP and IPTC in JPEG, PNG and WebP (labeler::metadata::read)",
            max_len: 64 << 10,
            dictionary: &[
                b"Exif\0\0",
                b"MM\0\x2a\0\0\0\x08",
                b"II\x2a\0\x08\0\0\0",
                &[0x87, 0x69],
                &[0x88, 0x25],
                &[0x90, 0x03],
                b"2019:07:14 09:30:05",
                b"0000:00:00 00:00:00",
                b"+09:00",
                &[0xFF, 0xE1],
                &[0xFF, 0xED],
                b"8BIM\x04\x04",
                &[0x1C, 0x02, 0x19],
                b"http://ns.adobe.com/xap/1.0/\0",
                b"<rdf:li>",
                b"</rdf:li>",
                b"&amp;",
                b"&#xD800;",
                b"<![CDATA[",
                b"xmlns:dc=\"http://purl.org/dc/elements/1.1/\"",
                b"iTXt",
                b"XMP ",
            ],
            seeds: metadata_seeds,
            run: run_metadata,
        },
        Target {
            name: "text-boxes",
            what: "the text detector's map to line boxes, reading order and CTC (labeler::analyzers::text::decode)",
            max_len: 16 << 10,
            dictionary: &[&[0, 0, 0, 0], &[255, 255, 255, 255], &[128; 8], &[77; 4], &[1, 1], &[96, 96]],
            seeds: text_map_seeds,
            run: run_text_boxes,
        },
    ]
}

/// Maps of a few shapes: blank, one bar, two bars, all text.
fn text_map_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (w, h, bars) in
        [(32u8, 16u8, vec![]), (48, 24, vec![(4, 4, 40, 10)]), (64, 32, vec![(2, 2, 60, 8), (10, 20, 30, 28)])]
    {
        let mut map = vec![w, h];
        for y in 0..h {
            for x in 0..w {
                let on = bars.iter().any(|&(l, t, r, b)| (l..r).contains(&x) && (t..b).contains(&y));
                map.push(if on { 240 } else { 0 });
            }
        }
        seeds.push(map);
    }
    seeds.push(vec![8, 8, 255]);
    seeds
}

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    targets().into_iter().find(|t| t.name == name)
}

/// Stacks 1–8 mutations on a copy of `base`.
fn mutate(rng: &mut fastrand::Rng, base: &[u8], corpus: &[Vec<u8>], target: &Target) -> Vec<u8> {
    let mut data = base.to_vec();
    for _ in 0..rng.usize(1..=8) {
        let len = data.len();
        match rng.u8(0..11) {
            0 if len > 0 => {
                let i = rng.usize(0..len);
                data[i] ^= 1 << rng.u8(0..8);
            }
            1 if len > 0 => {
                let i = rng.usize(0..len);
                data[i] = *rng
                    .choice(&[0u8, 0xFF, 0x7F, 0x80, b'0', b'9', b'"', b'{', b'}', b'[', b']', b'\\', b',', b'%', 0x01])
                    .unwrap_or(&0);
            }
            2 if len >= 4 => {
                // An interesting integer, big- or little-endian.
                let i = rng.usize(0..len - 3);
                let v = *rng
                    .choice(&[0u32, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF, 0x1_0000, 65_535, 60_000])
                    .unwrap_or(&0);
                let bytes = if rng.bool() { v.to_be_bytes() } else { v.to_le_bytes() };
                data[i..i + 4].copy_from_slice(&bytes);
            }
            3 => {
                let token = rng.choice(target.dictionary).copied().unwrap_or(b"");
                let i = rng.usize(0..=len);
                data.splice(i..i, token.iter().copied());
            }
            4 if len > 0 => {
                let start = rng.usize(0..len);
                let end = rng.usize(start..=len.min(start + 64));
                data.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.usize(0..len);
                let end = rng.usize(start..=len.min(start + 64));
                let chunk = data[start..end].to_vec();
                let at = rng.usize(0..=data.len());
                data.splice(at..at, chunk);
            }
            6 if !corpus.is_empty() => {
                // Splice in a range of another input.
                let other = &corpus[rng.usize(0..corpus.len())];
                if !other.is_empty() {
                    let start = rng.usize(0..other.len());
                    let end = rng.usize(start..=other.len());
                    let at = rng.usize(0..=data.len());
                    let cut = rng.usize(at..=data.len());
                    data.splice(at..cut, other[start..end].iter().copied());
                }
            }
            7 if len > 0 => data.truncate(rng.usize(0..len)),
            8 => {
                // Deep nesting: the same opening token many times.
                let token = rng.choice(target.dictionary).copied().unwrap_or(b"[");
                let at = rng.usize(0..=len);
                let times = rng.usize(100..20_000);
                let run: Vec<u8> = token.iter().copied().cycle().take(token.len() * times).collect();
                data.splice(at..at, run);
            }
            9 => {
                let at = rng.usize(0..=len);
                let random: Vec<u8> = (0..rng.usize(1..32)).map(|_| rng.u8(..)).collect();
                data.splice(at..at, random);
            }
            _ if len > 1 => {
                let (a, b) = (rng.usize(0..len), rng.usize(0..len));
                data.swap(a, b);
            }
            _ => {}
        }
    }
    data.truncate(target.max_len.max(8));
    data
}

/// The panic message of the last caught panic, set by [`quiet_panics`]'s hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook with one that records the message instead of printing it.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(format!("{info}{at}"));
        }
    }));
}

/// Fuzzes `target` from `seed` within `budget`. `current` is told each input before
/// it runs (the binary writes it to a file, for an abort to be traced).
pub fn fuzz(target: &Target, seed: u64, budget: Budget, mut current: impl FnMut(&[u8])) -> Report {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut corpus: Vec<Vec<u8>> = (target.seeds)();
    let mut signatures: HashSet<u64> = HashSet::new();
    let mut findings = Vec::new();
    let start = Instant::now();
    let mut inputs: u64 = 0;
    let seeds = corpus.len();
    loop {
        match budget {
            Budget::Inputs(n) if inputs >= n => break,
            Budget::Time(t) if start.elapsed() >= t => break,
            _ => {}
        }
        // The seeds as they are first, then mutations of corpus entries.
        let input = if (inputs as usize) < seeds {
            corpus[inputs as usize].clone()
        } else {
            let base = corpus[rng.usize(0..corpus.len())].clone();
            mutate(&mut rng, &base, &corpus, target)
        };
        inputs += 1;
        current(&input);
        let began = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        let took = began.elapsed();
        match outcome {
            Ok(sig) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                sig.hash(&mut h);
                if signatures.insert(h.finish()) && corpus.len() < CORPUS_MAX {
                    corpus.push(input.clone());
                }
            }
            Err(_) => {
                let message = LAST_PANIC.lock().ok().and_then(|mut l| l.take()).unwrap_or_else(|| "a panic".into());
                findings.push(Finding::Panic { message, input: input.clone() });
            }
        }
        if took > SLOW {
            findings.push(Finding::Slow { millis: took.as_millis(), input });
        }
    }
    Report { inputs, elapsed: start.elapsed(), corpus: corpus.len(), signatures: signatures.len(), findings }
}
