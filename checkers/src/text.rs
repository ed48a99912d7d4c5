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

/// What a redacted password reads as.
pub const REDACTED: &str = "***";

/// `s` with every password in it replaced by [`REDACTED`], whatever form the address
/// takes: a URL's userinfo (`postgresql://u:p@h`, `redis://:p@h`), a libpq conninfo
/// `password=...` (quoted or not) and a query's `?password=` / `&password=`. Errors
/// carry the address they failed on, and they end up in `run.log`, the history and on
/// stderr, all kept and shared as CI artifacts: every error path goes through here.
/// Text without a password is returned borrowed.
pub fn redact_credentials(s: &str) -> Cow<'_, str> {
    if !s.contains("://") && !s.to_ascii_lowercase().contains("password") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let url = rest.find("://");
        let key = find_password_key(rest);
        let url = match (url, key) {
            (None, None) => break,
            (Some(u), Some((k, _))) if k < u => None,
            (u, _) => u,
        };
        match (url, key) {
            (Some(u), _) => {
                let auth_start = u + 3;
                out.push_str(&rest[..auth_start]);
                rest = &rest[auth_start..];
                let end = rest
                    .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
                    .unwrap_or(rest.len());
                let authority = &rest[..end];
                if let Some(at) = authority.rfind('@') {
                    let userinfo = &authority[..at];
                    match userinfo.find(':') {
                        Some(colon) => {
                            out.push_str(&userinfo[..=colon]);
                            out.push_str(REDACTED);
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push_str(&authority[at..]);
                    rest = &rest[end..];
                }
            }
            (None, Some((k, value_start))) => {
                out.push_str(&rest[..value_start]);
                let in_query = k > 0 && matches!(rest.as_bytes()[k - 1], b'?' | b'&');
                let value = &rest[value_start..];
                let len = if in_query {
                    value
                        .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
                        .unwrap_or(value.len())
                } else {
                    conninfo_value_len(value)
                };
                out.push_str(REDACTED);
                rest = &value[len..];
            }
            (None, None) => unreachable!("no address and no key ended the loop above"),
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The first `password=` key (any case, not the tail of a longer word such as
/// `nopassword=`), as (where the key starts, where its value starts).
fn find_password_key(s: &str) -> Option<(usize, usize)> {
    const KEY: &str = "password";
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(KEY) {
        let k = from + i;
        let before_ok = k == 0 || !lower.as_bytes()[k - 1].is_ascii_alphanumeric();
        let after = &lower[k + KEY.len()..];
        let eq = after.len() - after.trim_start().len();
        if before_ok && after[eq..].starts_with('=') {
            let v = k + KEY.len() + eq + 1;
            let spaces = s[v..].len() - s[v..].trim_start().len();
            return Some((k, v + spaces));
        }
        from = k + KEY.len();
    }
    None
}

/// The length of a libpq conninfo value at the start of `v`: a single-quoted string
/// with backslash escapes, or everything up to whitespace.
fn conninfo_value_len(v: &str) -> usize {
    if !v.starts_with('\'') {
        return v.find(char::is_whitespace).unwrap_or(v.len());
    }
    let mut escaped = false;
    for (i, c) in v.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => return i + 1,
            _ => {}
        }
    }
    v.len()
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

    /// Issue 23.2: connect_direct's error carried `password=...` into run.log, the
    /// history and stderr. Every form an address takes is redacted.
    #[test]
    fn credentials_are_redacted_in_every_address_form() {
        let cases = [
            (
                "connecting to postgresql://overbook:S3cr3t@127.0.0.1:5432/db failed",
                "connecting to postgresql://overbook:***@127.0.0.1:5432/db failed",
            ),
            (
                "redis://:S3cr3t@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            ("redis://user@host/0", "redis://user@host/0"),
            (
                "http://127.0.0.1:4000/bookings",
                "http://127.0.0.1:4000/bookings",
            ),
            (
                "postgres at host=127.0.0.1 port=5 user=o dbname=d password=S3cr3t: timed out",
                "postgres at host=127.0.0.1 port=5 user=o dbname=d password=*** timed out",
            ),
            (
                r"host=h password='p w\' x' dbname=d",
                "host=h password=*** dbname=d",
            ),
            ("host=h PASSWORD = S3cr3t", "host=h PASSWORD = ***"),
            (
                "postgresql://h/db?user=u&password=S3cr3t&sslmode=disable",
                "postgresql://h/db?user=u&password=***&sslmode=disable",
            ),
            (
                "postgresql://h/db?password=S3cr3t",
                "postgresql://h/db?password=***",
            ),
            (
                "two: redis://:a@h1/0,redis://:b@h2/0",
                "two: redis://:***@h1/0,redis://:***@h2/0",
            ),
            ("nopassword=x stays", "nopassword=x stays"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_credentials(raw), want, "{raw}");
            assert!(!redact_credentials(raw).contains("S3cr3t"), "{raw}");
        }
        assert!(matches!(
            redact_credentials("no secrets here"),
            Cow::Borrowed(_)
        ));
    }
}
