//! Which sockets the agent may create, and the kernel's names for the rest (for records).
//!
//! Threat: a socket family the cgroup network programs do not see carries data past the
//! network allowlist (raw IP, packet, ICMP "ping" datagrams), or reaches something beyond the
//! machine's IP stack (vsock to the hypervisor, TIPC, RDS, Bluetooth, CAN, XDP...). So the
//! filter admits a short list and refuses everything else, including families added to
//! kernels later. Ping sockets join the list only when the network policy allows ICMP: then
//! the cgroup egress program decides each ICMP packet's destination.

/// The socket type without SOCK_NONBLOCK / SOCK_CLOEXEC.
pub const SOCK_TYPE_MASK: u64 = 0xf;

pub const AF_UNIX: u64 = 1;
pub const AF_INET: u64 = 2;
pub const AF_INET6: u64 = 10;
pub const AF_NETLINK: u64 = 16;

const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_RAW: u64 = 3;
const SOCK_SEQPACKET: u64 = 5;

const IPPROTO_ICMP: u64 = 1;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_UDP: u64 = 17;
const IPPROTO_ICMPV6: u64 = 58;
const NETLINK_ROUTE: u64 = 0;
const NETLINK_SOCK_DIAG: u64 = 4;

/// A family and, per type, the protocols allowed with it (0 is the type's default).
pub struct Allowed {
    pub family: u64,
    pub types: Vec<(u64, Vec<u64>)>,
}

/// The allowlist; with `icmp`, ping sockets (ICMP echo datagrams) too.
pub fn allowlist(icmp: bool) -> Vec<Allowed> {
    let datagram = |ping| {
        let mut p = vec![0, IPPROTO_UDP];
        p.extend(icmp.then_some(ping));
        (SOCK_DGRAM, p)
    };
    vec![
        // Local IPC; which peers it may reach is the UNIX-socket policy's business.
        Allowed {
            family: AF_UNIX,
            types: vec![
                (SOCK_STREAM, vec![0, 1]),
                (SOCK_DGRAM, vec![0, 1]),
                (SOCK_SEQPACKET, vec![0, 1]),
            ],
        },
        // TCP and UDP: the cgroup connect and sendmsg programs see every destination.
        Allowed {
            family: AF_INET,
            types: vec![(SOCK_STREAM, vec![0, IPPROTO_TCP]), datagram(IPPROTO_ICMP)],
        },
        Allowed {
            family: AF_INET6,
            types: vec![
                (SOCK_STREAM, vec![0, IPPROTO_TCP]),
                datagram(IPPROTO_ICMPV6),
            ],
        },
        // What libc (getaddrinfo's address check, if_nameindex) and `ss` ask the kernel; both
        // stay on the machine.
        Allowed {
            family: AF_NETLINK,
            types: vec![
                (SOCK_RAW, vec![NETLINK_ROUTE, NETLINK_SOCK_DIAG]),
                (SOCK_DGRAM, vec![NETLINK_ROUTE, NETLINK_SOCK_DIAG]),
            ],
        },
    ]
}

/// Whether the kernel would create this socket under the allowlist (the filter's rule, for
/// tests and for the supervisor's account of a refusal). Int arguments count by their low
/// 32 bits, as the kernel reads them; high bits are refused outright by the filter.
pub fn allowed(family: u64, kind: u64, protocol: u64, icmp: bool) -> bool {
    if family > u64::from(u32::MAX) || protocol > u64::from(u32::MAX) {
        return false;
    }
    allowlist(icmp).iter().any(|a| {
        a.family == family
            && a.types
                .iter()
                .any(|(t, protocols)| *t == kind & SOCK_TYPE_MASK && protocols.contains(&protocol))
    })
}

/// The kernel's name of an address family (`AF_VSOCK`), or None for one it has no name for.
pub fn family_name(family: u64) -> Option<&'static str> {
    FAMILIES.iter().find(|(n, _)| *n == family).map(|(_, s)| *s)
}

/// The kernel's name of a socket type (`SOCK_DGRAM`), flags left out.
pub fn type_name(kind: u64) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(n, _)| *n == kind & SOCK_TYPE_MASK)
        .map(|(_, s)| *s)
}

/// The name of a protocol of an IP or netlink socket (`IPPROTO_ICMP`, `NETLINK_AUDIT`).
pub fn protocol_name(family: u64, protocol: u64) -> Option<&'static str> {
    let table = match family {
        AF_INET | AF_INET6 => IP_PROTOCOLS,
        AF_NETLINK => NETLINK_PROTOCOLS,
        _ => return None,
    };
    table.iter().find(|(n, _)| *n == protocol).map(|(_, s)| *s)
}

const FAMILIES: &[(u64, &str)] = &[
    (0, "AF_UNSPEC"),
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (3, "AF_AX25"),
    (4, "AF_IPX"),
    (5, "AF_APPLETALK"),
    (6, "AF_NETROM"),
    (7, "AF_BRIDGE"),
    (8, "AF_ATMPVC"),
    (9, "AF_X25"),
    (10, "AF_INET6"),
    (11, "AF_ROSE"),
    (12, "AF_DECnet"),
    (13, "AF_NETBEUI"),
    (14, "AF_SECURITY"),
    (15, "AF_KEY"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (18, "AF_ASH"),
    (19, "AF_ECONET"),
    (20, "AF_ATMSVC"),
    (21, "AF_RDS"),
    (22, "AF_SNA"),
    (23, "AF_IRDA"),
    (24, "AF_PPPOX"),
    (25, "AF_WANPIPE"),
    (26, "AF_LLC"),
    (27, "AF_IB"),
    (28, "AF_MPLS"),
    (29, "AF_CAN"),
    (30, "AF_TIPC"),
    (31, "AF_BLUETOOTH"),
    (32, "AF_IUCV"),
    (33, "AF_RXRPC"),
    (34, "AF_ISDN"),
    (35, "AF_PHONET"),
    (36, "AF_IEEE802154"),
    (37, "AF_CAIF"),
    (38, "AF_ALG"),
    (39, "AF_NFC"),
    (40, "AF_VSOCK"),
    (41, "AF_KCM"),
    (42, "AF_QIPCRTR"),
    (43, "AF_SMC"),
    (44, "AF_XDP"),
    (45, "AF_MCTP"),
];

const TYPES: &[(u64, &str)] = &[
    (1, "SOCK_STREAM"),
    (2, "SOCK_DGRAM"),
    (3, "SOCK_RAW"),
    (4, "SOCK_RDM"),
    (5, "SOCK_SEQPACKET"),
    (6, "SOCK_DCCP"),
    (10, "SOCK_PACKET"),
];

const IP_PROTOCOLS: &[(u64, &str)] = &[
    (0, "IPPROTO_IP"),
    (1, "IPPROTO_ICMP"),
    (2, "IPPROTO_IGMP"),
    (6, "IPPROTO_TCP"),
    (17, "IPPROTO_UDP"),
    (33, "IPPROTO_DCCP"),
    (58, "IPPROTO_ICMPV6"),
    (132, "IPPROTO_SCTP"),
    (136, "IPPROTO_UDPLITE"),
    (255, "IPPROTO_RAW"),
    (262, "IPPROTO_MPTCP"),
];

const NETLINK_PROTOCOLS: &[(u64, &str)] = &[
    (0, "NETLINK_ROUTE"),
    (4, "NETLINK_SOCK_DIAG"),
    (6, "NETLINK_XFRM"),
    (9, "NETLINK_AUDIT"),
    (12, "NETLINK_NETFILTER"),
    (15, "NETLINK_KOBJECT_UEVENT"),
    (16, "NETLINK_GENERIC"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowlist_admits_tcp_udp_unix_and_libcs_netlink_only() {
        const NONBLOCK_CLOEXEC: u64 = 0o4000 | 0o2000000;
        let cases: &[(u64, u64, u64, bool)] = &[
            (AF_INET, SOCK_STREAM, 0, true),
            (AF_INET6, SOCK_STREAM | NONBLOCK_CLOEXEC, IPPROTO_TCP, true),
            (AF_INET, SOCK_DGRAM, IPPROTO_UDP, true),
            (AF_UNIX, SOCK_SEQPACKET, 0, true),
            (AF_NETLINK, SOCK_RAW, NETLINK_ROUTE, true),
            // ICMP "ping" datagrams and raw IP: the cgroup programs never see them
            (AF_INET, SOCK_DGRAM, 1, false),
            (AF_INET6, SOCK_DGRAM, 58, false),
            (AF_INET, SOCK_RAW, 1, false),
            // other protocols on TCP and UDP types: SCTP, MPTCP, UDP-Lite
            (AF_INET, SOCK_STREAM, 132, false),
            (AF_INET6, SOCK_STREAM, 262, false),
            (AF_INET, SOCK_DGRAM, 136, false),
            (AF_INET, SOCK_SEQPACKET, 0, false),
            // families that leave the machine another way
            (40, SOCK_STREAM, 0, false),
            (30, 4, 0, false),
            (17, SOCK_RAW, 0, false),
            (44, SOCK_RAW, 0, false),
            (AF_NETLINK, SOCK_RAW, 9, false),
            // an allowed family spelled with high bits the kernel ignores
            (AF_INET | 1 << 32, SOCK_STREAM, 0, false),
            (AF_INET, SOCK_STREAM, IPPROTO_TCP | 1 << 32, false),
            (200, SOCK_STREAM, 0, false),
        ];
        for &(family, kind, protocol, want) in cases {
            assert_eq!(
                allowed(family, kind, protocol, false),
                want,
                "family {family:#x} type {kind:#x} protocol {protocol:#x}"
            );
        }
    }

    #[test]
    fn a_policy_that_allows_icmp_admits_ping_sockets_and_nothing_more() {
        let ping: &[(u64, u64, u64, bool)] = &[
            (AF_INET, SOCK_DGRAM, IPPROTO_ICMP, true),
            (AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6, true),
            // ICMPv6 on IPv4 and the other way round, raw ICMP, UDP-Lite between them
            (AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6, false),
            (AF_INET6, SOCK_DGRAM, IPPROTO_ICMP, false),
            (AF_INET, SOCK_RAW, IPPROTO_ICMP, false),
            (AF_INET6, SOCK_DGRAM, 136, false),
            (AF_INET, SOCK_DGRAM, IPPROTO_UDP, true),
        ];
        for &(family, kind, protocol, want) in ping {
            assert_eq!(
                allowed(family, kind, protocol, true),
                want,
                "family {family} type {kind} protocol {protocol}"
            );
        }
    }

    #[test]
    fn refusals_are_named_as_the_kernel_names_them() {
        assert_eq!(family_name(40), Some("AF_VSOCK"));
        assert_eq!(type_name(SOCK_DGRAM | 0o4000), Some("SOCK_DGRAM"));
        assert_eq!(protocol_name(AF_INET, 1), Some("IPPROTO_ICMP"));
        assert_eq!(protocol_name(AF_NETLINK, 9), Some("NETLINK_AUDIT"));
        assert_eq!(protocol_name(AF_UNIX, 1), None);
        assert_eq!(family_name(1000), None);
    }
}
