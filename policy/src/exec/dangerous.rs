//! The built-in list of dangerous commands, shipped as default exec rules. Each detector looks
//! at one simple command (program identity and arguments) and names the rule that matched.
use std::path::Path;

use super::ExecDecision::{self, Forbidden, Prompt};

/// Program names the detectors look at (used to recognise renamed copies of these binaries).
pub const PROGRAMS: &[&str] = &[
    "rm", "sudo", "su", "doas", "pkexec", "runuser", "dd", "mkfs", "mke2fs", "mkswap", "wipefs",
    "fdisk", "sfdisk", "parted", "git", "chmod", "shutdown", "reboot", "halt", "poweroff",
];

pub const FETCHERS: &[&str] = &["curl", "wget", "fetch"];
pub const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "fish", "python", "python3", "perl", "ruby", "node",
];

/// (decision, rule id, reason)
pub type Hit = (ExecDecision, &'static str, &'static str);

fn flags_contain(args: &[String], short: char, long: &[&str]) -> bool {
    args.iter().any(|a| {
        long.contains(&a.as_str())
            || (a.starts_with('-') && !a.starts_with("--") && a[1..].contains(short))
    })
}

fn critical_path(arg: &str, home: &Path) -> bool {
    const SYSTEM: &[&str] = &[
        "/", "/*", "/home", "/root", "/etc", "/usr", "/var", "/boot", "/bin", "/sbin", "/lib",
        "/lib64", "/opt", "/srv", "/sys", "/proc", "/dev",
    ];
    let trimmed = if arg.len() > 1 {
        arg.trim_end_matches('/')
    } else {
        arg
    };
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    SYSTEM.contains(&trimmed)
        || ["~", "~/*", "$HOME", "${HOME}", "$HOME/*"].contains(&trimmed)
        || Path::new(trimmed) == home
        || trimmed == format!("{}/*", home.display())
}

pub fn check(name: &str, args: &[String], home: &Path) -> Option<Hit> {
    match name {
        "rm" => {
            if args.iter().any(|a| a == "--no-preserve-root") {
                return Some((
                    Forbidden,
                    "builtin:rm-no-preserve-root",
                    "removes the root file system",
                ));
            }
            let recursive =
                flags_contain(args, 'r', &["--recursive"]) || flags_contain(args, 'R', &[]);
            (recursive
                && args
                    .iter()
                    .filter(|a| !a.starts_with('-'))
                    .any(|a| critical_path(a, home)))
            .then_some((
                Forbidden,
                "builtin:rm-recursive-critical",
                "recursively removes / , a system directory or the home directory",
            ))
        }
        "sudo" | "su" | "doas" | "pkexec" | "runuser" => Some((
            Forbidden,
            "builtin:privilege-escalation",
            "runs a command as another user",
        )),
        "dd" => args
            .iter()
            .any(|a| a.starts_with("of=/dev/") && a != "of=/dev/null")
            .then_some((Forbidden, "builtin:dd-to-device", "writes to a device")),
        n if n.starts_with("mkfs")
            || ["mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk", "parted"].contains(&n) =>
        {
            Some((
                Forbidden,
                "builtin:format-disk",
                "formats or partitions a disk",
            ))
        }
        "shutdown" | "reboot" | "halt" | "poweroff" => Some((
            Forbidden,
            "builtin:power",
            "powers the machine off or reboots it",
        )),
        "chmod" => {
            let recursive = flags_contain(args, 'R', &["--recursive"]);
            let open = args
                .iter()
                .any(|a| ["777", "0777", "a+rwx", "ugo+rwx"].contains(&a.as_str()));
            (recursive && open).then_some((
                Prompt,
                "builtin:chmod-recursive-777",
                "makes a tree writable by everyone",
            ))
        }
        "git" => git(args),
        _ => None,
    }
}

fn git(args: &[String]) -> Option<Hit> {
    // Skip global options to find the subcommand.
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        i += if ["-C", "-c", "--git-dir", "--work-tree"].contains(&args[i].as_str()) {
            2
        } else {
            1
        };
    }
    let (sub, rest) = (args.get(i)?.as_str(), &args[i + 1..]);
    match sub {
        "reset" if rest.iter().any(|a| a == "--hard") => Some((
            Prompt,
            "builtin:git-reset-hard",
            "discards uncommitted changes",
        )),
        "push"
            if rest.iter().any(|a| {
                a == "-f" || a.starts_with("--force") || (a.starts_with('+') && a.len() > 1)
            }) || flags_contain(rest, 'f', &[]) =>
        {
            Some((Prompt, "builtin:git-push-force", "rewrites remote history"))
        }
        "clean" if flags_contain(rest, 'f', &["--force"]) => {
            Some((Prompt, "builtin:git-clean-force", "deletes untracked files"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(cmd: &str) -> Option<&'static str> {
        let w: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        check(&w[0], &w[1..], Path::new("/home/u")).map(|h| h.1)
    }

    #[test]
    fn recognises_the_dangerous_forms() {
        for c in [
            "rm -rf /",
            "rm -fr /*",
            "rm -r -f ~",
            "rm --recursive /home/u/",
            "rm -Rf $HOME",
            "rm -rf /etc/",
        ] {
            assert_eq!(hit(c), Some("builtin:rm-recursive-critical"), "{c}");
        }
        assert_eq!(
            hit("rm --no-preserve-root -rf x"),
            Some("builtin:rm-no-preserve-root")
        );
        for c in [
            "rm -rf build",
            "rm -f /tmp/x",
            "rm -rf /home/u/project/target",
        ] {
            assert_eq!(hit(c), None, "{c}");
        }
        assert_eq!(hit("sudo ls"), Some("builtin:privilege-escalation"));
        assert_eq!(
            hit("dd if=/dev/zero of=/dev/sda"),
            Some("builtin:dd-to-device")
        );
        assert_eq!(hit("dd if=x of=/dev/null"), None);
        assert_eq!(hit("mkfs.ext4 /dev/sdb1"), Some("builtin:format-disk"));
        assert_eq!(
            hit("git -C repo reset --hard HEAD~1"),
            Some("builtin:git-reset-hard")
        );
        assert_eq!(
            hit("git push --force origin main"),
            Some("builtin:git-push-force")
        );
        assert_eq!(hit("git push origin +main"), Some("builtin:git-push-force"));
        assert_eq!(hit("git push origin main"), None);
        assert_eq!(hit("git clean -fdx"), Some("builtin:git-clean-force"));
        assert_eq!(hit("chmod -R 777 ."), Some("builtin:chmod-recursive-777"));
        assert_eq!(hit("chmod 777 file"), None);
    }
}
