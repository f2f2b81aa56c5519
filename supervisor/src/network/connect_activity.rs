//! Allowed connects, folded (see [`crate::folding`]): a client connecting to the same peer
//! 10,000 times makes a handful of `network.connect` records with counts. Denied and
//! redirected connects, and datagrams, are recorded one by one.
use crate::{
    events::{Event, Network, Verdict},
    folding::Window,
};

#[derive(Default)]
pub struct ConnectActivity(Window<Key, Network>);

/// What makes two connects identical.
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    pid: u32,
    address: String,
    port: u16,
    transport: String,
    rule: String,
}

impl ConnectActivity {
    /// Keeps an allowed connect for folding; gives any other event back.
    pub fn add(&mut self, boot_ns: u64, event: Event) -> Option<Event> {
        match event {
            Event::NetConnect(n) if n.verdict == Verdict::Allow => {
                let key = Key {
                    pid: n.pid,
                    address: n.address.clone(),
                    port: n.port,
                    transport: n.transport.clone(),
                    rule: n.rule.clone(),
                };
                self.0.add(key, boot_ns, n);
                None
            }
            other => Some(other),
        }
    }

    /// The records of a finished window (or of everything, at the end), in time order.
    pub fn take(&mut self, now_ns: u64, everything: bool) -> Vec<(u64, Event)> {
        self.0
            .take(now_ns, everything)
            .into_iter()
            .map(|f| {
                let n = Network {
                    count: f.count,
                    last_boot_ns: (f.count > 1).then_some(f.last_ns),
                    ..f.first
                };
                (f.first_ns, Event::NetConnect(n))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(pid: u32, port: u16, verdict: Verdict) -> Event {
        Event::NetConnect(Network {
            pid,
            uid: 0,
            transport: "tcp".into(),
            address: "127.0.0.10".into(),
            port,
            verdict,
            rule: "allowed_cidrs=127.0.0.10/32".into(),
            rule_source: None,
            domain: None,
            count: 1,
            last_boot_ns: None,
        })
    }

    #[test]
    fn allowed_connects_fold_per_process_and_destination_and_others_pass() {
        let mut c = ConnectActivity::default();
        for i in 0..500 {
            assert!(c.add(10 + i, connect(7, 80, Verdict::Allow)).is_none());
            assert!(c.add(10 + i, connect(8, 80, Verdict::Allow)).is_none());
        }
        assert!(c.add(20, connect(7, 443, Verdict::Allow)).is_none());
        assert!(c.add(30, connect(7, 80, Verdict::Deny)).is_some());
        let out = c.take(0, true);
        let got: Vec<(u64, u32, u16, u64, Option<u64>)> = out
            .iter()
            .map(|(ts, e)| match e {
                Event::NetConnect(n) => (*ts, n.pid, n.port, n.count, n.last_boot_ns),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            got,
            [
                (10, 7, 80, 500, Some(509)),
                (10, 8, 80, 500, Some(509)),
                (20, 7, 443, 1, None)
            ]
        );
    }
}
