//! Where a file keeps its XMP packet and its IPTC record, by container. EXIF is the
//! `kamadak-exif` crate's to find; these two it does not look for.
//!
//! - JPEG: APP1 `http://ns.adobe.com/xap/1.0/\0` (XMP); APP13 `Photoshop 3.0\0`, the
//!   image resource 0x0404 (IPTC). Segments up to the first scan.
//! - PNG: the `iTXt` chunk `XML:com.adobe.xmp`, uncompressed (XMP).
//! - WebP: the `XMP ` chunk.
//! - TIFF: tags 700 (XMP) and 33723 (IPTC), read with the EXIF ([`super::exif`]).
//!
//! Every length is checked against what is left: a truncated or lying file yields
//! what was whole before the damage.

/// The XMP packet and the IPTC-IIM bytes a file holds, borrowed from it.
#[derive(Debug, Default)]
pub struct Packets<'a> {
    pub xmp: Option<&'a [u8]>,
    pub iptc: Option<&'a [u8]>,
}

const XMP_JPEG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const PHOTOSHOP: &[u8] = b"Photoshop 3.0\0";
const XMP_PNG: &[u8] = b"XML:com.adobe.xmp\0";

pub fn find(bytes: &[u8]) -> Packets<'_> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(bytes)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        webp(bytes)
    } else {
        Packets::default()
    }
}

fn jpeg(bytes: &[u8]) -> Packets<'_> {
    let mut found = Packets::default();
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            break;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        if (0xD0..=0xD9).contains(&marker) || marker == 0x01 {
            at += 2;
            continue;
        }
        if marker == 0xDA {
            break; // the scan: no metadata segment follows that matters
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let Some(body) = bytes.get(at + 4..at + 2 + length).filter(|_| length >= 2) else { break };
        match marker {
            0xE1 if found.xmp.is_none() => found.xmp = body.strip_prefix(XMP_JPEG),
            0xED if found.iptc.is_none() => found.iptc = body.strip_prefix(PHOTOSHOP).and_then(iptc_resource),
            _ => {}
        }
        at += 2 + length;
    }
    found
}

/// The IPTC-IIM bytes in Photoshop's image resource blocks (`8BIM`, id 0x0404).
pub fn iptc_resource(mut blocks: &[u8]) -> Option<&[u8]> {
    while blocks.len() >= 12 && blocks.starts_with(b"8BIM") {
        let id = u16::from_be_bytes([blocks[4], blocks[5]]);
        // A Pascal string, its length byte included, padded to an even length.
        let name = usize::from(blocks[6]) + 1;
        let after_name = 6 + name + name % 2;
        let size_bytes = blocks.get(after_name..after_name + 4)?;
        let size = u32::from_be_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]]) as usize;
        let data = blocks.get(after_name + 4..after_name + 4 + size)?;
        if id == 0x0404 {
            return Some(data);
        }
        blocks = blocks.get(after_name + 4 + size + size % 2..)?;
    }
    None
}

fn png(bytes: &[u8]) -> Packets<'_> {
    let mut found = Packets::default();
    let mut at = 8;
    while let Some(header) = bytes.get(at..at + 8) {
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(data) = bytes.get(at + 8..(at + 8).saturating_add(length)) else { break };
        match &header[4..8] {
            b"iTXt" if found.xmp.is_none() => found.xmp = png_xmp(data),
            b"IEND" => break,
            _ => {}
        }
        at = at + 12 + length;
    }
    found
}

/// An `iTXt` chunk's text, if it is the XMP packet and not compressed: keyword\0,
/// compression flag, method, language\0, translated keyword\0, text.
fn png_xmp(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(XMP_PNG)?;
    let (&compressed, rest) = rest.split_first()?;
    if compressed != 0 {
        return None;
    }
    let rest = rest.get(1..)?;
    let language = rest.iter().position(|&b| b == 0)?;
    let rest = &rest[language + 1..];
    let translated = rest.iter().position(|&b| b == 0)?;
    Some(&rest[translated + 1..])
}

fn webp(bytes: &[u8]) -> Packets<'_> {
    let mut found = Packets::default();
    let mut at = 12;
    while let Some(header) = bytes.get(at..at + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let Some(data) = bytes.get(at + 8..(at + 8).saturating_add(size)) else { break };
        if &header[..4] == b"XMP " {
            found.xmp = Some(data);
            break;
        }
        at = at + 8 + size + size % 2;
    }
    found
}
