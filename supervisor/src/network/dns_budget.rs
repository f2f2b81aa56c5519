//! DNS budgets: how much a session may say in the names it looks up.
//!
//! Threat: with `*.example.com` allowed, an agent (or code it runs) can encode data in the
//! labels of names under it (`<48 hex digits>.example.com`); every lookup reaches the
//! resolvers up to example.com's name servers, which the attacker may run. No connection is
//! ever made, so the IP allowlist never sees it. The budgets bound that channel: how many
//! distinct names (each one new data), how long and how random a label (how much data one
//! name holds), and how many query bytes per minute (the rate). A lookup over a budget goes
//! to the approval flow or is refused, and its record says which budget, limit and value.
//!
//! Budgets are kept for the session and per registrable domain. The registrable domain is the
//! base of the allowlist pattern that allowed the name (`*.example.com` -> `example.com`), else
//! its last two labels. Not the Public Suffix List: the pattern is what the user trusted, so a
//! domain's budget is exactly the budget of one rule, and a base that is itself a public
//! suffix (`*.co.uk`) only pools more names into one budget (stricter, never looser).
//!
//! Memory is bounded: names are kept as 64-bit keyed hashes and only while within budget (so
//! at most `unique_names_per_session` of them), and at most `MAX_DOMAINS` domains are tracked;
//! beyond that the least recently used one is forgotten and counted. A forgotten domain starts
//! its per-domain budget again, but the session budget, which is never forgotten, still holds.
use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, RandomState},
    time::Duration,
};

/// Shared with triage, which judges recorded names the same way.
pub use crate::events::dns_budget::{entropy, last_two_labels};

/// Registrable domains whose budgets are tracked at once.
pub const MAX_DOMAINS: usize = 4096;

/// The `limit.reached` resource that counts domains forgotten at `MAX_DOMAINS`.
pub const EVICTION_RESOURCE: &str = "dns_budget_domains";

/// Labels (below the registrable domain, joined) shorter than this are not judged by entropy:
/// the entropy of n characters is at most log2(n), so short labels look ordered whatever they
/// hold; 24 random characters of base32 already show about 4.1 bits.
pub const ENTROPY_MIN_CHARS: usize = 24;

const MINUTE: Duration = Duration::from_secs(60);

/// The limits in force (from the settings).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub unique_names_per_session: u32,
    pub unique_names_per_domain: u32,
    pub max_label_length: u32,
    pub max_label_entropy_bits: f64,
    pub query_bytes_per_minute_per_session: u32,
    pub query_bytes_per_minute_per_domain: u32,
}

pub use warden_records::events::dns_budget::{Amount, Budget, Exceeded, Scope};

/// A per-minute sliding window: the last full minute's total weighed by how much of it still
/// lies within the last 60 s, plus this minute's (O(1) memory, at most 1/60 off per second).
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    start: Duration,
    current: u64,
    previous: u64,
}

impl Window {
    fn roll(&mut self, now: Duration) {
        let minutes = now.saturating_sub(self.start).as_secs() / 60;
        if minutes >= 1 {
            self.previous = if minutes == 1 { self.current } else { 0 };
            self.current = 0;
            self.start += MINUTE * minutes as u32;
        }
    }

    /// The bytes of the last 60 s, with `extra` more.
    fn with(&mut self, now: Duration, extra: u64) -> u64 {
        self.roll(now);
        let into = now.saturating_sub(self.start).as_secs_f64() / 60.0;
        (self.previous as f64 * (1.0 - into)) as u64 + self.current + extra
    }

    fn add(&mut self, now: Duration, bytes: u64) {
        self.roll(now);
        self.current += bytes;
    }
}

#[derive(Debug, Default)]
struct Usage {
    names: HashSet<u64>,
    bytes: Window,
    /// For the least-recently-used eviction of domains.
    last_used: u64,
}

/// One session's budget state.
#[derive(Debug)]
pub struct DnsBudget {
    limits: Limits,
    hasher: RandomState,
    session: Usage,
    domains: HashMap<String, Usage>,
    tick: u64,
    evicted: u64,
}

/// One lookup, as the budgets see it.
pub struct Lookup<'a> {
    /// The queried name, without the root's dot.
    pub name: &'a str,
    /// Its registrable domain (see the module's comment).
    pub domain: &'a str,
    /// The query's size on the wire: everything in it reaches the upstream.
    pub bytes: u64,
    /// A monotonic time.
    pub now: Duration,
}

impl DnsBudget {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            hasher: RandomState::new(),
            session: Usage::default(),
            domains: HashMap::new(),
            tick: 0,
            evicted: 0,
        }
    }

    /// Domains forgotten to keep the table at `MAX_DOMAINS`.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Counts the lookup when it is within every budget; otherwise says which one it exceeds
    /// and counts nothing.
    pub fn admit(&mut self, q: &Lookup) -> Result<(), Exceeded> {
        self.check(q)?;
        let key = self.key(q.name);
        // A name looked up before carries no new data: only new names spend bytes (a client
        // without a cache, asking for its API host on every request, is not a tunnel).
        if self.session.names.insert(key) {
            self.use_domain(q).names.insert(key);
            self.count_bytes(q);
        }
        Ok(())
    }

    /// Counts the bytes of a lookup that went out over budget (someone approved it). Its name
    /// is not remembered, so the sets stay within their budgets.
    pub fn count_bytes(&mut self, q: &Lookup) {
        self.session.bytes.add(q.now, q.bytes);
        self.use_domain(q).bytes.add(q.now, q.bytes);
    }

    fn check(&mut self, q: &Lookup) -> Result<(), Exceeded> {
        let l = self.limits;
        let over = |budget, scope, limit: Amount, value: Amount| Exceeded {
            budget,
            scope,
            limit,
            value,
            domain: q.domain.to_string(),
        };
        let labels = labels_below(q.name, q.domain);
        let longest = labels.iter().map(|l| l.len()).max().unwrap_or(0) as u64;
        if longest > u64::from(l.max_label_length) {
            return Err(over(
                Budget::LabelLength,
                Scope::Domain,
                Amount::Count(l.max_label_length.into()),
                Amount::Count(longest),
            ));
        }
        let joined = labels.concat();
        if joined.len() >= ENTROPY_MIN_CHARS {
            let bits = entropy(joined.as_bytes());
            if bits > l.max_label_entropy_bits {
                return Err(over(
                    Budget::LabelEntropy,
                    Scope::Domain,
                    Amount::Bits(l.max_label_entropy_bits),
                    Amount::Bits((bits * 100.0).round() / 100.0),
                ));
            }
        }
        let key = self.key(q.name);
        if self.session.names.contains(&key) {
            return Ok(());
        }
        let domain = self.domains.get_mut(q.domain);
        {
            let in_domain = domain.as_ref().map_or(0, |d| d.names.len()) as u64 + 1;
            if in_domain > u64::from(l.unique_names_per_domain) {
                return Err(over(
                    Budget::UniqueNames,
                    Scope::Domain,
                    Amount::Count(l.unique_names_per_domain.into()),
                    Amount::Count(in_domain),
                ));
            }
            let in_session = self.session.names.len() as u64 + 1;
            if in_session > u64::from(l.unique_names_per_session) {
                return Err(over(
                    Budget::UniqueNames,
                    Scope::Session,
                    Amount::Count(l.unique_names_per_session.into()),
                    Amount::Count(in_session),
                ));
            }
        }
        let domain_bytes = domain.map_or(q.bytes, |d| d.bytes.with(q.now, q.bytes));
        if domain_bytes > u64::from(l.query_bytes_per_minute_per_domain) {
            return Err(over(
                Budget::QueryBytesPerMinute,
                Scope::Domain,
                Amount::Count(l.query_bytes_per_minute_per_domain.into()),
                Amount::Count(domain_bytes),
            ));
        }
        let session_bytes = self.session.bytes.with(q.now, q.bytes);
        if session_bytes > u64::from(l.query_bytes_per_minute_per_session) {
            return Err(over(
                Budget::QueryBytesPerMinute,
                Scope::Session,
                Amount::Count(l.query_bytes_per_minute_per_session.into()),
                Amount::Count(session_bytes),
            ));
        }
        Ok(())
    }

    fn key(&self, name: &str) -> u64 {
        self.hasher
            .hash_one(name.trim_end_matches('.').to_ascii_lowercase())
    }

    /// The domain's usage, made the most recently used; a new domain may evict the least.
    fn use_domain(&mut self, q: &Lookup) -> &mut Usage {
        self.tick += 1;
        if !self.domains.contains_key(q.domain) && self.domains.len() >= MAX_DOMAINS {
            let oldest = self
                .domains
                .iter()
                .min_by_key(|(_, u)| u.last_used)
                .map(|(d, _)| d.clone());
            if let Some(oldest) = oldest {
                self.domains.remove(&oldest);
                self.evicted += 1;
            }
        }
        let usage = self.domains.entry(q.domain.to_string()).or_default();
        usage.last_used = self.tick;
        usage
    }
}

/// The labels of `name` below `domain` (all of them when it is not below it).
fn labels_below<'a>(name: &'a str, domain: &str) -> Vec<&'a str> {
    let name = name.trim_end_matches('.');
    let head = match name.len().checked_sub(domain.len() + 1) {
        Some(cut)
            if name.is_char_boundary(cut)
                && name[cut + 1..].eq_ignore_ascii_case(domain)
                && name.as_bytes()[cut] == b'.' =>
        {
            &name[..cut]
        }
        _ if name.eq_ignore_ascii_case(domain) => "",
        _ => name,
    };
    head.split('.').filter(|l| !l.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        unique_names_per_session: 5,
        unique_names_per_domain: 3,
        max_label_length: 20,
        max_label_entropy_bits: 4.0,
        query_bytes_per_minute_per_session: 1000,
        query_bytes_per_minute_per_domain: 600,
    };

    /// A lookup as (name, registrable domain, bytes, seconds).
    type Q = (&'static str, &'static str, u64, u64);
    /// The lookups before, the lookup, and what it exceeds.
    type Case = (&'static [Q], Q, Option<Exceeded>);

    fn lookup<'a>(name: &'a str, domain: &'a str, bytes: u64, secs: u64) -> Lookup<'a> {
        Lookup {
            name,
            domain,
            bytes,
            now: Duration::from_secs(secs),
        }
    }

    fn exceeded(budget: Budget, scope: Scope, limit: u64, value: u64, domain: &str) -> Exceeded {
        Exceeded {
            budget,
            scope,
            limit: Amount::Count(limit),
            value: Amount::Count(value),
            domain: domain.into(),
        }
    }

    #[test]
    fn each_budget_names_its_limit_and_value() {
        use Budget::*;
        use Scope::*;
        let cases: &[Case] = &[
            (&[], ("a.x.test", "x.test", 40, 0), None),
            (
                &[("a.x.test", "x.test", 40, 0), ("b.x.test", "x.test", 40, 0)],
                ("c.x.test", "x.test", 40, 0),
                None,
            ),
            (
                &[
                    ("a.x.test", "x.test", 40, 0),
                    ("b.x.test", "x.test", 40, 0),
                    ("c.x.test", "x.test", 40, 0),
                ],
                ("d.x.test", "x.test", 40, 0),
                Some(exceeded(UniqueNames, Domain, 3, 4, "x.test")),
            ),
            // A name already seen is no new data.
            (
                &[
                    ("a.x.test", "x.test", 40, 0),
                    ("b.x.test", "x.test", 40, 0),
                    ("c.x.test", "x.test", 40, 0),
                ],
                ("A.x.test.", "x.test", 40, 0),
                None,
            ),
            (
                &[
                    ("a.x.test", "x.test", 40, 0),
                    ("b.x.test", "x.test", 40, 0),
                    ("a.y.test", "y.test", 40, 0),
                    ("b.y.test", "y.test", 40, 0),
                    ("a.z.test", "z.test", 40, 0),
                ],
                ("b.z.test", "z.test", 40, 0),
                Some(exceeded(UniqueNames, Session, 5, 6, "z.test")),
            ),
            (
                &[],
                ("abcdefghijklmnopqrstu.x.test", "x.test", 40, 0),
                Some(exceeded(LabelLength, Domain, 20, 21, "x.test")),
            ),
            // The registrable domain's own labels are not judged.
            (
                &[],
                (
                    "www.abcdefghijklmnopqrstuvwxyz.test",
                    "abcdefghijklmnopqrstuvwxyz.test",
                    40,
                    0,
                ),
                None,
            ),
            (
                &[("a.x.test", "x.test", 500, 0)],
                ("b.x.test", "x.test", 101, 1),
                Some(exceeded(QueryBytesPerMinute, Domain, 600, 601, "x.test")),
            ),
            // Asking again for a name already seen spends nothing.
            (
                &[("a.x.test", "x.test", 500, 0)],
                ("a.x.test", "x.test", 500, 1),
                None,
            ),
            (
                &[
                    ("a.x.test", "x.test", 500, 0),
                    ("a.y.test", "y.test", 450, 0),
                ],
                ("a.z.test", "z.test", 51, 1),
                Some(exceeded(QueryBytesPerMinute, Session, 1000, 1001, "z.test")),
            ),
            // Two minutes later the bytes are forgotten.
            (
                &[("a.x.test", "x.test", 600, 0)],
                ("a.x.test", "x.test", 600, 120),
                None,
            ),
        ];
        for (before, (name, domain, bytes, secs), want) in cases {
            let mut b = DnsBudget::new(LIMITS);
            for (n, d, by, s) in *before {
                b.admit(&lookup(n, d, *by, *s))
                    .expect("the lookups before are within budget");
            }
            let got = b.admit(&lookup(name, domain, *bytes, *secs)).err();
            assert_eq!(got.as_ref(), want.as_ref(), "{name} after {before:?}");
        }
    }

    #[test]
    fn random_labels_trip_entropy_and_words_do_not() {
        let mut b = DnsBudget::new(Limits {
            max_label_length: 63,
            ..LIMITS
        });
        let random = "k3x9q7m2v8w4z1p6r5t0y2u8i3o7a4s9.x.test";
        let err = b.admit(&lookup(random, "x.test", 40, 0)).unwrap_err();
        assert_eq!(
            (err.budget, err.scope),
            (Budget::LabelEntropy, Scope::Domain)
        );
        let Amount::Bits(v) = err.value else {
            panic!("{err:?}")
        };
        assert!(v > 4.0 && v <= 5.0, "{v}");
        for ordinary in [
            "static.x.test",
            "registry-mirror-europe-west.x.test",
            "d3f9a1b2c4e5.x.test",
        ] {
            b.admit(&lookup(ordinary, "x.test", 40, 0))
                .unwrap_or_else(|e| panic!("{ordinary}: {e:?}"));
        }
    }

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(entropy(b"aaaa"), 0.0);
        assert_eq!(entropy(b"abAB"), 1.0, "case folded");
        assert_eq!(entropy(b"0123456789abcdef"), 4.0);
    }

    #[test]
    fn registrable_domains_and_labels_below_them() {
        assert_eq!(last_two_labels("a.b.example.com."), "example.com");
        assert_eq!(last_two_labels("localhost"), "localhost");
        assert_eq!(labels_below("a.B.example.com", "example.com"), ["a", "B"]);
        assert_eq!(
            labels_below("example.com", "example.com"),
            Vec::<&str>::new()
        );
        assert_eq!(
            labels_below("aexample.com", "example.com"),
            ["aexample", "com"]
        );
    }

    #[test]
    fn the_domain_table_is_bounded_and_evictions_counted() {
        let mut b = DnsBudget::new(Limits {
            unique_names_per_session: u32::MAX,
            query_bytes_per_minute_per_session: u32::MAX,
            ..LIMITS
        });
        let names: Vec<String> = (0..MAX_DOMAINS + 10)
            .map(|i| format!("a.d{i}.test"))
            .collect();
        for n in &names {
            b.admit(&lookup(n, last_two_labels(n), 1, 0)).unwrap();
        }
        assert_eq!(b.domains.len(), MAX_DOMAINS);
        assert_eq!(b.evicted(), 10);
        assert!(
            !b.domains.contains_key("d0.test"),
            "the least recently used goes"
        );
    }

    #[test]
    fn wire_names_round_trip() {
        let e = exceeded(Budget::UniqueNames, Scope::Domain, 3, 4, "x.test");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"budget":"unique_names","scope":"domain","limit":3,"value":4,"domain":"x.test"}"#
        );
        assert_eq!(serde_json::from_str::<Exceeded>(&json).unwrap(), e);
        let bits: Exceeded = serde_json::from_str(
            r#"{"budget":"max_label_entropy_bits","scope":"domain","limit":4.5,"value":4.62,"domain":"x"}"#,
        )
        .unwrap();
        assert_eq!(bits.limit, Amount::Bits(4.5));
    }
}
