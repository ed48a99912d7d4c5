//! HTML text helpers: escaping everything that comes from a history, and number formats
//! shared by captions and tables.

use std::fmt::Write;

/// Appends `s` to `out` with the five HTML-significant characters escaped, so text from a
/// history (request ids, error strings, fault names) can never become markup or script,
/// and with control characters and bidirectional overrides shown as visible escapes
/// (`\x1b`, `\u{202e}`; see [`is_hidden`]), so none can reorder or hide what the page says.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_hidden(c) => checkers::text::push_escaped(out, c),
            c => out.push(c),
        }
    }
}

/// Whether a page shows `c` as an escape: what [`checkers::text::for_terminal`] escapes,
/// except tab, newline and carriage return, which HTML and XML (the SVG, JUnit files)
/// take as plain white space.
pub fn is_hidden(c: char) -> bool {
    checkers::text::is_escaped(c) && !matches!(c, '\t' | '\n' | '\r')
}

/// `s` HTML-escaped (see [`escape_into`]).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// A history instant (ns since start) as seconds with millisecond precision: `5.020 s`.
pub(crate) fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// A duration in ns, in the unit a reader takes in at a glance: `20 ms`, `1.250 s`.
pub(crate) fn dur(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns < 10_000_000_000 {
        format!("{} ms", (ns as f64 / 1e6).round() as u64)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// An integer with thousands separators: `1,204`.
pub(crate) fn count(n: u64) -> String {
    checkers::result::thousands(n)
}

/// A plot label from history text: controls and bidirectional overrides shown escaped
/// (plotters escapes markup, not these; a label is one line, so tabs and newlines too),
/// cut to `max` characters (with an ellipsis) so a hostile or long request id cannot push
/// a plot's labels over each other.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let s = checkers::text::for_terminal(s);
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A grid wider or taller than the window scrolls inside its own `div.grid-scroll`,
/// its header row and first column staying in view (matrix and trend pages).
pub(crate) const GRID_STYLE: &str =
    ".grid-scroll{overflow:auto;max-width:100%;max-height:85vh;border:1px solid #ccc}\
.grid-scroll table{margin:0}\
.grid-scroll thead th{position:sticky;top:0;z-index:2}\
.grid-scroll tr>th:first-child{position:sticky;left:0;z-index:1;white-space:nowrap}\
.grid-scroll thead th:first-child{z-index:3}";

/// Appends a `<tr>` of escaped cells.
pub(crate) fn row(out: &mut String, cells: &[&str]) {
    out.push_str("<tr>");
    for c in cells {
        out.push_str("<td>");
        escape_into(out, c);
        out.push_str("</td>");
    }
    out.push_str("</tr>\n");
}

/// Appends a `<tr>` of header cells (static text, not escaped).
pub(crate) fn head(out: &mut String, cells: &[&str]) {
    out.push_str("<tr>");
    for c in cells {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr>\n");
}

/// The page's stylesheet: inline, so a report is one file that works offline.
pub(crate) const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1440px;padding:0 20px 40px;color:#222;background:#fff}
h1{margin:18px 0 4px;font-size:26px}
h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:bold;color:#fff}
.valid{background:#2c8a2c}.invalid{background:#c62828}.unknown{background:#8a6d00}
.badge{display:inline-block;padding:1px 6px;border-radius:3px;color:#fff;font-size:13px}
.callout{border-left:6px solid #1f77b4;background:#eef5fb;padding:10px 14px;margin:12px 0;font-size:16px}
.callout.bad{border-color:#c62828;background:#fdeeee}.callout .harm{font-size:18px}
.anomaly{border:1px solid #ddd;border-radius:6px;padding:4px 14px 12px;margin:14px 0}
.message{font-weight:600}
.caption{font-size:15px;line-height:1.45}
.note{color:#555;font-size:13px}
svg{max-width:100%;height:auto;display:block}
nav a{margin-right:14px}
"#;
