//! DNS tunnelling: data leaving in the names looked up. Budgets (`network.dns_budget`) refuse
//! it at run time; triage also looks at the names themselves, for sessions without budgets.
use std::collections::{HashMap, HashSet};

use warden_records::events::{
    Event, Record,
    dns_budget::{entropy, last_two_labels as domain},
};

use crate::detections::{Context, Correlator};

/// Distinct names under one domain that a task does not need.
const UNIQUE_NAMES_PER_DOMAIN: usize = 50;
/// Names carrying encoded data, at least.
const ENCODED_NAMES: usize = 3;

/// The lookups that carry data: those over a budget, those whose labels look encoded (once
/// there are several), and those of a domain asked under too many distinct names.
#[derive(Default)]
pub struct Tunnelling {
    /// Lookups with encoded labels, until there are enough distinct names.
    encoded: Vec<Record>,
    encoded_names: HashSet<String>,
    /// Per domain: its distinct names and their lookups, until there are too many.
    per_domain: HashMap<String, (HashSet<String>, Vec<Record>)>,
}

impl Correlator for Tunnelling {
    fn push(&mut self, r: &Record, _: Option<usize>, _: &Context) -> Vec<Record> {
        let Event::DnsQuery(q) = &r.event else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        if q.budget.is_some() {
            hits.push(r.clone());
        }
        // Until a threshold is reached, the first lookup of each name is kept (bounded by the
        // threshold); from then on every such lookup is evidence.
        if q.name.split('.').any(looks_encoded) {
            let new = self.encoded_names.len() < ENCODED_NAMES
                && self.encoded_names.insert(q.name.clone());
            if self.encoded_names.len() >= ENCODED_NAMES {
                hits.append(&mut self.encoded);
                hits.push(r.clone());
            } else if new {
                self.encoded.push(r.clone());
            }
        }
        let (names, lookups) = self
            .per_domain
            .entry(domain(&q.name).to_string())
            .or_default();
        let new = names.len() < UNIQUE_NAMES_PER_DOMAIN && names.insert(q.name.clone());
        if names.len() >= UNIQUE_NAMES_PER_DOMAIN {
            hits.append(lookups);
            hits.push(r.clone());
        } else if new {
            lookups.push(r.clone());
        }
        hits
    }
}

/// A label that holds encoded data (hex, base32, base64): long, with digits or capitals mixed in, and hex
/// or close to random; or nearly as long as a label can be.
fn looks_encoded(label: &str) -> bool {
    let n = label.len();
    if n >= 50 {
        return true;
    }
    if n < 24 {
        return false;
    }
    let digits = label.bytes().filter(u8::is_ascii_digit).count();
    // Names people give are lower case; base64 is not.
    let upper = label.bytes().filter(u8::is_ascii_uppercase).count();
    let hex = label.bytes().all(|b| b.is_ascii_hexdigit());
    (digits * 100 >= n * 12 || upper * 100 >= n * 15) && (hex || entropy(label.as_bytes()) >= 3.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_labels_are_told_from_names_people_give() {
        let cases = [
            ("6b6579206d6174657269616c2069732068657265", true),
            ("nbswy3dpeb3w64tmmqqgs4z2ebsgc5dbeaqq", true),
            ("aGVsbG8gd29ybGQgdGhpcyBpcyBkYXRh", true),
            (&"a".repeat(55), true),
            ("registry", false),
            ("my-company-production-artifacts-bucket", false),
            ("d1a2b3c4d5e6f7", false),
            ("static-content-delivery-network-edge", false),
        ];
        for (label, want) in cases {
            assert_eq!(looks_encoded(label), want, "{label}");
        }
    }

    #[test]
    fn domains_are_the_registered_part() {
        let cases = [
            ("a.b.example.com", "example.com"),
            ("example.com", "example.com"),
            ("x.y.example.co.uk", "co.uk"),
            ("localhost", "localhost"),
        ];
        for (name, want) in cases {
            assert_eq!(domain(name), want, "{name}");
        }
    }
}
