//! What runs beside the command and makes events: the pipeline that writes them, the exporter,
//! the agent API, the approval flow, the DNS proxy, the requirements watch, the exec gate.
//! Stopped in one order (`stop`): every producer before the pipeline's last drain.
use std::{
    io,
    net::SocketAddr,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use tokio::{
    sync::{Notify, mpsc, oneshot},
    task::JoinHandle,
};

use super::{EXPIRY_SWEEP, TERMINAL_GRACE, kernel_side::Emptied};
use crate::{
    agent_api::{self, AgentApi},
    approvals::{self, Broker},
    clock, credentials,
    events::{DecisionSource, Event},
    exec_gate::Gate,
    exec_policy::ExecPolicy,
    freezer::Freezer,
    kernel::programs::{EventSource, ExecTokens},
    live_triage::Asker,
    network::{
        allowlist::Allowlist,
        dns_budget::{self, DnsBudget},
        dns_proxy::{self, Proxy, Unlisted},
        policy::NetworkPolicy,
    },
    otlp,
    pipeline::{Finished, Pipeline},
    target_user::TargetUser,
};

/// What the services are made from.
pub struct ServicesSetup<'a> {
    pub id: &'a str,
    pub run_dir: &'a Path,
    pub user: &'a TargetUser,
    pub pipeline: Pipeline,
    pub source: EventSource,
    /// The exporter, started before the log's first record; follows the log from here.
    pub telemetry: Option<otlp::live::LiveExport>,
    pub log_path: &'a Path,
    pub session_dir: &'a Path,
    /// The session cgroup's freezer (the exporter's backlog pause, live triage's questions).
    pub freezer: Arc<Freezer>,
    /// The session cgroup as /proc/PID/cgroup shows it.
    pub session_cgroup: &'a str,
    pub log_prompts: bool,
    pub approvals: approvals::Options,
    pub workspace: PathBuf,
    pub protected: Vec<PathBuf>,
    pub policy: Arc<NetworkPolicy>,
    pub allowlist: Arc<Mutex<Allowlist>>,
    pub proxy_sockets: dns_proxy::Sockets,
    pub upstreams: Vec<SocketAddr>,
    pub ttl_floor: Duration,
    pub dns_budget: dns_budget::Limits,
    pub requirement_paths: warden_requirements::LayerPaths,
    pub credentials: SessionCredentials,
    /// Woken when the terminal hangs up during an approval prompt.
    pub hangup: Arc<Notify>,
    /// The service started the session: its standard input is the client's terminal.
    pub passed_terminal: bool,
}

/// The session's credentials that services deliver (`env` ones are set at launch).
pub struct SessionCredentials {
    pub helper: credentials::helper::Helper,
    /// `inject`: the credentials and the proxy's bound socket.
    pub inject: Option<(
        Vec<credentials::inject::Injected>,
        credentials::inject::Listener,
    )>,
    /// Trust only this CA for the real servers behind `inject`.
    pub upstream_ca: Option<PathBuf>,
    /// Where the agent's CA file goes.
    pub ca_dir: PathBuf,
}

pub struct Services {
    /// Ends early only when the log cannot be written.
    pub pipeline: JoinHandle<io::Result<Finished>>,
    stop_pipeline: oneshot::Sender<()>,
    pub telemetry: Option<otlp::live::Following>,
    pub agent_api: AgentApi,
    broker: Arc<Broker>,
    /// Taken by the gate if it starts; dropped otherwise, so the pipeline knows no more comes.
    gate_events: Option<mpsc::Sender<(u64, Event)>>,
    gate: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Whoever may answer requests: the approvals socket and the terminal prompt.
    approvers: Option<Approvers>,
    proxy: JoinHandle<io::Result<()>>,
    credential_proxy: Option<credentials::inject::Running>,
    watch: JoinHandle<()>,
    sweep: JoinHandle<()>,
    dns_budget: Arc<Mutex<DnsBudget>>,
}

/// How the services ended: the pipeline's result (none when it had already failed), and what
/// the session's end still needs.
pub struct Stopped {
    pub finished: Option<anyhow::Result<Finished>>,
    pub telemetry: Option<otlp::live::Following>,
    /// Domains whose DNS budget entries were evicted (the table is bounded).
    pub dns_evicted: u64,
}

impl Services {
    pub fn start(s: ServicesSetup<'_>) -> anyhow::Result<Self> {
        let (events, events_rx) = mpsc::channel(1024);
        let (stop_pipeline, stop_rx) = oneshot::channel();
        // Bound before the request ids are picked: see `approvals::ids`.
        let socket = (!s.approvals.unattended)
            .then(|| approvals::socket::bind(&approvals::socket::path(s.run_dir, s.id)))
            .transpose()
            .context("binding the approvals socket")?;
        let request_tag = approvals::ids::tag(s.id, &approvals::socket::live_sessions(s.run_dir));
        let broker = Broker::new(
            approvals::Config {
                session: s.id.to_string(),
                request_tag,
                options: s.approvals,
                risk: approvals::risk::Context {
                    workspace: s.workspace,
                    home: s.user.home.clone(),
                    protected: s.protected,
                },
            },
            events.clone(),
            tokio::runtime::Handle::current(),
        );
        let mut pipeline = s.pipeline;
        pipeline.triage_asks(Asker {
            broker: Arc::downgrade(&broker),
            freezer: s.freezer.clone(),
        });
        let pipeline = tokio::spawn(pipeline.run(s.source, events_rx, stop_rx));
        let telemetry = s
            .telemetry
            .map(|t| t.follow(s.log_path, s.session_dir, s.freezer.clone(), &events));
        let agent_api = agent_api::serve(
            Path::new(agent_api::SOCKET_DIR),
            s.id,
            s.session_cgroup.to_string(),
            s.log_prompts,
            events.clone(),
            s.credentials.helper.approved_by(broker.clone()),
        )
        .with_context(|| format!("the agent API socket in {}", agent_api::SOCKET_DIR))?;
        let terminal = approvals::terminal::Terminal::find(s.passed_terminal, s.freezer.clone());
        let approvers =
            socket.map(|socket| start_approvers(&broker, socket, s.user, s.hangup, terminal));
        let dns_budget = Arc::new(Mutex::new(DnsBudget::new(s.dns_budget)));
        let (credential_proxy, steered) = match s.credentials.inject {
            Some((injected, listener)) => {
                let steered = credentials::inject::steered(&injected, listener.addr);
                let running = credentials::inject::start(
                    injected,
                    listener,
                    credentials::inject::Setup {
                        session_id: s.id,
                        dir: &s.credentials.ca_dir,
                        upstreams: s.upstreams.clone(),
                        upstream_ca: s.credentials.upstream_ca.as_deref(),
                        events: events.clone(),
                    },
                )
                .context("starting the credential proxy")?;
                (Some(running), steered)
            }
            None => (None, Default::default()),
        };
        let proxy = Arc::new(Proxy {
            policy: s.policy,
            allowlist: s.allowlist.clone(),
            upstreams: s.upstreams,
            ttl_floor: s.ttl_floor,
            events: events.clone(),
            unlisted: if broker.config().managed_domains_only {
                Unlisted::Deny(DecisionSource::Requirements)
            } else {
                Unlisted::Ask(broker.clone())
            },
            budget: dns_budget.clone(),
            steered,
        });
        let proxy = tokio::spawn(proxy.serve(s.proxy_sockets));
        let watch = tokio::spawn(crate::requirements_watch::watch(
            s.requirement_paths,
            events.clone(),
        ));
        let sweep = tokio::spawn(sweep_expired(s.allowlist));
        Ok(Self {
            pipeline,
            stop_pipeline,
            telemetry,
            agent_api,
            broker,
            gate_events: Some(events),
            gate: None,
            approvers,
            proxy,
            credential_proxy,
            watch,
            sweep,
            dns_budget,
        })
    }

    /// The CA file the agent trusts, when the session injects credentials.
    pub fn ca_file(&self) -> Option<&Path> {
        self.credential_proxy.as_ref().map(|p| p.ca_file.as_path())
    }

    /// Starts the exec gate on the launcher's seccomp listener.
    pub fn start_gate(&mut self, gate: GateSetup, listener: OwnedFd) {
        let gate = Gate {
            tokens: gate.tokens,
            policy: gate.policy,
            home: gate.home,
            events: self.gate_events.take().expect("the gate starts once"),
            broker: self.broker.clone(),
            launcher_pid: gate.launcher_pid,
            session_cgroup: gate.session_cgroup,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || gate.run(listener, stop)
        });
        self.gate = Some((stop, thread));
    }

    /// No gate will start (the command did not): the pipeline must not wait for its events.
    pub fn no_more_gate(&mut self) {
        self.gate_events = None;
    }

    /// Stops every producer of events, then (unless it already failed) lets the pipeline
    /// drain what is left and return the log. Needs the session's processes gone: none of
    /// them can make an event after the last drain.
    pub async fn stop(self, _emptied: &Emptied, pipeline_failed: bool) -> Stopped {
        if let Some(t) = &self.telemetry {
            t.state(otlp::SessionState::Ending);
        }
        self.proxy.abort();
        if let Some(p) = self.credential_proxy {
            p.stop().await;
        }
        drop(self.agent_api);
        self.sweep.abort();
        self.watch.abort();
        if let Some(a) = &self.approvers {
            a.socket.abort();
        }
        // Whatever still waits for an answer (a held DNS answer) is refused, and the records
        // of the approval flow can be the last ones. A prompt on the terminal is taken down and
        // the terminal given back before Warden exits.
        self.broker.close();
        let (socket, terminal) = match self.approvers {
            Some(a) => (Some(a.socket), a.terminal),
            None => (None, None),
        };
        if let Some(t) = terminal
            && tokio::time::timeout(TERMINAL_GRACE, t).await.is_err()
        {
            tracing::warn!("the terminal prompt did not end in time");
        }
        if let Some((stop, thread)) = self.gate {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        if let Some(t) = socket {
            let _ = t.await;
        }
        drop(self.broker);
        drop(self.gate_events);
        let finished = if pipeline_failed {
            None
        } else {
            let _ = self.proxy.await;
            let _ = self.watch.await;
            let _ = self.stop_pipeline.send(());
            Some(match self.pipeline.await {
                Ok(result) => result.context("the event pipeline"),
                Err(e) => Err(anyhow::anyhow!(e)),
            })
        };
        // Read once the proxy has ended (an aborted task may still be finishing a lookup).
        let dns_evicted = self.dns_budget.lock().expect("budget lock").evicted();
        Stopped {
            finished,
            telemetry: self.telemetry,
            dns_evicted,
        }
    }
}

/// What the exec gate needs besides the services'.
pub struct GateSetup {
    pub tokens: ExecTokens,
    pub policy: ExecPolicy,
    pub home: PathBuf,
    pub launcher_pid: Option<u32>,
    pub session_cgroup: String,
}

struct Approvers {
    socket: JoinHandle<()>,
    terminal: Option<JoinHandle<()>>,
}

/// Serves the approvals socket, and the terminal prompt when Warden has a terminal.
fn start_approvers(
    broker: &Arc<Broker>,
    socket: approvals::socket::Server,
    user: &TargetUser,
    hangup: Arc<Notify>,
    terminal: Option<approvals::terminal::Terminal>,
) -> Approvers {
    let socket = tokio::spawn(socket.serve(
        broker.clone(),
        approvals::socket::Approvers {
            uid: user.uid,
            gid: broker.config().approvers_gid,
        },
    ));
    let terminal = terminal.map(|terminal| {
        let (queue, prompts) = mpsc::unbounded_channel();
        broker.attach_terminal(queue);
        tokio::spawn(approvals::terminal::serve(
            broker.clone(),
            prompts,
            hangup,
            terminal,
        ))
    });
    Approvers { socket, terminal }
}

/// Removes DNS-derived addresses from the allow maps when their time is up.
async fn sweep_expired(allowlist: Arc<Mutex<Allowlist>>) {
    let mut tick = tokio::time::interval(EXPIRY_SWEEP);
    loop {
        tick.tick().await;
        let removed = allowlist
            .lock()
            .expect("allowlist lock")
            .remove_expired(clock::boot_ns());
        for ip in removed {
            tracing::debug!("{ip}: DNS-derived allowance expired");
        }
    }
}
