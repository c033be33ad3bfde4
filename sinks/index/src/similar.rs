//! Similar photos, and photos by meaning: the documents whose embeddings
//! (`images.labeled.v1`'s `embedding`: the classifier's pooled features, 1280 signed
//! bytes, or a CLIP-class image tower's, 512 or 768) are nearest a vector (a photo's,
//! or a phrase's from the same model's text tower), by cosine, among those a search
//! request matches. Only vectors of the same model are ever compared.
//!
//! - **Embedded index**: exact search in two stages. Each document also keeps a
//!   sketch of its embedding, 128 signed bytes (a fixed ±1 random projection, scaled
//!   to one length, so that dot products order sketches as cosines) in fast columns; a search scans the
//!   sketches of the matching documents (held in memory per segment once read),
//!   keeps the [`CANDIDATES`] best, and ranks those by the cosine of their whole
//!   embeddings. `bucketlens-bench-similar` measures its recall@10 against the
//!   exact cosine over whole embeddings, and its latency.
//! - **OpenSearch**: a `knn_vector` field (HNSW, Lucene engine, cosine) and the
//!   `knn` query with the request's filters inside it ([`knn_body`]); the hits are
//!   ranked again by the same cosine, computed here from their vectors, so both
//!   backends give the same scores. A server without the k-NN plugin's query (the
//!   OpenSearch-API server the tests run is one) is searched by reading the matching
//!   documents' vectors, page by page, and ranking them here: exact, and slower.

use bucketlens_schemas::ImageEmbedding;
use serde_json::{json, Value};

/// The length of the built-in classifiers' embeddings, and the longest any embedding
/// may be (a CLIP-class model's are 512 or 768 long).
pub const DIMENSIONS: usize = 1280;

/// The lengths OpenSearch holds, each in a `knn_vector` field of its own (a field
/// has one dimension): the built-in classifiers' (`embedding`), and CLIP ViT-B's
/// (`embedding_512`) and ViT-L's or SigLIP's (`embedding_768`).
pub const KNN_FIELDS: [(usize, &str); 3] = [(DIMENSIONS, "embedding"), (512, "embedding_512"), (768, "embedding_768")];

/// The `knn_vector` field of embeddings `length` long, if OpenSearch holds that length.
pub fn knn_field(length: usize) -> Option<&'static str> {
    KNN_FIELDS.iter().find(|(l, _)| *l == length).map(|(_, f)| *f)
}

/// Components of a sketch.
pub const SKETCH: usize = 128;

/// Sketch components packed in one fast column (an i64 holds 8 bytes).
pub const SKETCH_COLUMNS: usize = SKETCH / 8;

/// How many of the best sketches are ranked again by whole embeddings (at least the
/// hits asked for).
pub const CANDIDATES: usize = 1000;

/// The projection's sign for input `i`, output `j`: a fixed pseudo-random ±1
/// (SplitMix64 of the position), the same in every build and on every machine.
fn sign(i: usize, j: usize) -> f32 {
    let mut z = ((i * SKETCH + j) as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z & 1 == 0 {
        1.0
    } else {
        -1.0
    }
}

fn signs() -> &'static [f32] {
    static SIGNS: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    SIGNS.get_or_init(|| (0..DIMENSIONS).flat_map(|i| (0..SKETCH).map(move |j| sign(i, j))).collect())
}

/// The sketch of an embedding of up to [`DIMENSIONS`] components; `None` for an
/// empty or longer one, or a vector of zeros. (Sketches of different lengths are
/// never compared: a search compares one model's vectors only.)
pub fn sketch(vector: &[u8]) -> Option<[i8; SKETCH]> {
    if vector.is_empty() || vector.len() > DIMENSIONS {
        return None;
    }
    let signs = signs();
    let mut sums = [0f32; SKETCH];
    for (i, &x) in vector.iter().enumerate() {
        let x = f32::from(x as i8);
        if x == 0.0 {
            continue;
        }
        for (sum, s) in sums.iter_mut().zip(&signs[i * SKETCH..(i + 1) * SKETCH]) {
            *sum += x * s;
        }
    }
    let norm = sums.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return None;
    }
    // Every sketch the same length, so that their dot products order them as their
    // cosines would: a component is about normal with a standard deviation of
    // norm / √128, scaled here to 32 (127 is four of them; the rare one beyond is
    // clipped).
    let scale = SKETCH_LENGTH / norm;
    Some(sums.map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8))
}

/// The length every sketch is scaled to: 32 × √128.
const SKETCH_LENGTH: f32 = 362.0;

/// A sketch as the values of its [`SKETCH_COLUMNS`] fast columns.
pub fn pack(sketch: &[i8; SKETCH]) -> [i64; SKETCH_COLUMNS] {
    let mut words = [0i64; SKETCH_COLUMNS];
    for (word, bytes) in words.iter_mut().zip(sketch.chunks_exact(8)) {
        let mut b = [0u8; 8];
        for (out, &x) in b.iter_mut().zip(bytes) {
            *out = x as u8;
        }
        *word = i64::from_le_bytes(b);
    }
    words
}

/// The sketch [`pack`] packed, into `out` (its [`SKETCH`] components).
pub fn unpack(words: &[i64; SKETCH_COLUMNS], out: &mut [i8]) {
    for (word, chunk) in words.iter().zip(out.chunks_exact_mut(8)) {
        for (o, b) in chunk.iter_mut().zip(word.to_le_bytes()) {
            *o = b as i8;
        }
    }
}

/// The dot product of two sketches: their order, not a similarity.
pub fn sketch_dot(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

/// The similarity of a hit's embedding to `like`'s (0 when it has none).
pub fn similarity(like: &ImageEmbedding, hit: Option<&ImageEmbedding>) -> f64 {
    hit.map_or(0.0, |e| like.similarity(e))
}

/// Hits in similar-photos order: most similar first, then by key and bucket.
pub fn rank(hits: &mut [crate::Hit]) {
    hits.sort_by(|a, b| {
        b.similarity
            .unwrap_or(0.0)
            .total_cmp(&a.similarity.unwrap_or(0.0))
            .then_with(|| a.key.cmp(&b.key))
            .then_with(|| a.bucket.cmp(&b.bucket))
    });
}

/// An embedding as OpenSearch's `knn_vector` holds it: its components as numbers,
/// and the field of its length ([`KNN_FIELDS`]).
pub fn as_floats(embedding: &ImageEmbedding) -> Option<(&'static str, Vec<f32>)> {
    let field = knn_field(embedding.vector.len())?;
    Some((field, embedding.vector.iter().map(|&x| f32::from(x as i8)).collect()))
}

/// An embedding back from OpenSearch's numbers (any that is not a signed byte: `None`).
pub fn from_floats(model: String, values: &[f32]) -> Option<ImageEmbedding> {
    let vector = values
        .iter()
        .map(|&x| (x.fract() == 0.0 && (-128.0..=127.0).contains(&x)).then_some((x as i8) as u8))
        .collect::<Option<Vec<u8>>>()?;
    Some(ImageEmbedding { model, vector })
}

/// The mapping of the embedding on OpenSearch: a `knn_vector` per length
/// ([`KNN_FIELDS`]; HNSW, the Lucene engine, which filters while it searches;
/// cosine), and its model as a keyword.
pub fn opensearch_fields() -> Value {
    let mut fields = json!({ "embedding_model": { "type": "keyword" } });
    for (length, field) in KNN_FIELDS {
        fields[field] = json!({
            "type": "knn_vector",
            "dimension": length,
            "method": { "name": "hnsw", "space_type": "cosinesimil", "engine": "lucene" }
        });
    }
    fields
}

/// The `knn` query for the `k` nearest of `like` among the documents `filter` matches
/// (the request's filters, and only vectors of `like`'s model), as OpenSearch's k-NN
/// plugin documents it.
pub fn knn_query(like: &ImageEmbedding, k: usize, filter: Value) -> Option<Value> {
    let (field, vector) = as_floats(like)?;
    Some(json!({ "knn": { field: { "vector": vector, "k": k, "filter": filter } } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedding(seed: u64) -> Vec<u8> {
        let mut z = seed;
        (0..DIMENSIONS)
            .map(|_| {
                z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (z >> 57) as u8
            })
            .collect()
    }

    #[test]
    fn a_sketch_packs_and_unpacks_and_keeps_the_nearer_of_two_nearer() {
        let a = embedding(1);
        let mut near = a.clone();
        for x in near.iter_mut().step_by(10) {
            *x = x.wrapping_add(3) & 0x7f;
        }
        let far = embedding(2);
        let (sa, sn, sf) = (sketch(&a).unwrap(), sketch(&near).unwrap(), sketch(&far).unwrap());
        let mut back = [0i8; SKETCH];
        unpack(&pack(&sa), &mut back);
        assert_eq!(back, sa);
        assert!(sketch_dot(&sa, &sn) > sketch_dot(&sa, &sf));
        assert!(sketch(&a[..10]).is_some() && sketch(&[]).is_none() && sketch(&[0; DIMENSIONS]).is_none());
        assert!(sketch(&[1; DIMENSIONS + 1]).is_none());
    }

    #[test]
    fn numbers_from_opensearch_come_back_as_the_same_bytes_or_not_at_all() {
        let e = ImageEmbedding { model: "m".into(), vector: embedding(3) };
        let (field, floats) = as_floats(&e).unwrap();
        assert_eq!(field, "embedding");
        assert_eq!(from_floats("m".into(), &floats), Some(e.clone()));
        let clip = ImageEmbedding { model: "clip".into(), vector: vec![5; 512] };
        assert_eq!(as_floats(&clip).unwrap().0, "embedding_512");
        assert_eq!(
            knn_query(&clip, 3, json!({})).unwrap()["knn"]["embedding_512"]["vector"].as_array().unwrap().len(),
            512
        );
        assert!(as_floats(&ImageEmbedding { model: "m".into(), vector: vec![1; 100] }).is_none());
        assert_eq!(from_floats("m".into(), &[0.5]), None);
        assert_eq!(from_floats("m".into(), &[300.0]), None);
        let q = knn_query(&e, 10, json!({"term": {"state": "labeled"}})).unwrap();
        assert_eq!(q["knn"]["embedding"]["k"], 10);
        assert_eq!(q["knn"]["embedding"]["vector"].as_array().unwrap().len(), DIMENSIONS);
        assert_eq!(q["knn"]["embedding"]["filter"]["term"]["state"], "labeled");
    }
}
