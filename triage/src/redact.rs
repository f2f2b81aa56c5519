//! Secrets taken out of text before it leaves Warden (for the AI reviewer): tokens known by
//! their shape, private key blocks, `Bearer`/`Basic` credentials, the values of
//! `password=`-style assignments and flags, and URLs' userinfo, each replaced by `[REDACTED]`.
//! It errs towards taking out too much: a lost word of evidence costs less than a leaked key.
use std::ops::Range;

pub const REDACTED: &str = "[REDACTED]";

/// `text` with every secret found replaced by `[REDACTED]`.
pub fn redact(text: &str) -> String {
    let mut spans = Vec::new();
    private_keys(text, &mut spans);
    shaped_tokens(text, &mut spans);
    jwts(text, &mut spans);
    auth_schemes(text, &mut spans);
    assignments(text, &mut spans);
    secret_flags(text, &mut spans);
    url_userinfo(text, &mut spans);
    spans.sort_by_key(|s| s.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in spans {
        if s.start >= at {
            out.push_str(&text[at..s.start]);
            out.push_str(REDACTED);
            at = s.end;
        } else {
            // Overlaps the one before: one `[REDACTED]` for both.
            at = at.max(s.end);
        }
    }
    out.push_str(&text[at..]);
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `i` starts a word: a token glued to letters before it (`task-...`) is not one.
fn word_start(b: &[u8], i: usize) -> bool {
    i == 0 || !is_word(b[i - 1])
}

/// How many bytes from `i` on satisfy `ok`.
fn run(b: &[u8], i: usize, ok: impl Fn(u8) -> bool) -> usize {
    b[i..].iter().take_while(|&&c| ok(c)).count()
}

/// `-----BEGIN ... PRIVATE KEY-----` up to its END line, or to the end of the text when the
/// END was cut off (a truncated argument).
fn private_keys(text: &str, spans: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let start = from + i;
        let label_at = start + "-----BEGIN ".len();
        let Some(len) = text[label_at..].find("-----") else {
            return;
        };
        let label = &text[label_at..label_at + len];
        let body = label_at + len + "-----".len();
        if !label.contains("PRIVATE KEY") {
            from = body;
            continue;
        }
        let end_line = format!("-----END {label}-----");
        let end = text[body..]
            .find(&end_line)
            .map_or(text.len(), |j| body + j + end_line.len());
        spans.push(start..end);
        from = end;
    }
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn upper_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
fn word_dash(b: u8) -> bool {
    is_word(b) || b == b'-'
}
fn alnum_dash(b: u8) -> bool {
    alnum(b) || b == b'-'
}

/// A token by shape: its prefix, what its body is made of, and the fewest body bytes (shorter
/// is a word that happens to start so).
type Shape = (&'static str, fn(u8) -> bool, usize);

const SHAPES: &[Shape] = &[
    // AWS access key ids (long-term and temporary).
    ("AKIA", upper_digit, 16),
    ("ASIA", upper_digit, 16),
    // GitHub: personal, OAuth, user-to-server, server-to-server, refresh; fine-grained PATs.
    ("ghp_", alnum, 20),
    ("gho_", alnum, 20),
    ("ghu_", alnum, 20),
    ("ghs_", alnum, 20),
    ("ghr_", alnum, 20),
    ("github_pat_", is_word, 20),
    ("glpat-", word_dash, 20),
    // OpenAI (`sk-`, `sk-proj-`) and Anthropic (`sk-ant-`).
    ("sk-", word_dash, 20),
    // Slack: app, bot, config, user, refresh, legacy tokens.
    ("xoxa-", alnum_dash, 10),
    ("xoxb-", alnum_dash, 10),
    ("xoxe-", alnum_dash, 10),
    ("xoxp-", alnum_dash, 10),
    ("xoxr-", alnum_dash, 10),
    ("xoxs-", alnum_dash, 10),
    // Google API keys.
    ("AIza", word_dash, 30),
];

fn shaped_tokens(text: &str, spans: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    for &(prefix, body, min) in SHAPES {
        for (i, _) in text.match_indices(prefix) {
            let n = run(b, i + prefix.len(), body);
            if word_start(b, i) && n >= min {
                spans.push(i..i + prefix.len() + n);
            }
        }
    }
}

/// `eyJ...` `.` `...` `.` `...`: a JSON Web Token (its header always starts `{"`, `eyJ`).
fn jwts(text: &str, spans: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    let seg = |c: u8| is_word(c) || c == b'-';
    for (i, _) in text.match_indices("eyJ") {
        if !word_start(b, i) {
            continue;
        }
        let header = run(b, i, seg);
        let dot1 = i + header;
        if header < 10 || b.get(dot1) != Some(&b'.') {
            continue;
        }
        let payload = run(b, dot1 + 1, seg);
        let dot2 = dot1 + 1 + payload;
        if payload < 10 || b.get(dot2) != Some(&b'.') {
            continue;
        }
        spans.push(i..dot2 + 1 + run(b, dot2 + 1, seg));
    }
}

/// The credential after `Bearer ` or `Basic ` (any case), the scheme kept.
fn auth_schemes(text: &str, spans: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let token68 = |c: u8| c.is_ascii_alphanumeric() || b"-._~+/=".contains(&c);
    for scheme in ["bearer", "basic"] {
        for (i, _) in lower.match_indices(scheme) {
            let after = i + scheme.len();
            let spaces = run(b, after, |c| c == b' ');
            let n = run(b, after + spaces, token68);
            if word_start(b, i) && spaces > 0 && n >= 8 {
                spans.push(after + spaces..after + spaces + n);
            }
        }
    }
}

/// Names whose values are secrets (lowercase, as parts of a name: `MYSQL_PWD`,
/// `--api-key`, `X-Auth-Token`).
const SECRET_NAMES: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "auth",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "access_key",
    "access-key",
    "private_key",
    "private-key",
    "cookie",
];

fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| name.contains(s))
}

fn name_byte(c: u8) -> bool {
    is_word(c) || c == b'-' || c == b'.'
}

/// Where a value starting at `i` ends: after its closing quote when it is quoted (`='a b'`),
/// before `outer` when the whole assignment was (`'password=a b'`), else at the first space
/// or separator.
fn value_end(b: &[u8], i: usize, outer: Option<u8>) -> usize {
    let find = |from: usize, q: u8| b[from..].iter().position(|&c| c == q).map(|j| from + j);
    match (b.get(i), outer) {
        (Some(&q @ (b'\'' | b'"')), _) => find(i + 1, q).map_or(b.len(), |j| j + 1),
        (_, Some(q)) => find(i, q).unwrap_or(b.len()),
        _ => {
            i + run(b, i, |c| {
                !c.is_ascii_whitespace() && !b"&;,'\"}])<>".contains(&c)
            })
        }
    }
}

/// `name=value`, `name: value`, `"name": "value"` where the name says secret.
fn assignments(text: &str, spans: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c != b'=' && c != b':' || text[i..].starts_with("://") {
            continue;
        }
        // A JSON key's closing quote.
        let name_end = if i > 0 && matches!(b[i - 1], b'"' | b'\'') {
            i - 1
        } else {
            i
        };
        let name_start = name_end
            - b[..name_end]
                .iter()
                .rev()
                .take_while(|&&c| name_byte(c))
                .count();
        // `scheme://user:password@` is the userinfo's, below.
        if name_start == name_end
            || !secret_name(&text[name_start..name_end])
            || text[..name_start].ends_with("://")
        {
            continue;
        }
        let quote = name_start
            .checked_sub(1)
            .map(|q| b[q])
            .filter(|q| matches!(q, b'\'' | b'"') && name_end == i);
        let start = if c == b':' {
            i + 1 + run(b, i + 1, |c| c == b' ')
        } else {
            i + 1
        };
        let end = value_end(b, start, quote);
        if end > start {
            spans.push(start..end);
        }
    }
}

/// `--password VALUE`, `--api-key VALUE`; and `-u USER:PASSWORD` (curl's `--user`).
fn secret_flags(text: &str, spans: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    for (i, _) in text.match_indices('-') {
        if i > 0 && !b[i - 1].is_ascii_whitespace() && !matches!(b[i - 1], b'\'' | b'"') {
            continue;
        }
        let dashes = run(b, i, |c| c == b'-');
        let name = &text[i + dashes..i + dashes + run(b, i + dashes, name_byte)];
        let after = i + dashes + name.len();
        if name.is_empty() || b.get(after) != Some(&b' ') {
            continue;
        }
        let start = after + 1;
        let end = value_end(b, start, None);
        let value = &text[start..end];
        let user =
            matches!(name, "u" | "user") && dashes == name.len().min(2) && value.contains(':');
        if end > start && !value.starts_with('-') && (secret_name(name) || user) {
            spans.push(start..end);
        }
    }
}

/// `scheme://USER:PASSWORD@host`: the userinfo, whatever it holds (often a token alone).
fn url_userinfo(text: &str, spans: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    for (i, _) in text.match_indices("://") {
        let start = i + 3;
        let authority = run(b, start, |c| {
            !c.is_ascii_whitespace() && !b"/?#'\"\\<>`".contains(&c)
        });
        if let Some(at) = text[start..start + authority].rfind('@')
            && at > 0
        {
            spans.push(start..start + at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let cases: &[(&str, &str)] = &[
            // Tokens by shape, wherever they are.
            (
                "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE aws s3 ls",
                "AWS_ACCESS_KEY_ID=[REDACTED] aws s3 ls",
            ),
            ("key ASIAY34FZKBOKMUTVV7A.", "key [REDACTED]."),
            (
                "git clone x ghp_0123456789abcdefghijABCDEFGHIJ012345",
                "git clone x [REDACTED]",
            ),
            ("gho_0123456789abcdefghijABCDEFGHIJ012345", "[REDACTED]"),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "[REDACTED]",
            ),
            ("glpat-abcdefghij0123456789", "[REDACTED]"),
            (
                "export OPENAI=sk-proj-abcdefghij0123456789ABCD",
                "export OPENAI=[REDACTED]",
            ),
            (
                "x sk-ant-api03-abcdefghijklmnopqrstuvwxyz-0123 y",
                "x [REDACTED] y",
            ),
            (
                "curl -d token xoxb-1234567890-abcdefghij",
                "curl -d token [REDACTED]",
            ),
            ("AIzaSyA-abcdefghijklmnopqrstuvwxyz0123", "[REDACTED]"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
                "jwt [REDACTED] end",
            ),
            // Authorization headers: the scheme stays, the credential goes.
            (
                "curl -H 'Authorization: Bearer abc.def-123456' https://x",
                "curl -H 'Authorization: [REDACTED]' https://x",
            ),
            (
                "Authorization: Bearer abc.def-123456",
                "Authorization: [REDACTED] [REDACTED]",
            ),
            ("bearer   0123456789abcdef", "bearer   [REDACTED]"),
            ("Basic dXNlcjpwYXNzd29yZA==", "Basic [REDACTED]"),
            // Private keys, also when the END line was cut off.
            (
                "echo '-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk=\\n-----END OPENSSH PRIVATE KEY-----' > k",
                "echo '[REDACTED]' > k",
            ),
            ("-----BEGIN RSA PRIVATE KEY-----\\nMIIEow", "[REDACTED]"),
            (
                "-----BEGIN PGP PRIVATE KEY BLOCK-----x-----END PGP PRIVATE KEY BLOCK----- after",
                "[REDACTED] after",
            ),
            // Assignments, flags and headers whose name says secret.
            (
                "mysql --password=hunter2 db",
                "mysql --password=[REDACTED] db",
            ),
            ("MYSQL_PWD=hunter2 mysql", "MYSQL_PWD=[REDACTED] mysql"),
            (
                "https://x.test/cb?code=1&access_token=abc123&x=1",
                "https://x.test/cb?code=1&access_token=[REDACTED]&x=1",
            ),
            (
                "'client_secret=a b c' next",
                "'client_secret=[REDACTED]' next",
            ),
            ("--api-key='a b' next", "--api-key=[REDACTED] next"),
            (
                r#"{"password": "p@ss w0rd", "user": "u"}"#,
                r#"{"password": [REDACTED], "user": "u"}"#,
            ),
            ("X-Auth-Token: 12345 rest", "X-Auth-Token: [REDACTED] rest"),
            (
                "vault login --token s.abcdef next",
                "vault login --token [REDACTED] next",
            ),
            (
                "tool --password 'a b' next",
                "tool --password [REDACTED] next",
            ),
            (
                "curl -u alice:hunter2 https://x",
                "curl -u [REDACTED] https://x",
            ),
            // URLs' userinfo.
            (
                "git push https://alice:hunter2@github.com/a/b",
                "git push https://[REDACTED]@github.com/a/b",
            ),
            (
                "https://x-access-token:abc@github.com",
                "https://[REDACTED]@github.com",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&redact(text), want, "{text}");
        }
    }

    #[test]
    fn ordinary_text_is_kept() {
        for text in [
            "cargo build --release",
            "task-abcdefghijklmnopqrstuvwxyz0123",
            "AKIA is a prefix",
            "git push -u origin main",
            "sort -u file",
            "ssh git@github.com",
            "https://github.com/a/b",
            "-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----",
            "--password-file= x",
            "Basic auth",
            "unicode ünï AKIA dé",
            "/home/u/.ssh/id_rsa O_RDONLY EACCES",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
