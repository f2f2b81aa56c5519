//! Benchmark helper: how often the loaded BPF programs whose name starts with PREFIX ran and
//! for how long in all (`kernel.bpf_stats_enabled` must be 1 while they run). Prints one line
//! per program: `NAME RUNS NANOSECONDS`.
fn main() {
    let prefix = std::env::args().nth(1).unwrap_or_default();
    for info in aya::programs::loaded_programs().filter_map(Result::ok) {
        let name = info.name_as_str().unwrap_or_default();
        if name.starts_with(&prefix) {
            println!("{name} {} {}", info.run_count(), info.run_time().as_nanos());
        }
    }
}
