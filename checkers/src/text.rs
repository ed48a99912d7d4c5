//! Text from a history, made safe to show a person.
//!
//! Request ids, lock keys, error strings and fault names come from whoever wrote the
//! history, and they reach terminals (`overbook check`, `overbook run`) and pages inside
//! anomaly messages, reasons and summaries. A raw `ESC [2J` in a request id clears the
//! reader's screen; a right-to-left override (U+202E) makes the rest of a line read
//! backwards, so an anomaly can be made to name different ops than it does. These are
//! shown escaped instead, as `\x1b` and `\u{202e}`, so the reader sees that they are there.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether [`for_terminal`] shows `c` escaped: the C0 controls (U+0000–U+001F, tab and
/// newline included, since a message is one line), DEL (U+007F), the C1 controls
/// (U+0080–U+009F), and the bidirectional controls that reorder the text around them:
/// the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069, the marks
/// U+200E/U+200F and the Arabic letter mark U+061C.
pub fn is_escaped(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
    )
}

/// `s` with every character [`is_escaped`] picks written as a Rust-style escape:
/// `\x1b` for ASCII controls, `\u{202e}` for the rest. Everything else, backslashes
/// included, is left as it is; text without such characters is returned borrowed, so
/// the common case costs one scan.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    escape_where(s, is_escaped)
}

/// `s` with the characters `pick` chooses escaped as [`for_terminal`] writes them. For
/// callers whose medium tolerates some controls (a web page keeps tabs and newlines).
pub fn escape_where(s: &str, pick: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.find(&pick) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if pick(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Appends the visible escape of `c`: `\x1b` below U+0080, `\u{202e}` above.
pub fn push_escaped(out: &mut String, c: char) {
    let n = c as u32;
    let _ = if n < 0x80 {
        write!(out, "\\x{n:02x}")
    } else {
        write!(out, "\\u{{{n:x}}}")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(for_terminal("r-\x1b[2J-1"), "r-\\x1b[2J-1");
        assert_eq!(for_terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(for_terminal("a\tb\nc\rd\x7f"), "a\\x09b\\x0ac\\x0dd\\x7f");
        assert_eq!(for_terminal("\u{85}\u{9b}2J"), "\\u{85}\\u{9b}2J");
        assert_eq!(
            for_terminal("\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}\u{202a}"),
            "\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{61c}\\u{202a}"
        );
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in [
            "room 101 nights 2026-12-01..2026-12-03",
            "Zürich 東京 \\x1b",
            "",
        ] {
            assert!(matches!(for_terminal(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    proptest::proptest! {
        /// Whatever the input, the output holds no character that must be escaped, and
        /// text without such characters passes through untouched.
        #[test]
        fn nothing_escaped_survives(s in ".*") {
            let out = for_terminal(&s);
            proptest::prop_assert!(!out.chars().any(is_escaped), "{:?}", out);
            if !s.chars().any(is_escaped) {
                proptest::prop_assert_eq!(out.as_ref(), s.as_str());
            }
        }
    }
}
