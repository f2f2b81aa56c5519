//! Secrets in the user's environment do not reach the agent (issue #15, the environment
//! scrub): the agent's environment, its `/proc/self/environ` and every file it could read in
//! the log lack them; `session.start` names them, never their values.
use warden_integration_tests::*;

#[test]
fn secret_variables_are_not_inherited() {
    let state = private_dir();
    let secrets = [
        ("GITHUB_TOKEN", "ghp_w4rd3nTestValue0001"),
        ("AWS_SECRET_ACCESS_KEY", "w4rd3nTestValue0002"),
        ("AWS_ACCESS_KEY_ID", "AKIAW4RD3NTEST0003"),
        ("OPENAI_API_KEY", "sk-w4rd3nTestValue0004"),
        ("PGPASSWORD", "w4rd3nTestValue0005"),
    ];
    let ordinary = [
        ("TOKENIZERS_PARALLELISM", "false"),
        ("WARDEN_TEST_PLAIN", "plain-value"),
    ];
    let mut c = warden_command(
        state.path(),
        &[],
        &[
            "sh",
            "-c",
            "env; echo ENVIRON=$(tr '\\0' ' ' </proc/self/environ)",
        ],
    );
    c.envs(secrets.iter().chain(ordinary.iter()).copied());
    let s = finish(state, c.output().expect("running warden"));
    assert!(s.status.success(), "{}", s.stderr);
    for (name, value) in secrets {
        assert!(
            !s.stdout.contains(value),
            "{name}'s value reached the agent"
        );
        assert!(
            !s.stdout.contains(&format!("{name}=")),
            "{name} reached the agent"
        );
        assert!(
            s.start().env_removed.iter().any(|n| n == name),
            "{name} not in env_removed: {:?}",
            s.start().env_removed
        );
    }
    for (name, value) in ordinary {
        assert!(
            s.stdout.contains(&format!("{name}={value}")),
            "{name} did not reach the agent"
        );
    }
    let log = std::fs::read_to_string(&s.log).unwrap();
    for (name, value) in secrets {
        assert!(!log.contains(value), "{name}'s value is in the log");
    }
}

/// `--pass-env NAME` hands one such variable over on purpose; the others stay out.
#[test]
fn a_secret_variable_passes_only_when_named() {
    let state = private_dir();
    let mut c = warden_command(
        state.path(),
        &["--pass-env", "OPENAI_API_KEY"],
        &[
            "sh",
            "-c",
            "echo KEY=${OPENAI_API_KEY:-unset}; echo TOKEN=${GITHUB_TOKEN:-unset}",
        ],
    );
    c.env("OPENAI_API_KEY", "sk-w4rd3nPassed0006")
        .env("GITHUB_TOKEN", "ghp_w4rd3nKept0007");
    let s = finish(state, c.output().expect("running warden"));
    assert!(s.status.success(), "{}", s.stderr);
    assert_eq!(status_of(&s, "KEY"), "sk-w4rd3nPassed0006");
    assert_eq!(status_of(&s, "TOKEN"), "unset");
    let removed = &s.start().env_removed;
    assert!(removed.iter().any(|n| n == "GITHUB_TOKEN"), "{removed:?}");
    assert!(
        !removed.iter().any(|n| n == "OPENAI_API_KEY"),
        "{removed:?}"
    );
}
