//! Benchmark workload: N open+close of one file, timed from the inside. Prints nanoseconds.
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let path = args.next().unwrap_or_else(|| "/etc/hostname".into());
    let start = Instant::now();
    for _ in 0..n {
        drop(std::fs::File::open(&path).expect("open"));
    }
    println!("{}", start.elapsed().as_nanos());
}
