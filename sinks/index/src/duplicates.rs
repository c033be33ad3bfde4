//! Duplicates: groups of exact copies (the same SHA-256 of the bytes) and of near
//! duplicates (perceptual hashes a few bits apart), with the bytes that keeping only
//! the largest member of each would free.
//!
//! No pair of photos is compared unless they could be in one group:
//! - exact copies meet in a hash map of their content hashes;
//! - near duplicates are found by multi-index hashing (Norouzi, Punjani and Fleet,
//!   2012): each 64-bit perceptual hash is cut into four 16-bit bands, and two hashes
//!   at most `d` bits apart agree on some band to within `⌊d / 4⌋` bits (if all four
//!   bands differed by more, the hashes would differ by at least `4 (⌊d / 4⌋ + 1) > d`).
//!   So each photo is compared only with those whose band is within that many bits of
//!   one of its own: per band a table of the photos sorted by that band, and a probe is
//!   a run of it; 4 probes at `d` ≤ 3 and 68 at `d` ≤ 7. On photos whose hashes spread
//!   evenly that is about `probes × n / 65536` comparisons a photo; many photos of one
//!   flat colour share their bands, and cost more.
//!
//! Near groups are the connected components of "within `d` bits": a chain of small
//! steps can join two photos further apart than `d` (as in every tool that groups by a
//! threshold). Each exact group takes part in the near search once, by the largest of
//! its members, so no byte is counted as reclaimable twice.

use std::collections::HashMap;

use serde::Serialize;

use crate::index::{Hit, Index, IndexError, SearchRequest};
use crate::query::Expr;

/// Bits of a perceptual hash.
pub const BITS: u32 = 64;

/// The most bits two hashes may differ by to be near duplicates (a similarity of
/// `1 - d / 64`): beyond 11 the probes of one band grow past a thousand.
pub const MAX_DISTANCE: u32 = 11;

/// The default least similarity of near duplicates: 57 of 64 bits alike, 7 apart.
/// `bucketlens-bench-hashes` chose it on the shipped photos' copies (2026-12-07):
/// every copy but the cropped ones within it, no two pictures closer than 13 bits,
/// and the largest distance one probe radius (⌊7 / 4⌋ = 1) covers; see
/// docs/searching.md.
pub const DEFAULT_MIN_SIMILARITY: f64 = 0.89;

/// One photo as the index holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub bucket: String,
    pub key: String,
    pub size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    #[serde(skip)]
    pub sha256: Option<String>,
    #[serde(skip)]
    pub dhash: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Exact,
    Near,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub kind: Kind,
    /// The largest first: the one to keep.
    pub members: Vec<Member>,
    pub reclaimable_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub groups: Vec<Group>,
    pub total_reclaimable_bytes: i64,
}

impl Member {
    /// A labeled document as a member of a group; `None` without hashes (labeled
    /// before `labeler.hashes`, or by a labeler with it off).
    pub fn of(hit: &Hit) -> Option<Self> {
        let hashes = hit.hashes.as_ref()?;
        Some(Self { sha256: Some(hashes.sha256.clone()), dhash: hashes.dhash, ..Self::unhashed(hit) })
    }

    /// A document as a member, without its hashes.
    pub fn unhashed(hit: &Hit) -> Self {
        Self {
            bucket: hit.bucket.clone(),
            key: hit.key.clone(),
            size: hit.size,
            storage_class: hit.storage_class.clone(),
            width: hit.image.as_ref().map(|i| i.width),
            height: hit.image.as_ref().map(|i| i.height),
            sha256: None,
            dhash: None,
        }
    }
}

/// What [`collect`] read: the members, and how many labeled documents had no hashes.
pub struct Collected {
    pub members: Vec<Member>,
    pub unhashed: u64,
}

/// Every labeled photo of `bucket` under `prefix` as the index holds it now, a page
/// of 1,000 at a time (a removed or failed document is in no group). Works on either
/// backend, on Kafka too: the index is what it reads.
pub async fn collect(index: &dyn Index, bucket: Option<&str>, prefix: Option<&str>) -> Result<Collected, IndexError> {
    let mut request = SearchRequest::new(Expr::All);
    request.bucket = bucket.map(str::to_string);
    request.prefix = prefix.map(str::to_string);
    request.limit = 1000;
    let mut collected = Collected { members: Vec::new(), unhashed: 0 };
    loop {
        let page = index.search(request.clone()).await?;
        for hit in &page.hits {
            match Member::of(hit) {
                Some(member) => collected.members.push(member),
                None => collected.unhashed += 1,
            }
        }
        match page.next {
            Some(next) if !page.hits.is_empty() => request.after = Some(next),
            _ => return Ok(collected),
        }
    }
}

/// The similarity of two perceptual hashes `distance` bits apart, 0–1.
pub fn similarity(distance: u32) -> f64 {
    1.0 - f64::from(distance) / f64::from(BITS)
}

/// The most bits apart that `min_similarity` allows.
pub fn max_distance(min_similarity: f64) -> u32 {
    let bits = ((1.0 - min_similarity.clamp(0.0, 1.0)) * f64::from(BITS) + 1e-9).floor() as u32;
    bits.min(MAX_DISTANCE)
}

/// Finds the groups among `photos` (near ones within `max_distance` bits), largest
/// reclaimable first.
pub fn find(photos: Vec<Member>, max_distance: u32) -> Report {
    let max_distance = max_distance.min(MAX_DISTANCE);
    let mut groups = Vec::new();
    // Exact copies, by content.
    let mut by_content: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in photos.iter().enumerate() {
        if let Some(sha) = &p.sha256 {
            by_content.entry(sha).or_default().push(i);
        }
    }
    // One entry per content in the near search: the largest copy.
    let mut representatives: Vec<usize> = Vec::new();
    let mut singles = vec![true; photos.len()];
    for members in by_content.values() {
        let mut members = members.clone();
        sort_largest_first(&photos, &mut members);
        representatives.push(members[0]);
        if members.len() > 1 {
            groups.push(group(Kind::Exact, &photos, &members));
        }
        for &m in &members {
            singles[m] = false;
        }
    }
    representatives.extend((0..photos.len()).filter(|&i| singles[i]));
    let near: Vec<usize> = representatives.into_iter().filter(|&i| photos[i].dhash.is_some()).collect();
    for component in near_components(&photos, &near, max_distance) {
        let mut members = component;
        sort_largest_first(&photos, &mut members);
        groups.push(group(Kind::Near, &photos, &members));
    }
    groups.sort_by(|a, b| {
        b.reclaimable_bytes.cmp(&a.reclaimable_bytes).then_with(|| a.members[0].key.cmp(&b.members[0].key))
    });
    let total_reclaimable_bytes = groups.iter().map(|g| g.reclaimable_bytes).sum();
    Report { groups, total_reclaimable_bytes }
}

/// The member to keep first: the largest; of equal sizes (exact copies), the one
/// nearest the top of its bucket (`photo.jpg` before `backup/photo.jpg`), then the
/// shorter key, then by name.
/// A photo found like another: how alike (0-1), whether its bytes are the same.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alike {
    #[serde(flatten)]
    pub member: Member,
    pub similarity: f64,
    pub exact: bool,
}

/// The photos among `photos` at most `max_distance` bits from `hashes` (the same
/// bytes at 1.0), most alike first; `except` (bucket, key) is left out (the photo
/// itself). One pass over them: a comparison each.
pub fn alike(
    photos: Vec<Member>,
    hashes: &bucketlens_schemas::ImageHashes,
    except: Option<(&str, &str)>,
    max_distance: u32,
) -> Vec<Alike> {
    let mut found: Vec<Alike> = photos
        .into_iter()
        .filter(|m| except != Some((m.bucket.as_str(), m.key.as_str())))
        .filter_map(|member| {
            let exact = member.sha256.as_deref() == Some(hashes.sha256.as_str());
            let bits = match (hashes.dhash, member.dhash) {
                _ if exact => 0,
                (Some(a), Some(b)) => (a ^ b).count_ones(),
                _ => return None,
            };
            (bits <= max_distance).then(|| Alike { member, similarity: similarity(bits), exact })
        })
        .collect();
    found.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then_with(|| (&a.member.bucket, &a.member.key).cmp(&(&b.member.bucket, &b.member.key)))
    });
    found
}

fn sort_largest_first(photos: &[Member], members: &mut [usize]) {
    let depth = |m: &Member| m.key.matches('/').count();
    members.sort_by(|&a, &b| {
        let (a, b) = (&photos[a], &photos[b]);
        b.size
            .cmp(&a.size)
            .then_with(|| depth(a).cmp(&depth(b)))
            .then_with(|| a.key.len().cmp(&b.key.len()))
            .then_with(|| (&a.bucket, &a.key).cmp(&(&b.bucket, &b.key)))
    });
}

fn group(kind: Kind, photos: &[Member], members: &[usize]) -> Group {
    let members: Vec<Member> = members.iter().map(|&i| photos[i].clone()).collect();
    let reclaimable_bytes = members.iter().skip(1).map(|m| m.size.unwrap_or(0)).sum();
    Group { kind, members, reclaimable_bytes }
}

/// One band's table: where each value's run starts, then the runs of (hash, entry).
type BandTable = (Vec<u32>, Vec<(u64, u32)>);

/// The connected components (of two or more) of "at most `d` bits apart" among
/// `near` (indices of photos with a perceptual hash), by multi-index hashing.
fn near_components(photos: &[Member], near: &[usize], d: u32) -> Vec<Vec<usize>> {
    let hashes: Vec<u64> = near.iter().map(|&i| photos[i].dhash.unwrap_or(0) as u64).collect();
    let band = |h: u64, b: usize| (h >> (16 * b)) as u16 as usize;
    // Per band, the entries sorted by their band's value, with where each value's run
    // starts: a look-up is two reads, and a run is read in order, hashes inline.
    let tables: Vec<BandTable> = (0..4)
        .map(|b| {
            let mut starts = vec![0u32; (1 << 16) + 1];
            for &h in &hashes {
                starts[band(h, b) + 1] += 1;
            }
            for v in 0..1 << 16 {
                starts[v + 1] += starts[v];
            }
            let mut next = starts.clone();
            let mut slots = vec![(0u64, 0u32); hashes.len()];
            for (i, &h) in hashes.iter().enumerate() {
                let at = &mut next[band(h, b)];
                slots[*at as usize] = (h, i as u32);
                *at += 1;
            }
            (starts, slots)
        })
        .collect();
    let masks = flips(d / 4);
    let mut parent: Vec<u32> = (0..hashes.len() as u32).collect();
    for (i, &h) in hashes.iter().enumerate() {
        for (b, (starts, slots)) in tables.iter().enumerate() {
            let own = band(h, b);
            for &mask in &masks {
                let v = own ^ usize::from(mask);
                for &(other, j) in &slots[starts[v] as usize..starts[v + 1] as usize] {
                    if j as usize > i && (h ^ other).count_ones() <= d {
                        union(&mut parent, i, j as usize);
                    }
                }
            }
        }
    }
    let mut components: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, &photo) in near.iter().enumerate() {
        let root = find_root(&mut parent, i);
        components.entry(root).or_default().push(photo);
    }
    components.into_values().filter(|c| c.len() > 1).collect()
}

/// Every 16-bit mask of at most `radius` bits set (the probes of one band).
fn flips(radius: u32) -> Vec<u16> {
    (0..=u16::MAX).filter(|m| m.count_ones() <= radius).collect()
}

fn find_root(parent: &mut [u32], i: usize) -> u32 {
    let mut root = i as u32;
    while parent[root as usize] != root {
        root = parent[root as usize];
    }
    let mut at = i as u32;
    while parent[at as usize] != root {
        let next = parent[at as usize];
        parent[at as usize] = root;
        at = next;
    }
    root
}

fn union(parent: &mut [u32], a: usize, b: usize) {
    let (ra, rb) = (find_root(parent, a), find_root(parent, b));
    if ra != rb {
        parent[ra.max(rb) as usize] = ra.min(rb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(key: &str, size: i64, sha: &str, dhash: i64) -> Member {
        Member {
            bucket: "b".into(),
            key: key.into(),
            size: Some(size),
            storage_class: None,
            width: None,
            height: None,
            sha256: Some(sha.into()),
            dhash: Some(dhash),
        }
    }

    #[test]
    fn exact_copies_and_near_ones_group_and_count_what_they_free_once() {
        let a = 0x0f0f_1234_5678_9abc_u64 as i64;
        let report = find(
            vec![
                photo("backup/a.jpg", 1000, "x", a),
                photo("a.jpg", 1000, "x", a),
                photo("a-small.jpg", 300, "y", a ^ 0b101), // 2 bits off
                photo("other.jpg", 900, "z", !a),          // far
                photo("chain.jpg", 200, "w", a ^ 0b101 ^ (0b11 << 40)), // 2 more from a-small
            ],
            3,
        );
        let kinds: Vec<(Kind, Vec<&str>, i64)> = report
            .groups
            .iter()
            .map(|g| (g.kind, g.members.iter().map(|m| m.key.as_str()).collect(), g.reclaimable_bytes))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::Exact, vec!["a.jpg", "backup/a.jpg"], 1000),
                (Kind::Near, vec!["a.jpg", "a-small.jpg", "chain.jpg"], 500),
            ]
        );
        assert_eq!(report.total_reclaimable_bytes, 1500);
    }

    #[test]
    fn every_pair_within_the_distance_is_found_whatever_bands_its_bits_fall_in() {
        // Against all pairs, on hashes made to differ in 0–12 bits anywhere.
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut photos = Vec::new();
        for i in 0..300 {
            let base = next();
            photos.push(photo(&format!("{i}"), 10, &format!("s{i}"), base as i64));
            let mut near = base;
            for _ in 0..(next() % 13) {
                near ^= 1 << (next() % 64);
            }
            photos.push(photo(&format!("{i}'"), 5, &format!("t{i}"), near as i64));
        }
        for d in [0, 3, 4, 7, 8, 11] {
            let found = near_components(&photos, &(0..photos.len()).collect::<Vec<_>>(), d);
            let mut together = std::collections::HashSet::new();
            for c in &found {
                for &a in c {
                    for &b in c {
                        together.insert((a, b));
                    }
                }
            }
            for a in 0..photos.len() {
                for b in 0..photos.len() {
                    let apart = distance_of(&photos[a], &photos[b]);
                    if a != b && apart <= d {
                        assert!(together.contains(&(a, b)), "d={d}: {a} and {b} ({apart} bits) not grouped");
                    }
                }
            }
        }
    }

    fn distance_of(a: &Member, b: &Member) -> u32 {
        (a.dhash.unwrap() ^ b.dhash.unwrap()).count_ones()
    }

    #[test]
    fn similarity_and_distance_agree() {
        assert_eq!(max_distance(1.0), 0);
        assert_eq!(max_distance(similarity(7)), 7);
        assert_eq!(max_distance(0.0), MAX_DISTANCE);
    }
}
