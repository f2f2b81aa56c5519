//! Builds the kernel programs (ebpf/programs) for the BPF target with the Debian compiler,
//! which ships a prebuilt `core` for bpfel-unknown-none (see ../shared/platform.md).
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let meta = cargo_metadata()?;
    // Lets aya-ebpf (and only it) use its unstable feature on a stable compiler, without making
    // aya-build add `-Z build-std` as it would for RUSTC_BOOTSTRAP=1.
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "aya_ebpf") };
    let toolchain = std::env::var("WARDEN_EBPF_TOOLCHAIN").unwrap_or_else(|_| "debian-web".into());
    println!("cargo:rerun-if-env-changed=WARDEN_EBPF_TOOLCHAIN");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "warden-ebpf",
            root_dir: &meta,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )
    .with_context(|| {
        format!(
            "building the kernel programs with the `{toolchain}` toolchain failed; \
             run scripts/setup.sh (it registers the Debian compiler as `debian-web` and \
             installs bpf-linker)"
        )
    })
}

fn cargo_metadata() -> anyhow::Result<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&dir)
        .parent()
        .ok_or_else(|| anyhow!("no workspace root"))?;
    Ok(root.join("ebpf/programs").display().to_string())
}
