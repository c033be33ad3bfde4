//! What the text analyzer does around its nets, without them: the text detector's
//! probability map to line boxes (DB's post-processing), the recogniser's scores to
//! characters (CTC), reading order, and which lines are text at all.
//!
//! The parameters are PaddleOCR's documented ones for PP-OCRv4 (as RapidOCR ships
//! them): a pixel is text above 0.3, the map is dilated by 2×2, a region is a line
//! when its mean probability is at least 0.5, and its box grows by the DB paper's
//! unclip ratio, 1.6 (the offset is area × ratio / perimeter).

use imageproc::contours::{find_contours, BorderType};
use imageproc::point::Point;

/// A pixel of the map is text above this probability.
pub const PIXEL_THRESHOLD: f32 = 0.3;
/// A region is a line when its mean probability inside its box is at least this.
pub const BOX_THRESHOLD: f32 = 0.5;
/// How much a region's box grows (the detector marks a line's shrunk core).
pub const UNCLIP_RATIO: f32 = 1.6;
/// At most this many regions of one map are looked at (a page of text has hundreds).
pub const MAX_CANDIDATES: usize = 1000;

/// A line's box: four corners, in reading order of a line (top left, top right,
/// bottom right, bottom left), in the pixels of the image the map was made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quad {
    pub corners: [(f32, f32); 4],
    /// The mean probability of text inside it (0–1).
    pub score: f32,
}

impl Quad {
    /// Its width (top edge) and height (left edge).
    pub fn size(&self) -> (f32, f32) {
        let [a, b, _, d] = self.corners;
        (distance(a, b), distance(a, d))
    }

    /// Its upright bounding box: `(left, top, right, bottom)`.
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        let xs = self.corners.map(|c| c.0);
        let ys = self.corners.map(|c| c.1);
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        (min(xs), min(ys), max(xs), max(ys))
    }
}

fn distance(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// The lines in a probability map of `width × height` (row-major, 0–1 each), their
/// corners scaled to an image of `to_width × to_height`. A map whose length is not
/// `width × height` has no lines.
pub fn boxes(map: &[f32], width: usize, height: usize, to_width: f32, to_height: f32) -> Vec<Quad> {
    if width == 0 || height == 0 || map.len() != width * height || width > u32::MAX as usize {
        return Vec::new();
    }
    // The text pixels, dilated by 2×2 (each pixel also marks its right, lower and
    // lower-right neighbours), as the reference does to join a word's letters; in a
    // frame of one blank pixel, so that a region touching the edge has a border too.
    let mut mask = image::GrayImage::new(width as u32 + 2, height as u32 + 2);
    for y in 0..height {
        for x in 0..width {
            if map[y * width + x] > PIXEL_THRESHOLD {
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < width && ny < height {
                        mask.put_pixel(nx as u32 + 1, ny as u32 + 1, image::Luma([255]));
                    }
                }
            }
        }
    }
    let (sx, sy) = (to_width / width as f32, to_height / height as f32);
    let mut found = Vec::new();
    let outer = find_contours::<i32>(&mask).into_iter().filter(|c| c.border_type == BorderType::Outer);
    for contour in outer.take(MAX_CANDIDATES) {
        let Some(core) = min_rect(&contour.points) else { continue };
        let (w, h) = core.size();
        if w.min(h) < 3.0 {
            continue;
        }
        let score = mean_inside(map, width, height, &core);
        if score < BOX_THRESHOLD {
            continue;
        }
        let grown = unclip(&core);
        let (w, h) = grown.size();
        if w.min(h) < 5.0 {
            continue;
        }
        let corners = grown.corners.map(|(x, y)| ((x * sx).clamp(0.0, to_width), (y * sy).clamp(0.0, to_height)));
        found.push(Quad { corners, score });
    }
    found
}

/// The smallest rectangle around `points`, its corners in line order; `None` for
/// fewer than three points.
fn min_rect(points: &[Point<i32>]) -> Option<Quad> {
    if points.len() < 3 {
        return None;
    }
    let rect = imageproc::geometry::min_area_rect(points);
    // Out of the mask's frame.
    let corners = rect.map(|p| (p.x as f32 - 1.0, p.y as f32 - 1.0));
    Some(Quad { corners: in_line_order(corners), score: 0.0 })
}

/// `corners` of a rectangle in line order: of the two leftmost, the upper is the top
/// left; of the two rightmost, the upper is the top right.
fn in_line_order(mut corners: [(f32, f32); 4]) -> [(f32, f32); 4] {
    corners.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (tl, bl) = if corners[0].1 <= corners[1].1 { (corners[0], corners[1]) } else { (corners[1], corners[0]) };
    let (tr, br) = if corners[2].1 <= corners[3].1 { (corners[2], corners[3]) } else { (corners[3], corners[2]) };
    [tl, tr, br, bl]
}

/// The mean of the map inside `quad` (pixels whose centres lie in it).
fn mean_inside(map: &[f32], width: usize, height: usize, quad: &Quad) -> f32 {
    let (left, top, right, bottom) = quad.bounds();
    let x0 = (left.floor().max(0.0) as usize).min(width - 1);
    let x1 = (right.ceil().max(0.0) as usize).min(width - 1);
    let y0 = (top.floor().max(0.0) as usize).min(height - 1);
    let y1 = (bottom.ceil().max(0.0) as usize).min(height - 1);
    let (mut sum, mut count) = (0.0f64, 0usize);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if inside(&quad.corners, (x as f32, y as f32)) {
                sum += f64::from(map[y * width + x]);
                count += 1;
            }
        }
    }
    if count == 0 {
        0.0
    } else {
        (sum / count as f64) as f32
    }
}

/// Whether `p` lies in the convex polygon `corners` (either winding), edges included.
fn inside(corners: &[(f32, f32); 4], p: (f32, f32)) -> bool {
    let mut sign = 0.0f32;
    for i in 0..4 {
        let (a, b) = (corners[i], corners[(i + 1) % 4]);
        let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
        if cross.abs() < 1e-3 {
            continue;
        }
        if sign == 0.0 {
            sign = cross.signum();
        } else if cross.signum() != sign {
            return false;
        }
    }
    true
}

/// The rectangle grown on every side by its area × [`UNCLIP_RATIO`] / perimeter (the
/// offset DB's paper gives; a rounded offset's smallest rectangle is this one).
fn unclip(quad: &Quad) -> Quad {
    let (w, h) = quad.size();
    let d = if w + h > 0.0 { w * h * UNCLIP_RATIO / (2.0 * (w + h)) } else { 0.0 };
    let [tl, tr, br, bl] = quad.corners;
    // Unit vectors along the top edge and down the left edge.
    let along = unit(tl, tr);
    let down = unit(tl, bl);
    let shift = |p: (f32, f32), a: f32, b: f32| (p.0 + along.0 * a + down.0 * b, p.1 + along.1 * a + down.1 * b);
    Quad { corners: [shift(tl, -d, -d), shift(tr, d, -d), shift(br, d, d), shift(bl, -d, d)], score: quad.score }
}

fn unit(a: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    let length = distance(a, b);
    if length > 0.0 {
        ((b.0 - a.0) / length, (b.1 - a.1) / length)
    } else {
        (0.0, 0.0)
    }
}

/// Boxes in reading order: top to bottom, and left to right along a line (a box
/// whose top is within half the smaller one's height of its neighbour's is on the
/// same line). Sorted by top first (a total order), then each box moved left past
/// the boxes of its line that start right of it.
pub fn reading_order<T>(items: &mut [T], bounds: impl Fn(&T) -> (f32, f32, f32, f32)) {
    items.sort_by(|a, b| {
        let (a, b) = (bounds(a), bounds(b));
        a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0))
    });
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 {
            let (a, b) = (bounds(&items[j - 1]), bounds(&items[j]));
            let tolerance = ((a.3 - a.1).min(b.3 - b.1) / 2.0).max(1.0);
            if (b.1 - a.1).abs() <= tolerance && b.0 < a.0 {
                items.swap(j - 1, j);
                j -= 1;
            } else {
                break;
            }
        }
    }
}

/// A line as read: its text, confidence (0–100) and upright box `(left, top, right,
/// bottom)` in the image's pixels.
pub type Read = (String, f32, (f32, f32, f32, f32));

/// Lines in reading order, with the boxes of one row joined: the detector splits a
/// line at a wide gap between words ("GARE" and "DU NORD" on a sign), and a phrase
/// is searched within a line. Two boxes are one row when they overlap by more than
/// half the smaller one's height and the gap between them is under twice it; the
/// joined line's text is theirs with a space between, its confidence the lower.
pub fn join_rows(lines: Vec<Read>) -> Vec<Read> {
    let mut joined: Vec<Read> = Vec::new();
    for (text, confidence, b) in lines {
        if let Some((last_text, last_confidence, a)) = joined.last_mut() {
            let height = (a.3 - a.1).min(b.3 - b.1);
            let overlap = a.3.min(b.3) - a.1.max(b.1);
            let gap = b.0 - a.2;
            if height > 0.0 && overlap > height / 2.0 && gap < 2.0 * height && b.0 > a.0 {
                last_text.push(' ');
                last_text.push_str(&text);
                *last_confidence = last_confidence.min(confidence);
                *a = (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3));
                continue;
            }
        }
        joined.push((text, confidence, b));
    }
    joined
}

/// The recogniser's output for one line (`steps × classes` probabilities, row-major)
/// read by CTC's best path: the best class at each step, repeats collapsed, blanks
/// (class 0) dropped. `characters[i]` is class `i`'s text. Returns the text and its
/// confidence (0–1: the mean of its characters' probabilities; 0 for no text).
pub fn ctc(scores: &[f32], classes: usize, characters: &[String]) -> (String, f32) {
    if classes == 0 {
        return (String::new(), 0.0);
    }
    let mut text = String::new();
    let (mut sum, mut count) = (0.0f32, 0usize);
    let mut previous = usize::MAX;
    for step in scores.chunks_exact(classes) {
        let (best, p) =
            step.iter().copied().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, p)| if p > m.1 { (i, p) } else { m });
        if best != 0 && best != previous {
            if let Some(c) = characters.get(best) {
                text.push_str(c);
                sum += p;
                count += 1;
            }
        }
        previous = best;
    }
    let confidence = if count == 0 { 0.0 } else { sum / count as f32 };
    (text, confidence)
}

/// Whether a recognised line is text a person would search for: at least two
/// letters or digits, or one CJK ideograph, kana or hangul syllable. A lone stray
/// "O" found in a cat's fur, or punctuation alone, is not.
pub fn is_words(line: &str) -> bool {
    let alphanumeric = line.chars().filter(|c| c.is_alphanumeric()).count();
    alphanumeric >= 2 || line.chars().any(is_cjk)
}

/// A CJK ideograph, kana or hangul syllable: each is a word to the index.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map of `w × h` with `rects` (left, top, right, bottom, exclusive) at `p`.
    fn map(w: usize, h: usize, rects: &[(usize, usize, usize, usize)], p: f32) -> Vec<f32> {
        let mut m = vec![0.0; w * h];
        for &(l, t, r, b) in rects {
            for y in t..b {
                for x in l..r {
                    m[y * w + x] = p;
                }
            }
        }
        m
    }

    #[test]
    fn each_region_of_text_is_one_box_grown_by_the_unclip_offset_and_scaled_to_the_image() {
        let m = map(64, 32, &[(8, 6, 40, 12), (10, 20, 30, 28)], 0.9);
        let mut found = boxes(&m, 64, 32, 128.0, 64.0);
        reading_order(&mut found, Quad::bounds);
        assert_eq!(found.len(), 2, "{found:?}");
        let (l, t, r, b) = found[0].bounds();
        // The core: x 8..=40 (dilated), y 6..=12; offset d = 32×6×1.6/(2×38) ≈ 4.0.
        assert!((l - 2.0 * (8.0 - 4.0)).abs() < 1.5 && (r - 2.0 * (40.0 + 4.0)).abs() < 1.5, "{l} {r}");
        assert!((t - 2.0 * (6.0 - 4.0)).abs() < 1.5 && (b - 2.0 * (12.0 + 4.0)).abs() < 1.5, "{t} {b}");
        // The mean over the dilated region: its added rim is not text.
        assert!((0.7..=0.9).contains(&found[0].score), "{}", found[0].score);
        assert!(found[1].bounds().1 > found[0].bounds().3 - 10.0);
    }

    #[test]
    fn faint_tiny_and_empty_maps_have_no_lines() {
        assert!(boxes(&map(64, 32, &[(4, 4, 40, 12)], 0.35), 64, 32, 64.0, 32.0).is_empty(), "under the box threshold");
        assert!(boxes(&map(64, 32, &[(4, 4, 6, 6)], 0.9), 64, 32, 64.0, 32.0).is_empty(), "a speck");
        assert!(boxes(&[0.0; 64 * 32], 64, 32, 64.0, 32.0).is_empty());
        assert!(boxes(&[0.9; 10], 64, 32, 64.0, 32.0).is_empty(), "a map of the wrong length");
        assert!(boxes(&[], 0, 0, 1.0, 1.0).is_empty());
        let all = boxes(&[1.0; 64 * 32], 64, 32, 64.0, 32.0);
        assert_eq!(all.len(), 1);
        let (l, t, r, b) = all[0].bounds();
        assert!(l >= 0.0 && t >= 0.0 && r <= 64.0 && b <= 32.0, "clamped to the image: {:?}", all[0]);
    }

    #[test]
    fn a_slanted_line_gets_a_slanted_box_in_line_order() {
        // A bar 40 long, 6 thick, rising 10° to the right.
        let (w, h) = (80, 60);
        let mut m = vec![0.0; w * h];
        let angle = -10f32.to_radians();
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 40.0, y as f32 - 30.0);
                let along = dx * angle.cos() + dy * angle.sin();
                let across = -dx * angle.sin() + dy * angle.cos();
                if along.abs() <= 20.0 && across.abs() <= 3.0 {
                    m[y * w + x] = 0.95;
                }
            }
        }
        let found = boxes(&m, w, h, w as f32, h as f32);
        assert_eq!(found.len(), 1);
        let [tl, tr, br, bl] = found[0].corners;
        assert!(tl.0 < tr.0 && bl.0 < br.0 && tl.1 < bl.1 && tr.1 < br.1, "{:?}", found[0]);
        let slope = ((tr.1 - tl.1) / (tr.0 - tl.0)).atan().to_degrees();
        assert!((slope + 10.0).abs() < 3.0, "slope {slope}");
    }

    #[test]
    fn ctc_collapses_repeats_drops_blanks_and_averages_its_characters() {
        let characters: Vec<String> = ["blank", "a", "b", " "].iter().map(|s| s.to_string()).collect();
        // a a blank a b b blank → "aab"
        let steps = [
            [0.1, 0.8, 0.05, 0.05],
            [0.1, 0.9, 0.0, 0.0],
            [0.9, 0.1, 0.0, 0.0],
            [0.0, 0.7, 0.3, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.6, 0.4],
            [1.0, 0.0, 0.0, 0.0],
        ];
        let scores: Vec<f32> = steps.iter().flatten().copied().collect();
        let (text, confidence) = ctc(&scores, 4, &characters);
        assert_eq!(text, "aab");
        assert!((confidence - (0.8 + 0.7 + 1.0) / 3.0).abs() < 1e-5, "{confidence}");
        assert_eq!(ctc(&[1.0, 0.0, 0.0, 0.0], 4, &characters), (String::new(), 0.0));
        assert_eq!(ctc(&[0.5; 3], 0, &characters), (String::new(), 0.0));
    }

    #[test]
    fn a_stray_letter_or_punctuation_is_not_words_but_two_letters_or_a_kanji_are() {
        assert!(!is_words("O"));
        assert!(!is_words("-:."));
        assert!(!is_words(""));
        assert!(is_words("EXIT"));
        assert!(is_words("42"));
        assert!(is_words("出"));
    }

    #[test]
    fn the_boxes_of_one_row_are_one_line_and_other_rows_stay_apart() {
        let lines = vec![
            ("GARE".to_string(), 99.0, (60.0, 60.0, 250.0, 140.0)),
            ("DU NORD".to_string(), 95.0, (330.0, 62.0, 560.0, 141.0)),
            ("Sortie 42".to_string(), 98.0, (60.0, 240.0, 330.0, 300.0)),
            ("far".to_string(), 97.0, (700.0, 240.0, 780.0, 300.0)),
        ];
        let joined = join_rows(lines);
        assert_eq!(joined.len(), 3, "{joined:?}");
        assert_eq!(
            (joined[0].0.as_str(), joined[0].1, joined[0].2),
            ("GARE DU NORD", 95.0, (60.0, 60.0, 560.0, 141.0))
        );
        assert_eq!(joined[1].0, "Sortie 42");
        assert_eq!(joined[2].0, "far", "a gap over twice the height is another line");
    }

    #[test]
    fn reading_order_is_top_to_bottom_then_left_to_right_within_a_line() {
        let mut lines = vec![(50.0, 2.0, 90.0, 12.0), (0.0, 40.0, 40.0, 50.0), (0.0, 0.0, 40.0, 10.0)];
        reading_order(&mut lines, |b| *b);
        assert_eq!(lines, vec![(0.0, 0.0, 40.0, 10.0), (50.0, 2.0, 90.0, 12.0), (0.0, 40.0, 40.0, 50.0)]);
    }
}
