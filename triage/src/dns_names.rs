//! DNS tunnelling: data leaving in the names looked up. Budgets (`network.dns_budget`) refuse
//! it at run time; triage also looks at the names themselves, for sessions without budgets.
use std::collections::{HashMap, HashSet};

use warden_records::events::Event;

use crate::detections::Session;

/// Distinct names under one domain that a task does not need.
const UNIQUE_NAMES_PER_DOMAIN: usize = 50;
/// Names carrying encoded data, at least.
const ENCODED_NAMES: usize = 3;

/// The lookups that carry data: those over a budget, those whose labels look encoded (when
/// there are several), and those of a domain asked under too many distinct names.
pub fn tunnelling(s: &Session) -> Vec<usize> {
    let lookups: Vec<(usize, &str, bool)> = s
        .records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.event {
            Event::DnsQuery(q) => Some((i, q.name.as_str(), q.budget.is_some())),
            _ => None,
        })
        .collect();
    let mut hits: Vec<usize> = lookups
        .iter()
        .filter(|(_, _, over)| *over)
        .map(|(i, _, _)| *i)
        .collect();
    let encoded: Vec<&(usize, &str, bool)> = lookups
        .iter()
        .filter(|(_, name, _)| name.split('.').any(looks_encoded))
        .collect();
    let distinct: HashSet<&str> = encoded.iter().map(|(_, name, _)| *name).collect();
    if distinct.len() >= ENCODED_NAMES {
        hits.extend(encoded.iter().map(|(i, _, _)| *i));
    }
    let mut per_domain: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (_, name, _) in &lookups {
        per_domain.entry(domain(name)).or_default().insert(name);
    }
    hits.extend(
        lookups
            .iter()
            .filter(|(_, name, _)| per_domain[domain(name)].len() >= UNIQUE_NAMES_PER_DOMAIN)
            .map(|(i, _, _)| *i),
    );
    hits.sort_unstable();
    hits.dedup();
    hits
}

/// The registered domain, roughly: the last two labels, or three under a short second-level
/// label (`example.co.uk`).
fn domain(name: &str) -> &str {
    let labels: Vec<&str> = name.rsplitn(4, '.').collect();
    let keep = match labels.as_slice() {
        [tld, sld, ..] if sld.len() <= 3 && tld.len() == 2 => 3,
        _ => 2,
    };
    let cut: usize = labels.iter().take(keep).map(|l| l.len() + 1).sum();
    &name[name.len().saturating_sub(cut.saturating_sub(1))..]
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
    (digits * 100 >= n * 12 || upper * 100 >= n * 15) && (hex || entropy(label) >= 3.2)
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
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
            ("x.y.example.co.uk", "example.co.uk"),
            ("localhost", "localhost"),
        ];
        for (name, want) in cases {
            assert_eq!(domain(name), want, "{name}");
        }
    }
}
