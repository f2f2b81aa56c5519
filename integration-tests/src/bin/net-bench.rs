//! Network benchmark workloads (bench/network.sh):
//!   serve ADDR            accept connections forever; send each one byte, then close
//!   connect ADDR N        N sequential TCP connects, each waiting for the server's byte
//!                         (lockstep: the listen backlog never overflows); prints nanoseconds
//!   dns SERVER NAME N     N sequential UDP queries; prints p50 and p99 in microseconds
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RecordType},
};

/// Close with a reset: 10,000s of connections in TIME_WAIT would exhaust ephemeral ports.
fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as u32,
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = |i: usize| args[i].parse::<SocketAddr>().expect("address");
    match args[0].as_str() {
        "serve" => {
            let l = TcpListener::bind(addr(1)).expect("bind");
            for mut s in l.incoming().flatten() {
                let _ = s.write_all(b"x");
            }
        }
        "connect" => {
            let (to, n): (SocketAddr, u32) = (addr(1), args[2].parse().unwrap());
            let start = Instant::now();
            for _ in 0..n {
                let mut s = TcpStream::connect(to).expect("connect");
                let mut byte = [0u8; 1];
                s.read_exact(&mut byte).expect("the server's byte");
                reset_on_close(&s);
            }
            println!("{}", start.elapsed().as_nanos());
        }
        "dns" => {
            let (server, n): (SocketAddr, usize) = (addr(1), args[3].parse().unwrap());
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut q = Message::query();
            q.add_query(Query::query(
                Name::from_ascii(&args[2]).unwrap(),
                RecordType::A,
            ));
            let mut buf = [0u8; 4096];
            let mut times = Vec::with_capacity(n);
            for _ in 0..n {
                let bytes = q.to_vec().unwrap();
                let t = Instant::now();
                sock.send_to(&bytes, server).unwrap();
                sock.recv_from(&mut buf).expect("answer");
                times.push(t.elapsed().as_micros() as u64);
            }
            times.sort_unstable();
            println!("{} {}", times[n / 2], times[n * 99 / 100]);
        }
        other => panic!("unknown mode {other}"),
    }
}
