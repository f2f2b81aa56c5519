//! A real OpenTelemetry collector for the telemetry tests: rotel (`pip install rotel`, which
//! scripts/setup.sh does) on a loopback address, printing every log record it receives with
//! its attributes (`--debug-log logs --debug-log-verbosity detailed`), parsed back here.
use std::{
    collections::{BTreeMap, HashMap},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The `rotel-agent` binary: $ROTEL_AGENT, on PATH, or inside the Python package.
pub fn rotel_agent() -> PathBuf {
    rotel_available().unwrap_or_else(|| {
        panic!("rotel-agent not found: run scripts/setup.sh (pip install rotel) or set ROTEL_AGENT")
    })
}

/// Where `rotel-agent` is, if it is installed here (the stock-kernel VMs have no Python
/// packages of the host's user).
pub fn rotel_available() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ROTEL_AGENT") {
        return Some(p.into());
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("rotel-agent"))
            .find(|p| p.is_file())
    }) {
        return Some(found);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))",
        ])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    path.is_file().then_some(path)
}

/// One log record as the collector printed it.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub name: String,
    /// Attribute values as printed: `Str(x)` is `x`, `Int(5)` is `5`, others verbatim.
    pub attributes: HashMap<String, String>,
    pub resource: HashMap<String, String>,
}

impl Received {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub fn seq(&self) -> u64 {
        self.attr("warden.seq")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a record without warden.seq: {self:?}"))
    }
}

pub struct Collector {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Output files of every run (a restart starts a new one).
    outputs: Vec<PathBuf>,
}

fn value(raw: &str) -> String {
    for prefix in ["Str(", "Int(", "Bool(", "Double("] {
        if let Some(inner) = raw.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')) {
            return inner.to_string();
        }
    }
    raw.to_string()
}

/// `     -> key: Value` lines.
fn attribute(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix("-> ")?;
    let (k, v) = rest.split_once(": ")?;
    Some((k.to_string(), value(v)))
}

pub fn parse(text: &str) -> Vec<Received> {
    let mut out = Vec::new();
    let mut resource = HashMap::new();
    let mut current: Option<Received> = None;
    #[derive(PartialEq)]
    enum Section {
        Resource,
        Attributes,
        Other,
    }
    let mut section = Section::Other;
    for line in text.lines() {
        if line.starts_with("ResourceLog #") {
            out.extend(current.take());
            resource = HashMap::new();
            section = Section::Other;
        } else if line.starts_with("Resource attributes:") {
            section = Section::Resource;
        } else if line.starts_with("LogRecord #") {
            out.extend(current.take());
            current = Some(Received {
                resource: resource.clone(),
                ..Received::default()
            });
            section = Section::Other;
        } else if let Some(name) = line.strip_prefix("EventName: ") {
            if let Some(c) = current.as_mut() {
                c.name = name.to_string();
            }
        } else if line.starts_with("Attributes:") {
            section = Section::Attributes;
        } else if let Some((k, v)) = attribute(line) {
            match section {
                Section::Resource => {
                    resource.insert(k, v);
                }
                Section::Attributes => {
                    if let Some(c) = current.as_mut() {
                        c.attributes.insert(k, v);
                    }
                }
                Section::Other => {}
            }
        } else {
            section = Section::Other;
        }
    }
    out.extend(current);
    out
}

impl Collector {
    /// Starts rotel on `ip`, gRPC on `grpc_port` and HTTP on `grpc_port + 1`.
    pub fn start(ip: &str, grpc_port: u16) -> Self {
        let mut c = Collector {
            grpc: format!("{ip}:{grpc_port}").parse().unwrap(),
            http: format!("{ip}:{}", grpc_port + 1).parse().unwrap(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
            outputs: Vec::new(),
        };
        c.restart();
        c
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Stops it gracefully (SIGTERM: it prints what it received before it exits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let out = self
            .dir
            .path()
            .join(format!("rotel-{}.out", self.outputs.len()));
        let file = std::fs::File::create(&out).unwrap();
        let child = Command::new(rotel_agent())
            .arg("start")
            .args(["--otlp-grpc-endpoint", &self.grpc.to_string()])
            .args(["--otlp-http-endpoint", &self.http.to_string()])
            .args(["--exporter", "blackhole", "--disable-batching"])
            .args(["--debug-log", "logs", "--debug-log-verbosity", "detailed"])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting rotel-agent");
        self.child = Some(child);
        self.outputs.push(out);
        let up = crate::wait_for(Duration::from_secs(10), || {
            TcpStream::connect(self.grpc).is_ok() && TcpStream::connect(self.http).is_ok()
        });
        assert!(up, "rotel did not start:\n{}", self.output());
    }

    /// Everything rotel printed, over all its runs.
    pub fn output(&self) -> String {
        self.outputs
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    pub fn received(&self) -> Vec<Received> {
        parse(&self.output())
    }

    /// Records of `session`, de-duplicated by seq (at-least-once delivery may repeat some).
    pub fn session(&self, session: &str) -> BTreeMap<u64, Received> {
        self.received()
            .into_iter()
            .filter(|r| r.attr("warden.session.id") == Some(session))
            .map(|r| (r.seq(), r))
            .collect()
    }

    /// Waits until `count` distinct records of `session` arrived.
    pub fn wait_for_session(&self, session: &str, count: usize) -> BTreeMap<u64, Received> {
        crate::wait_for(Duration::from_secs(15), || {
            self.session(session).len() >= count
        });
        self.session(session)
    }

    pub fn output_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}
