//! Request ids, `<tag>-<n>`: what `warden approvals` takes, so no two live sessions may share
//! one (an answer meant for one agent must not reach another).
//!
//! The tag is the session id's last hex digits: random in a UUIDv7, unlike its leading
//! timestamp, which sessions started within a minute or so share. It has at least
//! [`SHORTEST`] of them, and as many more as it takes to differ from every other live
//! session's last digits. A session picks its tag once its approvals socket exists, so of
//! two sessions starting together at least one sees the other: either one tag is picked
//! knowing the other session, or both are (and both differ at their lengths).

/// Digits in a tag at least: short enough to type, 32 random bits.
pub const SHORTEST: usize = 8;

/// The tag of session `id` among the live sessions `others` (their ids; `id` itself may be
/// among them).
pub fn tag(id: &str, others: &[String]) -> String {
    let mine = hex_digits(id);
    let others: Vec<Vec<u8>> = others
        .iter()
        .filter(|o| o.as_str() != id)
        .map(|o| hex_digits(o))
        .collect();
    for len in SHORTEST.min(mine.len())..=mine.len() {
        let candidate = &mine[mine.len() - len..];
        if !others.iter().any(|o| o.ends_with(candidate)) {
            return String::from_utf8(candidate.to_vec()).expect("hex digits");
        }
    }
    // Every digit is shared: not a UUID, or another session's id ends with all of this one.
    id.to_string()
}

/// The request ids of a session: `<tag>-1`, `<tag>-2`, ...
pub fn request(tag: &str, n: u64) -> String {
    format!("{tag}-{n}")
}

fn hex_digits(id: &str) -> Vec<u8> {
    id.bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|b| b.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Three UUIDv7 ids made within the same minute: the same first 8 digits.
    const A: &str = "01a23417-5c3e-7d21-9a4b-3f1e2d3c4b5a";
    const B: &str = "01a23417-9f02-7e88-b1c0-77aa0e1f2d3c";
    const C: &str = "01a23417-a3b1-70f4-8e2d-c91f2d3c4b5a";

    #[test]
    fn tags_come_from_the_random_end_not_the_timestamp() {
        let live = vec![A.to_string(), B.to_string()];
        assert_eq!(tag(A, &live), "2d3c4b5a");
        assert_eq!(tag(B, &live), "0e1f2d3c");
        assert_ne!(tag(A, &live), tag(B, &live));
    }

    #[test]
    fn a_tag_grows_until_it_differs_from_every_other_live_session() {
        // A and C end alike for 8 digits.
        let live = vec![A.to_string(), B.to_string(), C.to_string()];
        let (a, c) = (tag(A, &live), tag(C, &live));
        assert_eq!((a.as_str(), c.as_str()), ("e2d3c4b5a", "f2d3c4b5a"));
        // C started while A had already picked its tag without knowing C: still different
        // ids, as the lengths differ.
        let a_alone = tag(A, &[B.to_string()]);
        assert_eq!(a_alone, "2d3c4b5a");
        assert_ne!(request(&a_alone, 1), request(&c, 1));
        assert_eq!(tag(A, &live[..1]), "2d3c4b5a", "itself is not another");
        // Another id ends with all of this one's digits: the whole id.
        assert_eq!(tag(A, &[format!("7{A}")]), A);
    }
}
