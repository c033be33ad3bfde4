//! `bucketlens duplicates`: exact copies and near duplicates, with the bytes keeping
//! only the largest of each group would free; and `bucketlens similar`: where else a
//! photo is (the same picture, copied, resized, recompressed or converted).

use std::process::ExitCode;

use anyhow::Context;
use bucketlens_index::duplicates::{self, Kind, Member, Report, DEFAULT_MIN_SIMILARITY};
use bucketlens_pipeline::plan::size;
use bucketlens_pipeline::settings::Settings;
use bucketlens_pipeline::wiring;
use bucketlens_runtime::text::escape_controls;
use serde_json::json;

/// The photos that take part: all, or those of one bucket or under one prefix.
#[derive(Debug, clap::Args)]
pub struct Scope {
    /// Only this bucket.
    #[arg(long)]
    bucket: Option<String>,
    /// Only keys starting with this.
    #[arg(long)]
    prefix: Option<String>,
}

impl Scope {
    async fn collect(&self, index: &dyn bucketlens_index::Index) -> anyhow::Result<duplicates::Collected> {
        Ok(duplicates::collect(index, self.bucket.as_deref(), self.prefix.as_deref()).await?)
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    scope: Scope,
    /// Near duplicates: perceptual hashes at least this alike (0-1; 1 - bits apart / 64).
    /// 1 finds the same pixels only; below 0.83 is refused (more than 11 bits apart).
    #[arg(long, default_value_t = DEFAULT_MIN_SIMILARITY, value_parser = similarity)]
    min_similarity: f64,
    /// Only exact copies (the same bytes).
    #[arg(long)]
    exact: bool,
    /// At most this many groups printed, most reclaimable first (the total counts them all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

fn similarity(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number between 0 and 1"))?;
    let lowest = duplicates::similarity(duplicates::MAX_DISTANCE);
    if !(0.0..=1.0).contains(&value) || value < lowest - 1e-9 {
        return Err(format!(
            "{value} is outside {lowest:.2}-1: near duplicates are at most {} of 64 bits apart",
            duplicates::MAX_DISTANCE
        ));
    }
    Ok(value)
}

fn member_line(m: &Member) -> String {
    let mut parts = vec![m.size.map_or("size unknown".to_string(), |s| size(s.max(0) as u64))];
    if let (Some(w), Some(h)) = (m.width, m.height) {
        parts.push(format!("{w}×{h}"));
    }
    if let Some(class) = &m.storage_class {
        parts.push(class.clone());
    }
    format!("{}/{} ({})", escape_controls(&m.bucket), escape_controls(&m.key), parts.join(", "))
}

fn print_report(report: &Report, limit: usize) {
    for group in report.groups.iter().take(limit) {
        let what = match group.kind {
            Kind::Exact => "exact copies",
            Kind::Near => "near duplicates",
        };
        println!("{what}, {} reclaimable:", size(group.reclaimable_bytes.max(0) as u64));
        for (i, m) in group.members.iter().enumerate() {
            println!("  {} {}", if i == 0 { "keep" } else { "    " }, member_line(m));
        }
    }
    if report.groups.len() > limit {
        println!("… {} more groups (--limit, or --json for all)", report.groups.len() - limit);
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let index = wiring::open_existing_index(settings).await?;
    let collected = args.scope.collect(index.as_ref()).await?;
    let photos = collected.members.len();
    let mut members = collected.members;
    if args.exact {
        members.iter_mut().for_each(|m| m.dhash = None);
    }
    let report = duplicates::find(members, duplicates::max_distance(args.min_similarity));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, args.limit);
        println!(
            "{} groups · {} reclaimable by keeping the largest of each · {photos} photos compared",
            report.groups.len(),
            size(report.total_reclaimable_bytes.max(0) as u64)
        );
    }
    if collected.unhashed > 0 {
        bucketlens_runtime::say!(
            "{} labeled photos have no hashes (labeled before `labeler.hashes`, or with it off) and are in no group: \
             `bucketlens relabel` them, or run the labeler once with hashes on",
            collected.unhashed
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("photo").required(true).args(["object", "image"])))]
pub struct SimilarArgs {
    /// An indexed photo, as BUCKET/KEY (a folder's bucket is its name).
    object: Option<String>,
    /// A photo file that need not be in the index: where else is it, and what looks like it?
    #[arg(long)]
    image: Option<std::path::PathBuf>,
    #[command(flatten)]
    scope: Scope,
    /// Only photos this search query matches (`cat`, `year:2019`, `camera:fujifilm`…).
    #[arg(long, short = 'q', default_value = "")]
    query: String,
    /// Only its copies: the same bytes, or the same picture resized, recompressed or
    /// converted, by perceptual hash (its similarity is then the hashes', as in `duplicates`).
    #[arg(long)]
    copies: bool,
    /// At least this alike (0-1). With --copies: as `duplicates --min-similarity`
    /// (default 0.89, at least 0.83).
    #[arg(long)]
    min_similarity: Option<f64>,
    /// At most this many results, most similar first.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

/// A photo that looks like the one asked about: how alike (0-1), whether it has the
/// same bytes, and whether it is a copy (the same bytes, or near by perceptual hash).
#[derive(Debug)]
struct Looks {
    member: Member,
    similarity: f64,
    exact: bool,
    copy: bool,
}

impl Looks {
    /// The member's fields, then how alike.
    fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.member).unwrap_or_default();
        value["similarity"] = json!(self.similarity);
        value["exact"] = json!(self.exact);
        value["copy"] = json!(self.copy);
        value
    }
}

/// The photo asked about: its hashes, its embedding, and its place in the index.
struct Asked {
    hashes: Option<bucketlens_schemas::ImageHashes>,
    embedding: Option<bucketlens_schemas::ImageEmbedding>,
    own: Option<(String, String)>,
    name: String,
}

async fn asked(settings: &Settings, index: &dyn bucketlens_index::Index, args: &SimilarArgs) -> anyhow::Result<Asked> {
    match (&args.object, &args.image) {
        (Some(object), _) => {
            let (bucket, key) = object
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .with_context(|| format!("{object:?} is not BUCKET/KEY"))?;
            let hit =
                index.get(bucket, key).await?.filter(|h| h.state == bucketlens_index::DocState::Labeled).with_context(
                    || format!("{bucket}/{key} is not a labeled photo of the index (see `bucketlens search --failed`)"),
                )?;
            Ok(Asked {
                hashes: hit.hashes,
                embedding: hit.embedding,
                own: Some((hit.bucket, hit.key)),
                name: object.clone(),
            })
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let hashes = bucketlens_labeler::hashes::of_file(&bytes, settings.labeler.max_pixels)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let embedding = if args.copies {
                None
            } else {
                bucketlens_labeler::embed_file(&settings.labeler, bytes)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            };
            Ok(Asked { hashes: Some(hashes), embedding, own: None, name: path.display().to_string() })
        }
        (None, None) => unreachable!("clap requires one"),
    }
}

pub async fn similar(settings: &Settings, args: SimilarArgs) -> anyhow::Result<ExitCode> {
    let index = wiring::open_existing_index(settings).await?;
    let asked = asked(settings, index.as_ref(), &args).await?;
    let found = if args.copies {
        let hashes = asked.hashes.clone().with_context(|| {
            format!("{} has no hashes: it was labeled before `labeler.hashes`; relabel it", asked.name)
        })?;
        let min_similarity = similarity(&args.min_similarity.unwrap_or(DEFAULT_MIN_SIMILARITY).to_string())
            .map_err(anyhow::Error::msg)?;
        let collected = args.scope.collect(index.as_ref()).await?;
        let except = asked.own.as_ref().map(|(b, k)| (b.as_str(), k.as_str()));
        duplicates::alike(collected.members, &hashes, except, duplicates::max_distance(min_similarity))
            .into_iter()
            .take(args.limit)
            .map(|a| Looks { member: a.member, similarity: a.similarity, exact: a.exact, copy: true })
            .collect()
    } else {
        let min_similarity = args.min_similarity.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&min_similarity) {
            anyhow::bail!("--min-similarity {min_similarity} is outside 0-1");
        }
        let embedding = asked.embedding.clone().with_context(|| {
            format!(
                "{} has no embedding: it was labeled before embeddings, with `labeler.embedding` off, or by \
                 Rekognition (`bucketlens relabel` gives it one); --copies finds its copies by hash",
                asked.name
            )
        })?;
        let mut request = bucketlens_index::SearchRequest::new(
            bucketlens_index::query::Expr::parse(&args.query).map_err(anyhow::Error::msg)?,
        );
        request.bucket = args.scope.bucket.clone();
        request.prefix = args.scope.prefix.clone();
        request.limit = args.limit;
        request.like = Some(bucketlens_index::Like { embedding, except: asked.own.clone() });
        let response = index.search(request).await?;
        response
            .hits
            .iter()
            .filter(|hit| hit.similarity.unwrap_or(0.0) >= min_similarity)
            .map(|hit| {
                let member = Member::of(hit).unwrap_or_else(|| Member::unhashed(hit));
                let (exact, copy) = copy_of(asked.hashes.as_ref(), &member);
                Looks { similarity: hit.similarity.unwrap_or(0.0), member, exact, copy }
            })
            .collect::<Vec<_>>()
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "hits": found.iter().map(Looks::to_json).collect::<Vec<_>>() }))?
        );
    } else {
        for a in &found {
            let how = match (a.exact, a.copy) {
                (true, _) => "the same bytes".to_string(),
                (false, true) => format!("similarity {:.2}, a copy", a.similarity),
                (false, false) => format!("similarity {:.2}", a.similarity),
            };
            println!("{}  {how}", member_line(&a.member));
        }
        println!("{} found", found.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `member` has the bytes of the photo with `hashes`, and whether it is a copy
/// of it (those bytes, or perceptual hashes within the near-duplicate default).
fn copy_of(hashes: Option<&bucketlens_schemas::ImageHashes>, member: &Member) -> (bool, bool) {
    let Some(hashes) = hashes else { return (false, false) };
    let exact = member.sha256.as_deref() == Some(hashes.sha256.as_str());
    let near = match (hashes.dhash, member.dhash) {
        (Some(a), Some(b)) => (a ^ b).count_ones() <= duplicates::max_distance(DEFAULT_MIN_SIMILARITY),
        _ => false,
    };
    (exact, exact || near)
}
