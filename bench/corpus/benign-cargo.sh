# cargo: a new crate with a unit test, built and tested offline (its caches in the workspace).
export CARGO_HOME="$PWD/.cargo-home" CARGO_TARGET_DIR="$PWD/target"
cargo new -q --vcs none app && cd app
printf 'pub fn add(a: u32, b: u32) -> u32 { a + b }\n#[test]\nfn adds() { assert_eq!(add(2, 2), 4); }\n' > src/lib.rs
cargo build -q --offline && cargo test -q --offline > /dev/null
