//! What a `dns.query` record says about the DNS budget it exceeded (the budgets themselves are
//! the supervisor's `network::dns_budget`).
use std::fmt;

use serde::{Deserialize, Serialize};
use warden_wire::string_enum;

string_enum! {
    /// Which budget a lookup exceeded.
    Budget, "DNS budget" {
        UniqueNames = "unique_names",
        LabelLength = "max_label_length",
        LabelEntropy = "max_label_entropy_bits",
        QueryBytesPerMinute = "query_bytes_per_minute",
    }
}

string_enum! {
    /// Whose budget: the whole session's, or the registrable domain's.
    Scope, "DNS budget scope" {
        Session = "session",
        Domain = "domain",
    }
}

/// A limit or an observed value: a count (names, bytes) or bits per character.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    Count(u64),
    Bits(f64),
}

/// Why a lookup is over budget: the `budget` of a `dns.query` record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exceeded {
    pub budget: Budget,
    pub scope: Scope,
    pub limit: Amount,
    /// What this lookup would make it.
    pub value: Amount,
    /// The registrable domain the name counts under.
    pub domain: String,
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Bits(b) => write!(f, "{b:.2}"),
        }
    }
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "over the {} budget {} of {}: {} > {}",
            self.scope.as_str(),
            self.budget.as_str(),
            self.domain,
            self.value,
            self.limit
        )
    }
}

/// The registrable domain when no pattern gives one: the last two labels.
pub fn last_two_labels(name: &str) -> &str {
    let name = name.trim_end_matches('.');
    match name.rmatch_indices('.').nth(1) {
        Some((i, _)) => &name[i + 1..],
        None => name,
    }
}

/// Shannon entropy in bits per character, case folded (DNS names are case-insensitive, so
/// case carries no data a resolver keeps).
pub fn entropy(text: &[u8]) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in text {
        counts[usize::from(b.to_ascii_lowercase())] += 1;
    }
    let n = text.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}
