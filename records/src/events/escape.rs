//! Turning untrusted bytes (paths, arguments) into log-safe strings, losslessly.
//!
//! Valid UTF-8 is kept as is except `\`, which is doubled; every byte that is not part of valid
//! UTF-8 becomes `\xNN`. JSON then escapes control characters. `unescape` gives the original
//! bytes back. For terminals, `for_terminal` also makes control characters visible, so a file
//! name with a newline or an escape sequence cannot forge output.
use std::fmt::Write as _;

pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Escapes arguments until `max` raw bytes (NULs counted, as in an exec's argument area) are
/// used; the last argument may be cut. Returns the arguments and whether anything was cut.
pub fn escape_argv<'a>(
    args: impl IntoIterator<Item = &'a [u8]>,
    max: usize,
) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut room = max;
    for arg in args {
        if room == 0 {
            return (out, true);
        }
        if arg.len() + 1 > room {
            out.push(escape_bytes(&arg[..room.min(arg.len())]));
            return (out, true);
        }
        room -= arg.len() + 1;
        out.push(escape_bytes(arg));
    }
    (out, false)
}

/// Inverse of `escape_bytes`. Malformed escapes are kept literally.
pub fn unescape(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'x')
                && let Some(hex) = s.get(i + 2..i + 4)
                && let Ok(b) = u8::from_str_radix(hex, 16)
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// An escaped string made safe to print: control characters shown as `\n`, `\t`, `\u{1b}`...
pub fn for_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// One argument for display: terminal-safe, single-quoted when a shell would split it.
pub fn shell_word(s: &str) -> String {
    let safe = for_terminal(s);
    let plain = !safe.is_empty()
        && safe
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        safe
    } else {
        format!("'{}'", safe.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_hostile_bytes() {
        let cases: [&[u8]; 6] = [
            b"plain",
            b"new\nline",
            b"back\\slash\\x41",
            b"\xff\xfe invalid \xc3",
            "ünïcödé".as_bytes(),
            b"",
        ];
        for case in cases {
            let escaped = escape_bytes(case);
            assert_eq!(unescape(&escaped), case, "{escaped:?}");
        }
        assert_eq!(escape_bytes(b"a\xffb"), "a\\xffb");
        // A literal backslash-x in valid text is not confused with an escaped byte.
        assert_eq!(escape_bytes(b"\\xff"), "\\\\xff");
    }

    #[test]
    fn bounds_argv_like_the_kernel_side() {
        let args: [&[u8]; 3] = [b"abc", b"defgh", b"ij"];
        assert_eq!(
            escape_argv(args, 100),
            (vec!["abc".into(), "defgh".into(), "ij".into()], false)
        );
        assert_eq!(
            escape_argv(args, 6),
            (vec!["abc".into(), "de".into()], true)
        );
        assert_eq!(escape_argv(args, 4), (vec!["abc".into()], true));
        assert_eq!(
            escape_argv(args, 10),
            (vec!["abc".into(), "defgh".into()], true)
        );
    }

    #[test]
    fn terminal_output_shows_control_characters() {
        assert_eq!(for_terminal("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(shell_word("ls"), "ls");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
