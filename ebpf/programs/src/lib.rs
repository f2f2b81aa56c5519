#![no_std]
//! Warden's kernel programs are the binaries of this crate (src/main.rs, src/bin/probes.rs);
//! this empty library lets the supervisor declare a build dependency on them.
