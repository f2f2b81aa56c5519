//! Arbitrary bytes through the parser, the merger and the resolver: none may panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use warden_requirements::{CliOverrides, Layer, LayerKind, UserConfig, merge, resolve};

const KINDS: [LayerKind; 3] = [LayerKind::CloudBundle, LayerKind::Managed, LayerKind::Local];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // The whole input as every kind of document.
    for kind in KINDS {
        if let Err(e) = Layer::parse(kind, "whole", text.as_ref()) {
            let _ = e.to_string();
        }
    }
    if let Err(e) = UserConfig::parse("whole", text.as_ref()) {
        let _ = e.to_string();
    }

    // Split at NUL bytes: a bundle, a managed file, the local file, then the user config.
    let mut parts = text.split('\0');
    let layers: Vec<Layer> = KINDS
        .iter()
        .filter_map(|&kind| Layer::parse(kind, "part", parts.next().unwrap_or_default()).ok())
        .collect();
    let effective = merge(&layers);
    for entry in effective.entries() {
        let _ = entry.to_string();
    }
    if let Err(e) = effective.cloud_source() {
        let _ = e.to_string();
    }
    let user = UserConfig::parse("user", parts.next().unwrap_or_default()).ok();
    match resolve(&effective, user.as_ref(), &CliOverrides::default(), Path::new("/home/fuzz")) {
        Ok(settings) => {
            let _ = format!("{settings:?}");
        }
        Err(errors) => {
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
});
