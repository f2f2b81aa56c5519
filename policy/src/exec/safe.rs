//! Commands known to be safe: they read, list and search, and change nothing (no file
//! written, no process started, nothing sent). Under the `untrusted` approval policy only
//! these run without asking.
//!
//! The list is deliberately short and looks at arguments where a read-only tool has a
//! writing or executing option (`find -delete`, `rg --pre`, `git -c`). Anything these
//! commands start (a pager, a git hook) is an exec of its own and is gated again.

/// Safe with any arguments.
const ALWAYS: &[&str] = &[
    "[", "basename", "cat", "cd", "cmp", "comm", "cut", "date", "df", "diff", "dirname", "du",
    "echo", "egrep", "env", "false", "fgrep", "file", "grep", "head", "id", "ls", "nl", "printenv",
    "printf", "pwd", "readlink", "realpath", "rev", "seq", "stat", "tac", "tail", "test", "tr",
    "true", "uname", "uniq", "wc", "which", "whoami",
];

/// `find` options that write files or run commands.
const FIND_UNSAFE: &[&str] = &[
    "-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint", "-fprint0", "-fprintf",
];

/// `git` subcommands that only read the repository.
const GIT_READ: &[&str] = &[
    "blame",
    "describe",
    "diff",
    "log",
    "ls-files",
    "rev-parse",
    "shortlog",
    "show",
    "status",
];

/// Whether `name args...` is known to be safe. `name` is the program's name (a basename).
pub fn is_known_safe(name: &str, args: &[String]) -> bool {
    if ALWAYS.contains(&name) {
        return true;
    }
    match name {
        "find" => !args.iter().any(|a| FIND_UNSAFE.contains(&a.as_str())),
        // --pre runs a program on every file; -z runs decompressors.
        "rg" => !args.iter().any(|a| {
            a.starts_with("--pre")
                || a == "--search-zip"
                || a == "--hostname-bin"
                || (a.starts_with('-') && !a.starts_with("--") && a.contains('z'))
        }),
        // Only `sed -n 'N[,M]p'`: sed scripts can write files (`w`) and run commands (`e`).
        "sed" => {
            args.len() == 3
                && args[0] == "-n"
                && is_print_range(&args[1])
                && !args[2].starts_with('-')
        }
        "sort" => !args
            .iter()
            .any(|a| a == "-o" || a.starts_with("--output") || a.starts_with("--compress")),
        "git" => git(args),
        _ => false,
    }
}

/// `12p`, `3,40p`, `$p`.
fn is_print_range(script: &str) -> bool {
    let Some(range) = script.strip_suffix('p') else {
        return false;
    };
    !range.is_empty()
        && range.split(',').count() <= 2
        && range
            .split(',')
            .all(|n| n == "$" || (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
}

fn git(args: &[String]) -> bool {
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        match args[i].as_str() {
            // `-c` sets configuration, e.g. a pager or an alias that runs anything.
            "-c" | "--exec-path" | "--config-env" => return false,
            "-C" | "--git-dir" | "--work-tree" => i += 2,
            a if a.starts_with("--exec-path") || a.starts_with("--config-env") => return false,
            _ => i += 1,
        }
    }
    let Some((sub, rest)) = args.get(i..).and_then(|a| a.split_first()) else {
        return false;
    };
    let writes = rest
        .iter()
        .any(|a| a.starts_with("--output") || a == "--ext-diff" || a.starts_with("--textconv"));
    if writes {
        return false;
    }
    match sub.as_str() {
        s if GIT_READ.contains(&s) => true,
        // Listing branches, not creating, renaming or deleting them.
        "branch" => rest.iter().all(|a| {
            [
                "-a",
                "-r",
                "-v",
                "-vv",
                "--list",
                "--all",
                "--remotes",
                "--show-current",
            ]
            .contains(&a.as_str())
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(cmd: &str) -> bool {
        let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        is_known_safe(&words[0], &words[1..])
    }

    #[test]
    fn reading_commands_are_safe() {
        for cmd in [
            "ls -la",
            "cat README.md",
            "grep -rn foo src",
            "find . -name *.rs",
            "rg -n TODO",
            "sed -n 1,20p file",
            "sed -n $p file",
            "git status",
            "git -C repo log --oneline",
            "git diff HEAD~1",
            "git branch -a",
            "sort names",
        ] {
            assert!(safe(cmd), "{cmd}");
        }
    }

    #[test]
    fn writing_or_executing_variants_are_not() {
        for cmd in [
            "find . -delete",
            "find . -exec rm {} ;",
            "rg --pre ./x foo",
            "rg -z foo",
            "sed -i s/a/b/ file",
            "sed -n 1w/tmp/x file",
            "sed s/a/b/e file",
            "sort -o out in",
            "git -c core.pager=sh log",
            "git push",
            "git commit -m x",
            "git branch new-branch",
            "git diff --output=/tmp/x",
            "git log --ext-diff",
            "git",
            "rm x",
            "python3 -c 1",
            "cargo build",
        ] {
            assert!(!safe(cmd), "{cmd}");
        }
    }
}
