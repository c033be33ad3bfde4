//! IPTC-IIM, the record older tools (and Photoshop, and Lightroom still) write:
//! datasets `0x1C record dataset size(u16) data`. Record 2 holds what a person wrote:
//! 2:05 object name (the title), 2:25 keywords, 2:120 caption. The text is UTF-8
//! when record 1 says so (1:90 = ESC % G); otherwise it is read as UTF-8 where it
//! is valid and as Latin-1 where it is not, as most readers do.

#[derive(Debug, Default, PartialEq)]
pub struct Iptc {
    pub title: Option<String>,
    pub keywords: Vec<String>,
    pub caption: Option<String>,
}

pub fn read(mut bytes: &[u8], notes: &mut Vec<String>) -> Iptc {
    let mut found = Iptc::default();
    while let Some((&tag, rest)) = bytes.split_first() {
        if tag != 0x1C {
            break;
        }
        let Some(header) = rest.get(..4) else { break };
        let (record, dataset) = (header[0], header[1]);
        let size = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if size & 0x8000 != 0 {
            notes.push("IPTC: an extended dataset (over 32 KiB) ends the record".into());
            break;
        }
        let Some(data) = rest.get(4..4 + size) else {
            notes.push(format!("IPTC: dataset {record}:{dataset} is cut short"));
            break;
        };
        bytes = &rest[4 + size..];
        let text = || text(data);
        match (record, dataset) {
            (2, 5) => found.title = text(),
            (2, 25) => found.keywords.extend(text()),
            (2, 120) => found.caption = text(),
            _ => {}
        }
    }
    found
}

fn text(data: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(data) {
        Ok(utf8) => utf8.to_string(),
        Err(_) => data.iter().map(|&b| char::from(b)).collect(),
    };
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_string())
}
