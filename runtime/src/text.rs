//! Text for people: names that come from outside (object keys, file names, error
//! messages) are printed with their control characters escaped, as `ls -b` does, so
//! a file named `x.jpg\n    Dog 99.0` cannot print a line of its own and an ESC
//! sequence in a name cannot clear the terminal. JSON output needs none of this:
//! JSON escapes control characters itself.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1) and every bidirectional
/// formatting character written as an escape: `\n`, `\t`, `\r`, `\x1b`, `\u{202e}`.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Control characters, and the characters that reorder text on screen (a name
/// ending in `gpj.exe` with a right-to-left override reads as `exe.jpg`).
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A line on stderr, its control characters escaped; a closed or full stderr is
/// ignored (the run goes on: `eprintln!` would panic).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", $crate::text::escape_controls(&line));
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_other_text_is_not() {
        assert_eq!(escape_controls("holiday/été 2024.jpg"), "holiday/été 2024.jpg");
        assert!(matches!(escape_controls("plain"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("spoof.jpg\n    Dog 99.0"), "spoof.jpg\\n    Dog 99.0");
        assert_eq!(escape_controls("a\x1b[2Jb\tc\r\x7f\u{85}"), "a\\x1b[2Jb\\tc\\r\\x7f\\x85");
        assert_eq!(escape_controls("x\u{202e}gpj.exe"), "x\\u{202e}gpj.exe");
    }
}
