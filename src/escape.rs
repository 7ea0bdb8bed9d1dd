//! Escaping names that come from a model (node, tensor, op and domain names, external-data
//! locations) before they are printed: control characters (newlines, NUL, the ESC of terminal
//! escape sequences, C1 controls) and the invisible Unicode characters that reorder or hide text
//! (bidirectional overrides, zero-width characters) are written as `\u{..}` escapes, so a hostile
//! name can neither forge extra lines in an error or report nor rewrite the terminal.
//!
//! The escape is idempotent: an escaped string contains none of the escaped characters, so
//! escaping it again changes nothing (messages that embed already-escaped names can be escaped as a
//! whole).

use std::borrow::Cow;
use std::fmt;

/// Whether `c` is written as an escape: control characters, bidirectional formatting characters,
/// zero-width characters and other invisible format characters.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'                  // Arabic letter mark
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}'   // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'   // word joiner and invisible operators
            | '\u{2066}'..='\u{2069}'   // bidi isolates
            | '\u{FEFF}'                // zero-width no-break space (BOM)
        )
}

/// `s` with every control or invisible formatting character written as `\u{XX}` (newline as
/// `\n`, tab as `\t`, carriage return as `\r`, NUL as `\0`). Borrows when nothing needs escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A [`Display`](fmt::Display) wrapper that prints its string through [`escape`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        assert!(matches!(escape("conv1/weight:0 é"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn control_and_invisible_characters_are_escaped() {
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("nul\0x"), "nul\\0x");
        assert_eq!(escape("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("c1\u{85}"), "c1\\u{85}");
        assert_eq!(escape("del\u{7f}"), "del\\u{7f}");
    }

    #[test]
    fn escaping_is_idempotent() {
        for s in ["a\nb\r\t\0", "\u{1b}]0;title\u{7}", "\u{2066}x\u{2069}", "plain"] {
            let once = escape(s).into_owned();
            assert_eq!(escape(&once), once);
            assert!(!once.contains('\n'));
        }
    }
}
