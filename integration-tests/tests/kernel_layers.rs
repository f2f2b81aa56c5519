//! Kernel-dependent layers degrade explicitly: `session.start` records what is in force, a
//! requirement refuses a session without a layer it names, and where Landlock cannot confine
//! a call the seccomp filter refuses it instead. Run on every kernel of the VM matrix.
use warden::events::SyscallDenied;
use warden_integration_tests::{kernels, *};
use warden_requirements::values::KernelLayer;

fn all_layers() -> Vec<&'static str> {
    KernelLayer::ALL.iter().map(|l| l.as_str()).collect()
}

#[test]
fn session_start_records_the_layers_of_this_kernel() {
    let s = run_session(&[], &["true"]);
    assert!(s.status.success(), "{}", s.stderr);
    let start = s.start();
    let mut both: Vec<&str> = start
        .layers
        .iter()
        .chain(&start.missing_layers)
        .map(String::as_str)
        .collect();
    both.sort();
    let mut all = all_layers();
    all.sort();
    assert_eq!(both, all, "every layer is either in force or missing");
    if let Some(kernel) = kernels::this_kernel() {
        assert_eq!(start.missing_layers, kernel.missing_layers());
    }
    // The person who started the session is told, not only the log.
    let told = s
        .stderr
        .lines()
        .find(|l| l.starts_with("warden: this kernel does not give "));
    match start.missing_layers.is_empty() {
        true => assert_eq!(told, None, "{}", s.stderr),
        false => assert!(
            told.is_some_and(|l| l.contains(&start.missing_layers.join(", "))),
            "{}",
            s.stderr
        ),
    }
}

#[test]
fn a_required_layer_the_kernel_lacks_refuses_the_session_naming_the_requirement() {
    let dir = private_dir();
    let listed = all_layers()
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let req = requirements_file(dir.path(), &format!("\nrequired_layers = [{listed}]\n"));
    let state = private_dir();
    let out = warden_command(state.path(), &["--requirements", &req], &["true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let Some(kernel) = kernels::this_kernel() else {
        return;
    };
    match kernel.missing_layers().first() {
        None => {
            assert_eq!(out.status.code(), Some(0), "every layer is here: {err}");
            assert!(the_log(state.path()).is_some());
        }
        Some(first) => {
            assert_eq!(out.status.code(), Some(125), "{err}");
            assert!(
                err.contains(&format!("required_layers at {req} line 2")),
                "names the file and line: {err}"
            );
            assert!(err.contains(&format!("names {first}")), "{err}");
            assert!(
                err.contains("which this kernel does not give (it needs "),
                "says what the layer needs: {err}"
            );
            assert!(the_log(state.path()).is_none(), "nothing started: {err}");
        }
    }
}

#[test]
fn truncate_by_path_is_confined_by_landlock_or_refused_by_seccomp() {
    let ws = private_dir();
    let file = ws.path().join("data.txt");
    std::fs::write(&file, "keep me\n").unwrap();
    let workspace = ws.path().to_str().unwrap();
    let s = run_session(
        &["--workspace", workspace],
        &[
            "python3",
            "-c",
            "import os, sys\ntry:\n os.truncate(sys.argv[1], 0); print('truncated')\nexcept OSError as e:\n print('refused', e.errno)",
            file.to_str().unwrap(),
        ],
    );
    assert!(s.status.success(), "{}", s.stderr);
    let denied: Vec<&SyscallDenied> =
        picked!(s, Event::SyscallDenied(d) if d.syscall == "truncate" => d);
    let landlock_truncate = !s
        .start()
        .missing_layers
        .iter()
        .any(|l| l == "landlock.truncate");
    if landlock_truncate {
        // Inside the workspace Landlock allows it.
        assert_eq!(s.stdout.trim(), "truncated", "{}", s.stderr);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
        assert!(denied.is_empty());
    } else {
        assert_eq!(s.stdout.trim(), format!("refused {}", libc::EPERM));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me\n");
        assert_eq!(denied.len(), 1, "the refusal is recorded");
    }
}
