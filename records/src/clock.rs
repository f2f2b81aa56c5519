//! Kernel timestamps (CLOCK_BOOTTIME) and wall-clock time.
use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};

/// RFC 3339 in UTC with exactly nine fractional digits, so that times also sort as text.
const RFC3339_NANOS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// CLOCK_BOOTTIME now, in the same unit as `bpf_ktime_get_boot_ns`.
pub fn boot_ns() -> u64 {
    now_ns(libc::CLOCK_BOOTTIME) as u64
}

/// Converts kernel boot-time stamps to wall-clock time, with the offset measured once so that
/// records stay ordered even if the wall clock is stepped during a session.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall_minus_boot_ns: i128,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            wall_minus_boot_ns: now_ns(libc::CLOCK_REALTIME) - now_ns(libc::CLOCK_BOOTTIME),
        }
    }

    pub fn wall(&self, boot_ns: u64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(boot_ns as i128 + self.wall_minus_boot_ns)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn rfc3339(&self, boot_ns: u64) -> String {
        self.wall(boot_ns)
            .format(RFC3339_NANOS)
            .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000000Z"))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_maps_to_now() {
        let clock = Clock::new();
        let wall = clock.wall(boot_ns());
        let drift = (OffsetDateTime::now_utc() - wall).abs();
        assert!(drift < time::Duration::seconds(1), "drift {drift}");
        let text = clock.rfc3339(boot_ns());
        assert_eq!(text.len(), "2026-11-23T21:00:00.123456789Z".len(), "{text}");
        assert!(text.ends_with('Z'));
        let exact = Clock {
            wall_minus_boot_ns: 0,
        };
        assert_eq!(exact.rfc3339(1_500), "1970-01-01T00:00:00.000001500Z");
    }
}
