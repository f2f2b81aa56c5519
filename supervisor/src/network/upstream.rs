//! Where the DNS proxy sends allowed queries, and how.
use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// `IP`, `IP:port` or `[IPv6]:port`; the port defaults to 53.
pub fn parse(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("`{s}` is not an address (IP, IP:port or [IPv6]:port)"))
}

/// The `nameserver` lines of a resolv.conf, in order.
pub fn from_resolv_conf(path: &Path) -> io::Result<Vec<SocketAddr>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next()?.parse::<IpAddr>().ok())
                .flatten()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect())
}

fn query_id(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// One query over UDP from a fresh socket (a random source port per query makes spoofed
/// answers hard); answers with another id are ignored.
pub async fn exchange_udp(
    query: &[u8],
    upstream: SocketAddr,
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let want = query_id(query);
    let mut buf = vec![0u8; 65535];
    tokio::time::timeout(timeout, async {
        loop {
            let n = sock.recv(&mut buf).await?;
            if query_id(&buf[..n]) == want {
                return Ok(buf[..n].to_vec());
            }
        }
    })
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer from {upstream}"),
        )
    })?
}

/// One query over TCP (RFC 1035 4.2.2: two-byte length prefix).
pub async fn exchange_tcp(
    query: &[u8],
    upstream: SocketAddr,
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    tokio::time::timeout(timeout, async {
        let mut s = TcpStream::connect(upstream).await?;
        let len = u16::try_from(query.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
        s.write_all(&len.to_be_bytes()).await?;
        s.write_all(query).await?;
        read_framed(&mut s).await
    })
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer from {upstream}"),
        )
    })?
}

/// Reads one length-prefixed DNS message from a TCP stream.
pub async fn read_framed(s: &mut (impl AsyncReadExt + Unpin)) -> io::Result<Vec<u8>> {
    let len = s.read_u16().await?;
    let mut msg = vec![0u8; usize::from(len)];
    s.read_exact(&mut msg).await?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstreams_and_resolv_conf() {
        assert_eq!(parse("127.0.0.2").unwrap(), "127.0.0.2:53".parse().unwrap());
        assert_eq!(
            parse("127.0.0.2:5353").unwrap(),
            "127.0.0.2:5353".parse().unwrap()
        );
        assert_eq!(parse("[::1]:5353").unwrap(), "[::1]:5353".parse().unwrap());
        assert_eq!(parse("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse("resolver.example").is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("resolv.conf");
        std::fs::write(
            &f,
            "# c\nsearch x\nnameserver 10.1.2.3\nnameserver ::1\nnameserver bogus\n",
        )
        .unwrap();
        assert_eq!(
            from_resolv_conf(&f).unwrap(),
            vec![
                "10.1.2.3:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
