//! cgroup sock_addr programs: the session's network allowlist, enforced at connect() and at
//! every unconnected datagram, and DNS redirected to the supervisor's proxy.
//!
//! These run only for sockets of the session cgroup (they are attached to it), so they need
//! no session lookup. Allowed destinations are decided in user space (the DNS proxy and the
//! policy fill the maps); here we only look them up.
use aya_ebpf::{
    EbpfContext,
    bindings::bpf_sock_addr,
    helpers::{
        bpf_get_current_uid_gid,
        generated::{bpf_get_socket_cookie, bpf_ktime_get_boot_ns},
    },
    maps::lpm_trie::Key,
    programs::SockAddrContext,
};
use warden_common::{
    AllowEntry, CREDENTIAL_PROXY_PORT, DnsOrigin, EventHeader, EventKind, NetEvent,
    RULE_CREDENTIAL_PROXY, RULE_DEFAULT_DENY, RULE_DNS_OVER_TLS, RULE_DNS_PROXY, VERDICT_ALLOW,
    VERDICT_DENY, VERDICT_REDIRECT, is_credential_proxy_address,
};

use crate::{
    emit,
    maps::{ALLOW4, ALLOW6, CIDR4, CIDR6, DNS_ORIGINS, LOOPBACK_PORTS, net_config},
};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const DNS_PORT: u16 = 53;
const DNS_OVER_TLS_PORT: u16 = 853;
/// 127.0.0.1 in network byte order, as `user_ip4` holds it.
const LOOPBACK4: u32 = u32::from_ne_bytes([127, 0, 0, 1]);
/// ::1 in network byte order.
const LOOPBACK6: [u32; 4] = [0, 0, 0, u32::from_ne_bytes([0, 0, 0, 1])];
/// The third word of a v4-mapped IPv6 address (::ffff:a.b.c.d).
const V4_MAPPED: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);

/// The destination of a socket operation, IPv4 or IPv6 (v4-mapped addresses count as IPv4).
#[derive(Clone, Copy)]
pub(crate) enum Dest {
    V4(u32),
    V6([u32; 4]),
}

/// Whether the destination is in the credential proxies' range, IPv4 or v4-mapped (read from
/// the context word by word, as the verifier accepts).
#[inline(always)]
fn credential_proxy_range(sa: &bpf_sock_addr, v6: bool) -> bool {
    let v4 = if !v6 {
        sa.user_ip4
    } else if sa.user_ip6[0] == 0 && sa.user_ip6[1] == 0 && sa.user_ip6[2] == V4_MAPPED {
        sa.user_ip6[3]
    } else {
        return false;
    };
    is_credential_proxy_address(v4.to_ne_bytes())
}

#[inline(always)]
fn dest(sa: &bpf_sock_addr, v6: bool) -> Dest {
    if !v6 {
        return Dest::V4(sa.user_ip4);
    }
    let a = sa.user_ip6;
    if a[0] == 0 && a[1] == 0 && a[2] == V4_MAPPED {
        Dest::V4(a[3])
    } else {
        Dest::V6(a)
    }
}

#[inline(always)]
fn is_loopback(d: Dest) -> bool {
    match d {
        // 127.0.0.0/8: the first byte in memory is the most significant.
        Dest::V4(a) => a.to_ne_bytes()[0] == 127,
        Dest::V6(a) => a == LOOPBACK6,
    }
}

#[inline(always)]
fn allowed_entry(entry: Option<&AllowEntry>) -> Option<u32> {
    let e = entry?;
    let now = unsafe { bpf_ktime_get_boot_ns() };
    (e.expires_boot_ns == 0 || now < e.expires_boot_ns).then_some(e.rule)
}

/// Which rule allows `d:port`, if any.
#[inline(always)]
pub(crate) fn lookup(d: Dest, port: u16) -> Option<u32> {
    let exact = match d {
        Dest::V4(a) => allowed_entry(unsafe { ALLOW4.get(&a) }),
        Dest::V6(a) => allowed_entry(unsafe { ALLOW6.get(&a) }),
    };
    if exact.is_some() {
        return exact;
    }
    let cidr = match d {
        Dest::V4(a) => CIDR4.get(Key::new(32, a.to_ne_bytes())).copied(),
        Dest::V6(a) => {
            // SAFETY: [u32; 4] and [u8; 16] have the same size and no invalid bit patterns.
            let bytes: [u8; 16] = unsafe { core::mem::transmute(a) };
            CIDR6.get(Key::new(128, bytes)).copied()
        }
    };
    if cidr.is_some() {
        return cidr;
    }
    if is_loopback(d) {
        return unsafe { LOOPBACK_PORTS.get(&port) }.copied();
    }
    None
}

/// Stores an IPv6 address into the context one 32-bit word at a time: the verifier only
/// accepts context writes at constant offsets from the context pointer, and a plain array
/// assignment compiles to a copy through a derived pointer.
#[inline(always)]
fn set_ip6(sa: &mut bpf_sock_addr, a: [u32; 4]) {
    unsafe {
        core::ptr::write_volatile(&mut sa.user_ip6[0], a[0]);
        core::ptr::write_volatile(&mut sa.user_ip6[1], a[1]);
        core::ptr::write_volatile(&mut sa.user_ip6[2], a[2]);
        core::ptr::write_volatile(&mut sa.user_ip6[3], a[3]);
    }
}

/// Points a DNS query at the proxy, remembering where it was going for the answer's way back.
#[inline(always)]
fn redirect_dns(ctx: &SockAddrContext, sa: &mut bpf_sock_addr, v6: bool, proxy_port: u16) {
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let origin = DnsOrigin {
        addr: if v6 {
            sa.user_ip6
        } else {
            [sa.user_ip4, 0, 0, 0]
        },
        port: sa.user_port,
        family: if v6 { AF_INET6 as u32 } else { AF_INET as u32 },
    };
    // If the LRU map is full the oldest origin goes: at worst an old socket's answer shows the
    // proxy's address, and the query is still answered.
    let _ = DNS_ORIGINS.insert(&cookie, &origin, 0);
    if !v6 {
        sa.user_ip4 = LOOPBACK4;
    } else if matches!(dest(sa, true), Dest::V4(_)) {
        set_ip6(sa, [0, 0, V4_MAPPED, LOOPBACK4]);
    } else {
        set_ip6(sa, LOOPBACK6);
    }
    sa.user_port = u32::from(proxy_port.to_be());
}

/// connect4/6 and sendmsg4/6: 1 lets the operation proceed, 0 fails it with EPERM.
#[inline(always)]
pub fn on_sock_addr(ctx: &SockAddrContext, v6: bool, op: u8) -> i32 {
    let sa = unsafe { &mut *ctx.sock_addr };
    let port = u16::from_be(sa.user_port as u16);
    let d = dest(sa, v6);
    let cfg = net_config();
    let (verdict, rule) = if port == DNS_PORT {
        redirect_dns(ctx, sa, v6, cfg.dns_proxy_port);
        (VERDICT_REDIRECT, RULE_DNS_PROXY)
    } else if port == DNS_OVER_TLS_PORT {
        // DNS over TLS would bypass the proxy, whatever the address.
        (VERDICT_DENY, RULE_DNS_OVER_TLS)
    } else if port == cfg.dns_proxy_port && is_loopback(d) {
        (VERDICT_ALLOW, RULE_DNS_PROXY)
    } else if port == CREDENTIAL_PROXY_PORT && credential_proxy_range(sa, v6) {
        // This session's proxy, or another session's: that one would inject its credentials.
        if cfg.credential_proxy_ip4 != 0 && sa.user_ip4 == cfg.credential_proxy_ip4 && !v6 {
            (VERDICT_ALLOW, RULE_CREDENTIAL_PROXY)
        } else {
            (VERDICT_DENY, RULE_CREDENTIAL_PROXY)
        }
    } else {
        match lookup(d, port) {
            Some(rule) => (VERDICT_ALLOW, rule),
            None if cfg.enforce == 0 => (VERDICT_ALLOW, RULE_DEFAULT_DENY),
            None => (VERDICT_DENY, RULE_DEFAULT_DENY),
        }
    };
    // Every connect is recorded; datagrams only when denied or redirected (a busy UDP flow to
    // an allowed peer would otherwise flood the log with identical records).
    if op == warden_common::NET_OP_CONNECT || verdict != VERDICT_ALLOW {
        let header = emit::header(EventKind::Net, unsafe {
            aya_ebpf::helpers::generated::bpf_get_current_cgroup_id()
        });
        let uid = bpf_get_current_uid_gid() as u32;
        record(header, uid, d, port, sa.protocol as u8, op, verdict, rule);
    }
    if verdict == VERDICT_DENY { 0 } else { 1 }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    header: EventHeader,
    uid: u32,
    d: Dest,
    port: u16,
    protocol: u8,
    op: u8,
    verdict: u8,
    rule: u32,
) {
    let Some(mut entry) = emit::reserve::<NetEvent>(EventKind::Net) else {
        return;
    };
    let (family, addr) = match d {
        Dest::V4(a) => {
            let mut addr = [0u8; 16];
            addr[..4].copy_from_slice(&a.to_ne_bytes());
            (AF_INET, addr)
        }
        // SAFETY: same size, plain integers.
        Dest::V6(a) => (AF_INET6, unsafe {
            core::mem::transmute::<[u32; 4], [u8; 16]>(a)
        }),
    };
    entry.write(NetEvent {
        header,
        uid,
        rule,
        family,
        port,
        op,
        verdict,
        protocol,
        _pad: 0,
        addr,
    });
    emit::submit(entry);
}

/// recvmsg4/6: a DNS answer from the proxy appears to come from where the query was sent, so
/// resolvers that check the source accept it.
#[inline(always)]
pub fn on_recvmsg(ctx: &SockAddrContext, v6: bool) -> i32 {
    let sa = unsafe { &mut *ctx.sock_addr };
    let port = u16::from_be(sa.user_port as u16);
    if port != net_config().dns_proxy_port || !is_loopback(dest(sa, v6)) {
        return 1;
    }
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    if let Some(origin) = unsafe { DNS_ORIGINS.get(&cookie) } {
        if v6 {
            if origin.family == AF_INET6 as u32 {
                set_ip6(sa, origin.addr);
            } else {
                set_ip6(sa, [0, 0, V4_MAPPED, origin.addr[0]]);
            }
        } else {
            sa.user_ip4 = origin.addr[0];
        }
        sa.user_port = origin.port;
    }
    1
}
