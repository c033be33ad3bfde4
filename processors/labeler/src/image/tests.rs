use super::jpeg::{decode_scaled, decode_turbo, jpeg_coefficient_bytes, jpeg_scale};
use super::png::{Boxes, PNG_MAX_OUTPUT_PIXELS};
use super::*;

fn example(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../examples/photos/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn png_and_jpeg_decode_into_a_normalised_tensor() {
    for (name, format, w, h) in
        [("chelsea.png", "png", 451, 300), ("rocket.jpg", "jpeg", 640, 427), ("camera.png", "png", 512, 512)]
    {
        let prepared = prepare(&example(name), 100_000_000).unwrap();
        assert_eq!(prepared.properties, ImageProperties { format: format.into(), width: w, height: h }, "{name}");
        assert_eq!(prepared.tensor.len(), 3 * 224 * 224);
        assert!(prepared.tensor.iter().all(|v| (-1.0..=1.0).contains(v)));
        let spread = prepared.tensor.iter().copied().fold(f32::MIN, f32::max)
            - prepared.tensor.iter().copied().fold(f32::MAX, f32::min);
        assert!(spread > 0.5, "{name}: the image has contrast");
    }
}

#[test]
fn empty_unknown_and_corrupt_inputs_fail_with_a_reason() {
    let err = prepare(&[], 1000).unwrap_err();
    assert_eq!(err.code, "EmptyObject");

    // A HEIC or AVIF header with nothing after it: libheif says what is missing.
    let err = prepare(b"\0\0\0\x18ftypheic\0\0\0\0", 1000).unwrap_err();
    assert_eq!(err.code, "CorruptImage");
    assert!(err.message.contains("the HEIC data cannot be decoded"), "{}", err.message);
    let err = prepare(b"\0\0\0\x1cftypavif\0\0\0\0", 1000).unwrap_err();
    assert!(err.message.contains("the AVIF data cannot be decoded"), "{}", err.message);
    // Image sequences and videos are not stills: named.
    let err = prepare(b"\0\0\0\x18ftypmsf1\0\0\0\0", 1000).unwrap_err();
    assert_eq!(err.code, "UnsupportedFormat");
    assert!(err.message.contains("a HEIF image sequence") && err.message.contains("HEIC"), "{}", err.message);
    let err = prepare(b"\0\0\0\x18ftypisom\0\0\0\0", 1000).unwrap_err();
    assert!(err.message.contains("an ISO media file (MP4"), "{}", err.message);
    let err = prepare(b"GIF89a\x01\x00\x01\x00", 1000).unwrap_err();
    assert_eq!(err.code, "CorruptImage", "a GIF cut short: {}", err.message);

    let err = prepare(b"hello, I am a text file", 1000).unwrap_err();
    assert_eq!(err.code, "UnsupportedFormat");
    assert!(err.message.contains("not an image"), "{}", err.message);

    let png = example("chelsea.png");
    let err = prepare(&png[..png.len() / 3], 100_000_000).unwrap_err();
    assert_eq!(err.code, "CorruptImage", "{}", err.message);

    let jpeg = example("rocket.jpg");
    let err = prepare(&jpeg[..40], 100_000_000).unwrap_err();
    assert_eq!(err.code, "CorruptImage", "{}", err.message);
    let mut scrambled = jpeg.clone();
    for b in scrambled.iter_mut().skip(600).step_by(7) {
        *b = !*b;
    }
    if let Err(err) = prepare(&scrambled, 100_000_000) {
        assert_eq!(err.code, "CorruptImage", "{}", err.message);
    }
    let err = prepare(&jpeg[..jpeg.len() / 2], 100_000_000).unwrap_err();
    assert_eq!(err.code, "CorruptImage", "a JPEG cut in half: {}", err.message);
}

#[test]
fn images_over_the_pixel_limit_are_refused_before_decoding() {
    let err = prepare(&example("chelsea.png"), 451 * 300 - 1).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge");
    assert!(err.message.contains("451x300"), "{}", err.message);
    let err = prepare(&example("rocket.jpg"), 1000).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge");
}

/// A PNG of `width × height` RGB8 pixels from `pixel(x, y)`, plain or Adam7
/// interlaced. (The png crate writes no interlaced PNGs: the passes, filter type 0 on
/// every line, are laid out here as the PNG specification's section 8.2 says.)
fn png_rgb8(width: u32, height: u32, interlaced: bool, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    use std::io::Write;
    const PASSES: [(u32, u32, u32, u32); 7] =
        [(0, 8, 0, 8), (4, 8, 0, 8), (0, 4, 4, 8), (2, 4, 0, 4), (0, 2, 2, 4), (1, 2, 0, 2), (0, 1, 1, 2)];
    let passes: Vec<_> = if interlaced { PASSES.to_vec() } else { vec![(0, 1, 0, 1)] };
    let mut raw = Vec::new();
    for (x0, dx, y0, dy) in passes {
        if width <= x0 {
            continue;
        }
        for y in (y0..height).step_by(dy as usize) {
            raw.push(0);
            for x in (x0..width).step_by(dx as usize) {
                raw.extend(pixel(x, y));
            }
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, u8::from(interlaced)]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], ihdr), (b"IDAT", idat), (b"IEND", Vec::new())] {
        png.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(&data);
        png.extend(kind);
        png.extend(data);
        png.extend(crc.sum().to_be_bytes());
    }
    png
}

fn gradient(x: u32, y: u32) -> [u8; 3] {
    [(x % 251) as u8, (y % 241) as u8, ((x * 7 + y * 3) % 256) as u8]
}

#[test]
fn an_interlaced_png_decodes_to_the_same_pixels_as_a_plain_one() {
    for (w, h) in [(1, 1), (3, 2), (9, 17), (300, 200), (1024, 700)] {
        for short_side in [100_000, 256, 2] {
            let plain = decode(&png_rgb8(w, h, false, gradient), 100_000_000, short_side).unwrap();
            let adam7 = decode(&png_rgb8(w, h, true, gradient), 100_000_000, short_side).unwrap();
            assert_eq!(plain.1, adam7.1, "{w}x{h}");
            assert!(plain.0 == adam7.0, "{w}x{h} at short side {short_side}: the pixels differ");
        }
    }
    // Asked for a short side above the image's, nothing is reduced: the pixels are its own.
    let (rgb, _) = decode(&png_rgb8(9, 17, true, gradient), 100_000_000, 100_000).unwrap();
    assert_eq!(rgb.dimensions(), (9, 17));
    assert!(rgb.enumerate_pixels().all(|(x, y, p)| p.0 == gradient(x, y)));
}

#[test]
fn a_large_png_is_reduced_while_it_is_read_into_averaged_boxes() {
    // With short side 256: 1030x520 in boxes of 2x2 (520 / 256), 515x260 out; 1030x780
    // in boxes of 3x3, 343x260 out (the last column of pixels falls in no box).
    for (w, h, f, out) in [(1030, 520, 2, (515, 260)), (1030, 780, 3, (343, 260))] {
        let (rgb, props) = decode(&png_rgb8(w, h, false, gradient), 100_000_000, 256).unwrap();
        assert_eq!((props.width, props.height), (w as i32, h as i32), "the properties are the image's own size");
        assert_eq!(rgb.dimensions(), out);
        let mean = |x: u32, y: u32, c: usize| {
            let sum: u32 = (0..f * f).map(|i| u32::from(gradient(f * x + i % f, f * y + i / f)[c])).sum();
            ((sum + f * f / 2) / (f * f)) as u8
        };
        for (x, y) in [(0, 0), (100, 37), (out.0 - 1, out.1 - 1), (300, 120)] {
            assert_eq!(rgb.get_pixel(x, y).0, [mean(x, y, 0), mean(x, y, 1), mean(x, y, 2)], "{w}x{h} at {x},{y}");
        }
    }
}

#[test]
fn what_a_png_header_can_make_the_decoder_hold_is_bounded() {
    // Whatever the shape, the output stays under the cap and keeps the short side
    // when the cap allows.
    for (w, h) in [
        (60_000, 1),
        (1, 60_000),
        (10_000, 10_000),
        (100_000_000, 1),
        (511, 195_694),
        (4000, 3000),
        (u32::MAX, 3),
        (300, 200),
    ] {
        let boxes = Boxes::new(w, h, 256, 4);
        let out = u64::from(boxes.out_w) * u64::from(boxes.out_h);
        assert!(out <= PNG_MAX_OUTPUT_PIXELS, "{w}x{h} -> {}x{}", boxes.out_w, boxes.out_h);
        if u64::from(w) * u64::from(h) <= PNG_MAX_OUTPUT_PIXELS / 4
            || (w >= 1024 && h >= 1024 && w <= 20_000 && h <= 20_000)
        {
            assert!(boxes.out_w.min(boxes.out_h) >= 256.min(w.min(h)), "{w}x{h} -> {}x{}", boxes.out_w, boxes.out_h);
        }
    }
    // A row too long to hold is refused before any pixel is read: 3,000,000 RGBA16
    // pixels make rows of 22 MiB.
    let mut bytes = Vec::new();
    {
        let mut encoder = ::png::Encoder::new(&mut bytes, 3_000_000, 1);
        encoder.set_color(::png::ColorType::Rgba);
        encoder.set_depth(::png::BitDepth::Sixteen);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&vec![0; 3_000_000 * 8]).unwrap();
    }
    let err = prepare(&bytes, 100_000_000).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge", "{}", err.message);
    assert!(err.message.contains("3000000 pixels wide") && err.message.contains("22 MiB"), "{}", err.message);
}

#[test]
fn a_progressive_jpeg_is_refused_when_its_coefficients_would_not_fit() {
    let encode = |sampling, progressive| {
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 80);
        encoder.set_sampling_factor(sampling);
        encoder.set_progressive(progressive);
        encoder.encode(&rgb_noise(1000, 1000), 1000, 1000, jpeg_encoder::ColorType::Rgb).unwrap();
        jpeg
    };
    // From the frame header's sampling factors: 4:2:0 holds half what 4:4:4 does.
    let (yuv420, yuv444) =
        (encode(jpeg_encoder::SamplingFactor::F_2_2, true), encode(jpeg_encoder::SamplingFactor::F_1_1, true));
    assert_eq!(jpeg_coefficient_bytes(&yuv420, 1000, 1000), Some((126 * 126 + 2 * 63 * 63) * 128));
    assert_eq!(jpeg_coefficient_bytes(&yuv444, 1000, 1000), Some(3 * 125 * 125 * 128));
    assert!(prepare(&yuv444, 100_000_000).is_ok(), "a small progressive JPEG decodes");

    // The same file claiming 12000x12000 is refused before a coefficient is allocated.
    let sof = yuv444.windows(2).position(|w| w == [0xFF, 0xC2]).unwrap();
    let mut huge = yuv444.clone();
    huge[sof + 5..sof + 9].copy_from_slice(&[0x2E, 0xE0, 0x2E, 0xE0]);
    let err = prepare(&huge, 200_000_000).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge", "{}", err.message);
    assert!(err.message.contains("progressive JPEG of 12000x12000 needs 823 MiB"), "{}", err.message);

    // A baseline JPEG is decoded at 1/8 scale and holds no coefficients: the same
    // claim is not refused (jpeg-decoder fills the blocks its data lacks).
    let mut baseline = encode(jpeg_encoder::SamplingFactor::F_1_1, false);
    let sof = baseline.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    baseline[sof + 5..sof + 9].copy_from_slice(&[0x2E, 0xE0, 0x2E, 0xE0]);
    let decoded = prepare(&baseline, 200_000_000).map(|p| p.properties).map_err(|e| e.message);
    assert_eq!(decoded, Ok(ImageProperties { format: "jpeg".into(), width: 12000, height: 12000 }));
}

fn rgb_noise(width: u32, height: u32) -> Vec<u8> {
    (0..width * height * 3).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

/// A JPEG of `width × height` whose left half is red and right half blue, with an
/// EXIF orientation tag of `orientation` (none with 0).
fn jpeg_halves(width: u16, height: u16, orientation: u16) -> Vec<u8> {
    let pixels: Vec<u8> = (0..u32::from(width) * u32::from(height))
        .flat_map(|i| if i % u32::from(width) < u32::from(width) / 2 { [230, 20, 20] } else { [20, 20, 230] })
        .collect();
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    if orientation != 0 {
        // "Exif\0\0", a big-endian TIFF header, one IFD with one entry: Orientation
        // (0x0112), SHORT, 1 value.
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        exif.extend_from_slice(&orientation.to_be_bytes());
        exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        encoder.add_app_segment(1, exif).unwrap();
    }
    encoder.encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb).unwrap();
    jpeg
}

#[test]
fn a_jpegs_exif_orientation_is_applied_to_its_pixels_and_size() {
    let red = |p: &::image::Rgb<u8>| p[0] > 150 && p[2] < 100;
    let blue = |p: &::image::Rgb<u8>| p[2] > 150 && p[0] < 100;
    // Without EXIF: 640x320, red on the left.
    let (rgb, props) = decode(&jpeg_halves(640, 320, 0), 100_000_000, 256).unwrap();
    assert_eq!((props.width, props.height), (640, 320));
    assert!(red(rgb.get_pixel(0, rgb.height() / 2)) && blue(rgb.get_pixel(rgb.width() - 1, rgb.height() / 2)));
    // 6: stored sideways, displayed turned 90° clockwise: 320x640, red on top.
    let sideways = jpeg_halves(640, 320, 6);
    let (rgb, props) = decode(&sideways, 100_000_000, 256).unwrap();
    assert_eq!((props.width, props.height), (320, 640));
    assert!(rgb.width() < rgb.height(), "{}x{}", rgb.width(), rgb.height());
    assert!(red(rgb.get_pixel(rgb.width() / 2, 0)) && blue(rgb.get_pixel(rgb.width() / 2, rgb.height() - 1)));
    let header = properties(&sideways).unwrap();
    assert_eq!((header.width, header.height), (320, 640), "the header-only size is the displayed one too");
    // 8: turned 90° counter-clockwise: blue on top. 3: upside down: blue on the left.
    let (rgb, _) = decode(&jpeg_halves(640, 320, 8), 100_000_000, 256).unwrap();
    assert!(blue(rgb.get_pixel(rgb.width() / 2, 0)) && red(rgb.get_pixel(rgb.width() / 2, rgb.height() - 1)));
    let (rgb, props) = decode(&jpeg_halves(640, 320, 3), 100_000_000, 256).unwrap();
    assert_eq!((props.width, props.height), (640, 320));
    assert!(blue(rgb.get_pixel(0, rgb.height() / 2)) && red(rgb.get_pixel(rgb.width() - 1, rgb.height() / 2)));
}

/// `image` written as `format` by the image crate's encoder.
fn encoded(image: &::image::RgbImage, format: Codec) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), format).unwrap();
    bytes
}

#[test]
fn webp_gif_tiff_and_bmp_decode_like_the_png_they_were_made_from() {
    let cat = ::image::load_from_memory(&example("chelsea.png")).unwrap().into_rgb8();
    let reference = prepare(&example("chelsea.png"), 100_000_000).unwrap();
    for (codec, name) in [(Codec::WebP, "webp"), (Codec::Gif, "gif"), (Codec::Tiff, "tiff"), (Codec::Bmp, "bmp")] {
        let prepared = prepare(&encoded(&cat, codec), 100_000_000).unwrap();
        assert_eq!(prepared.properties, ImageProperties { format: name.into(), width: 451, height: 300 });
        // The same picture (a GIF's palette and the resize filters differ a little).
        let diff = prepared.tensor.iter().zip(&reference.tensor).map(|(a, b)| (a - b).abs()).sum::<f32>()
            / reference.tensor.len() as f32;
        assert!(diff < 0.08, "{name}: mean difference {diff}");
    }
}

#[test]
fn a_gif_canvas_too_large_to_decode_is_refused_before_decoding() {
    // A GIF's decoded size is its canvas (the logical screen, bytes 6..10), whatever
    // its frames: an 8x8 GIF patched to claim a larger canvas.
    let small = encoded(&::image::RgbImage::new(8, 8), Codec::Gif);
    let claim = |w: u16, h: u16| {
        let mut gif = small.clone();
        gif[6..8].copy_from_slice(&w.to_le_bytes());
        gif[8..10].copy_from_slice(&h.to_le_bytes());
        gif
    };
    let err = prepare(&claim(60_000, 60_000), 100_000_000).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge", "{}", err.message);
    // Under the pixel limit, but 308 MiB of RGBA at full size.
    let err = prepare(&claim(9_000, 9_000), 100_000_000).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge", "{}", err.message);
    assert!(err.message.contains("GIF of 9000x9000 takes 308 MiB decoded"), "{}", err.message);
    assert!(prepare(&claim(300, 300), 100_000_000).is_ok(), "a canvas a little larger than its frame is fine");
}

#[test]
fn libjpeg_turbo_and_jpeg_decoder_give_the_same_pixels_at_every_scale() {
    let jpeg = example("rocket.jpg"); // 640×427
    for (want, eighths, size) in
        [((640, 427), 8, (640, 427)), ((300, 200), 4, (320, 214)), ((100, 60), 2, (160, 107)), ((1, 1), 1, (80, 54))]
    {
        assert_eq!(jpeg_scale(640, 427, want.0, want.1), eighths);
        let turbo = decode_turbo(&jpeg, want.0, want.1).unwrap();
        let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(jpeg.as_slice()));
        decoder.read_info().unwrap();
        let other = decode_scaled(&mut decoder, want.0, want.1).unwrap();
        assert_eq!(turbo.dimensions(), size, "libjpeg-turbo at {eighths}/8");
        assert_eq!(other.dimensions(), size, "jpeg-decoder at {eighths}/8");
        let difference: u64 = turbo.as_raw().iter().zip(other.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = difference as f64 / turbo.as_raw().len() as f64;
        assert!(mean < 1.5, "at {eighths}/8 the decoders differ by {mean:.2} levels on average");
    }
    // A file cut short: neither decoder labels a quarter-grey guess; the error says what
    // each found.
    let cut = &jpeg[..jpeg.len() * 3 / 4];
    let err = prepare(cut, 100_000_000).unwrap_err();
    assert_eq!(err.code, "CorruptImage");
    assert!(err.message.contains("TurboJPEG error: "), "{}", err.message);
}

#[test]
fn a_resize_of_nothing_is_a_corrupt_image_naming_the_sizes_and_a_one_pixel_image_still_labels() {
    let rgb = RgbImage::new(4, 3);
    let err = resize_rgb(&rgb, (0, 0, 0, 3), 2, 2).unwrap_err();
    assert_eq!(err.code, error_codes::CORRUPT_IMAGE);
    assert!(err.message.contains("cannot resize a 4×3 image to 2×2"), "{}", err.message);
    let err = resize_rgb(&rgb, (0, 0, 4, 3), 0, 2).unwrap_err();
    assert!(err.message.contains("it has no pixels"), "{}", err.message);
    // The smallest real image still becomes a whole tensor.
    let tensor = to_tensor(&RgbImage::from_pixel(1, 1, ::image::Rgb([255, 0, 127]))).unwrap();
    assert_eq!(tensor.len(), 3 * 224 * 224);
    assert!((tensor[0] - 1.0).abs() < 0.01 && (tensor[224 * 224] + 127.0 / 128.0).abs() < 0.01);
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/fixtures/heif/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn heic_and_avif_decode_like_the_png_they_were_made_from() {
    let reference = prepare(&example("chelsea.png"), 100_000_000).unwrap();
    for (file, format) in [("chelsea.heic", "heic"), ("chelsea.avif", "avif")] {
        let bytes = fixture(file);
        let prepared = prepare(&bytes, 100_000_000).unwrap();
        // The HEIC is coded 452 wide and cropped to 451 by its container.
        assert_eq!(prepared.properties, ImageProperties { format: format.into(), width: 451, height: 300 });
        assert_eq!(properties(&bytes).unwrap(), prepared.properties, "{file}: the header-only size");
        let diff = prepared.tensor.iter().zip(&reference.tensor).map(|(a, b)| (a - b).abs()).sum::<f32>()
            / reference.tensor.len() as f32;
        assert!(diff < 0.05, "{file}: mean difference {diff}");
        // Cut short: a clear error, not a panic or half a picture.
        let err = prepare(&bytes[..bytes.len() / 2], 100_000_000).unwrap_err();
        assert_eq!(err.code, "CorruptImage", "{file}: {}", err.message);
        assert!(err.message.contains(&format!("the {} data", format.to_uppercase())), "{}", err.message);
    }
}

#[test]
fn a_heics_own_rotation_is_applied_to_its_pixels_and_size() {
    let red = |p: &::image::Rgb<u8>| p[0] > 150 && p[2] < 100;
    let blue = |p: &::image::Rgb<u8>| p[2] > 150 && p[0] < 100;
    // Stored 96x64 with red on the left; its `irot` turns it 90° clockwise: red on top.
    let bytes = fixture("halves-rotated.heic");
    let (rgb, props) = decode(&bytes, 100_000_000, 64).unwrap();
    assert_eq!((props.width, props.height), (64, 96));
    assert_eq!(rgb.dimensions(), (64, 96));
    assert!(
        red(rgb.get_pixel(32, 4)) && blue(rgb.get_pixel(32, 91)),
        "{:?} {:?}",
        rgb.get_pixel(32, 4),
        rgb.get_pixel(32, 91)
    );
    assert_eq!((properties(&bytes).unwrap().width, properties(&bytes).unwrap().height), (64, 96));
    // Reduced on the way to the short side asked for, still upright.
    let (rgb, _) = decode(&bytes, 100_000_000, 16).unwrap();
    assert_eq!(rgb.dimensions(), (16, 24));
    assert!(red(rgb.get_pixel(8, 1)) && blue(rgb.get_pixel(8, 22)));
}

#[test]
fn a_10_bit_heic_decodes_to_8_bit_rgb() {
    let (rgb, props) = decode(&fixture("halves-10bit.heic"), 100_000_000, 64).unwrap();
    assert_eq!((props.format.as_str(), props.width, props.height), ("heic", 96, 64));
    let (left, right) = (rgb.get_pixel(10, 32), rgb.get_pixel(85, 32));
    assert!(left[0] > 200 && left[2] < 60 && right[2] > 200 && right[0] < 60, "{left:?} {right:?}");
}

#[test]
fn a_heic_too_large_to_decode_is_refused_from_its_header() {
    // The image's size is its `ispe` property: patched to claim more pixels.
    let small = fixture("halves-rotated.heic");
    let at = small.windows(4).position(|w| w == b"ispe").unwrap() + 8;
    let claim = |w: u32, h: u32| {
        let mut heic = small.clone();
        heic[at..at + 4].copy_from_slice(&w.to_be_bytes());
        heic[at + 4..at + 8].copy_from_slice(&h.to_be_bytes());
        heic
    };
    let err = prepare(&claim(20_000, 20_000), 100_000_000).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge", "{}", err.message);
    assert!(err.message.contains("20000x20000"), "{}", err.message);
    // Under the pixel limit, but 231 MiB of RGB at full size.
    let err = prepare(&claim(9_000, 9_000), 100_000_000).unwrap_err();
    assert_eq!(err.code, "ImageTooLarge", "{}", err.message);
    assert!(err.message.contains("HEIC") && err.message.contains("MiB"), "{}", err.message);
}
