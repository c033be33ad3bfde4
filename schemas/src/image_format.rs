//! What counts as an image: the formats bucketlens labels, recognised by their
//! magic bytes or by a key's extension. Producers use it to pick which objects
//! become records; the labeler to pick a decoder.

/// Image formats bucketlens reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    WebP,
    /// Its first frame.
    Gif,
    Tiff,
    Bmp,
    /// HEIF stills, HEVC-coded (what phones write).
    Heic,
    /// HEIF stills, AV1-coded.
    Avif,
}

/// The ISO media brands (`ftyp`) of HEIF still images: HEVC ones and the generic one.
const HEIC_BRANDS: [&[u8; 4]; 5] = [b"heic", b"heix", b"heim", b"heis", b"mif1"];

impl ImageFormat {
    /// The format whose signature starts `bytes`, if any.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(Self::Jpeg);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(Self::Png);
        }
        if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            return Some(Self::WebP);
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Some(Self::Gif);
        }
        if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            return Some(Self::Tiff);
        }
        // "BM", then a DIB header of one of the sizes BMP versions use.
        if bytes.len() >= 18 && bytes.starts_with(b"BM") {
            let dib = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
            if [12, 40, 52, 56, 64, 108, 124].contains(&dib) {
                return Some(Self::Bmp);
            }
        }
        // An ISO media file: its major brand at 8..12, compatible brands after 16.
        if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
            let major = &bytes[8..12];
            let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let compatible = bytes.get(16..size.min(bytes.len())).unwrap_or_default();
            let avif = major == b"avif" || (major == b"mif1" && compatible.chunks_exact(4).any(|b| b == b"avif"));
            if avif {
                return Some(Self::Avif);
            }
            if HEIC_BRANDS.iter().any(|b| major == *b) {
                return Some(Self::Heic);
            }
        }
        None
    }

    /// The format a file name's extension claims (case-insensitive).
    pub fn from_extension(key: &str) -> Option<Self> {
        let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" | "jpe" | "jfif" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::WebP),
            "gif" => Some(Self::Gif),
            "tif" | "tiff" => Some(Self::Tiff),
            "bmp" | "dib" => Some(Self::Bmp),
            "heic" | "heif" | "hif" => Some(Self::Heic),
            "avif" => Some(Self::Avif),
            _ => None,
        }
    }

    /// The name stored in a record's `image.format`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::WebP => "webp",
            Self::Gif => "gif",
            Self::Tiff => "tiff",
            Self::Bmp => "bmp",
            Self::Heic => "heic",
            Self::Avif => "avif",
        }
    }

    /// The media type served for it.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
            Self::Tiff => "image/tiff",
            Self::Bmp => "image/bmp",
            Self::Heic => "image/heic",
            Self::Avif => "image/avif",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ImageFormat;

    #[test]
    fn formats_are_known_by_their_signature_and_by_their_extension() {
        let bmp = {
            let mut b = b"BM".to_vec();
            b.extend_from_slice(&[0; 12]);
            b.extend_from_slice(&40u32.to_le_bytes());
            b
        };
        let cases: [(&[u8], Option<ImageFormat>); 11] = [
            (b"RIFF\x10\0\0\0WEBPVP8 ", Some(ImageFormat::WebP)),
            (b"GIF89a\x01\0\x01\0", Some(ImageFormat::Gif)),
            (b"II*\0\x08\0\0\0", Some(ImageFormat::Tiff)),
            (b"MM\0*\0\0\0\x08", Some(ImageFormat::Tiff)),
            (&bmp, Some(ImageFormat::Bmp)),
            (b"BMW is a car maker, not a bitmap", None),
            (b"\0\0\0\x18ftypheic", Some(ImageFormat::Heic)),
            (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf", Some(ImageFormat::Avif)),
            (b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif", Some(ImageFormat::Avif)),
            (b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic", Some(ImageFormat::Heic)),
            // A video, or an image sequence: not a still image.
            (b"\0\0\0\x18ftypisom\0\0\0\0isomavc1", None),
        ];
        for (bytes, format) in cases {
            assert_eq!(ImageFormat::sniff(bytes), format, "{:?}", String::from_utf8_lossy(bytes));
        }
        for (key, format) in [
            ("a.WEBP", ImageFormat::WebP),
            ("b.gif", ImageFormat::Gif),
            ("c.tif", ImageFormat::Tiff),
            ("IMG_0001.HEIC", ImageFormat::Heic),
            ("e.avif", ImageFormat::Avif),
        ] {
            assert_eq!(ImageFormat::from_extension(key), Some(format));
        }
        assert_eq!(ImageFormat::from_extension("d.mov"), None);
    }
}
