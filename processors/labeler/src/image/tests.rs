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

    let err = prepare(b"GIF89a\x01\x00\x01\x00", 1000).unwrap_err();
    assert_eq!(err.code, "UnsupportedFormat");
    assert!(err.message.contains("GIF"), "{}", err.message);

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
