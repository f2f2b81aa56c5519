//! Escape attempts for the integration tests. Each prints `ok` when it worked, or
//! `err ERRNO` when the system refused it:
//!   ptrace PID | kill PID | bpf | unshare-user | io-uring | raw-socket | packet-socket
//!   memfd-exec PROGRAM [ARGS...]   (copies PROGRAM into a memfd and fexecve()s it)
//!   tiocsti TEXT                   (types TEXT into the terminal's input queue)
//! Signals (SIGTERM) that must not reach process PID (the supervisor) by other doors:
//!   kill-wide PID        kill with the pid's register's high bits set (the kernel reads an int)
//!   kill-threads PID     kill and tkill of each of PID's other threads
//!   sigqueue PID         rt_sigqueueinfo
//!   pidfd-proc PID       pidfd_send_signal on an open /proc/PID
//!   kill-group           kill(0): the caller's process group (SIGTERM ignored by the caller)
//!   sigio PID            make PID the owner of a socket (F_SETOWN) and make it ready: SIGIO
//!   packet-socket-wide   socket(AF_PACKET | 1 << 32, ...)
//! Sockets, by number: `socket FAMILY TYPE PROTOCOL`, `socketpair FAMILY TYPE PROTOCOL`
//! (numbers may be hexadecimal, `0x...`, to set high bits).
//! UNIX sockets: `unix connect|send stream|dgram|seqpacket PATH` (send: an unconnected
//! datagram to PATH), `unix-fd PATH` (connect through /proc/self/fd/N of an O_PATH
//! descriptor of PATH), `unix-own PATH` (bind PATH, listen, connect to it), `unix-abstract NAME`.
//! Root's reach: `open-by-handle PATH` (name_to_handle_at, then open_by_handle_at),
//! `mknod-block PATH` (a block device node for the first loop device).
//! ICMP: `ping ADDR` (an echo request from a ping socket, unconnected; IPv4 or IPv6):
//! `ok reply` or `ok noreply` (within a second) when it was sent.
use std::{ffi::CString, io::Read};

fn result(r: libc::c_long) -> String {
    if r >= 0 {
        "ok".into()
    } else {
        let e = std::io::Error::last_os_error();
        let name = match e.raw_os_error() {
            Some(libc::EPERM) => "EPERM",
            Some(libc::EACCES) => "EACCES",
            Some(libc::ENOSYS) => "ENOSYS",
            Some(libc::EINVAL) => "EINVAL",
            Some(libc::ENOENT) => "ENOENT",
            Some(libc::ELOOP) => "ELOOP",
            Some(libc::EXDEV) => "EXDEV",
            Some(libc::ECONNREFUSED) => "ECONNREFUSED",
            _ => return format!("err {e}"),
        };
        format!("err {name}")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pid = || args[1].parse::<i32>().expect("pid");
    // SAFETY: each arm is one system call with valid (or deliberately null) arguments.
    let out = unsafe {
        match args[0].as_str() {
            "ptrace" => result(libc::ptrace(libc::PTRACE_ATTACH, pid(), 0, 0)),
            "kill" => result(libc::kill(pid(), libc::SIGKILL) as libc::c_long),
            "bpf" => {
                let mut attr = [0u8; 128];
                result(libc::syscall(
                    libc::SYS_bpf,
                    5, /* BPF_PROG_LOAD */
                    attr.as_mut_ptr(),
                    attr.len(),
                ))
            }
            "unshare-user" => result(libc::unshare(libc::CLONE_NEWUSER) as libc::c_long),
            "io-uring" => {
                let mut params = [0u8; 120];
                result(libc::syscall(
                    libc::SYS_io_uring_setup,
                    8,
                    params.as_mut_ptr(),
                ))
            }
            "raw-socket" => result(
                libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) as libc::c_long,
            ),
            "packet-socket" => {
                result(libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) as libc::c_long)
            }
            "tiocsti" => {
                let tty = libc::open(c"/dev/tty".as_ptr(), libc::O_RDWR);
                let mut r = 0;
                for b in args[1].bytes() {
                    r = libc::ioctl(tty, libc::TIOCSTI, &b as *const u8);
                    if r < 0 {
                        break;
                    }
                }
                result(r as libc::c_long)
            }
            "memfd-exec" => {
                let fd = libc::memfd_create(c"innocent".as_ptr(), 0);
                let mut bytes = Vec::new();
                std::fs::File::open(&args[1])
                    .unwrap()
                    .read_to_end(&mut bytes)
                    .unwrap();
                libc::write(fd, bytes.as_ptr().cast(), bytes.len());
                let argv: Vec<CString> = args[1..]
                    .iter()
                    .map(|a| CString::new(a.as_str()).unwrap())
                    .collect();
                let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
                ptrs.push(std::ptr::null());
                let env = [std::ptr::null()];
                libc::fexecve(fd, ptrs.as_ptr(), env.as_ptr());
                result(-1)
            }
            "kill-wide" => result(libc::syscall(
                libc::SYS_kill,
                (pid() as u32 as u64) | 1 << 32,
                libc::SIGTERM,
            )),
            "kill-threads" => {
                let mut out = "err no other thread".to_string();
                for entry in std::fs::read_dir(format!("/proc/{}/task", pid())).unwrap() {
                    let tid: i32 = entry
                        .unwrap()
                        .file_name()
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    if tid == pid() {
                        continue;
                    }
                    for r in [
                        libc::kill(tid, libc::SIGTERM) as libc::c_long,
                        libc::syscall(libc::SYS_tkill, tid, libc::SIGTERM),
                    ] {
                        out = result(r);
                        if r >= 0 {
                            break;
                        }
                    }
                }
                out
            }
            "sigqueue" => {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                info.si_signo = libc::SIGTERM;
                info.si_code = -1; // SI_QUEUE
                result(libc::syscall(
                    libc::SYS_rt_sigqueueinfo,
                    pid(),
                    libc::SIGTERM,
                    &info as *const libc::siginfo_t,
                ))
            }
            "pidfd-proc" => {
                let dir = CString::new(format!("/proc/{}", pid())).unwrap();
                let fd = libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                result(libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    libc::SIGTERM,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ))
            }
            "kill-group" => {
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                result(libc::kill(0, libc::SIGTERM) as libc::c_long)
            }
            "sigio" => {
                let mut s = [0; 2];
                libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, s.as_mut_ptr());
                let r = libc::fcntl(s[0], libc::F_SETOWN, pid());
                if r == 0 {
                    libc::fcntl(s[0], libc::F_SETFL, libc::O_ASYNC);
                    libc::write(s[1], b"x".as_ptr().cast(), 1);
                }
                result(r as libc::c_long)
            }
            "packet-socket-wide" => result(libc::syscall(
                libc::SYS_socket,
                libc::AF_PACKET as u64 | 1 << 32,
                libc::SOCK_RAW,
                0,
            )),
            "unix" => {
                let kind = match args[2].as_str() {
                    "stream" => libc::SOCK_STREAM,
                    "dgram" => libc::SOCK_DGRAM,
                    _ => libc::SOCK_SEQPACKET,
                };
                let (addr, len) = sun(args[3].as_bytes());
                let fd = libc::socket(libc::AF_UNIX, kind, 0);
                let sa = (&raw const addr).cast::<libc::sockaddr>();
                if args[1] == "connect" {
                    result(libc::connect(fd, sa, len) as libc::c_long)
                } else {
                    result(libc::sendto(fd, b"x".as_ptr().cast(), 1, 0, sa, len) as libc::c_long)
                }
            }
            "open-by-handle" => {
                let path = CString::new(args[1].as_bytes()).expect("path");
                // struct file_handle with room for any file system's handle.
                let mut handle = [0u8; 8 + 128];
                handle[..4].copy_from_slice(&128u32.to_ne_bytes());
                let mut mount_id = 0i32;
                let named = libc::syscall(
                    libc::SYS_name_to_handle_at,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    handle.as_mut_ptr(),
                    &mut mount_id,
                    0,
                );
                if named < 0 {
                    format!("name_to_handle_at {}", result(-1))
                } else {
                    let root = libc::open(c"/".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                    result(libc::syscall(
                        libc::SYS_open_by_handle_at,
                        root,
                        handle.as_mut_ptr(),
                        libc::O_RDONLY,
                    ))
                }
            }
            "mknod-block" => {
                let path = CString::new(args[1].as_bytes()).expect("path");
                result(
                    libc::mknod(path.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(7, 0))
                        as libc::c_long,
                )
            }
            "ping" => {
                let addr: std::net::IpAddr = args[1].parse().expect("address");
                // Type, code, checksum, id, sequence: the kernel fills in id and checksum.
                let (family, protocol, request) = match addr {
                    std::net::IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8),
                    std::net::IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8),
                };
                let packet = [request, 0, 0, 0, 0, 0, 0, 1, b'w', b'a', b'r', b'd'];
                let fd = libc::socket(family, libc::SOCK_DGRAM, protocol);
                if fd < 0 {
                    result(-1)
                } else {
                    let sa = inet_addr(addr);
                    let sent = libc::sendto(
                        fd,
                        packet.as_ptr().cast(),
                        packet.len(),
                        0,
                        (&raw const sa.0).cast(),
                        sa.1,
                    );
                    if sent < 0 {
                        result(-1)
                    } else {
                        let mut pfd = libc::pollfd {
                            fd,
                            events: libc::POLLIN,
                            revents: 0,
                        };
                        let ready = libc::poll(&mut pfd, 1, 1000);
                        if ready == 1 { "ok reply" } else { "ok noreply" }.to_string()
                    }
                }
            }
            "unix-fd" => {
                let path = CString::new(args[1].as_bytes()).expect("path");
                let o = libc::open(path.as_ptr(), libc::O_PATH);
                if o < 0 {
                    result(-1)
                } else {
                    let (addr, len) = sun(format!("/proc/self/fd/{o}").as_bytes());
                    let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                    result(libc::connect(fd, (&raw const addr).cast(), len) as libc::c_long)
                }
            }
            "unix-own" => {
                let (addr, len) = sun(args[1].as_bytes());
                let sa = (&raw const addr).cast::<libc::sockaddr>();
                let l = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if libc::bind(l, sa, len) < 0 || libc::listen(l, 1) < 0 {
                    result(-1)
                } else {
                    let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                    result(libc::connect(fd, sa, len) as libc::c_long)
                }
            }
            "unix-abstract" => {
                let mut name = vec![0u8];
                name.extend_from_slice(args[1].as_bytes());
                let (addr, len) = sun(&name);
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                result(libc::connect(fd, (&raw const addr).cast(), len) as libc::c_long)
            }
            "socket" | "socketpair" => {
                let n = |i: usize| {
                    let a = &args[i];
                    match a.strip_prefix("0x") {
                        Some(hex) => u64::from_str_radix(hex, 16).expect("number"),
                        None => a.parse().expect("number"),
                    }
                };
                let (family, kind, protocol) = (n(1), n(2), n(3));
                if args[0] == "socket" {
                    result(libc::syscall(libc::SYS_socket, family, kind, protocol))
                } else {
                    let mut fds = [0i32; 2];
                    result(libc::syscall(
                        libc::SYS_socketpair,
                        family,
                        kind,
                        protocol,
                        fds.as_mut_ptr(),
                    ))
                }
            }
            other => format!("unknown attempt {other}"),
        }
    };
    println!("{out}");
}

/// A `sockaddr_un` holding `path` (not NUL-terminated: the length says where it ends).
fn sun(path: &[u8]) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let n = path.len().min(addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(&path[..n]) {
        *d = *s as libc::c_char;
    }
    (
        addr,
        (std::mem::size_of::<libc::sa_family_t>() + n) as libc::socklen_t,
    )
}

/// A `sockaddr_storage` holding `addr` (port 0) and its length.
fn inet_addr(addr: std::net::IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage, and both address types fit in it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            unsafe { std::ptr::write((&raw mut ss).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            unsafe { std::ptr::write((&raw mut ss).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}
