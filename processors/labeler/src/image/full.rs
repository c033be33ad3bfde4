//! The formats decoded at full size: WebP, GIF, TIFF and BMP by the `image` crate, HEIC
//! and AVIF by libheif; each checked from its header first.

use std::io::Cursor;

use ::image::metadata::Orientation;
use ::image::{imageops, DynamicImage, ImageFormat as Codec, ImageReader, RgbImage};
use bucketlens_schemas::{error_codes, ImageFormat};

use super::jpeg::{displayed, LARGE_DECODES, LARGE_DECODE_BYTES};
use super::png::Boxes;
use super::{corrupt, format_name, too_large};
use crate::labeler::LabelFailure;

/// WebP, GIF, TIFF and BMP are decoded at full size by the `image` crate's decoders:
/// their decoded pixels may take at most this much (64 MP of RGBA, 85 MP of RGB).
const OTHER_MAX_DECODE_BYTES: u64 = 256 << 20;

/// The `image` crate's decoder of the formats it reads at full size.
fn codec(format: ImageFormat) -> Result<Codec, LabelFailure> {
    match format {
        ImageFormat::Jpeg => Ok(Codec::Jpeg),
        ImageFormat::Png => Ok(Codec::Png),
        ImageFormat::WebP => Ok(Codec::WebP),
        ImageFormat::Gif => Ok(Codec::Gif),
        ImageFormat::Tiff => Ok(Codec::Tiff),
        ImageFormat::Bmp => Ok(Codec::Bmp),
        ImageFormat::Heic | ImageFormat::Avif => Err(LabelFailure::permanent(
            error_codes::LABELER_ERROR,
            format!("{} is decoded by libheif, not the image crate", format_name(format)),
        )),
    }
}

/// The `image` crate's decoder for `format`, its header read.
pub(super) fn other_decoder(
    bytes: &[u8],
    format: ImageFormat,
) -> Result<Box<dyn ::image::ImageDecoder + '_>, LabelFailure> {
    let name = format_name(format);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), codec(format)?);
    let mut limits = ::image::Limits::default();
    limits.max_alloc = Some(OTHER_MAX_DECODE_BYTES + (16 << 20));
    reader.limits(limits);
    reader.into_decoder().map(|d| Box::new(d) as Box<dyn ::image::ImageDecoder>).map_err(|e| corrupt(name, e))
}

/// What the header of an image decoded at full size says, checked before decoding: a
/// size, at most `max_pixels`, and at most `limit` bytes decoded.
fn check_full_size(
    name: &str,
    (width, height): (u32, u32),
    max_pixels: u64,
    decoded: u64,
    limit: u64,
) -> Result<(), LabelFailure> {
    if width == 0 || height == 0 {
        return Err(corrupt(name, "zero width or height"));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(too_large(width.into(), height.into(), max_pixels));
    }
    if decoded > limit {
        return Err(LabelFailure::permanent(
            error_codes::IMAGE_TOO_LARGE,
            format!(
                "a {name} of {width}x{height} takes {} MiB decoded; bucketlens decodes {name} images of up to {} MiB. \
                 Saved as JPEG or PNG, which are scaled down while decoded, it can be labeled",
                decoded >> 20,
                limit >> 20
            ),
        ));
    }
    Ok(())
}

/// Decodes a WebP, GIF (its first frame), TIFF or BMP: the pixel limit and the decode
/// size are checked from the header first; the EXIF orientation (WebP, TIFF) is
/// applied; the short side is brought down to `short_side`.
pub(super) fn decode_other(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
    short_side: u32,
) -> Result<(RgbImage, u32, u32), LabelFailure> {
    let name = format_name(format);
    let mut decoder = other_decoder(bytes, format)?;
    let (width, height) = decoder.dimensions();
    let decoded = decoder.total_bytes();
    check_full_size(name, (width, height), max_pixels, decoded, OTHER_MAX_DECODE_BYTES)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let _one_at_a_time =
        (decoded > LARGE_DECODE_BYTES).then(|| LARGE_DECODES.lock().unwrap_or_else(|e| e.into_inner()));
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| corrupt(name, e))?;
    let short = width.min(height);
    if short > short_side {
        let (w, h) = (
            (u64::from(width) * u64::from(short_side) / u64::from(short)).max(1) as u32,
            (u64::from(height) * u64::from(short_side) / u64::from(short)).max(1) as u32,
        );
        image = image.resize_exact(w, h, imageops::FilterType::Triangle);
    }
    image.apply_orientation(orientation);
    let (width, height) = displayed(width, height, orientation);
    Ok((image.into_rgb8(), width, height))
}

/// HEIC and AVIF are decoded at full size by libheif (the system's library, with
/// libde265 for HEVC and dav1d or aom for AV1): the decoded RGB may take at most this
/// much (56 MP: a 48 MP phone photo fits), checked from the header.
const HEIF_MAX_DECODE_BYTES: u64 = 160 << 20;

/// libheif, set up once for the process (its plugins and codecs are process-wide).
static HEIF: std::sync::OnceLock<libheif_rs::LibHeif> = std::sync::OnceLock::new();

/// The HEIF container of `bytes`, read (its boxes, no pixels), with its tiles set to
/// decode on the calling thread (libde265 may still start workers of its own).
pub(super) fn heif_context(bytes: &[u8], format: ImageFormat) -> Result<libheif_rs::HeifContext<'_>, LabelFailure> {
    HEIF.get_or_init(libheif_rs::LibHeif::new);
    let mut context = libheif_rs::HeifContext::read_from_bytes(bytes).map_err(|e| corrupt(format_name(format), e))?;
    context.set_max_decoding_threads(0);
    Ok(context)
}

/// Decodes a HEIC or AVIF still (its primary image): the pixel limit and the decode
/// size are checked from the header first; libheif applies the container's rotation
/// and mirroring (`irot`, `imir`: HEIF's orientation, which takes the place of EXIF's),
/// so the size is the displayed one; the rows are then averaged into boxes while
/// copied out (as a PNG's), down to `short_side`.
pub(super) fn decode_heif(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
    short_side: u32,
) -> Result<(RgbImage, u32, u32), LabelFailure> {
    use libheif_rs::{ColorSpace, RgbChroma};
    let name = format_name(format);
    let context = heif_context(bytes, format)?;
    let handle = context.primary_image_handle().map_err(|e| corrupt(name, e))?;
    let (width, height) = (handle.width(), handle.height());
    let decoded = u64::from(width) * u64::from(height) * 3;
    check_full_size(name, (width, height), max_pixels, decoded, HEIF_MAX_DECODE_BYTES)?;
    let _one_at_a_time =
        (decoded > LARGE_DECODE_BYTES).then(|| LARGE_DECODES.lock().unwrap_or_else(|e| e.into_inner()));
    // Interleaved RGB is 8 bits a sample: libheif brings 10- and 12-bit images (HDR)
    // down to it (tested). No decoding options are passed: libheif-rs 0.20 frees them
    // before the call reads them.
    let lib = HEIF.get_or_init(libheif_rs::LibHeif::new);
    let image = lib.decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None).map_err(|e| corrupt(name, e))?;
    let planes = image.planes();
    let plane = planes.interleaved.ok_or_else(|| corrupt(name, "libheif gave no RGB pixels"))?;
    let (w, h, stride) = (plane.width, plane.height, plane.stride);
    let row = w as usize * 3;
    if plane.bits_per_pixel != 8 || stride < row || plane.data.len() < stride * h as usize {
        return Err(corrupt(name, format!("libheif gave {w}x{h} pixels of {} bits", plane.bits_per_pixel)));
    }
    let mut boxes = Boxes::new(w, h, short_side, 3);
    for (y, line) in (0..h).zip(plane.data.chunks(stride)) {
        boxes.add_row(y, 0, 1, &line[..row]);
    }
    Ok((boxes.finish(), w, h))
}
