//! Decoding an object into the model's input: bounded, and no slower than needed.
//!
//! - The format comes from the magic bytes, not the key's extension.
//! - Dimensions are read from the header first: an image over `max_pixels` is
//!   refused before any pixel is decoded (decompression bombs).
//! - A JPEG is decoded by libjpeg-turbo (SIMD, on the calling thread: no thread per
//!   image) at 1/2, 1/4 or 1/8 scale in the DCT domain when that still leaves the
//!   short side at least 256 px: a 12 MP photo never exists at full size. What
//!   libjpeg-turbo refuses (16-bit lossless, some damaged files) goes to jpeg-decoder;
//!   the header, the limits and the EXIF orientation are read by jpeg-decoder first,
//!   whichever decodes.
//!   A progressive JPEG's coefficients exist at full size whatever the scale: they are
//!   bounded (320 MiB), and one large progressive decode runs at a time.
//! - A PNG is read row by row into averaged boxes, never at full size (2 Mi pixels
//!   at most, rows of at most 16 MiB).
//! - WebP, GIF (its first frame), TIFF and BMP are decoded at full size by the
//!   `image` crate's decoders, up to 256 MiB of decoded pixels (checked from the
//!   header), then brought down to the same short side.
//! - HEIC and AVIF stills (their primary image) are decoded at full size by the
//!   system's libheif, its tiles on the calling thread (libde265, its HEVC decoder,
//!   still starts worker threads of its own), up to 160 MiB of RGB (checked from the
//!   header), with the container's rotation and mirroring applied; their rows are
//!   averaged into boxes on the way out, as a PNG's.
//! - A JPEG's EXIF orientation is applied to the decoded pixels, so that labels and
//!   boxes are those of the image as it is displayed, and its size is the displayed
//!   one (a portrait photo stored sideways is 3024×4032, not 4032×3024).
//! - Then the short side is resized to 256, the centre 224×224 cropped, and pixels
//!   normalised to `(p - 127) / 128`, NCHW, RGB. (The centre square is cut before
//!   resizing: memory never depends on the aspect ratio.)
//!
//! Everything here is CPU work: call it from the blocking pool.

use std::io::Cursor;

use ::image::metadata::Orientation;
use ::image::{ImageFormat as Codec, ImageReader, RgbImage};
use bucketlens_schemas::{error_codes, ImageFormat, ImageProperties};

use crate::labeler::LabelFailure;

mod full;
mod jpeg;
mod png;

use full::{decode_heif, decode_other, heif_context, other_decoder};
use jpeg::{decode_jpeg, displayed, exif_orientation};
use png::decode_png;

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
    Ok(Prepared { tensor: to_tensor(&rgb)?, properties })
}

/// Decodes `bytes` to RGB, a JPEG at the smallest DCT scale whose short side is
/// still at least `short_side` (a PNG at full size), with the image's own format
/// and size.
pub fn decode(bytes: &[u8], max_pixels: u64, short_side: u32) -> Result<(RgbImage, ImageProperties), LabelFailure> {
    let format = sniff(bytes)?;
    let (rgb, width, height) = match format {
        ImageFormat::Jpeg => decode_jpeg(bytes, max_pixels, short_side)?,
        ImageFormat::Png => decode_png(bytes, max_pixels, short_side)?,
        ImageFormat::Heic | ImageFormat::Avif => decode_heif(bytes, format, max_pixels, short_side)?,
        other => decode_other(bytes, other, max_pixels, short_side)?,
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
            displayed(u32::from(info.width), u32::from(info.height), exif_orientation(&decoder))
        }
        ImageFormat::Png => {
            ImageReader::with_format(Cursor::new(bytes), Codec::Png).into_dimensions().map_err(|e| corrupt("PNG", e))?
        }
        ImageFormat::Heic | ImageFormat::Avif => {
            let context = heif_context(bytes, format)?;
            let handle = context.primary_image_handle().map_err(|e| corrupt(format_name(format), e))?;
            (handle.width(), handle.height())
        }
        other => {
            let mut decoder = other_decoder(bytes, other)?;
            let (width, height) = decoder.dimensions();
            displayed(width, height, decoder.orientation().unwrap_or(Orientation::NoTransforms))
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
    // An ISO media file names what it holds in its brand (bytes 8..12).
    let guess = match (head.len() >= 12 && &head[4..8] == b"ftyp").then(|| &head[8..12]) {
        Some(b"avis") => "an AVIF image sequence (bucketlens reads AVIF stills)",
        Some(b"hevc" | b"hevx" | b"msf1") => "a HEIF image sequence (bucketlens reads HEIC stills)",
        Some(_) => "an ISO media file (MP4, MOV…)",
        None if head.starts_with(b"GIF8") || head.starts_with(b"BM") => "a GIF or BMP with a broken header",
        None => "not an image",
    };
    format!(
        "JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC and AVIF are supported; the content looks like {guess} (first bytes {head:02X?})"
    )
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

/// The format as people write it, in messages.
fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Gif => "GIF",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Heic => "HEIC",
        ImageFormat::Avif => "AVIF",
    }
}

/// Resize the short side to 256, crop the centre 224², normalise to NCHW floats.
///
/// The centre square is cut out first and only it is resized: what is allocated is
/// 256², whatever the aspect ratio (resizing a 60000×1 image's short side to 256
/// first would make a 15-million-pixel-wide one).
pub fn to_tensor(rgb: &RgbImage) -> Result<Vec<f32>, LabelFailure> {
    to_tensor_sized(rgb, INPUT_SIZE)
}

/// The short side an image is resized to before a centre crop of `side` (224 → 256:
/// the 87.5% crop EfficientNet was evaluated with).
pub fn resize_short_side(side: u32) -> u32 {
    (side * 8).div_ceil(7)
}

/// [`to_tensor`] for a model whose input side is `side`.
pub fn to_tensor_sized(rgb: &RgbImage, side: u32) -> Result<Vec<f32>, LabelFailure> {
    let (w, h) = rgb.dimensions();
    let short = w.min(h);
    let resize = resize_short_side(side);
    let resized = resize_rgb(rgb, ((w - short) / 2, (h - short) / 2, short, short), resize, resize)?;
    let margin = ((resize - side) / 2) as usize;
    let (side, resize) = (side as usize, resize as usize);
    let plane = side * side;
    let mut tensor = vec![0f32; 3 * plane];
    for (y, row) in resized.as_raw().chunks_exact(resize * 3).skip(margin).take(side).enumerate() {
        for (x, p) in row.chunks_exact(3).skip(margin).take(side).enumerate() {
            for (c, &v) in p.iter().enumerate() {
                tensor[c * plane + y * side + x] = (f32::from(v) - 127.0) / 128.0;
            }
        }
    }
    Ok(tensor)
}

/// The `(left, top, width, height)` part of `rgb` resized to `width × height`: a
/// bilinear filter, widened when reducing so every source pixel counts (what
/// `imageops::FilterType::Triangle` and Pillow's `BILINEAR` do), on the CPU's SIMD
/// (fast_image_resize: SSE4.1, AVX2 or Neon), about ten times `imageops`' speed.
pub fn resize_rgb(
    rgb: &RgbImage,
    crop: (u32, u32, u32, u32),
    width: u32,
    height: u32,
) -> Result<RgbImage, LabelFailure> {
    resize_rgb_with(rgb, crop, width, height, fast_image_resize::FilterType::Bilinear)
}

/// [`resize_rgb`] with another filter (`CatmullRom`: Pillow's `BICUBIC`, whose
/// cubic has a = -0.5).
pub fn resize_rgb_with(
    rgb: &RgbImage,
    (left, top, crop_w, crop_h): (u32, u32, u32, u32),
    width: u32,
    height: u32,
    filter: fast_image_resize::FilterType,
) -> Result<RgbImage, LabelFailure> {
    use fast_image_resize as fr;
    let failed = |e: &dyn std::fmt::Display| {
        LabelFailure::permanent(
            error_codes::CORRUPT_IMAGE,
            format!("cannot resize a {}×{} image to {width}×{height}: {e}", rgb.width(), rgb.height()),
        )
    };
    if crop_w == 0 || crop_h == 0 || width == 0 || height == 0 {
        return Err(failed(&"it has no pixels"));
    }
    let source = fr::images::ImageRef::new(rgb.width(), rgb.height(), rgb.as_raw(), fr::PixelType::U8x3)
        .map_err(|e| failed(&e))?;
    let mut resized = fr::images::Image::new(width, height, fr::PixelType::U8x3);
    let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(filter)).crop(
        f64::from(left),
        f64::from(top),
        f64::from(crop_w),
        f64::from(crop_h),
    );
    fr::Resizer::new().resize(&source, &mut resized, &options).map_err(|e| failed(&e))?;
    RgbImage::from_raw(width, height, resized.into_vec()).ok_or_else(|| failed(&"the resized buffer is short"))
}

#[cfg(test)]
mod tests;
