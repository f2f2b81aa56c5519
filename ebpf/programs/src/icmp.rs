//! cgroup skb egress: ICMP echo (ping sockets) only to allowed addresses.
//!
//! The threat: a ping socket sends a payload wherever the agent addresses it, and the cgroup
//! connect and sendmsg programs never run for it (the kernel's ping sendmsg calls no cgroup
//! hook). Ping sockets exist in a session only when the policy allows ICMP (the seccomp filter
//! refuses them otherwise), and then every IPv4/IPv6 packet of the session passes here: ICMP
//! ones must be going to an address the allow maps hold, as a connect would.
use aya_ebpf::{
    helpers::generated::{bpf_get_socket_uid, bpf_skb_cgroup_id},
    programs::SkBuffContext,
};
use warden_common::{EventKind, NET_OP_SENDMSG, RULE_DEFAULT_DENY, VERDICT_DENY};

use crate::{
    emit,
    maps::net_config,
    network::{Dest, lookup, record},
};

const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;

/// 1 lets the packet go, 0 drops it (the sender sees EPERM).
#[inline(always)]
pub fn on_egress(ctx: &SkBuffContext) -> i32 {
    let (dest, protocol) = match u32::from(u16::from_be(ctx.skb.protocol() as u16)) {
        ETH_P_IP => match (ctx.load::<u8>(9), ctx.load::<u32>(16)) {
            (Ok(IPPROTO_ICMP), Ok(a)) => (Dest::V4(a), IPPROTO_ICMP),
            _ => return 1,
        },
        ETH_P_IPV6 => match (ctx.load::<u8>(6), ctx.load::<[u32; 4]>(24)) {
            (Ok(IPPROTO_ICMPV6), Ok(a)) => (Dest::V6(a), IPPROTO_ICMPV6),
            _ => return 1,
        },
        _ => return 1,
    };
    if lookup(dest, 0).is_some() {
        return 1;
    }
    let skb = ctx.skb.skb;
    // The packet is not the process's: no pid here, only the socket's owner and cgroup.
    let header = emit::header_without_task(EventKind::Net, unsafe { bpf_skb_cgroup_id(skb) });
    let uid = unsafe { bpf_get_socket_uid(skb) };
    record(
        header,
        uid,
        dest,
        0,
        protocol,
        NET_OP_SENDMSG,
        VERDICT_DENY,
        RULE_DEFAULT_DENY,
    );
    if net_config().enforce == 1 { 0 } else { 1 }
}
