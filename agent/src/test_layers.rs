//! Test builds only: leave one confinement layer out, so that a test shows that another one
//! holds alone where both hold (`WARDEN_TEST_WITHOUT=landlock,signal-rules,refuse:bpf`).
//! Release builds ignore the variable: the check compiles to `false`.

/// The variable the launcher reads (in debug builds).
pub const ENV: &str = "WARDEN_TEST_WITHOUT";

/// `landlock`: no Landlock ruleset; `signal-rules`: no seccomp rules for signal calls;
/// `refuse:NAME`: system call NAME not refused by the seccomp filter.
pub fn without(layer: &str) -> bool {
    cfg!(debug_assertions) && std::env::var(ENV).is_ok_and(|v| v.split(',').any(|l| l == layer))
}
