//! Identical events within a window become one record with a count, so that a process that
//! opens the same file or connects to the same peer 100,000 times makes a handful of
//! records, not 100,000, and nothing is dropped.
use std::{collections::HashMap, hash::Hash};

/// Identical events within this long of the window's first event become one record.
pub const WINDOW_NS: u64 = 1_000_000_000;
/// More distinct events than this in a window flush it early (bounds memory).
pub const MAX_DISTINCT: usize = 16_384;

/// The first of identical events, how many there were, and when the last one was.
pub struct Folded<T> {
    pub first: T,
    pub first_ns: u64,
    pub count: u64,
    pub last_ns: u64,
}

pub struct Window<K, T> {
    events: HashMap<K, Folded<T>>,
    start: Option<u64>,
}

impl<K, T> Default for Window<K, T> {
    fn default() -> Self {
        Self {
            events: HashMap::new(),
            start: None,
        }
    }
}

impl<K: Hash + Eq + Ord, T> Window<K, T> {
    /// Counts an event identified by `key` at `ts`; `event` is kept when it is the first.
    pub fn add(&mut self, key: K, ts: u64, event: T) {
        self.start.get_or_insert(ts);
        self.events
            .entry(key)
            .and_modify(|f| {
                f.count += 1;
                f.last_ns = f.last_ns.max(ts);
            })
            .or_insert(Folded {
                first: event,
                first_ns: ts,
                count: 1,
                last_ns: ts,
            });
    }

    /// No event waits for its window to end.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The folded events of a finished window (or of everything, at the end), in the order of
    /// their first event (and of their keys, for events of the same instant).
    pub fn take(&mut self, now_ns: u64, everything: bool) -> Vec<Folded<T>> {
        let due = everything
            || self.events.len() >= MAX_DISTINCT
            || self
                .start
                .is_some_and(|s| now_ns.saturating_sub(s) >= WINDOW_NS);
        if !due || self.events.is_empty() {
            return Vec::new();
        }
        self.start = None;
        let mut folded: Vec<(K, Folded<T>)> = self.events.drain().collect();
        folded.sort_by(|(ka, a), (kb, b)| (a.first_ns, ka).cmp(&(b.first_ns, kb)));
        folded.into_iter().map(|(_, f)| f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_within_a_window_and_orders_by_first_event() {
        let mut w: Window<&str, u64> = Window::default();
        for i in 0..1000 {
            w.add("b", 100 + i, i);
            w.add("a", 100 + i, i);
        }
        w.add("c", 50 + WINDOW_NS, 7);
        assert!(w.take(500, false).is_empty(), "the window is still open");
        let out = w.take(100 + WINDOW_NS, false);
        let seen: Vec<_> = out
            .iter()
            .map(|f| (f.first, f.first_ns, f.count, f.last_ns))
            .collect();
        assert_eq!(
            seen,
            [
                (0, 100, 1000, 1099),
                (0, 100, 1000, 1099),
                (7, 50 + WINDOW_NS, 1, 50 + WINDOW_NS)
            ]
        );
        assert!(w.take(u64::MAX, true).is_empty());
    }
}
