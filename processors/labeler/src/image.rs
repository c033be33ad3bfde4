//! Decoding an object into the model's input: bounded, and no slower than needed.
//!
//! - The format comes from the magic bytes, not the key's extension.
//! - Dimensions are read from the header first: an image over `max_pixels` is
//!   refused before any pixel is decoded (decompression bombs).
//! - A JPEG is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain when that still
//!   leaves the short side at least 256 px: a 12 MP photo never exists at full size.
//! - Then the short side is resized to 256, the centre 224×224 cropped, and pixels
//!   normalised to `(p - 127) / 128`, NCHW, RGB. (The centre square is cut before
//!   resizing: memory never depends on the aspect ratio.)
//!
//! Everything here is CPU work: call it from the blocking pool.

use std::io::Cursor;

use ::image::{imageops, DynamicImage, ImageFormat as Codec, ImageReader, RgbImage};
use bucketlens_schemas::{error_codes, ImageFormat, ImageProperties};

use crate::labeler::LabelFailure;

/// The model's input side.
pub const INPUT_SIZE: u32 = 224;
/// The short side before the centre crop.
pub const RESIZE_SHORT_SIDE: u32 = 256;

/// A decoded image, ready for the model.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `3 * 224 * 224` floats, channel-major (NCHW without the N).
    pub tensor: Vec<f32>,
    pub properties: ImageProperties,
}

/// Decodes `bytes` and prepares the model input, or says why it cannot.
pub fn prepare(bytes: &[u8], max_pixels: u64) -> Result<Prepared, LabelFailure> {
    let (rgb, properties) = decode(bytes, max_pixels, RESIZE_SHORT_SIDE)?;
    Ok(Prepared { tensor: to_tensor(&rgb), properties })
}

/// Decodes `bytes` to RGB, a JPEG at the smallest DCT scale whose short side is
/// still at least `short_side` (a PNG at full size), with the image's own format
/// and size.
pub fn decode(bytes: &[u8], max_pixels: u64, short_side: u32) -> Result<(RgbImage, ImageProperties), LabelFailure> {
    let format = sniff(bytes)?;
    let (rgb, width, height) = match format {
        ImageFormat::Jpeg => decode_jpeg(bytes, max_pixels, short_side)?,
        ImageFormat::Png => decode_png(bytes, max_pixels)?,
    };
    Ok((rgb, ImageProperties { format: format.name().to_string(), width: width as i32, height: height as i32 }))
}

/// Format and size from the header alone (nothing decoded), or why not.
pub fn properties(bytes: &[u8]) -> Result<ImageProperties, LabelFailure> {
    let format = sniff(bytes)?;
    let (width, height) = match format {
        ImageFormat::Jpeg => {
            let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            decoder.read_info().map_err(|e| corrupt("JPEG", e))?;
            let info = decoder.info().ok_or_else(|| corrupt("JPEG", "no frame header"))?;
            (u32::from(info.width), u32::from(info.height))
        }
        ImageFormat::Png => {
            ImageReader::with_format(Cursor::new(bytes), Codec::Png).into_dimensions().map_err(|e| corrupt("PNG", e))?
        }
    };
    Ok(ImageProperties { format: format.name().to_string(), width: width as i32, height: height as i32 })
}

/// The format of `bytes`, or why they are not an image bucketlens reads.
fn sniff(bytes: &[u8]) -> Result<ImageFormat, LabelFailure> {
    if bytes.is_empty() {
        return Err(LabelFailure::permanent(error_codes::EMPTY_OBJECT, "the object is empty (0 bytes)"));
    }
    ImageFormat::sniff(bytes)
        .ok_or_else(|| LabelFailure::permanent(error_codes::UNSUPPORTED_FORMAT, unsupported_message(bytes)))
}

fn unsupported_message(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(12)];
    let guess = if head.starts_with(b"GIF8") {
        "GIF"
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "WebP"
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        "HEIC/AVIF (ISO media)"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "TIFF"
    } else if head.starts_with(b"BM") {
        "BMP"
    } else {
        "not an image"
    };
    format!("only JPEG and PNG are supported; the content looks like {guess} (first bytes {head:02X?})")
}

fn too_large(width: u64, height: u64, max_pixels: u64) -> LabelFailure {
    LabelFailure::permanent(
        error_codes::IMAGE_TOO_LARGE,
        format!("{width}x{height} is {} pixels, above labeler.max-pixels = {max_pixels}", width * height),
    )
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> LabelFailure {
    LabelFailure::permanent(error_codes::CORRUPT_IMAGE, format!("the {what} data cannot be decoded: {e}"))
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64, short_side: u32) -> Result<(RgbImage, u32, u32), LabelFailure> {
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
    // Ask for the smallest size whose short side is still >= short_side; the decoder picks
    // the nearest DCT scale (1/8, 1/4, 1/2, 1) at or above it.
    let short = width.min(height).max(1);
    let want_w = (width * short_side).div_ceil(short).min(width);
    let want_h = (height * short_side).div_ceil(short).min(height);
    let (w, h) = decoder.scale(want_w as u16, want_h as u16).map_err(|e| corrupt("JPEG", e))?;
    let pixels = decoder.decode().map_err(|e| corrupt("JPEG", e))?;
    let info = decoder.info().ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (w, h) = (u32::from(w), u32::from(h));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|c| {
                // Adobe CMYK JPEGs store inverted values: k=255 means no black.
                let k = u16::from(c[3]);
                [c[0], c[1], c[2]].map(|v| ((u16::from(v) * k) / 255) as u8)
            })
            .collect(),
    };
    let image = RgbImage::from_raw(w, h, rgb).ok_or_else(|| corrupt("JPEG", "pixel data shorter than the frame"))?;
    Ok((image, width, height))
}

fn decode_png(bytes: &[u8], max_pixels: u64) -> Result<(RgbImage, u32, u32), LabelFailure> {
    let reader = ImageReader::with_format(Cursor::new(bytes), Codec::Png);
    let (width, height) = reader.into_dimensions().map_err(|e| corrupt("PNG", e))?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(too_large(width.into(), height.into(), max_pixels));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), Codec::Png);
    let mut limits = ::image::Limits::default();
    // 16-bit RGBA is 8 bytes a pixel; allow that much and no more.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let decoded: DynamicImage = reader.decode().map_err(|e| corrupt("PNG", e))?;
    Ok((decoded.to_rgb8(), width, height))
}

/// Resize the short side to 256, crop the centre 224², normalise to NCHW floats.
///
/// The centre square is cut out first and only it is resized: what is allocated is
/// 256², whatever the aspect ratio (resizing a 60000×1 image's short side to 256
/// first would make a 15-million-pixel-wide one).
pub fn to_tensor(rgb: &RgbImage) -> Vec<f32> {
    let (w, h) = rgb.dimensions();
    let short = w.min(h).max(1);
    let square = imageops::crop_imm(rgb, (w - short.min(w)) / 2, (h - short.min(h)) / 2, short, short);
    let resized = imageops::resize(&*square, RESIZE_SHORT_SIDE, RESIZE_SHORT_SIDE, imageops::FilterType::Triangle);
    let margin = (RESIZE_SHORT_SIDE - INPUT_SIZE) / 2;
    let plane = (INPUT_SIZE * INPUT_SIZE) as usize;
    let mut tensor = vec![0f32; 3 * plane];
    for y in 0..INPUT_SIZE {
        for x in 0..INPUT_SIZE {
            let p = resized.get_pixel(margin + x, margin + y);
            let i = (y * INPUT_SIZE + x) as usize;
            for c in 0..3 {
                tensor[c * plane + i] = (f32::from(p[c]) - 127.0) / 128.0;
            }
        }
    }
    tensor
}

#[cfg(test)]
mod tests;
