use std::os::unix::fs::MetadataExt;

use super::*;

/// A tree from `(relative path, content)`: a path ending in `/` is a directory.
fn tree(entries: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    for (path, content) in entries {
        let p = root.join(path);
        if path.ends_with('/') {
            std::fs::create_dir_all(&p).unwrap();
        } else {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
    }
    (d, root)
}

fn me() -> Owner {
    Owner {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        groups: Vec::new(),
    }
}

fn rel(root: &Path, set: &BTreeSet<PathBuf>) -> Vec<String> {
    set.iter()
        .map(|p| match p.strip_prefix(root) {
            Ok(r) => r.display().to_string(),
            Err(_) => p.display().to_string(),
        })
        .collect()
}

const REPO: &[(&str, &str)] = &[
    (".git/HEAD", "ref: refs/heads/main\n"),
    (".git/config", "[core]\n\tbare = false\n"),
    (".git/hooks/pre-commit.sample", ""),
    (".git/objects/", ""),
];

/// What a case is, what is there besides [`REPO`], the read-only paths it must give.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn each_layout_protects_what_git_would_run() {
    let cases: &[Case] = &[
        ("a plain repository", &[], &[".git/config", ".git/hooks"]),
        (
            "a worktree-specific config",
            &[(".git/config.worktree", "")],
            &[".git/config", ".git/config.worktree", ".git/hooks"],
        ),
        (
            "includes, nested, relative and quoted",
            &[
                (
                    ".git/config",
                    "[include]\n\tpath = ../shared.cfg\n[includeIf \"gitdir:~/x/\"]\n  path = \"extra.cfg\" ; why\n",
                ),
                ("shared.cfg", "[include]\npath = more.cfg\n"),
                ("more.cfg", ""),
            ],
            &[
                ".git/config",
                ".git/extra.cfg",
                ".git/hooks",
                "more.cfg",
                "shared.cfg",
            ],
        ),
        (
            "a hooks path in the worktree (husky)",
            &[(".git/config", "[core]\n\thooksPath = .husky\n")],
            &[".git/config", ".git/hooks", ".husky"],
        ),
        (
            "submodules, nested, with a slash in a name",
            &[
                (".git/modules/lib/a/HEAD", ""),
                (".git/modules/lib/a/config", ""),
                (".git/modules/lib/a/hooks/", ""),
                (".git/modules/lib/a/modules/inner/HEAD", ""),
                (".git/modules/lib/a/modules/inner/config", ""),
                (".gitmodules", "[submodule \"lib/a\"]\n\tpath = vendor/a\n"),
                ("vendor/a/.git", "gitdir: ../../.git/modules/lib/a\n"),
            ],
            &[
                ".git/config",
                ".git/hooks",
                ".git/modules/lib/a/config",
                ".git/modules/lib/a/hooks",
                ".git/modules/lib/a/modules/inner/config",
                ".git/modules/lib/a/modules/inner/hooks",
                "vendor/a/.git",
            ],
        ),
        (
            "a linked worktree's files",
            &[
                (".git/worktrees/wt/commondir", "../..\n"),
                (".git/worktrees/wt/gitdir", "/nonexistent/wt/.git\n"),
                (".git/worktrees/wt/HEAD", ""),
            ],
            &[
                ".git/config",
                ".git/hooks",
                ".git/worktrees/wt/commondir",
                ".git/worktrees/wt/gitdir",
            ],
        ),
    ];
    for (what, extra, expected) in cases {
        let entries: Vec<(&str, &str)> = REPO.iter().chain(extra.iter()).copied().collect();
        let (_d, root) = tree(&entries);
        let got = plan(std::slice::from_ref(&root), me(), Path::new("/nonexistent")).unwrap();
        assert_eq!(rel(&root, &got.read_only), *expected, "{what}");
        for ro in &got.read_only {
            assert!(ro.exists(), "{what}: {} is created", ro.display());
        }
        // `.git` itself is pinned wherever something beneath it is protected.
        assert!(got.pinned.contains(&root.join(".git")), "{what}");
    }
}

#[test]
fn a_worktree_checkout_protects_its_file_and_the_common_directory() {
    let (_d, root) = tree(&[
        ("main/.git/HEAD", ""),
        ("main/.git/config", ""),
        ("main/.git/hooks/", ""),
        ("main/.git/worktrees/wt/commondir", "../..\n"),
        ("main/.git/worktrees/wt/HEAD", ""),
        ("wt/.git", "gitdir: ../main/.git/worktrees/wt\n"),
    ]);
    std::fs::write(
        root.join("main/.git/worktrees/wt/gitdir"),
        format!("{}/wt/.git\n", root.display()),
    )
    .unwrap();
    // The worktree is the workspace; the main repository is in another write root.
    let got = plan(&[root.join("wt"), root.join("main")], me(), Path::new("/")).unwrap();
    assert_eq!(
        rel(&root, &got.read_only),
        [
            "main/.git/config",
            "main/.git/hooks",
            "main/.git/worktrees/wt/commondir",
            "main/.git/worktrees/wt/gitdir",
            "wt/.git",
        ]
    );
    // The worktree gitdir gets no hooks of its own (git reads the common ones).
    assert!(!root.join("main/.git/worktrees/wt/hooks").exists());
}

#[test]
fn missing_hooks_and_includes_are_created_for_the_user() {
    let (_d, root) = tree(&[
        (".git/HEAD", ""),
        (".git/config", "[include]\n\tpath = ../conf/local.cfg\n"),
    ]);
    let got = plan(std::slice::from_ref(&root), me(), Path::new("/")).unwrap();
    for p in [".git/hooks", "conf/local.cfg"] {
        let m = std::fs::symlink_metadata(root.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (me().uid, me().gid), "{p}");
        assert!(got.read_only.contains(&root.join(p)), "{p}");
    }
    assert!(root.join(".git/hooks").is_dir());
    assert_eq!(std::fs::read(root.join("conf/local.cfg")).unwrap(), b"");
}

/// Root making a user-owned hooks directory in a repository the user cannot write would give
/// the user code that root's own git runs: nothing is created where the user could not have.
#[test]
fn nothing_is_created_where_the_user_could_not_have() {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root (a directory owned by another user)");
        return;
    }
    let nobody = Owner {
        uid: 65534,
        gid: 65534,
        groups: vec![65534],
    };
    let (_d, root) = tree(&[
        (".git/HEAD", ""),
        (".git/config", "[include]\n\tpath = ../conf/local.cfg\n"),
    ]);
    let got = plan(std::slice::from_ref(&root), nobody.clone(), Path::new("/")).unwrap();
    for p in [".git/hooks", "conf"] {
        assert!(
            !root.join(p).exists(),
            "{p} was created for a user who could not"
        );
        assert!(!got.read_only.contains(&root.join(p)), "{p}");
    }
    // The same repository, the user's: made for them.
    for p in ["", ".git"] {
        std::os::unix::fs::chown(root.join(p), Some(65534), Some(65534)).unwrap();
    }
    let got = plan(std::slice::from_ref(&root), nobody, Path::new("/")).unwrap();
    let m = std::fs::symlink_metadata(root.join(".git/hooks")).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
    assert!(got.read_only.contains(&root.join(".git/hooks")));
    assert!(got.read_only.contains(&root.join("conf/local.cfg")));
}

#[test]
fn paths_outside_the_write_roots_are_left_alone() {
    let (_d, root) = tree(&[
        ("ws/.git/HEAD", ""),
        (
            "ws/.git/config",
            "[include]\n\tpath = /etc/gitconfig-extra\n",
        ),
        ("ws/.git/hooks/", ""),
    ]);
    let got = plan(&[root.join("ws")], me(), Path::new("/")).unwrap();
    assert_eq!(
        rel(&root, &got.read_only),
        ["ws/.git/config", "ws/.git/hooks"]
    );
    assert!(!Path::new("/etc/gitconfig-extra").exists());
    // The workspace's parent is not writable: only `.git` needs pinning.
    assert_eq!(rel(&root, &got.pinned), ["ws/.git"]);
}

#[test]
fn every_renamable_directory_on_the_way_is_pinned() {
    let (_d, root) = tree(&[
        ("a/b/ws/.git/HEAD", ""),
        ("a/b/ws/.git/config", ""),
        ("a/b/ws/.git/hooks/", ""),
        ("a/b/ws/.git/modules/m/HEAD", ""),
        ("a/b/ws/.git/modules/m/config", ""),
    ]);
    // As with a workspace in /tmp: the temp directory is a write root too.
    let got = plan(&[root.join("a/b/ws"), root.clone()], me(), Path::new("/")).unwrap();
    assert_eq!(
        rel(&root, &got.pinned),
        [
            "a",
            "a/b",
            "a/b/ws",
            "a/b/ws/.git",
            "a/b/ws/.git/modules",
            "a/b/ws/.git/modules/m",
        ]
    );
    let mounts = got.mounts();
    assert_eq!(
        mounts.first(),
        Some(&MountOp::BindSelf {
            path: root.join("a"),
            read_only: false
        }),
        "ancestors first"
    );
    assert!(mounts.contains(&MountOp::BindSelf {
        path: root.join("a/b/ws/.git/hooks"),
        read_only: true
    }));
}

#[test]
fn a_symlink_the_agent_could_replace_stops_the_session() {
    for link in [".git/hooks", ".git/config", ".git"] {
        let (_d, root) = tree(&[("real/HEAD", ""), ("real/config", ""), ("real/hooks/", "")]);
        if link == ".git" {
            std::os::unix::fs::symlink(root.join("real"), root.join(".git")).unwrap();
        } else {
            std::fs::create_dir(root.join(".git")).unwrap();
            std::fs::write(root.join(".git/HEAD"), "").unwrap();
            let name = Path::new(link).file_name().unwrap();
            std::fs::write(root.join(".git/config"), "").ok();
            std::fs::create_dir(root.join(".git/hooks")).ok();
            let target = root.join(link);
            if target.is_dir() {
                std::fs::remove_dir(&target).unwrap();
            } else {
                std::fs::remove_file(&target).unwrap();
            }
            std::os::unix::fs::symlink(root.join("real").join(name), &target).unwrap();
        }
        let err = plan(std::slice::from_ref(&root), me(), Path::new("/")).unwrap_err();
        assert!(matches!(err, VcsError::Symlink(_)), "{link}: {err}");
    }
}

#[test]
fn no_repository_no_protection() {
    let (_d, root) = tree(&[("src/main.rs", "")]);
    let got = plan(std::slice::from_ref(&root), me(), Path::new("/")).unwrap();
    assert_eq!(got, Protection::default());
    assert!(got.mounts().is_empty());
}

#[test]
fn parses_the_config_syntax_git_accepts() {
    let text = "# c\n[Include]\n  Path = \"a b\\\\c\" # comment\n[includeIf \"onbranch:x\"] path = y\n[core.sub]\nHooksPath=h;c\n[x]\nflag\n";
    let got: Vec<(String, String, String)> = config_entries(text)
        .into_iter()
        .map(|e| (e.section, e.key, e.value))
        .collect();
    let want = [
        ("include", "path", "a b\\c"),
        ("includeif", "path", "y"),
        ("core", "hookspath", "h"),
        ("x", "flag", "true"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
}

#[test]
fn a_file_another_session_made_first_is_taken_but_a_link_is_not() {
    let (_d, root) = tree(&[(".git/", "")]);
    let hooks = root.join(".git/hooks");
    let config = root.join(".git/included.cfg");
    for _ in 0..2 {
        create_owned(&hooks, Kind::Dir, &me()).unwrap();
        create_owned(&config, Kind::File, &me()).unwrap();
    }
    assert!(hooks.is_dir() && config.is_file());
    let link = root.join(".git/elsewhere");
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    assert!(create_owned(&link, Kind::Dir, &me()).is_err());
    assert!(
        create_owned(&hooks, Kind::File, &me()).is_err(),
        "a directory is not a file"
    );
}
