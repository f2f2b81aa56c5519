//! Integrity of requirements files: root-owned, not writable by group or others, all the way
//! up to `/`, and no symlinks.

mod common;

use std::fs::{self, Permissions};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use common::{is_root, policy, trusted_dir, write};
use warden_requirements::integrity::{IntegrityFailure, check_dir, open_trusted, read_trusted};
use warden_requirements::{Layer, LayerKind, LayerPaths, LoadError, check_file, load_local_layers};

const GOOD: &str = "allowed_reviewers = [\"user\"]\n";

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_root_owned_file_in_root_owned_directories_is_trusted() {
    let dir = trusted_dir();
    let file = write(&dir.path().join("requirements.toml"), GOOD);
    assert_eq!(read_trusted(&file, &policy()).unwrap(), GOOD.as_bytes());
    check_dir(dir.path(), &policy()).unwrap();
    if is_root() {
        check_file(&file).unwrap();
    }
}

#[test]
fn a_file_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: changing a file's owner needs root");
        return;
    }
    let dir = trusted_dir();
    let file = write(&dir.path().join("requirements.toml"), GOOD);
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let err = check_file(&file).unwrap_err();
    assert!(matches!(
        err.failure,
        IntegrityFailure::WrongOwner {
            uid: 65534,
            trusted: 0
        }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "{} is owned by uid 65534, must be owned by root",
            file.display()
        )
    );

    // The same for a directory on the way.
    let sub = dir.path().join("managed.d");
    fs::create_dir(&sub).unwrap();
    let inner = write(&sub.join("10.toml"), GOOD);
    std::os::unix::fs::chown(&sub, Some(65534), None).unwrap();
    let err = check_file(&inner).unwrap_err();
    assert_eq!(err.path, sub);

    // A test can trust that user, and then the file passes.
    let nobody = warden_requirements::TrustPolicy { owner_uid: 65534 };
    open_trusted(&file, &nobody).unwrap();
}

#[test]
fn a_group_writable_file_is_refused() {
    let dir = trusted_dir();
    let file = write(&dir.path().join("requirements.toml"), GOOD);
    chmod(&file, 0o664);
    let err = open_trusted(&file, &policy()).unwrap_err();
    assert!(matches!(
        err.failure,
        IntegrityFailure::GroupWritable { mode: 0o664 }
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "{} is writable by its group (mode 0664); run chmod g-w",
            file.display()
        )
    );
}

#[test]
fn an_other_writable_parent_directory_is_refused() {
    let dir = trusted_dir();
    let sub = dir.path().join("warden");
    fs::create_dir(&sub).unwrap();
    let file = write(&sub.join("requirements.toml"), GOOD);
    chmod(&sub, 0o757);
    let err = open_trusted(&file, &policy()).unwrap_err();
    assert_eq!(err.path, sub);
    assert!(matches!(
        err.failure,
        IntegrityFailure::OtherWritable { mode: 0o757 }
    ));
    assert!(
        err.to_string()
            .ends_with("is writable by other users (mode 0757); run chmod o-w")
    );

    // Sticky world-writable directories like /tmp are refused too.
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let err = open_trusted(tmp.path(), &policy()).unwrap_err();
    assert!(
        matches!(
            err.failure,
            IntegrityFailure::GroupWritable { .. } | IntegrityFailure::OtherWritable { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_symlink_swap_is_refused() {
    let dir = trusted_dir();
    let file = write(&dir.path().join("requirements.toml"), GOOD);
    let elsewhere = write(
        &dir.path().join("attacker.toml"),
        "allowed_sandbox_modes = [\"danger-full-access\"]\n",
    );
    open_trusted(&file, &policy()).unwrap();

    // The file is swapped for a link to another file, itself perfectly owned.
    fs::remove_file(&file).unwrap();
    symlink(&elsewhere, &file).unwrap();
    let err = open_trusted(&file, &policy()).unwrap_err();
    assert!(matches!(err.failure, IntegrityFailure::Symlink));
    assert_eq!(err.path, file);
    assert!(err.to_string().contains("is a symbolic link"), "{err}");

    // A directory on the way swapped for a link is refused too.
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    write(&real.join("requirements.toml"), GOOD);
    let linked = dir.path().join("linked");
    symlink(&real, &linked).unwrap();
    let err = open_trusted(&linked.join("requirements.toml"), &policy()).unwrap_err();
    assert!(matches!(err.failure, IntegrityFailure::Symlink));
    assert_eq!(err.path, linked);
}

#[test]
fn other_shapes_are_refused_with_a_reason() {
    let dir = trusted_dir();
    let err = open_trusted(dir.path(), &policy()).unwrap_err();
    assert!(matches!(err.failure, IntegrityFailure::NotRegularFile));
    let file = write(&dir.path().join("f.toml"), GOOD);
    let err = open_trusted(&file.join("x"), &policy()).unwrap_err();
    assert!(
        matches!(err.failure, IntegrityFailure::NotADirectory),
        "{err}"
    );
    assert_eq!(err.path, file);
    let err = open_trusted(Path::new("relative.toml"), &policy()).unwrap_err();
    assert!(matches!(err.failure, IntegrityFailure::NotAbsolute));
    let err = open_trusted(&dir.path().join("../x.toml"), &policy()).unwrap_err();
    assert!(matches!(err.failure, IntegrityFailure::NotAbsolute));
    let err = open_trusted(&dir.path().join("absent.toml"), &policy()).unwrap_err();
    assert!(err.is_missing());
}

#[test]
fn loading_refuses_an_untrusted_layer_and_names_it() {
    let dir = trusted_dir();
    let managed = dir.path().join("managed.d");
    fs::create_dir(&managed).unwrap();
    write(&managed.join("10-ok.toml"), GOOD);
    let bad = write(&managed.join("20-bad.toml"), GOOD);
    chmod(&bad, 0o666);
    let paths = LayerPaths {
        managed_dir: managed.clone(),
        local_file: dir.path().join("requirements.toml"),
    };
    let err = load_local_layers(&paths, &policy()).unwrap_err();
    assert!(matches!(err, LoadError::Integrity(_)));
    assert_eq!(
        err.to_string(),
        format!(
            "{} is writable by its group (mode 0666); run chmod g-w",
            bad.display()
        )
    );

    // A symlinked drop-in is refused, not followed.
    chmod(&bad, 0o644);
    symlink(&bad, managed.join("30-link.toml")).unwrap();
    let err = load_local_layers(&paths, &policy()).unwrap_err();
    assert!(
        err.to_string().contains("30-link.toml is a symbolic link"),
        "{err}"
    );

    // The managed directory itself must be trusted, even when empty.
    fs::remove_file(managed.join("30-link.toml")).unwrap();
    chmod(&managed, 0o775);
    let err = load_local_layers(&paths, &policy()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{} is writable by its group", managed.display()))
    );
}

#[test]
fn a_trusted_layer_loads_with_its_path_as_name() {
    let dir = trusted_dir();
    let file = write(
        &dir.path().join("requirements.toml"),
        "\n[network]\nallowed_cidrs = [\"bad\"]\n",
    );
    let err = Layer::load(LayerKind::Local, &file, &policy()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{} line 3, key network.allowed_cidrs[0]: invalid CIDR `bad`: not an IP address",
            file.display()
        )
    );
    assert!(
        Layer::load(LayerKind::Local, &dir.path().join("none.toml"), &policy())
            .unwrap()
            .is_none()
    );
    fs::write(&file, b"\xff").unwrap();
    let err = Layer::load(LayerKind::Local, &file, &policy()).unwrap_err();
    assert!(matches!(err, LoadError::NotUtf8(_)));
}
