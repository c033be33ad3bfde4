//! JPEG: libjpeg-turbo at a DCT scale, jpeg-decoder for what it refuses, EXIF orientation.

use std::io::Cursor;

use ::image::metadata::Orientation;
use ::image::{DynamicImage, RgbImage};
use bucketlens_schemas::error_codes;

use super::{corrupt, too_large};
use crate::labeler::LabelFailure;

/// The most coefficient memory a progressive JPEG may need (2 bytes each, 64 a block).
const PROGRESSIVE_MAX_COEFFICIENT_BYTES: u64 = 320 << 20;
/// A decode needing more than this waits for any other such decode to end.
pub(super) const LARGE_DECODE_BYTES: u64 = 64 << 20;
pub(super) static LARGE_DECODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What jpeg-decoder allocates for a progressive JPEG's coefficients: each
/// component's blocks, padded to whole MCUs, from the frame header's sampling factors.
pub(super) fn jpeg_coefficient_bytes(bytes: &[u8], width: u32, height: u32) -> Option<u64> {
    let mut at = 2;
    let frame = loop {
        let [0xFF, marker] = *bytes.get(at..at + 2)? else {
            return None;
        };
        let rest = bytes.get(at + 2..)?;
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        // SOF0 to SOF15, less DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            break rest.get(2..length)?;
        }
        at += 2 + length;
    };
    let count = usize::from(*frame.get(5)?);
    let sampling: Vec<(u64, u64)> = frame
        .get(6..6 + 3 * count)?
        .chunks_exact(3)
        .map(|c| (u64::from(c[1] >> 4).max(1), u64::from(c[1] & 15).max(1)))
        .collect();
    let h_max = sampling.iter().map(|s| s.0).max()?;
    let v_max = sampling.iter().map(|s| s.1).max()?;
    let mcus_x = u64::from(width).div_ceil(8 * h_max);
    let mcus_y = u64::from(height).div_ceil(8 * v_max);
    Some(sampling.iter().map(|(h, v)| mcus_x * h * mcus_y * v * 64 * 2).sum())
}

pub(super) fn decode_jpeg(
    bytes: &[u8],
    max_pixels: u64,
    short_side: u32,
) -> Result<(RgbImage, u32, u32), LabelFailure> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(|e| corrupt("JPEG", e))?;
    let info = decoder.info().ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if width == 0 || height == 0 {
        return Err(corrupt("JPEG", "zero width or height"));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(too_large(width.into(), height.into(), max_pixels));
    }
    // A progressive JPEG is decoded from all its coefficients, held at full size
    // whatever the output scale: bound them, and decode one large one at a time.
    let coefficients = if info.coding_process == jpeg_decoder::CodingProcess::DctProgressive {
        jpeg_coefficient_bytes(bytes, width, height).ok_or_else(|| corrupt("JPEG", "no frame header"))?
    } else {
        0
    };
    if coefficients > PROGRESSIVE_MAX_COEFFICIENT_BYTES {
        return Err(LabelFailure::permanent(
            error_codes::IMAGE_TOO_LARGE,
            format!(
                "a progressive JPEG of {width}x{height} needs {} MiB of coefficients to decode; bucketlens decodes \
                 progressive JPEGs needing up to {} MiB (about 100 MP with 4:2:0 chroma, 55 MP with 4:4:4)",
                coefficients >> 20,
                PROGRESSIVE_MAX_COEFFICIENT_BYTES >> 20
            ),
        ));
    }
    let _one_at_a_time =
        (coefficients > LARGE_DECODE_BYTES).then(|| LARGE_DECODES.lock().unwrap_or_else(|e| e.into_inner()));
    // The smallest size whose short side is still >= short_side; the decoder picks
    // the nearest DCT scale (1/8, 1/4, 1/2, 1) at or above it.
    let short = width.min(height).max(1);
    let want_w = (width * short_side).div_ceil(short).min(width);
    let want_h = (height * short_side).div_ceil(short).min(height);
    let image = match decode_turbo(bytes, want_w, want_h) {
        Ok(image) => image,
        // What libjpeg-turbo refuses, jpeg-decoder may still read (16-bit lossless, some
        // damaged files); when both refuse, the error gives both reasons.
        Err(turbo) => {
            decode_scaled(&mut decoder, want_w, want_h).map_err(|e| corrupt("JPEG", format!("{e} ({turbo})")))?
        }
    };
    let orientation = exif_orientation(&decoder);
    let (width, height) = displayed(width, height, orientation);
    if orientation == Orientation::NoTransforms {
        return Ok((image, width, height));
    }
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    Ok((image.into_rgb8(), width, height))
}

/// The DCT scales both decoders share; the first whose output is at least the wanted size.
const JPEG_SCALES: [usize; 4] = [1, 2, 4, 8];

pub(super) fn jpeg_scale(width: u32, height: u32, want_w: u32, want_h: u32) -> usize {
    let fits = |eighths: usize| {
        (width as usize * eighths).div_ceil(8) >= want_w as usize
            && (height as usize * eighths).div_ceil(8) >= want_h as usize
    };
    JPEG_SCALES.into_iter().find(|&e| fits(e)).unwrap_or(8)
}

/// More scans than any encoder writes (libjpeg's progressive scripts use about 10): a
/// file with more is a decoding-time bomb.
const JPEG_MAX_SCANS: u32 = 500;

/// Decodes with libjpeg-turbo (SIMD, on the calling thread) at the DCT scale that
/// gives at least `want_w × want_h`, to RGB.
pub(super) fn decode_turbo(bytes: &[u8], want_w: u32, want_h: u32) -> Result<RgbImage, turbojpeg::Error> {
    use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};
    let mut decompressor = Decompressor::new()?;
    let header = decompressor.read_header(bytes)?;
    decompressor.set_scan_limit(JPEG_MAX_SCANS)?;
    let eighths =
        if header.is_lossless { 8 } else { jpeg_scale(header.width as u32, header.height as u32, want_w, want_h) };
    let factor = ScalingFactor::new(eighths, 8);
    decompressor.set_scaling_factor(factor)?;
    let scaled = header.scaled(factor);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk { PixelFormat::CMYK } else { PixelFormat::RGB };
    let (w, h) = (scaled.width, scaled.height);
    let mut pixels = vec![0u8; w * h * format.size()];
    decompressor.decompress(
        bytes,
        Image { pixels: pixels.as_mut_slice(), width: w, pitch: w * format.size(), height: h, format },
    )?;
    let rgb = if cmyk { cmyk_to_rgb(&pixels) } else { pixels };
    RgbImage::from_raw(w as u32, h as u32, rgb).ok_or(turbojpeg::Error::OutputTooSmall(w as i32, h as i32))
}

/// Decodes with jpeg-decoder (the header already read) at the DCT scale that gives at
/// least `want_w × want_h`, to RGB.
pub(super) fn decode_scaled(
    decoder: &mut jpeg_decoder::Decoder<Cursor<&[u8]>>,
    want_w: u32,
    want_h: u32,
) -> Result<RgbImage, String> {
    let (w, h) = decoder.scale(want_w as u16, want_h as u16).map_err(|e| e.to_string())?;
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let info = decoder.info().ok_or("no frame header")?;
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => cmyk_to_rgb(&pixels),
    };
    RgbImage::from_raw(u32::from(w), u32::from(h), rgb).ok_or_else(|| "pixel data shorter than the frame".to_string())
}

/// Adobe CMYK JPEGs store inverted values: k = 255 means no black.
fn cmyk_to_rgb(pixels: &[u8]) -> Vec<u8> {
    pixels
        .chunks_exact(4)
        .flat_map(|c| {
            let k = u16::from(c[3]);
            [c[0], c[1], c[2]].map(|v| ((u16::from(v) * k) / 255) as u8)
        })
        .collect()
}

/// The orientation the JPEG's EXIF data asks for (none without EXIF, or with a
/// value EXIF does not define).
pub(super) fn exif_orientation<R: std::io::Read>(decoder: &jpeg_decoder::Decoder<R>) -> Orientation {
    decoder.exif_data().and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms)
}

/// The size of a `width × height` image as it is displayed under `orientation`.
pub(super) fn displayed(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH => {
            (height, width)
        }
        _ => (width, height),
    }
}
