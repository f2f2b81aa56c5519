//! Test client run inside sessions. Each action prints one line that tests assert on:
//!   resolve NAME                   -> `ok ADDR...` | `err MESSAGE`
//!   connect HOST:PORT              -> `ok REPLY` (first line the server sent) | `err ERRNO`
//!   hold HOST:PORT SECS            -> connects, waits SECS, then exchanges: `ok REPLY` | `err ...`
//!   udp ADDR:PORT                  -> `ok` (datagram sent) | `err ERRNO`
//!   dns SERVER:PORT NAME [tcp]     -> `ok RCODE from SOURCE: ADDR...` | `err ...`
//!   watch HOST:PORT DNS_SERVER FILE -> forever, every 100 ms, appends to FILE a connect
//!                                    result (`C ...`), a DNS result (`D ...`) and whether an
//!                                    exec of /bin/true works (`E ...`), from one process
//! HOST may be a name (resolved with getaddrinfo, i.e. the system resolver) or an address.
use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket},
    time::Duration,
};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RData, RecordType},
};

fn errno(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::ECONNREFUSED) => "ECONNREFUSED".into(),
        Some(libc::ETIMEDOUT) => "ETIMEDOUT".into(),
        _ => e.to_string(),
    }
}

fn target(spec: &str) -> io::Result<SocketAddr> {
    spec.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("no address"))
}

fn exchange(addr: SocketAddr, hold: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    std::thread::sleep(hold);
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"hello\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

fn dns(server: SocketAddr, name: &str, tcp: bool) -> io::Result<String> {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(
        Name::from_ascii(name).map_err(io::Error::other)?,
        RecordType::A,
    ));
    let bytes = q.to_vec().map_err(io::Error::other)?;
    let (answer, source) = if tcp {
        let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(&(bytes.len() as u16).to_be_bytes())?;
        s.write_all(&bytes)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len)?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf)?;
        (buf, s.peer_addr()?)
    } else {
        let local: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .unwrap();
        let s = UdpSocket::bind(local)?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.send_to(&bytes, server)?;
        let mut buf = vec![0u8; 65535];
        let (n, from) = s.recv_from(&mut buf)?;
        buf.truncate(n);
        (buf, from)
    };
    let m = Message::from_vec(&answer).map_err(io::Error::other)?;
    let addrs: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    Ok(format!(
        "{:?} from {source}: {}",
        m.metadata.response_code,
        addrs.join(" ")
    ))
}

fn run(args: &[String]) -> io::Result<String> {
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| io::Error::other("missing argument"))
    };
    match arg(0)? {
        "resolve" => {
            let addrs: Vec<String> = (arg(1)?, 0)
                .to_socket_addrs()?
                .map(|a| a.ip().to_string())
                .collect();
            Ok(addrs.join(" "))
        }
        "connect" => exchange(target(arg(1)?)?, Duration::ZERO),
        "hold" => exchange(
            target(arg(1)?)?,
            Duration::from_secs_f64(arg(2)?.parse().map_err(io::Error::other)?),
        ),
        "udp" => {
            let to = target(arg(1)?)?;
            let local: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
                .parse()
                .unwrap();
            UdpSocket::bind(local)?.send_to(b"ping", to)?;
            Ok(String::new())
        }
        "dns" => dns(
            target(arg(1)?)?,
            arg(2)?,
            args.get(3).is_some_and(|a| a == "tcp"),
        ),
        "watch" => {
            let (to, dns_server) = (target(arg(1)?)?, target(arg(2)?)?);
            let mut out = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(arg(3)?)?;
            loop {
                let line = |r: io::Result<String>| match r {
                    Ok(s) => format!("ok {s}"),
                    Err(e) => format!("err {}", errno(&e)),
                };
                let exec = std::process::Command::new("/bin/true")
                    .status()
                    .map(|s| s.to_string());
                // One write per round, so that a round is never split.
                let round = format!(
                    "C {}\nD {}\nE {}\n",
                    line(exchange(to, Duration::ZERO)),
                    line(dns(dns_server, "x.test", false)),
                    line(exec)
                );
                out.write_all(round.as_bytes())?;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        other => Err(io::Error::other(format!("unknown action {other}"))),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => println!("ok {out}"),
        Err(e) => println!("err {}", errno(&e)),
    }
}
