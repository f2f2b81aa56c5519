//! Every string of a log is hostile: a path may hold markup, quotes, newlines, escape
//! sequences or characters that reorder text. These make it inert text of bounded length.
use std::fmt::Write as _;

use warden_records::events::escape::for_terminal;

/// A string from the log as HTML (or SVG) text: control characters and bidirectional
/// overrides shown as `\n`, `\u{202e}` (so that what is read is what was logged), at most
/// `max` characters, then escaped.
pub fn text(s: &str, max: usize) -> String {
    let mut visible = String::with_capacity(s.len().min(max));
    for c in for_terminal(s).chars() {
        if is_bidi_control(c) {
            let _ = write!(visible, "\\u{{{:x}}}", c as u32);
        } else {
            visible.push(c);
        }
    }
    esc(&bounded(&visible, max))
}

/// Escapes what HTML gives meaning to, in text and in quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, the cut marked.
fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Characters that change the order text is displayed in (a name can look like another).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_strings_become_inert_text() {
        let cases = [
            ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
            (
                "\"><img src=x onerror=alert(1)>",
                "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;",
            ),
            ("a'b&c", "a&#39;b&amp;c"),
            ("new\nline\u{1b}[31m", "new\\nline\\u{1b}[31m"),
            ("abc\u{202e}fdp.exe", "abc\\u{202e}fdp.exe"),
            ("bad \\xff byte", "bad \\xff byte"),
        ];
        for (raw, want) in cases {
            assert_eq!(text(raw, 100), want, "{raw}");
        }
        assert_eq!(text("abcdef", 3), "abc…");
        assert_eq!(
            text("<<<<", 2),
            "&lt;&lt;…",
            "cut before escaping, never inside an entity"
        );
    }
}
