//! Requirements changed while the supervisor runs: a valid change applies to new sessions, an
//! invalid one is refused and the last good set stays.

mod common;

use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt;

use common::{layer, policy, trusted_dir, write};
use warden_requirements::values::SandboxMode;
use warden_requirements::{LayerKind, LayerPaths, LiveRequirements, LoadError};

fn modes(live: &LiveRequirements) -> Vec<SandboxMode> {
    live.current()
        .allowed_sandbox_modes
        .as_ref()
        .unwrap()
        .value
        .clone()
}

#[test]
fn valid_changes_apply_invalid_ones_keep_the_last_good_set() {
    let dir = trusted_dir();
    let managed = dir.path().join("managed.d");
    fs::create_dir(&managed).unwrap();
    let local = write(
        &dir.path().join("requirements.toml"),
        "allowed_sandbox_modes = [\"read-only\", \"workspace-write\"]\n",
    );
    let paths = LayerPaths {
        managed_dir: managed.clone(),
        local_file: local.clone(),
    };
    let mut live = LiveRequirements::load(paths, policy()).unwrap();
    let session = live.current();
    assert_eq!(
        modes(&live),
        [SandboxMode::ReadOnly, SandboxMode::WorkspaceWrite]
    );

    // A valid change: new sessions see it, a running one keeps what it started with.
    write(
        &managed.join("50-tighten.toml"),
        "allowed_sandbox_modes = [\"read-only\"]\n",
    );
    live.reload().unwrap();
    assert_eq!(modes(&live), [SandboxMode::ReadOnly]);
    assert_eq!(
        session.allowed_sandbox_modes.as_ref().unwrap().value.len(),
        2
    );

    // An invalid change is refused with its file and line; the last good set stays.
    let broken = write(
        &managed.join("60-broken.toml"),
        "\nallowed_sandbox_modes = [\"danger-full-access\", \"yolo\"]\n",
    );
    let err = live.reload().unwrap_err();
    assert!(matches!(err, LoadError::Parse(_)));
    assert!(
        err.to_string().starts_with(&format!(
            "{} line 2, key allowed_sandbox_modes[1]",
            broken.display()
        )),
        "{err}"
    );
    assert_eq!(modes(&live), [SandboxMode::ReadOnly]);

    // So is a change that makes a file untrusted.
    fs::remove_file(&broken).unwrap();
    fs::set_permissions(&local, Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        live.reload().unwrap_err(),
        LoadError::Integrity(_)
    ));
    assert_eq!(modes(&live), [SandboxMode::ReadOnly]);

    // Fixed again, the reload goes through.
    fs::set_permissions(&local, Permissions::from_mode(0o644)).unwrap();
    fs::remove_file(managed.join("50-tighten.toml")).unwrap();
    live.reload().unwrap();
    assert_eq!(modes(&live).len(), 2);

    // A bundle goes on top, and survives reloads of the local layers.
    let bundle = layer(
        LayerKind::CloudBundle,
        "https://policy.example/b.toml",
        "allowed_sandbox_modes = []",
    );
    live.set_bundle(Some(bundle));
    live.reload().unwrap();
    assert!(modes(&live).is_empty());
    live.set_bundle(None);
    assert_eq!(modes(&live).len(), 2);
}
