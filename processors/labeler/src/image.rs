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

/// The most coefficient memory a progressive JPEG may need (2 bytes each, 64 a block).
const PROGRESSIVE_MAX_COEFFICIENT_BYTES: u64 = 320 << 20;
/// A decode needing more than this waits for any other such decode to end.
const LARGE_DECODE_BYTES: u64 = 64 << 20;
static LARGE_DECODES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What jpeg-decoder allocates for a progressive JPEG's coefficients: each
/// component's blocks, padded to whole MCUs, from the frame header's sampling factors.
fn jpeg_coefficient_bytes(bytes: &[u8], width: u32, height: u32) -> Option<u64> {
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

fn jpeg_scale(width: u32, height: u32, want_w: u32, want_h: u32) -> usize {
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
fn decode_turbo(bytes: &[u8], want_w: u32, want_h: u32) -> Result<RgbImage, turbojpeg::Error> {
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
fn decode_scaled(
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
fn exif_orientation<R: std::io::Read>(decoder: &jpeg_decoder::Decoder<R>) -> Orientation {
    decoder.exif_data().and_then(Orientation::from_exif_chunk).unwrap_or(Orientation::NoTransforms)
}

/// The size of a `width × height` image as it is displayed under `orientation`.
fn displayed(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH => {
            (height, width)
        }
        _ => (width, height),
    }
}

/// WebP, GIF, TIFF and BMP are decoded at full size by the `image` crate's decoders:
/// their decoded pixels may take at most this much (64 MP of RGBA, 85 MP of RGB).
const OTHER_MAX_DECODE_BYTES: u64 = 256 << 20;

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
fn other_decoder(bytes: &[u8], format: ImageFormat) -> Result<Box<dyn ::image::ImageDecoder + '_>, LabelFailure> {
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
fn decode_other(
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
fn heif_context(bytes: &[u8], format: ImageFormat) -> Result<libheif_rs::HeifContext<'_>, LabelFailure> {
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
fn decode_heif(
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

/// A PNG is reduced while it is decoded, row by row, to at most this many pixels:
/// what a header can make bucketlens hold is bounded, whatever its size.
const PNG_MAX_OUTPUT_PIXELS: u64 = 2 << 20;
/// The longest PNG row read (the decoder keeps about three rows of the raw data).
const PNG_MAX_ROW_BYTES: u64 = 16 << 20;

/// Decodes a PNG row by row, averaging boxes of `fx × fy` pixels on the way: the
/// short side stays at least `short_side` unless that would exceed
/// [`PNG_MAX_OUTPUT_PIXELS`]. Interlaced (Adam7) images take the same path: each
/// pass's pixels fall into their boxes.
fn decode_png(bytes: &[u8], max_pixels: u64, short_side: u32) -> Result<(RgbImage, u32, u32), LabelFailure> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // 8 bits a sample, palettes and low bit depths expanded: gray, gray+alpha, RGB or RGBA.
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
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
    let row_error = |e: png::DecodingError| corrupt("PNG", e);
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
                let expected = png::Adam7Info::new(pass, line, width);
                if !matches!(row.interlace(), png::InterlaceInfo::Adam7(info) if *info == expected) {
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
struct Boxes {
    fx: u32,
    fy: u32,
    out_w: u32,
    out_h: u32,
    channels: usize,
    pixels: Pixels,
}

enum Pixels {
    Own(Vec<u8>),
    Sums(Vec<u64>),
}

impl Boxes {
    fn new(width: u32, height: u32, short_side: u32, channels: usize) -> Self {
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
    fn add_row(&mut self, y: u32, x0: u32, dx: u32, data: &[u8]) {
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
    fn finish(self) -> RgbImage {
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
    (left, top, crop_w, crop_h): (u32, u32, u32, u32),
    width: u32,
    height: u32,
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
    let options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear)).crop(
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
