//! The credential store on real keyrings (issue #15): gnome-keyring's Secret Service under
//! `dbus-run-session`, and the kernel's keyutils. What is stored comes back after the daemon
//! or the session is gone; a locked collection, an unreachable bus and an in-memory-only
//! collection fail closed, with the value nowhere on disk.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use warden_integration_tests::{keyring::*, *};

const ADD_GH: &str = "printf %s \"$VALUE\" | $W credentials add gh --provider github --host github.com --delivery helper";

#[test]
fn secret_service_keeps_a_credential_across_daemon_restarts() {
    let Some(ss) = SecretService::new() else {
        return;
    };
    let value = "ghp_w4rd3nStoreValue0101";
    let add = ss.run(true, &format!("VALUE={value}; {ADD_GH}"));
    assert!(add.status.success(), "{}", text(&add));
    assert!(
        String::from_utf8_lossy(&add.stdout).contains("secret-service keyring"),
        "{}",
        text(&add)
    );

    // A new bus and a new daemon, unlocked with the same password, read it back.
    let read = ss.run(
        true,
        "$W credentials show gh --reveal; $W credentials list --json",
    );
    let out = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{}", text(&read));
    assert!(out.contains(&format!("value         {value}")), "{out}");
    let listed: serde_json::Value =
        serde_json::from_str(&out[out.find('[').unwrap()..]).expect("list --json");
    assert_eq!(listed[0]["name"], "gh");
    assert_eq!(listed[0]["metadata"]["delivery"], "helper");
    assert_eq!(listed[0]["metadata"]["hosts"][0], "github.com");

    // Stored encrypted: the value is in no file of the keyring's home.
    assert_eq!(
        files_containing(ss.dir.path(), value),
        Vec::<PathBuf>::new()
    );

    let gone = ss.run(true, "$W credentials remove gh && $W credentials show gh");
    assert!(!gone.status.success(), "{}", text(&gone));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("no credential named gh"),
        "{}",
        text(&gone)
    );
}

#[test]
fn a_locked_collection_fails_closed() {
    let Some(ss) = SecretService::new() else {
        return;
    };
    // Makes the login keyring, then a daemon that was not given the password finds it locked.
    let first = ss.run(true, "$W credentials list");
    assert!(first.status.success(), "{}", text(&first));
    let value = "ghp_w4rd3nLockedValue0102";
    let started = Instant::now();
    let add = ss.run(false, &format!("VALUE={value}; {ADD_GH}"));
    let took = started.elapsed();
    assert!(!add.status.success(), "{}", text(&add));
    assert!(
        String::from_utf8_lossy(&add.stderr).contains("locked"),
        "{}",
        text(&add)
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(
        files_containing(ss.dir.path(), value),
        Vec::<PathBuf>::new()
    );
    let after = ss.run(true, "$W credentials list --json");
    assert_eq!(
        String::from_utf8_lossy(&after.stdout).trim(),
        "[]",
        "{}",
        text(&after)
    );
}

#[test]
fn an_unreachable_bus_fails_closed_without_falling_back() {
    let home = private_dir();
    let value = "ghp_w4rd3nNoBusValue0103";
    let mut c = Command::new("sh");
    c.args(["-c", &format!("VALUE={value}; {ADD_GH}")])
        .env("HOME", home.path())
        .env("W", warden_bin())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/no-bus", home.path().display()),
        );
    let add = c.output().unwrap();
    assert!(!add.status.success(), "{}", text(&add));
    let err = String::from_utf8_lossy(&add.stderr);
    assert!(err.contains("no keyring serves"), "{}", text(&add));
    assert!(
        err.contains("never stores credentials in a plain file"),
        "{err}"
    );
    assert_eq!(files_containing(home.path(), value), Vec::<PathBuf>::new());
    assert_eq!(
        files_containing(Path::new("/tmp"), value),
        Vec::<PathBuf>::new()
    );
}

/// keyutils: the persistent keyring is per user, so the test runs as a user of its own; what
/// one session keyring stored, a later process with a new session keyring reads.
#[test]
fn keyutils_keeps_a_credential_across_sessions() {
    require_root();
    if !on_path("keyctl") {
        eprintln!("skipped: keyctl is not installed (Debian package keyutils)");
        return;
    }
    let uid = 61_000 + (std::process::id() % 1000);
    let home = private_dir();
    std::os::unix::fs::chown(home.path(), Some(uid), Some(uid)).unwrap();
    let as_user = |script: &str| {
        Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
                "keyctl",
                "session",
                "-",
                "sh",
                "-c",
                script,
            ])
            .env("HOME", home.path())
            .env("W", warden_bin())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .unwrap()
    };
    let value = "ghp_w4rd3nKeyutilsValue0104";
    let add = as_user(&format!("VALUE={value}; {ADD_GH}"));
    assert!(add.status.success(), "{}", text(&add));
    assert!(
        String::from_utf8_lossy(&add.stdout).contains("keyutils keyring"),
        "{}",
        text(&add)
    );
    let read = as_user("$W credentials show gh --reveal && $W credentials test");
    let out = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{}", text(&read));
    assert!(out.contains(value), "{out}");
    assert!(out.contains("ok    gh"), "{out}");
    // Another user's store does not hold it.
    let other = Command::new("setpriv")
        .args([
            &format!("--reuid={}", uid + 1),
            &format!("--regid={}", uid + 1),
        ])
        .args([
            "--clear-groups",
            "sh",
            "-c",
            "$W credentials show gh --reveal",
        ])
        .env("W", warden_bin())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    assert!(!other.status.success(), "{}", text(&other));
    assert!(!String::from_utf8_lossy(&other.stdout).contains(value));
    let removed = as_user("$W credentials remove gh");
    assert!(removed.status.success(), "{}", text(&removed));
    assert_eq!(files_containing(home.path(), value), Vec::<PathBuf>::new());
}
