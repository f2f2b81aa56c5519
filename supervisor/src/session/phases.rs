//! How long each phase of a session takes, at debug level (`WARDEN_LOG=warden::session=debug`):
//! `phase NAME: MS ms`, which bench/session_start.sh reads.
use std::time::Instant;

pub struct Phases(Instant);

impl Phases {
    pub fn start() -> Self {
        Phases(Instant::now())
    }

    /// The phase that just ended; the next one starts now.
    pub fn done(&mut self, phase: &str) {
        let now = Instant::now();
        tracing::debug!(
            "phase {phase}: {:.2} ms",
            (now - self.0).as_secs_f64() * 1e3
        );
        self.0 = now;
    }
}
