//! The store's index page: every run, newest first, with its verdict and a link.

use std::fmt::Write;

use crate::html::{escape, escape_into, head, STYLE};
use crate::meta::RunSummary;

/// Renders `store/index.html`: one row per run, newest first (by `time`, then directory
/// name), each linking to its report.
pub fn render_index(runs: &[RunSummary]) -> String {
    let mut sorted: Vec<&RunSummary> = runs.iter().collect();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.dir.cmp(&a.dir)));
    let mut out = String::with_capacity(1024 + runs.len() * 256);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>overbook runs</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>overbook runs</h1>\n"
    );
    if sorted.is_empty() {
        out.push_str("<p>No runs yet.</p>\n");
    } else {
        let _ = writeln!(out, "<p>{} runs, newest first.</p>\n<table>", sorted.len());
        head(
            &mut out,
            &[
                "started",
                "design",
                "faults",
                "verdict",
                "what it cost the guests",
                "run",
            ],
        );
        for r in sorted {
            out.push_str("<tr><td>");
            escape_into(&mut out, &r.time);
            out.push_str("</td><td>");
            escape_into(&mut out, &r.design);
            out.push_str("</td><td>");
            escape_into(&mut out, &r.faults.join(", "));
            let v = r.verdict.as_str();
            let _ = write!(
                out,
                "</td><td><span class=\"badge {v}\">{v}</span></td><td>"
            );
            escape_into(&mut out, r.harm.as_deref().unwrap_or(""));
            let _ = writeln!(
                out,
                "</td><td><a href=\"{}\">{}</a></td></tr>",
                escape(&r.link),
                escape(&r.dir)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}
