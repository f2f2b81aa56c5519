//! Enough of the POSIX shell grammar to see which commands a `sh -c` script runs: words with
//! quoting, command separators, pipelines and command substitutions. Not a shell: anything it
//! does not understand it leaves as words, and every real exec is gated again anyway.

/// One simple command, whether its output feeds the next one (`|`), and whether it
/// redirects output into a file (`> f`, `>> f`; not `>/dev/null` or `2>&1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<String>,
    pub piped_to_next: bool,
    pub writes_file: bool,
}

/// Splits a script into simple commands, including those inside `$(...)` and backquotes.
pub fn commands(script: &str) -> Vec<Command> {
    let mut out = Vec::new();
    parse(script, &mut out, 0);
    out
}

fn parse(script: &str, out: &mut Vec<Command>, depth: u32) {
    let chars: Vec<char> = script.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut writes_file = false;
    let mut i = 0;
    let finish = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    let push = |out: &mut Vec<Command>, words: &mut Vec<String>, writes: &mut bool, piped: bool| {
        if !words.is_empty() {
            out.push(Command {
                words: std::mem::take(words),
                piped_to_next: piped,
                writes_file: *writes,
            });
        }
        *writes = false;
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                word.push(chars[i + 1]);
                in_word = true;
                i += 2;
                continue;
            }
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(chars.len(), |p| i + 1 + p);
                word.extend(&chars[i + 1..end]);
                in_word = true;
                i = end + 1;
                continue;
            }
            '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        j += 1;
                    }
                    word.push(chars[j]);
                    j += 1;
                }
                in_word = true;
                i = j + 1;
                continue;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let inner = matching(&chars, i + 1, '(', ')');
                if depth < 8 {
                    parse(
                        &chars[i + 2..inner].iter().collect::<String>(),
                        out,
                        depth + 1,
                    );
                }
                word.push_str("$(...)");
                in_word = true;
                i = inner + 1;
                continue;
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .map_or(chars.len(), |p| i + 1 + p);
                if depth < 8 {
                    parse(
                        &chars[i + 1..end].iter().collect::<String>(),
                        out,
                        depth + 1,
                    );
                }
                word.push_str("$(...)");
                in_word = true;
                i = end + 1;
                continue;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '|' => {
                finish(&mut words, &mut word, &mut in_word);
                let or = chars.get(i + 1) == Some(&'|');
                push(out, &mut words, &mut writes_file, !or);
                i += if or { 2 } else { 1 };
                continue;
            }
            '<' | '>' => {
                // `2>&1`: digits glued to the operator name a descriptor, not an argument.
                if in_word && word.chars().all(|c| c.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                finish(&mut words, &mut word, &mut in_word);
                // A redirection's target is not an argument: skip it, noting an output file.
                i += 1;
                let mut to_descriptor = false;
                while i < chars.len() && matches!(chars[i], '>' | '&' | '|') {
                    to_descriptor |= chars[i] == '&';
                    i += 1;
                }
                while i < chars.len() && chars[i].is_whitespace() {
                    i += 1;
                }
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !";&|".contains(chars[i]) {
                    i += 1;
                }
                let target: String = chars[start..i].iter().collect();
                writes_file |= c == '>' && !to_descriptor && target != "/dev/null";
                continue;
            }
            ';' | '&' | '\n' | '(' | ')' => {
                finish(&mut words, &mut word, &mut in_word);
                push(out, &mut words, &mut writes_file, false);
            }
            c if c.is_whitespace() => finish(&mut words, &mut word, &mut in_word),
            c => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    finish(&mut words, &mut word, &mut in_word);
    push(out, &mut words, &mut writes_file, false);
}

/// Index of the bracket closing the one at `open` (or the end).
fn matching(chars: &[char], open: usize, l: char, r: char) -> usize {
    let mut depth = 0;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        if c == l {
            depth += 1;
        } else if c == r {
            depth -= 1;
            if depth == 0 {
                return i;
            }
        }
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<Vec<String>> {
        commands(script).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn splits_commands_quotes_and_substitutions() {
        assert_eq!(
            words("cd /tmp && rm -rf 'a b' ; echo \"x y\" || true"),
            [
                vec!["cd", "/tmp"],
                vec!["rm", "-rf", "a b"],
                vec!["echo", "x y"],
                vec!["true"]
            ]
        );
        assert_eq!(
            words("echo $(rm -rf /) `id`"),
            [
                vec!["rm", "-rf", "/"],
                vec!["id"],
                vec!["echo", "$(...)", "$(...)"]
            ]
        );
        assert_eq!(
            words("ls > out.txt 2>&1; cat < in"),
            [vec!["ls"], vec!["cat"]]
        );
        assert_eq!(words("a\\ b # comment\nc"), [vec!["a b"], vec!["c"]]);
        let piped = commands("curl -s https://x | sh");
        assert!(piped[0].piped_to_next && !piped[1].piped_to_next);
        assert!(!commands("a || b")[0].piped_to_next);
        let writes: Vec<bool> =
            commands("ls > out; ls >/dev/null 2>&1; cat x >> log; ls 2>&1 | wc")
                .iter()
                .map(|c| c.writes_file)
                .collect();
        assert_eq!(writes, [true, false, true, false, false]);
    }
}
