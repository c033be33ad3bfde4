//! XMP, the RDF/XML packet Lightroom, darktable, digiKam and most cameras' apps
//! write. Properties are found by namespace, not by prefix (a packet may name
//! `dc:` anything). Each may be an element (`<dc:subject><rdf:Bag><rdf:li>…`) or an
//! attribute of `rdf:Description` (`xmp:Rating="4"`).
//!
//! The packet is read as a stream: what it keeps is bounded (keywords, and the
//! length of each text), whatever the packet's size.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

const RDF: &[u8] = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const DC: &[u8] = b"http://purl.org/dc/elements/1.1/";
const LIGHTROOM: &[u8] = b"http://ns.adobe.com/lightroom/1.0/";
const XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/";
const EXIF: &[u8] = b"http://ns.adobe.com/exif/1.0/";
const PHOTOSHOP: &[u8] = b"http://ns.adobe.com/photoshop/1.0/";

/// The longest text kept of one value, in bytes.
pub const MAX_TEXT: usize = 4096;
/// The most keywords kept of one packet.
pub const MAX_KEYWORDS: usize = 500;

#[derive(Debug, Default, PartialEq)]
pub struct Xmp {
    pub keywords: Vec<String>,
    /// Lightroom's hierarchical subjects, as written (`Places|Japan|Kyoto`).
    pub hierarchical: Vec<String>,
    pub title: Option<String>,
    pub caption: Option<String>,
    pub rating: Option<String>,
    /// (the field's name, its text): `DateTimeOriginal`, `CreateDate`, `DateCreated`.
    pub dates: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Property {
    Subject,
    Hierarchical,
    Title,
    Description,
    Rating,
    Date(&'static str),
}

fn property(namespace: &[u8], local: &[u8]) -> Option<Property> {
    Some(match (namespace, local) {
        (DC, b"subject") => Property::Subject,
        (LIGHTROOM, b"hierarchicalSubject") => Property::Hierarchical,
        (DC, b"title") => Property::Title,
        (DC, b"description") => Property::Description,
        (XMP, b"Rating") => Property::Rating,
        (EXIF, b"DateTimeOriginal") => Property::Date("DateTimeOriginal"),
        (XMP, b"CreateDate") => Property::Date("CreateDate"),
        (PHOTOSHOP, b"DateCreated") => Property::Date("DateCreated"),
        _ => return None,
    })
}

/// One value of a property: an `rdf:li`, or the property's own text.
struct Value {
    text: String,
    /// `xml:lang="x-default"`: the one an `rdf:Alt` (title, description) shows.
    default_language: bool,
}

impl Xmp {
    fn add(&mut self, property: Property, value: Value) {
        let text = value.text.trim().to_string();
        if text.is_empty() {
            return;
        }
        let alt = |slot: &mut Option<String>| {
            if slot.is_none() || value.default_language {
                *slot = Some(text.clone());
            }
        };
        match property {
            Property::Subject if self.keywords.len() < MAX_KEYWORDS => self.keywords.push(text),
            Property::Hierarchical if self.hierarchical.len() < MAX_KEYWORDS => self.hierarchical.push(text),
            Property::Subject | Property::Hierarchical => {}
            Property::Title => alt(&mut self.title),
            Property::Description => alt(&mut self.caption),
            Property::Rating => self.rating = Some(text),
            Property::Date(name) => self.dates.push((name, text)),
        }
    }
}

fn push_bounded(text: &mut String, more: &str) {
    if text.len() + more.len() <= MAX_TEXT {
        text.push_str(more);
    } else {
        let mut end = MAX_TEXT.saturating_sub(text.len()).min(more.len());
        while !more.is_char_boundary(end) {
            end -= 1;
        }
        text.push_str(&more[..end]);
    }
}

/// Reads the properties bucketlens keeps from an XMP packet. A packet that is not
/// well-formed keeps what was read before the fault, and a note says where.
pub fn read(packet: &[u8], notes: &mut Vec<String>) -> Xmp {
    let mut found = Xmp::default();
    let mut reader = NsReader::from_reader(packet);
    // (the property, its element's depth) while inside one; the value being read.
    let mut inside: Option<(Property, usize)> = None;
    let mut value: Option<Value> = None;
    let mut depth = 0usize;
    loop {
        let event = match reader.read_resolved_event() {
            Ok((namespace, event)) => (bound(&namespace), event),
            Err(e) => {
                notes.push(format!("XMP: not well-formed at byte {}: {e}", reader.buffer_position()));
                break;
            }
        };
        match event {
            (_, Event::Eof) => break,
            (namespace, Event::Start(start)) => {
                depth += 1;
                let local = start.local_name();
                let default_language = start
                    .attributes()
                    .flatten()
                    .any(|a| a.key.as_ref() == b"xml:lang" && a.value.as_ref().eq_ignore_ascii_case(b"x-default"));
                // A property's own text is its value; when it holds an `rdf:Bag`,
                // `rdf:Seq` or `rdf:Alt` instead, each `rdf:li` is one.
                match (inside, namespace.as_deref()) {
                    (None, Some(ns)) => {
                        if let Some(p) = property(ns, local.as_ref()) {
                            inside = Some((p, depth));
                            value = Some(Value { text: String::new(), default_language });
                        } else if ns == RDF && local.as_ref() == b"Description" {
                            attributes(&reader, &start, &mut found);
                        }
                    }
                    (Some(_), Some(RDF)) if local.as_ref() == b"li" => {
                        value = Some(Value { text: String::new(), default_language });
                    }
                    _ => {}
                }
            }
            (namespace, Event::Empty(empty))
                if inside.is_none()
                    && namespace.as_deref() == Some(RDF)
                    && empty.local_name().as_ref() == b"Description" =>
            {
                attributes(&reader, &empty, &mut found);
            }
            (namespace, Event::End(end)) => {
                if let Some((p, at)) = inside {
                    let li = namespace.as_deref() == Some(RDF) && end.local_name().as_ref() == b"li";
                    if li || depth == at {
                        if let Some(v) = value.take() {
                            found.add(p, v);
                        }
                    }
                    if depth == at {
                        inside = None;
                    }
                }
                depth = depth.saturating_sub(1);
            }
            (_, Event::Text(text)) => {
                if let (Some(v), Ok(text)) = (value.as_mut(), text.decode()) {
                    push_bounded(&mut v.text, &text);
                }
            }
            (_, Event::CData(text)) => {
                if let (Some(v), Ok(text)) = (value.as_mut(), text.decode()) {
                    push_bounded(&mut v.text, &text);
                }
            }
            (_, Event::GeneralRef(reference)) => {
                if let (Some(v), Some(c)) = (value.as_mut(), entity(&reference)) {
                    push_bounded(&mut v.text, c.encode_utf8(&mut [0; 4]));
                }
            }
            _ => {}
        }
    }
    found
}

fn bound(namespace: &ResolveResult<'_>) -> Option<Vec<u8>> {
    match namespace {
        ResolveResult::Bound(ns) => Some(ns.as_ref().to_vec()),
        _ => None,
    }
}

/// `&amp;`, `&#233;`…: the character a reference stands for.
fn entity(reference: &quick_xml::events::BytesRef<'_>) -> Option<char> {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return Some(c);
    }
    let name: &[u8] = reference.as_ref();
    match name {
        b"amp" => Some('&'),
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        _ => None,
    }
}

/// Properties written as attributes of `rdf:Description`.
fn attributes(reader: &NsReader<&[u8]>, element: &quick_xml::events::BytesStart<'_>, found: &mut Xmp) {
    for attribute in element.attributes().flatten() {
        let (namespace, local) = reader.resolve_attribute(attribute.key);
        let Some(ns) = bound(&namespace) else { continue };
        if let (Some(p), Ok(text)) = (property(&ns, local.as_ref()), attribute.unescape_value()) {
            let mut kept = String::new();
            push_bounded(&mut kept, &text);
            found.add(p, Value { text: kept, default_language: false });
        }
    }
}
