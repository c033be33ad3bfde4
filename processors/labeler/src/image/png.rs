//! PNG, read row by row into averaged boxes (HEIF's rows go through the same boxes).

use std::io::Cursor;

use ::image::RgbImage;
use bucketlens_schemas::error_codes;

use super::{corrupt, too_large};
use crate::labeler::LabelFailure;

/// A PNG is reduced while it is decoded, row by row, to at most this many pixels:
/// what a header can make bucketlens hold is bounded, whatever its size.
pub(super) const PNG_MAX_OUTPUT_PIXELS: u64 = 2 << 20;
/// The longest PNG row read (the decoder keeps about three rows of the raw data).
const PNG_MAX_ROW_BYTES: u64 = 16 << 20;

/// Decodes a PNG row by row, averaging boxes of `fx × fy` pixels on the way: the
/// short side stays at least `short_side` unless that would exceed
/// [`PNG_MAX_OUTPUT_PIXELS`]. Interlaced (Adam7) images take the same path: each
/// pass's pixels fall into their boxes.
pub(super) fn decode_png(bytes: &[u8], max_pixels: u64, short_side: u32) -> Result<(RgbImage, u32, u32), LabelFailure> {
    let mut decoder = ::png::Decoder::new(Cursor::new(bytes));
    // 8 bits a sample, palettes and low bit depths expanded: gray, gray+alpha, RGB or RGBA.
    decoder.set_transformations(::png::Transformations::EXPAND | ::png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| corrupt("PNG", e))?;
    let info = reader.info();
    let (width, height, interlaced) = (info.width, info.height, info.interlaced);
    if width == 0 || height == 0 {
        return Err(corrupt("PNG", "zero width or height"));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(too_large(width.into(), height.into(), max_pixels));
    }
    let row_bytes = info.raw_row_length() as u64;
    if row_bytes > PNG_MAX_ROW_BYTES {
        return Err(LabelFailure::permanent(
            error_codes::IMAGE_TOO_LARGE,
            format!(
                "a PNG {width} pixels wide has rows of {} MiB; bucketlens reads PNG rows of at most {} MiB",
                row_bytes >> 20,
                PNG_MAX_ROW_BYTES >> 20
            ),
        ));
    }
    let (color, _) = reader.output_color_type();
    let mut boxes = Boxes::new(width, height, short_side, color.samples());
    let row_error = |e: ::png::DecodingError| corrupt("PNG", e);
    let ends_early = || corrupt("PNG", "the image data ends before the last row");
    if interlaced {
        // Adam7 (PNG specification, 8.2): passes 1 to 7 in order, an empty pass skipped.
        const PASSES: [(u32, u32, u32, u32); 7] =
            [(0, 8, 0, 8), (4, 8, 0, 8), (0, 4, 4, 8), (2, 4, 0, 4), (0, 2, 2, 4), (1, 2, 0, 2), (0, 1, 1, 2)];
        for (pass, &(x0, dx, y0, dy)) in (1u8..).zip(&PASSES) {
            let (samples, lines) = (width.saturating_sub(x0).div_ceil(dx), height.saturating_sub(y0).div_ceil(dy));
            if samples == 0 {
                continue;
            }
            for line in 0..lines {
                let row = reader.next_interlaced_row().map_err(row_error)?.ok_or_else(ends_early)?;
                let expected = ::png::Adam7Info::new(pass, line, width);
                if !matches!(row.interlace(), ::png::InterlaceInfo::Adam7(info) if *info == expected) {
                    return Err(corrupt("PNG", format!("pass {pass} line {line} came out of order")));
                }
                boxes.add_row(y0 + line * dy, x0, dx, row.data());
            }
        }
    } else {
        for y in 0..height {
            let row = reader.next_row().map_err(row_error)?.ok_or_else(ends_early)?;
            boxes.add_row(y, 0, 1, row.data());
        }
    }
    Ok((boxes.finish(), width, height))
}

/// Sums of the pixels falling into each output pixel's box; with boxes of one pixel
/// (a PNG no larger than needed, the usual case), the pixels themselves.
pub(super) struct Boxes {
    fx: u32,
    fy: u32,
    pub(super) out_w: u32,
    pub(super) out_h: u32,
    channels: usize,
    pixels: Pixels,
}

enum Pixels {
    Own(Vec<u8>),
    Sums(Vec<u64>),
}

impl Boxes {
    pub(super) fn new(width: u32, height: u32, short_side: u32, channels: usize) -> Self {
        let short = width.min(height);
        let cap = PNG_MAX_OUTPUT_PIXELS;
        let pixels = u64::from(width) * u64::from(height);
        // The largest box keeping the short side >= short_side, made larger while the
        // output would exceed the cap; past the short side, only the long side shrinks.
        let uniform = (pixels.div_ceil(cap) as f64).sqrt().ceil() as u32;
        let f = (short / short_side.max(1)).max(uniform).clamp(1, short);
        let (mut fx, mut fy) = (f, f);
        if u64::from(width / fx) * u64::from(height / fy) > cap {
            if width >= height {
                fx = width.div_ceil((cap / u64::from(height / fy)).max(1) as u32);
            } else {
                fy = height.div_ceil((cap / u64::from(width / fx)).max(1) as u32);
            }
        }
        let (out_w, out_h) = ((width / fx).max(1), (height / fy).max(1));
        let len = out_w as usize * out_h as usize * 3;
        let pixels = if fx == 1 && fy == 1 { Pixels::Own(vec![0; len]) } else { Pixels::Sums(vec![0; len]) };
        Boxes { fx, fy, out_w, out_h, channels, pixels }
    }

    /// Adds the row at image row `y` whose pixels sit at `x0, x0 + dx, …`.
    pub(super) fn add_row(&mut self, y: u32, x0: u32, dx: u32, data: &[u8]) {
        let oy = y / self.fy;
        if oy >= self.out_h {
            return;
        }
        let line = oy as usize * self.out_w as usize * 3;
        if let (Pixels::Own(own), 1, 3, 0) = (&mut self.pixels, dx, self.channels, x0) {
            // A plain RGB row kept as it is.
            let len = (self.out_w as usize * 3).min(data.len());
            own[line..line + len].copy_from_slice(&data[..len]);
            return;
        }
        let rgb = |pixel: &[u8]| if pixel.len() < 3 { [pixel[0]; 3] } else { [pixel[0], pixel[1], pixel[2]] };
        // The output column of the pixel at x, counted along instead of divided.
        let (mut x, mut ox, mut edge) = (x0, x0 / self.fx, (x0 / self.fx + 1) * self.fx);
        for pixel in data.chunks_exact(self.channels) {
            while x >= edge {
                ox += 1;
                edge += self.fx;
            }
            if ox >= self.out_w {
                break;
            }
            let at = line + ox as usize * 3;
            match &mut self.pixels {
                Pixels::Own(own) => own[at..at + 3].copy_from_slice(&rgb(pixel)),
                Pixels::Sums(sums) => {
                    for (sum, v) in sums[at..at + 3].iter_mut().zip(rgb(pixel)) {
                        *sum += u64::from(v);
                    }
                }
            }
            x += dx;
        }
    }

    /// The averages, rounded (the alpha channel is dropped, as `to_rgb8` does).
    pub(super) fn finish(self) -> RgbImage {
        let pixels = match self.pixels {
            Pixels::Own(own) => own,
            Pixels::Sums(sums) => {
                let n = u64::from(self.fx) * u64::from(self.fy);
                if n.is_power_of_two() {
                    let shift = n.trailing_zeros();
                    sums.iter().map(|&s| ((s + n / 2) >> shift) as u8).collect()
                } else {
                    sums.iter().map(|&s| ((s + n / 2) / n) as u8).collect()
                }
            }
        };
        RgbImage::from_raw(self.out_w, self.out_h, pixels).expect("the sums are out_w × out_h × 3")
    }
}
