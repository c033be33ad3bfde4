//! What finds the same photo twice: a hash of the object's bytes (exact copies) and a
//! perceptual hash of its pixels (the same picture resized, recompressed, converted
//! or lightly cropped). Read beside the analyzers on the one decode, like the
//! metadata; `[labeler] hashes` (on by default).
//!
//! - **Content**: SHA-256 of the bytes as read, lowercase hex. Measured against a
//!   non-cryptographic hash, it costs under 1% of labeling an image
//!   (`bucketlens-bench-hashes`), and it is the checksum S3 itself can keep
//!   (`x-amz-checksum-sha256`), so there is no reason for a weaker one.
//! - **Perceptual**: a 64-bit difference hash (dHash, after Neal Krawetz's
//!   description): the picture in grey, shrunk to 9×8, each bit whether a pixel is
//!   brighter than its right-hand neighbour. A gradient survives scaling, JPEG
//!   quality, format changes and uniform colour grading; two photos are near
//!   duplicates when few bits differ ([`distance`]).

use bucketlens_schemas::ImageHashes;
use image::RgbImage;
use sha2::{Digest, Sha256};

/// The smallest picture a perceptual hash is made of: one pixel per cell.
pub const MIN_SIDE: (u32, u32) = (9, 8);

/// The hashes of an image: its bytes' and, when it is large enough, its pixels'
/// (`notes` says why not).
pub fn of(bytes: &[u8], rgb: &RgbImage, notes: &mut Vec<String>) -> ImageHashes {
    let dhash = perceptual(rgb);
    if dhash.is_none() {
        notes.push(format!(
            "no perceptual hash: the image is {}×{} pixels, under the {}×{} it needs",
            rgb.width(),
            rgb.height(),
            MIN_SIDE.0,
            MIN_SIDE.1
        ));
    }
    ImageHashes { sha256: content(bytes), dhash }
}

/// The hashes of an image file that is not in the index (`similar --image`), decoded
/// as the labeler decodes (`max_pixels` as `labeler.max-pixels`): the short side at
/// the classifier's 224 or more.
pub fn of_file(bytes: &[u8], max_pixels: u64) -> Result<ImageHashes, crate::LabelFailure> {
    let (rgb, _) = crate::image::decode(bytes, max_pixels, 224)?;
    let mut notes = Vec::new();
    let hashes = of(bytes, &rgb, &mut notes);
    match notes.pop() {
        Some(note) if hashes.dhash.is_none() => {
            Err(crate::LabelFailure::permanent(bucketlens_schemas::error_codes::IMAGE_TOO_SMALL, note))
        }
        _ => Ok(hashes),
    }
}

/// SHA-256 of the bytes, lowercase hex.
pub fn content(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The 64-bit difference hash of a picture (as an Avro long: the same bits, signed);
/// `None` under [`MIN_SIDE`].
pub fn perceptual(rgb: &RgbImage) -> Option<i64> {
    if rgb.width() < MIN_SIDE.0 || rgb.height() < MIN_SIDE.1 {
        return None;
    }
    // Each cell the mean brightness of the pixels under it (Rec. 601 luma), summed in
    // one pass over the picture: no copy, no resampling filter.
    let (w, h) = rgb.dimensions();
    let (cols, rows) = MIN_SIDE;
    let mut sums = [[0u64; 9]; 8];
    let mut counts = [[0u64; 9]; 8];
    for (y, row) in rgb.rows().enumerate() {
        let cy = (y as u64 * u64::from(rows) / u64::from(h)) as usize;
        for (x, p) in row.enumerate() {
            let cx = (x as u64 * u64::from(cols) / u64::from(w)) as usize;
            sums[cy][cx] += 299 * u64::from(p[0]) + 587 * u64::from(p[1]) + 114 * u64::from(p[2]);
            counts[cy][cx] += 1;
        }
    }
    let mut bits = 0u64;
    for y in 0..rows as usize {
        for x in 0..cols as usize - 1 {
            // a / ca < b / cb, without dividing.
            let brighter = sums[y][x] * counts[y][x + 1] < sums[y][x + 1] * counts[y][x];
            bits = bits << 1 | u64::from(brighter);
        }
    }
    Some(bits as i64)
}

/// How many of two perceptual hashes' 64 bits differ.
pub fn distance(a: i64, b: i64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::FilterType;

    /// A picture of two waves crossing it (a smooth photo's broad shapes, which a
    /// resize keeps), `turns` their turns across and down; a colour that brightens
    /// with the waves.
    fn waves(width: u32, height: u32, turns: [(f64, f64); 2]) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let (u, v) = ((f64::from(x) + 0.5) / f64::from(width), (f64::from(y) + 0.5) / f64::from(height));
            let wave = |(across, down): (f64, f64)| (std::f64::consts::TAU * (u * across + v * down)).sin();
            let level = (128.0 + 60.0 * wave(turns[0]) + 40.0 * wave(turns[1])).clamp(0.0, 255.0) as u8;
            image::Rgb([level, level / 2, 255 - level])
        })
    }

    #[test]
    fn a_resized_copy_hashes_alike_and_another_picture_does_not() {
        // Waves whose 9×8 cells are all at least 2.9 levels from their neighbours: a
        // resize moves no cell that far. (A pattern of fine stripes, as this test had,
        // makes every cell alike, and its bits noise.)
        let photo = waves(640, 480, [(1.1, 0.6), (0.5, -0.9)]);
        let half = image::imageops::resize(&photo, 320, 240, FilterType::Lanczos3);
        let other = waves(640, 480, [(2.1, -0.4), (0.3, 1.7)]);
        let (a, b, c) = (perceptual(&photo).unwrap(), perceptual(&half).unwrap(), perceptual(&other).unwrap());
        assert!(distance(a, b) <= 4, "{a:x} {b:x}");
        assert!(distance(a, c) > 12, "{a:x} {c:x}");
    }

    #[test]
    fn a_picture_too_small_has_no_perceptual_hash_and_says_why() {
        let mut notes = Vec::new();
        let hashes = of(b"bytes", &RgbImage::new(8, 8), &mut notes);
        assert_eq!(hashes.dhash, None);
        assert!(notes[0].contains("8×8 pixels"), "{notes:?}");
        assert_eq!(hashes.sha256, content(b"bytes"));
        assert_eq!(content(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
