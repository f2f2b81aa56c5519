//! A refused `socket` or `socketpair` call, told by the kernel's names.
use warden_agent::sockets;

use crate::events::SocketCall;

/// The family, type and protocol of a `socket`/`socketpair` call, or None for other calls.
/// Values are read as the kernel reads them (ints: the low 32 bits); a value with high bits
/// set is shown whole, since that is what the filter refused.
pub fn decode(syscall: &str, args: &[u64; 6]) -> Option<SocketCall> {
    if syscall != "socket" && syscall != "socketpair" {
        return None;
    }
    let [family, kind, protocol, ..] = *args;
    let named = |name: Option<&str>, value: u64| match name {
        Some(n) if value <= u64::from(u32::MAX) => n.to_string(),
        _ => format!("{value:#x}"),
    };
    Some(SocketCall {
        family: named(sockets::family_name(family), family),
        kind: named(sockets::type_name(kind), kind & sockets::SOCK_TYPE_MASK),
        protocol: named(sockets::protocol_name(family, protocol), protocol),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_was_asked_for() {
        type Names<'a> = Option<(&'a str, &'a str, &'a str)>;
        let cases: &[(&str, [u64; 6], Names)] = &[
            (
                "socket",
                [2, 2 | 0o4000, 1, 0, 0, 0],
                Some(("AF_INET", "SOCK_DGRAM", "IPPROTO_ICMP")),
            ),
            (
                "socket",
                [40, 1, 0, 0, 0, 0],
                Some(("AF_VSOCK", "SOCK_STREAM", "0x0")),
            ),
            (
                "socketpair",
                [30, 4, 0, 0, 0, 0],
                Some(("AF_TIPC", "SOCK_RDM", "0x0")),
            ),
            (
                "socket",
                [2 | 1 << 32, 1, 0, 0, 0, 0],
                Some(("0x100000002", "SOCK_STREAM", "0x0")),
            ),
            ("socket", [99, 9, 7, 0, 0, 0], Some(("0x63", "0x9", "0x7"))),
            ("ptrace", [0; 6], None),
        ];
        for (syscall, args, want) in cases {
            let got = decode(syscall, args);
            let got = got
                .as_ref()
                .map(|c| (c.family.as_str(), c.kind.as_str(), c.protocol.as_str()));
            assert_eq!(got, *want, "{syscall} {args:x?}");
        }
    }
}
