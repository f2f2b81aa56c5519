//! Code planted for later: the agent tries to leave hooks or config in the workspace's
//! repository that the user's next `git commit` outside Warden would run. Each attempt must
//! fail, leave the file as it was and be in the audit log; git itself keeps working.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use warden_integration_tests::*;

/// An ordinary user, as agents run: root's DAC overrides must not be what stops a write.
const USER: &str = "nobody";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A real repository (one commit, a worktree, a submodule, an included config) owned by
/// the session's user, in a fresh workspace under /tmp (itself a write root).
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let ws = std::fs::canonicalize(d.path()).unwrap();
    let upstream = tempfile::tempdir().unwrap();
    let sub_src = upstream.path().to_path_buf();
    for repo in [&ws, &sub_src] {
        git(repo, &["init", "-q", "-b", "main"]);
        git(repo, &["config", "user.name", "Warden Test"]);
        git(repo, &["config", "user.email", "test@warden.invalid"]);
        std::fs::write(repo.join("README"), "hello\n").unwrap();
        git(repo, &["add", "README"]);
        git(repo, &["commit", "-qm", "first"]);
    }
    git(
        &ws,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            sub_src.to_str().unwrap(),
            "vendor/sub",
        ],
    );
    git(&ws, &["commit", "-qm", "submodule"]);
    git(&ws, &["worktree", "add", "-q", "wt"]);
    git(&ws, &["config", "include.path", "../team.gitconfig"]);
    std::fs::write(ws.join("team.gitconfig"), "[alias]\n\tst = status\n").unwrap();
    let chown = Command::new("chown")
        .args(["-R", &format!("{USER}:")])
        .arg(&ws)
        .status()
        .unwrap();
    assert!(chown.success());
    (d, ws)
}

/// A file call of `op` on a path ending in `suffix` failed with `errno`, in the log.
fn assert_recorded(s: &Session, op: &str, suffix: &str, errno: &str) {
    let found = file_events(s).into_iter().any(|(o, f)| {
        o == op
            && f.result == errno
            && (f.path.ends_with(suffix) || f.path2.as_deref().is_some_and(|p| p.ends_with(suffix)))
    });
    assert!(
        found,
        "no file.{op} of ...{suffix} failing with {errno} in the log:\n{:#?}",
        file_events(s)
    );
}

fn session(ws: &Path, config: Option<&Path>, script: &str) -> Session {
    let w = ws.display().to_string();
    let mut args = vec!["--user", USER, "--workspace", &w];
    let c;
    if let Some(config) = config {
        c = config.display().to_string();
        args.extend(["--config", &c]);
    }
    run_session(&args, &["sh", "-c", &format!("cd {w}\n{script}")])
}

/// What an attempt must not change, read before and compared after.
fn snapshot(ws: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    [
        ".git/config",
        ".git/hooks/pre-commit",
        ".git/hooks/post-checkout",
        "team.gitconfig",
        "wt/.git",
        "vendor/sub/.git",
        ".git/modules/vendor/sub/config",
        ".git/modules/vendor/sub/hooks/pre-commit",
        ".git/worktrees/wt/commondir",
    ]
    .iter()
    .map(|p| (ws.join(p), std::fs::read(ws.join(p)).ok()))
    .collect()
}

#[test]
fn planted_hooks_and_config_are_refused_and_recorded() {
    let (_d, ws) = workspace();
    let before = snapshot(&ws);
    // Destructive attempts last, so that each one could succeed on its own if unprotected.
    let script = r#"
        printf '#!/bin/sh\necho pwned\n' > .git/hooks/pre-commit; echo WRITE_HOOK=$?
        printf '#!/bin/sh\necho pwned\n' > .git/hooks/post-checkout; echo NEW_HOOK=$?
        git config core.hooksPath /tmp/x; echo HOOKS_PATH=$?
        git config --file .git/config core.fsmonitor /tmp/x; echo CONFIG_FILE=$?
        echo '[core] sshCommand = /tmp/x' >> .git/config; echo APPEND_CONFIG=$?
        echo '[core] fsmonitor = /tmp/x' >> team.gitconfig; echo EDIT_INCLUDE=$?
        echo 'gitdir: /tmp/evil' > wt/.git; echo WORKTREE_FILE=$?
        echo /tmp/evil > .git/worktrees/wt/commondir; echo WORKTREE_COMMONDIR=$?
        echo 'gitdir: /tmp/evil' > vendor/sub/.git; echo SUBMODULE_FILE=$?
        printf '#!/bin/sh\necho pwned\n' > .git/modules/vendor/sub/hooks/pre-commit; echo SUBMODULE_HOOK=$?
        echo '[core] hooksPath = /tmp/x' >> .git/modules/vendor/sub/config; echo SUBMODULE_CONFIG=$?
        ln .git/config ./cfg-link; echo HARD_LINK=$?
        mv .git/hooks .git/h2; echo MOVE_HOOKS=$?
        rm -rf .git/hooks; echo RM_HOOKS=$?
        ls .git/hooks >/dev/null; echo HOOKS_STILL_THERE=$?
        mv .git .git-old; echo MOVE_GIT=$?
        mkdir .git; echo RECREATE_GIT=$?
        mkdir -p ../evil-$$ && mv "$PWD" ../evil-$$/ws; echo MOVE_WORKSPACE=$?; rmdir ../evil-$$
        "#;
    let s = session(&ws, None, script);
    for label in [
        "WRITE_HOOK",
        "NEW_HOOK",
        "HOOKS_PATH",
        "CONFIG_FILE",
        "APPEND_CONFIG",
        "MOVE_HOOKS",
        "RM_HOOKS",
        "MOVE_GIT",
        "RECREATE_GIT",
        "MOVE_WORKSPACE",
        "EDIT_INCLUDE",
        "WORKTREE_FILE",
        "SUBMODULE_FILE",
        "SUBMODULE_HOOK",
        "SUBMODULE_CONFIG",
        "WORKTREE_COMMONDIR",
        "HARD_LINK",
    ] {
        assert_ne!(
            status_of(&s, label),
            "0",
            "{label} succeeded:\n{}\n{}",
            s.stdout,
            s.stderr
        );
    }
    assert_eq!(status_of(&s, "HOOKS_STILL_THERE"), "0");
    assert_eq!(snapshot(&ws), before, "a protected file changed");
    assert!(ws.join(".git/hooks").is_dir() && !ws.join(".git-old").exists());
    assert!(!ws.join("cfg-link").exists());

    // session.start says what was protected.
    let start = s.start();
    let w = ws.display().to_string();
    for p in [
        ".git/hooks",
        ".git/config",
        "team.gitconfig",
        "wt/.git",
        "vendor/sub/.git",
    ] {
        assert!(
            start.vcs_read_only.contains(&format!("{w}/{p}")),
            "{p} not in {:?}",
            start.vcs_read_only
        );
    }
    assert!(start.vcs_pinned.contains(&format!("{w}/.git")));

    // Each refusal is a failed file call in the log, with the kernel's reason.
    assert_recorded(&s, "open", ".git/hooks/pre-commit", "EROFS");
    assert_recorded(&s, "open", ".git/hooks/post-checkout", "EROFS");
    // git writes config through a lock file renamed over it: the rename hits the mount.
    assert_recorded(&s, "rename", ".git/config", "EBUSY");
    assert_recorded(&s, "open", ".git/config", "EROFS");
    assert_recorded(&s, "rename", ".git/h2", "EBUSY");
    assert_recorded(&s, "unlink", ".sample", "EROFS");
    assert_recorded(&s, "rename", ".git-old", "EBUSY");
    assert_recorded(&s, "rename", "/ws", "EBUSY");
    assert_recorded(&s, "open", "team.gitconfig", "EROFS");
    assert_recorded(&s, "open", "wt/.git", "EROFS");
    assert_recorded(&s, "open", "vendor/sub/.git", "EROFS");
    assert_recorded(&s, "open", "sub/hooks/pre-commit", "EROFS");
    assert_recorded(&s, "open", "worktrees/wt/commondir", "EROFS");
    assert!(
        s.records.iter().any(|r| matches!(&r.event,
            Event::FileLink(f) if f.path.ends_with(".git/config") && f.result == "EXDEV")),
        "the hard link attempt is recorded"
    );
}

#[test]
fn git_still_commits_in_the_session() {
    let (_d, ws) = workspace();
    let script = "echo change >> README && git add README && git commit -qm 'from the agent'; \
                  echo COMMIT=$?; git -C wt commit -q --allow-empty -m wt; echo WT_COMMIT=$?";
    let s = session(&ws, None, script);
    assert_eq!(status_of(&s, "COMMIT"), "0", "{}", s.stderr);
    assert_eq!(status_of(&s, "WT_COMMIT"), "0", "{}", s.stderr);
    let log = Command::new("git")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(&ws)
        .args(["log", "--all", "--format=%s"])
        .output()
        .unwrap();
    let subjects = String::from_utf8_lossy(&log.stdout);
    assert!(subjects.contains("from the agent"), "{subjects}");
    assert!(subjects.lines().any(|l| l == "wt"), "{subjects}");
}

#[test]
fn without_protection_the_hook_write_succeeds() {
    let (_d, ws) = workspace();
    let dir = private_dir();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[filesystem]\nprotect_vcs_metadata = false\n").unwrap();
    let s = session(
        &ws,
        Some(&config),
        "echo planted > .git/hooks/pre-commit; echo WRITE_HOOK=$?",
    );
    assert_eq!(status_of(&s, "WRITE_HOOK"), "0", "{}", s.stderr);
    assert_eq!(
        std::fs::read_to_string(ws.join(".git/hooks/pre-commit")).unwrap(),
        "planted\n"
    );
    assert!(s.start().vcs_read_only.is_empty() && s.start().vcs_pinned.is_empty());
}

#[test]
fn a_requirement_keeps_protection_on() {
    let (_d, ws) = workspace();
    let dir = private_dir();
    let req = requirements_file(dir.path(), "[filesystem]\nrequire_vcs_protection = true\n");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[filesystem]\nprotect_vcs_metadata = false\n").unwrap();
    let state = private_dir();
    let w = ws.display().to_string();
    let out = warden_command(
        state.path(),
        &[
            "--requirements",
            &req,
            "--config",
            config.to_str().unwrap(),
            "--user",
            USER,
            "--workspace",
            &w,
        ],
        &["true"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("filesystem.protect_vcs_metadata")
            && stderr.contains("requirement filesystem.require_vcs_protection = true"),
        "{stderr}"
    );
}
