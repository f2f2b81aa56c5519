//! The DNS proxy: every DNS query of the session lands here (the kernel redirects port 53).
//!
//! Denied and unlisted names get REFUSED without leaving the machine. For allowed names the
//! query goes upstream, and the answer's addresses are written into the session's allow map
//! *before* the answer is released, so the first connect after a lookup never races the map.
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{RData, Record, RecordType},
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream, UdpSocket},
    sync::mpsc,
};

use super::{
    allowlist::{Allowlist, lifetime},
    dns_budget::{DnsBudget, Lookup, last_two_labels},
    policy::{NameVerdict, NetworkPolicy},
    upstream,
};
use crate::{
    approvals::{Answer, Broker, Facts, Request, Review},
    clock,
    events::{
        DecisionSource, DnsQuery, Event, RequestKind, Subject, Verdict, escape::escape_bytes,
    },
};
use warden_common::{RULE_APPROVED, RULE_CREDENTIAL_PROXY, RULE_DEFAULT_DENY, RULE_DNS_BUDGET};

const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// The TTL of steered answers: the proxy's address does not change during the session.
const STEERED_TTL: u32 = 300;

/// The proxy's sockets: UDP and TCP on 127.0.0.1 and ::1, all on one port (the kernel
/// programs redirect to that port on the loopback address of the query's family).
pub struct Sockets {
    pub port: u16,
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
}

/// Binds a port free on every loopback address and both transports.
pub fn bind() -> io::Result<Sockets> {
    let mut last_err = None;
    for _ in 0..32 {
        let udp4 = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp4.local_addr()?.port();
        let rest = (|| -> io::Result<_> {
            let tcp4 = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
            let mut udp = vec![udp4.try_clone()?];
            let mut tcp = vec![tcp4];
            // A host without IPv6 on loopback still gets IPv4 DNS; IPv6 queries then fail.
            match std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, port)) {
                Ok(s) => {
                    udp.push(s);
                    tcp.push(std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, port))?);
                }
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                    tracing::warn!("no ::1: the DNS proxy serves IPv4 only");
                }
                Err(e) => return Err(e),
            }
            Ok((udp, tcp))
        })();
        match rest {
            Ok((udp, tcp)) => {
                for s in &udp {
                    s.set_nonblocking(true)?;
                }
                for s in &tcp {
                    s.set_nonblocking(true)?;
                }
                return Ok(Sockets { port, udp, tcp });
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port for the DNS proxy")))
}

/// The mnemonic dig and the RFCs use (NOERROR, NXDOMAIN, REFUSED...).
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

pub struct Proxy {
    pub policy: Arc<NetworkPolicy>,
    pub allowlist: Arc<Mutex<Allowlist>>,
    pub upstreams: Vec<SocketAddr>,
    pub ttl_floor: Duration,
    pub events: mpsc::Sender<(u64, Event)>,
    /// What happens to names no rule names, and to lookups over a DNS budget.
    pub unlisted: Unlisted,
    /// What the session's allowed lookups have said so far (see `dns_budget`).
    pub budget: Arc<Mutex<DnsBudget>>,
    /// Names answered with the credential proxy's address (delivery `inject`), lower case.
    pub steered: HashMap<String, Ipv4Addr>,
}

/// Names no rule names, and lookups over a budget, are sent to the approval flow, or denied.
pub enum Unlisted {
    Ask(Arc<Broker>),
    /// Denied without asking; the source says who wants it so (the approval policy, or a
    /// requirement that allows only its own domains).
    Deny(DecisionSource),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DnsTransport {
    Udp,
    Tcp,
}

impl Proxy {
    /// Serves until the task is dropped.
    pub async fn serve(self: Arc<Self>, sockets: Sockets) -> io::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for s in sockets.udp {
            let s = Arc::new(UdpSocket::from_std(s)?);
            tasks.spawn(self.clone().serve_udp(s));
        }
        for l in sockets.tcp {
            tasks.spawn(self.clone().serve_tcp(TcpListener::from_std(l)?));
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(io::Error::other)??;
        }
        Ok(())
    }

    async fn serve_udp(self: Arc<Self>, sock: Arc<UdpSocket>) -> io::Result<()> {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, client) = sock.recv_from(&mut buf).await?;
            let query = buf[..n].to_vec();
            let (proxy, sock) = (self.clone(), sock.clone());
            tokio::spawn(async move {
                if let Some(answer) = proxy.answer(&query, DnsTransport::Udp, client).await
                    && let Err(e) = sock.send_to(&answer, client).await
                {
                    tracing::warn!("DNS answer to {client}: {e}");
                }
            });
        }
    }

    async fn serve_tcp(self: Arc<Self>, listener: TcpListener) -> io::Result<()> {
        loop {
            let (stream, client) = listener.accept().await?;
            let proxy = self.clone();
            tokio::spawn(async move {
                if let Err(e) = proxy.serve_tcp_client(stream, client).await
                    && e.kind() != io::ErrorKind::UnexpectedEof
                {
                    tracing::debug!("DNS over TCP from {client}: {e}");
                }
            });
        }
    }

    async fn serve_tcp_client(&self, mut stream: TcpStream, client: SocketAddr) -> io::Result<()> {
        loop {
            let query = upstream::read_framed(&mut stream).await?;
            let Some(answer) = self.answer(&query, DnsTransport::Tcp, client).await else {
                return Ok(());
            };
            let len = u16::try_from(answer.len()).map_err(io::Error::other)?;
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(&answer).await?;
        }
    }

    /// The answer to one query, or None for bytes that are not a DNS query at all.
    async fn answer(
        &self,
        query: &[u8],
        transport: DnsTransport,
        client: SocketAddr,
    ) -> Option<Vec<u8>> {
        let started = Instant::now();
        let boot_ns = clock::boot_ns();
        let msg = match Message::from_vec(query) {
            Ok(m) if m.metadata.message_type == MessageType::Query => m,
            _ => {
                // Answer FORMERR when the header is readable, so the client does not wait.
                let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
                return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                    .to_vec()
                    .ok();
            }
        };
        let id = msg.metadata.id;
        let mut record = DnsQuery {
            name: String::new(),
            qtype: String::new(),
            transport: if transport == DnsTransport::Udp {
                "udp"
            } else {
                "tcp"
            }
            .into(),
            client: client.to_string(),
            verdict: Verdict::Deny,
            source: DecisionSource::Policy,
            approval: None,
            rule: String::new(),
            rule_source: None,
            rcode: String::new(),
            answers: Vec::new(),
            ttl: None,
            allowed_secs: None,
            upstream: None,
            duration_us: 0,
            error: None,
            budget: None,
        };
        if let Some(answer) = self.steer(&msg, &mut record) {
            record.duration_us = started.elapsed().as_micros() as u64;
            let _ = self
                .events
                .send((boot_ns, Event::DnsQuery(Box::new(record))))
                .await;
            return Some(answer);
        }
        // A query names one question in practice; with several, every one must be allowed.
        let mut verdict = NameVerdict::Deny(RULE_DEFAULT_DENY);
        for q in &msg.queries {
            let name = q.name.to_ascii();
            record.name = escape_bytes(name.trim_end_matches('.').as_bytes());
            record.qtype = q.query_type.to_string();
            verdict = match self.policy.decide(&name) {
                NameVerdict::Deny(RULE_DEFAULT_DENY) => {
                    self.ask_unlisted(&name, &mut record, client).await
                }
                NameVerdict::Allow(rule) if rule != RULE_APPROVED => {
                    let bytes = query.len() as u64;
                    self.within_budget(&name, rule, bytes, &mut record, client)
                        .await
                }
                decided => decided,
            };
            if matches!(verdict, NameVerdict::Deny(_)) {
                break;
            }
        }
        let answer = match verdict {
            NameVerdict::Deny(rule) => {
                // (The approval flow counts the refusals it decides itself.)
                if let Unlisted::Ask(b) = &self.unlisted
                    && record.approval.is_none()
                {
                    b.note_refusal();
                }
                self.label(&mut record, rule, Verdict::Deny);
                self.refuse(id, msg.metadata.op_code, ResponseCode::Refused, &mut record)
            }
            NameVerdict::Allow(rule) if msg.queries.is_empty() => {
                self.label(&mut record, rule, Verdict::Deny);
                self.refuse(id, msg.metadata.op_code, ResponseCode::FormErr, &mut record)
            }
            NameVerdict::Allow(rule) => {
                self.label(&mut record, rule, Verdict::Allow);
                match self.resolve(query, transport, rule, &mut record).await {
                    Ok(answer) => Some(answer),
                    Err(e) => {
                        record.error = Some(e.to_string());
                        self.refuse(
                            id,
                            msg.metadata.op_code,
                            ResponseCode::ServFail,
                            &mut record,
                        )
                    }
                }
            }
        };
        record.duration_us = started.elapsed().as_micros() as u64;
        // Waits when the log is behind rather than dropping the record.
        let _ = self
            .events
            .send((boot_ns, Event::DnsQuery(Box::new(record))))
            .await;
        answer
    }

    /// A lookup of a credential's host (one question) is answered here with the credential
    /// proxy's address: its A record, and no other (an AAAA would lead around the proxy).
    fn steer(&self, msg: &Message, record: &mut DnsQuery) -> Option<Vec<u8>> {
        let [q] = msg.queries.as_slice() else {
            return None;
        };
        if self.steered.is_empty() {
            return None;
        }
        let name = q.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let ip = *self.steered.get(&name)?;
        record.name = escape_bytes(name.as_bytes());
        record.qtype = q.query_type.to_string();
        self.label(record, RULE_CREDENTIAL_PROXY, Verdict::Allow);
        let mut answer = Message::response(msg.metadata.id, msg.metadata.op_code);
        answer.metadata.recursion_desired = msg.metadata.recursion_desired;
        answer.metadata.recursion_available = true;
        answer.metadata.authoritative = true;
        answer.add_query(q.clone());
        if q.query_type == RecordType::A {
            answer.add_answer(Record::from_rdata(
                q.name.clone(),
                STEERED_TTL,
                RData::A(ip.into()),
            ));
            record.answers.push(ip.to_string());
            record.ttl = Some(STEERED_TTL);
        }
        record.rcode = rcode_name(ResponseCode::NoError);
        answer.to_vec().ok()
    }

    fn label(&self, record: &mut DnsQuery, rule: u32, verdict: Verdict) {
        record.verdict = verdict;
        record.rule = self.policy.rule_name(rule);
        if let Some(r) = self.policy.rule(rule) {
            record.rule_source = Some(r.source.clone());
            if r.from_requirements {
                record.source = DecisionSource::Requirements;
            }
        }
    }

    /// A name no rule names: the approval flow decides, while the answer is held. An
    /// approved name's addresses are opened under the rule `approval`.
    async fn ask_unlisted(
        &self,
        name: &str,
        record: &mut DnsQuery,
        client: SocketAddr,
    ) -> NameVerdict {
        let broker = match &self.unlisted {
            Unlisted::Ask(broker) => broker,
            Unlisted::Deny(source) => {
                record.source = *source;
                return NameVerdict::Deny(RULE_DEFAULT_DENY);
            }
        };
        let why = format!("no rule names this domain (query from {client})");
        if ask(broker, name, why, false, record).await {
            NameVerdict::Allow(RULE_APPROVED)
        } else {
            NameVerdict::Deny(RULE_DEFAULT_DENY)
        }
    }

    /// An allowed name goes out when it is within the DNS budgets; over one, the approval flow
    /// decides, or with nobody to ask it is refused (REFUSED, as for every name the policy
    /// refuses: NXDOMAIN would claim the name does not exist, and resolvers and stub caches
    /// keep that lie (RFC 2308) after the budget has recovered).
    async fn within_budget(
        &self,
        name: &str,
        rule: u32,
        bytes: u64,
        record: &mut DnsQuery,
        client: SocketAddr,
    ) -> NameVerdict {
        let name = name.trim_end_matches('.');
        let domain = self
            .policy
            .allowed_base(rule)
            .unwrap_or_else(|| last_two_labels(name))
            .to_string();
        let lookup = Lookup {
            name,
            domain: &domain,
            bytes,
            now: Duration::from_nanos(clock::boot_ns()),
        };
        let over = match self.budget.lock().expect("budget lock").admit(&lookup) {
            Ok(()) => return NameVerdict::Allow(rule),
            Err(over) => over,
        };
        tracing::debug!("{name}: {over}");
        let why = format!("{over} (query from {client})");
        record.budget = Some(over);
        let approved = match &self.unlisted {
            Unlisted::Ask(broker) => ask(broker, name, why, true, record).await,
            Unlisted::Deny(_) => false,
        };
        if approved {
            self.budget
                .lock()
                .expect("budget lock")
                .count_bytes(&lookup);
            NameVerdict::Allow(rule)
        } else {
            NameVerdict::Deny(RULE_DNS_BUDGET)
        }
    }

    fn refuse(
        &self,
        id: u16,
        op: OpCode,
        code: ResponseCode,
        record: &mut DnsQuery,
    ) -> Option<Vec<u8>> {
        record.rcode = rcode_name(code);
        Message::error_msg(id, op, code).to_vec().ok()
    }

    /// Asks the upstreams in turn; opens the answer's addresses; returns the answer untouched.
    async fn resolve(
        &self,
        query: &[u8],
        transport: DnsTransport,
        rule: u32,
        record: &mut DnsQuery,
    ) -> io::Result<Vec<u8>> {
        let mut last = io::Error::other("no DNS upstream configured");
        for &up in &self.upstreams {
            let result = match transport {
                DnsTransport::Udp => upstream::exchange_udp(query, up, UPSTREAM_TIMEOUT).await,
                DnsTransport::Tcp => upstream::exchange_tcp(query, up, UPSTREAM_TIMEOUT).await,
            };
            match result {
                Ok(answer) => {
                    record.upstream = Some(up.to_string());
                    self.open_addresses(&answer, rule, record)?;
                    return Ok(answer);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn open_addresses(&self, answer: &[u8], rule: u32, record: &mut DnsQuery) -> io::Result<()> {
        let msg = Message::from_vec(answer)
            .map_err(|e| io::Error::other(format!("unreadable upstream answer: {e}")))?;
        record.rcode = rcode_name(msg.metadata.response_code);
        let addrs: Vec<(IpAddr, u32)> = msg
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some((IpAddr::V4(a.0), r.ttl)),
                RData::AAAA(a) => Some((IpAddr::V6(a.0), r.ttl)),
                _ => None,
            })
            .collect();
        if addrs.is_empty() {
            return Ok(());
        }
        let min_ttl = addrs.iter().map(|&(_, t)| t).min().unwrap_or(0);
        let keep = lifetime(min_ttl, self.ttl_floor);
        let until = clock::boot_ns() + keep.as_nanos() as u64;
        let name = record.name.clone();
        let mut allowlist = self.allowlist.lock().expect("allowlist lock");
        for (ip, _) in &addrs {
            allowlist
                .allow(*ip, until, rule, &name)
                .map_err(io::Error::other)?;
            record.answers.push(ip.to_string());
        }
        record.ttl = Some(min_ttl);
        record.allowed_secs = Some(keep.as_secs());
        Ok(())
    }
}

/// Asks the approval flow about a lookup and waits for the answer; true when approved.
async fn ask(
    broker: &Arc<Broker>,
    name: &str,
    why: String,
    over_budget: bool,
    record: &mut DnsQuery,
) -> bool {
    let review = broker.review(Request {
        subject: Subject {
            request: RequestKind::Dns,
            pid: 0,
            program: None,
            argv: Vec::new(),
            name: Some(record.name.clone()),
            qtype: Some(record.qtype.clone()),
            credential: None,
        },
        why,
        rule: None,
        facts: Facts::Dns {
            name: name.to_string(),
            qtype: record.qtype.clone(),
            over_budget,
        },
    });
    let answer = match review {
        Review::Decided(a) => a,
        Review::Pending { id, answer } => answer.await.unwrap_or_else(|_| Answer::lost(&id)),
    };
    record.source = answer.source;
    record.approval = Some(answer.id);
    answer.verdict == Verdict::Allow
}
