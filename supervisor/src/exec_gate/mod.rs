//! The exec gate: every execve/execveat of the session stops in the kernel (seccomp user
//! notification) until this gate has read what is being executed, decided, and replied.
//! It also answers the system calls the sandbox refuses, recording each attempt, and the
//! signal calls the filter hands over (`signals.rs`).
//!
//! It runs on its own thread: replies must not wait behind the async runtime. If the
//! supervisor dies, the listener closes and the held calls fail (fail closed).
mod exe_identity;
mod interpreters;
mod signals;
mod socket_call;
mod stdio;
pub mod target_memory;

use std::{
    collections::HashMap,
    ffi::OsStr,
    fs::File,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, notify_id_valid};
use nix::{
    fcntl::OFlag,
    poll::{PollFd, PollFlags, PollTimeout, poll},
};
use tokio::sync::{mpsc, oneshot};
use warden_requirements::values::ApprovalPolicy;

use crate::{
    approvals::{Answer, Broker, Facts, Request, Review},
    clock,
    events::{
        DecisionSource, Event, ExecRequest, Interpreter, RequestKind, Subject, SyscallDenied,
        Verdict, escape::escape_bytes,
    },
    exec_policy::{Assessment, ExecDecision, ExecPolicy},
};
use exe_identity::ExeIdentity;
use target_memory::Memory;
use warden_common::{ExecToken, FILENAME_MAX, FNV_OFFSET, TOKEN_TAIL_MAX, fnv1a};

use crate::kernel::programs::ExecTokens;

const AT_FDCWD: i64 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;

pub struct Gate {
    pub policy: ExecPolicy,
    /// Where approvals go for the kernel's check at exec time.
    pub tokens: ExecTokens,
    /// The invoking user's home (rules about `~`).
    pub home: PathBuf,
    pub events: mpsc::Sender<(u64, Event)>,
    /// Who decides what needs approval.
    pub broker: Arc<Broker>,
    /// The launcher, whose first exec is the command given to `warden run`.
    pub launcher_pid: Option<u32>,
    /// The session cgroup as /proc/PID/cgroup shows it: signals may reach only its processes.
    pub session_cgroup: String,
}

enum Handled {
    Now(ScmpNotifResp),
    /// Waiting for the approval with this id.
    Held(Box<Held>, String, oneshot::Receiver<Answer>),
}

/// What an exec names, read from the caller.
struct Exec {
    syscall: &'static str,
    filename: Vec<u8>,
    /// The name the kernel gives the new image (`/dev/fd/N/...` for a relative execveat).
    kernel_filename: Vec<u8>,
    /// Where we can open the file it names, from outside the caller.
    open_path: PathBuf,
    argv: Vec<Vec<u8>>,
    argv_truncated: bool,
}

fn read_exec(req: &ScmpNotifReq, execveat: bool) -> std::io::Result<Exec> {
    let mem = Memory::open(req.pid)?;
    let a = req.data.args;
    let (path_arg, argv_arg) = if execveat { (a[1], a[2]) } else { (a[0], a[1]) };
    let (filename, _) = mem.c_string(path_arg, target_memory::MAX_PATH)?;
    let argv = mem.argv(argv_arg)?;
    let pid = req.pid;
    let rel = Path::new(OsStr::from_bytes(&filename));
    let dirfd = a[0] as i32 as i64;
    let (open_path, kernel_filename) =
        if execveat && filename.is_empty() && a[4] & AT_EMPTY_PATH != 0 {
            let fd_path = format!("/dev/fd/{dirfd}");
            (
                PathBuf::from(format!("/proc/{pid}/fd/{dirfd}")),
                fd_path.into_bytes(),
            )
        } else if rel.is_absolute() {
            (rel.to_path_buf(), filename.clone())
        } else if !execveat || dirfd == AT_FDCWD {
            (
                Path::new(&format!("/proc/{pid}/cwd")).join(rel),
                filename.clone(),
            )
        } else {
            let mut k = format!("/dev/fd/{dirfd}/").into_bytes();
            k.extend_from_slice(&filename);
            (Path::new(&format!("/proc/{pid}/fd/{dirfd}")).join(rel), k)
        };
    Ok(Exec {
        syscall: if execveat { "execveat" } else { "execve" },
        filename,
        kernel_filename,
        open_path,
        argv: argv.args,
        argv_truncated: argv.truncated,
    })
}

/// The approval the kernel checks when the new image is in place: the name the exec was
/// given, the end of the argument area of the image that runs (`argv`: a script's
/// interpreter's, holding the interpreter's argument and the script's name), and its file.
fn token(kernel_filename: &[u8], argv: &[Vec<u8>], exe: &ExeIdentity) -> ExecToken {
    let name = &kernel_filename[..kernel_filename.len().min(FILENAME_MAX - 1)];
    let mut tail = Vec::new();
    for a in argv.iter().skip(1) {
        tail.extend_from_slice(a);
        tail.push(0);
    }
    let n = tail.len().min(TOKEN_TAIL_MAX);
    ExecToken {
        filename_hash: fnv1a(FNV_OFFSET, name),
        tail_hash: fnv1a(FNV_OFFSET, &tail[tail.len() - n..]),
        tail_len: tail.len() as u32,
        _pad: 0,
        exe_name_hash: fnv1a(FNV_OFFSET, &exe.name),
        exe_ino: exe.ino,
    }
}

/// An exec held while someone decides on it.
struct Held {
    req: ScmpNotifReq,
    kernel_filename: Vec<u8>,
    /// The file the kernel will run (the last interpreter, for a script).
    exe: ExeIdentity,
    /// The argv of the image the kernel will run (a script's interpreter's).
    kernel_argv: Vec<Vec<u8>>,
    /// More arguments than the gate reads (the record's argv is cut shorter still).
    argv_unread: bool,
    record: ExecRequest,
    started: Instant,
    /// It waited for an answer (the caller may have gone meanwhile).
    waited: bool,
}

/// What the rules and the approval policy make of an exec, before anyone is asked.
#[derive(Debug, PartialEq)]
enum Route {
    Decided(Verdict, DecisionSource),
    Ask { why: String },
}

/// The rules decide first: `forbidden` denies (also when it matches a command inside a
/// wrapper or a script: it never gets to run), `prompt` asks (when it matches the exec itself;
/// a command inside a script is asked about when it is executed), `allow` allows. Otherwise
/// the `untrusted` policy asks for anything not known to be safe. The command given to
/// `warden run` is never asked about: the person who ran it approved it.
fn route(a: &Assessment, policy: ApprovalPolicy, launcher_exec: bool, inner: bool) -> Route {
    let source = |m: &crate::exec_policy::Match| {
        if m.from_requirements {
            DecisionSource::Requirements
        } else {
            DecisionSource::Policy
        }
    };
    match &a.matched {
        Some(m) if m.decision == ExecDecision::Forbidden => {
            Route::Decided(Verdict::Deny, source(m))
        }
        _ if launcher_exec => Route::Decided(Verdict::Allow, DecisionSource::User),
        Some(m) if m.decision == ExecDecision::Prompt && !inner => Route::Ask {
            why: format!("{} ({})", m.rule, m.reason),
        },
        Some(m) if m.decision == ExecDecision::Allow => Route::Decided(Verdict::Allow, source(m)),
        // No rule, or a `prompt` for a command inside a script (asked about when it runs).
        _ if policy == ApprovalPolicy::Untrusted && !a.known_safe => Route::Ask {
            why: "approval policy `untrusted`: not a known-safe command".into(),
        },
        _ => Route::Decided(Verdict::Allow, DecisionSource::Policy),
    }
}

impl Gate {
    /// Serves notifications until the listener hangs up (no process of the session is left)
    /// or `stop` is set. Execs that wait for an approval are held (the others go on meanwhile)
    /// and answered when the decision arrives.
    pub fn run(mut self, listener: OwnedFd, stop: Arc<AtomicBool>) {
        let fd = listener.as_raw_fd();
        let (wake_rx, wake_tx) = match nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("exec gate: pipe: {e}");
                return;
            }
        };
        let wake_tx = Arc::new(wake_tx);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<(u64, Answer)>();
        let mut held: HashMap<u64, Box<Held>> = HashMap::new();
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake_rx.as_fd(), PollFlags::POLLIN),
            ];
            // Wakes up now and then to notice `stop`.
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!("exec gate: poll: {e}");
                    return;
                }
            }
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if fds[1]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN))
            {
                let mut buf = [0u8; 64];
                while nix::unistd::read(&wake_rx, &mut buf).is_ok_and(|n| n > 0) {}
                while let Ok((notif, answer)) = done_rx.try_recv() {
                    if let Some(h) = held.remove(&notif) {
                        let pid = h.req.pid;
                        if let Err(e) = self.finish(*h, Some(answer), fd).respond(fd) {
                            tracing::debug!("exec gate: reply to pid {pid}: {e}");
                        }
                    }
                }
            }
            if !revents.contains(PollFlags::POLLIN) {
                if revents.contains(PollFlags::POLLHUP) {
                    return;
                }
                continue;
            }
            // The caller may be gone already (killed): nothing to answer then.
            let Ok(req) = ScmpNotifReq::receive(fd) else {
                continue;
            };
            match self.handle(req, fd) {
                Handled::Now(resp) => {
                    if let Err(e) = resp.respond(fd) {
                        tracing::debug!("exec gate: reply to pid {}: {e}", req.pid);
                    }
                }
                Handled::Held(mut h, approval, answer) => {
                    let notif = h.req.id;
                    h.waited = true;
                    held.insert(notif, h);
                    let (done_tx, wake_tx) = (done_tx.clone(), wake_tx.clone());
                    self.broker.runtime().spawn(async move {
                        let answer = answer.await.unwrap_or_else(|_| Answer::lost(&approval));
                        let _ = done_tx.send((notif, answer));
                        let _ = nix::unistd::write(&*wake_tx, &[1]);
                    });
                }
            }
        }
    }

    fn handle(&mut self, req: ScmpNotifReq, fd: i32) -> Handled {
        let started = Instant::now();
        let name = req.data.syscall.get_name().unwrap_or_else(|_| "?".into());
        let deny = ScmpNotifResp::new_error(req.id, -libc::EPERM, ScmpNotifRespFlags::empty());
        let procs = signals::Proc {
            session_cgroup: &self.session_cgroup,
        };
        if signals::decides(&name) && signals::permitted(&name, &req.data.args, req.pid, &procs) {
            // The caller could have died (and its pid been reused) while we looked.
            if notify_id_valid(fd, req.id).is_err() {
                return Handled::Now(deny);
            }
            return Handled::Now(ScmpNotifResp::new_continue(
                req.id,
                ScmpNotifRespFlags::empty(),
            ));
        }
        if name != "execve" && name != "execveat" {
            self.broker.note_refusal();
            self.emit(Event::SyscallDenied(SyscallDenied {
                pid: req.pid,
                args: req.data.args.iter().map(|a| format!("{a:#x}")).collect(),
                rule: format!("seccomp:{name}"),
                socket: socket_call::decode(&name, &req.data.args),
                syscall: name,
            }));
            return Handled::Now(deny);
        }
        let exec = match read_exec(&req, name == "execveat") {
            Ok(e) => e,
            Err(e) => {
                // Could not see what would run: refuse rather than guess.
                tracing::warn!("exec gate: reading the exec of pid {}: {e}", req.pid);
                return Handled::Now(deny);
            }
        };
        let stdio_sockets = stdio::network_sockets(req.pid);
        // The pid could have been reused while we read its memory and fds.
        if notify_id_valid(fd, req.id).is_err() {
            return Handled::Now(deny);
        }
        let opened = exe_identity::Opened::open(&exec.open_path);
        let (program, resolved) = self.identify(opened.as_ref(), &exec.filename);
        let argv: Vec<String> = exec
            .argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let chain = match self.interpreters(&exec, req.pid) {
            Ok(chain) => chain,
            Err(why) => {
                tracing::warn!("exec gate: exec of pid {}: {why:?}", req.pid);
                return Handled::Now(deny);
            }
        };
        // What the kernel runs last: the last interpreter, else the file itself.
        let exe = match chain.last() {
            Some((link, _)) => exe_identity::of(&interpreters::open_path(req.pid, &link.path)),
            None => opened.as_ref().and_then(exe_identity::of_opened),
        }
        .unwrap_or_default();
        let links: Vec<interpreters::Link> = chain.iter().map(|(l, _)| l.clone()).collect();
        let mut levels = interpreters::levels(&exec.argv, &links);
        let lossy = |a: &[Vec<u8>]| -> Vec<String> {
            a.iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        };
        let execs: Vec<(String, Vec<String>)> = std::iter::once(program.clone())
            .chain(chain.iter().map(|(_, r)| r.program.clone()))
            .zip(&levels)
            .map(|(p, argv)| (p, lossy(argv.get(1..).unwrap_or_default())))
            .collect();
        let assessment = self.policy.assess_all(&execs, &self.home);
        let launcher_exec = self.launcher_pid.take_if(|p| *p == req.pid).is_some();
        let inner = assessment.matched.as_ref().is_some_and(|m| {
            m.command.first() != Some(&program)
                || m.command[1..] != *argv.get(1..).unwrap_or_default()
        });
        let route = route(
            &assessment,
            self.broker.config().policy,
            launcher_exec,
            inner,
        );
        let (escaped_argv, cut) = crate::events::escape::escape_argv(
            exec.argv.iter().map(Vec::as_slice),
            warden_common::ARGV_MAX,
        );
        let mut record = ExecRequest {
            pid: req.pid,
            syscall: exec.syscall.into(),
            filename: escape_bytes(&exec.filename),
            resolved: resolved.map(|p| escape_bytes(p.as_os_str().as_encoded_bytes())),
            program,
            argv: escaped_argv,
            argv_truncated: cut || exec.argv_truncated,
            verdict: Verdict::Deny,
            source: DecisionSource::Policy,
            approval: None,
            decision: None,
            rule: None,
            rule_source: None,
            reason: None,
            matched: Vec::new(),
            interpreters: chain.into_iter().map(|(_, r)| r).collect(),
            stdio_sockets,
            wait_us: 0,
        };
        if let Some(m) = &assessment.matched {
            record.decision = Some(m.decision);
            record.rule = Some(m.rule.clone());
            record.rule_source = Some(m.source.clone());
            record.reason = Some(m.reason.clone());
            if inner {
                record.matched = m
                    .command
                    .iter()
                    .map(|w| escape_bytes(w.as_bytes()))
                    .collect();
            }
        }
        let mut held = Held {
            req,
            kernel_filename: exec.kernel_filename,
            exe,
            kernel_argv: levels.pop().unwrap_or_default(),
            argv_unread: exec.argv_truncated,
            record,
            started,
            waited: false,
        };
        match route {
            Route::Decided(verdict, source) => {
                held.record.verdict = verdict;
                held.record.source = source;
                Handled::Now(self.finish(held, None, fd))
            }
            // A shell searching PATH tries names that do not exist: nothing to approve there.
            Route::Ask { .. } if held.record.resolved.is_none() && !exec.open_path.exists() => {
                held.record.reason = Some("no such file: nothing to approve".into());
                held.record.wait_us = started.elapsed().as_micros() as u64;
                let resp =
                    ScmpNotifResp::new_error(req.id, -libc::ENOENT, ScmpNotifRespFlags::empty());
                self.emit(Event::ExecRequest(Box::new(held.record)));
                Handled::Now(resp)
            }
            Route::Ask { why } => {
                let request = Request {
                    subject: Subject {
                        request: RequestKind::Exec,
                        pid: req.pid,
                        program: Some(held.record.program.clone()),
                        argv: held.record.argv.clone(),
                        name: None,
                        qtype: None,
                        credential: None,
                    },
                    why,
                    rule: held.record.rule.clone(),
                    facts: Facts::Exec {
                        commands: assessment.commands,
                        known_safe: assessment.known_safe,
                        writes_file: assessment.writes_file,
                        required_prompt: assessment
                            .matched
                            .as_ref()
                            .is_some_and(|m| m.from_requirements),
                        cwd: std::fs::read_link(format!("/proc/{}/cwd", req.pid)).ok(),
                    },
                };
                match self.broker.review(request) {
                    Review::Decided(answer) => Handled::Now(self.finish(held, Some(answer), fd)),
                    Review::Pending { id, answer } => Handled::Held(Box::new(held), id, answer),
                }
            }
        }
    }

    /// Replies to a decided exec: an allowed one gets its approval stored for the kernel's
    /// check at exec time, then goes on.
    fn finish(&mut self, mut h: Held, answer: Option<Answer>, fd: i32) -> ScmpNotifResp {
        // The broker counts the refusals it decides itself.
        let by_broker = answer.is_some();
        if let Some(a) = answer {
            h.record.verdict = a.verdict;
            h.record.source = a.source;
            h.record.approval = Some(a.id);
            h.record.reason = Some(match h.record.reason.take() {
                Some(r) => format!("{r}; {}", a.reason),
                None => a.reason,
            });
        }
        if h.record.verdict == Verdict::Allow {
            // Unread arguments cannot be bound to the approval; a process that went away
            // while it waited has nothing to approve.
            let problem = if h.argv_unread {
                Some("arguments too large to check".to_string())
            } else if h.waited && notify_id_valid(fd, h.req.id).is_err() {
                Some("the process went away while it waited".to_string())
            } else {
                let t = token(&h.kernel_filename, &h.kernel_argv, &h.exe);
                self.tokens
                    .insert(h.req.pid, t, 0)
                    .err()
                    .map(|e| format!("recording the approval: {e}"))
            };
            if let Some(p) = problem {
                h.record.verdict = Verdict::Deny;
                h.record.reason = Some(p);
            }
        } else if !by_broker {
            self.broker.note_refusal();
        }
        h.record.wait_us = h.started.elapsed().as_micros() as u64;
        let resp = if h.record.verdict == Verdict::Allow {
            ScmpNotifResp::new_continue(h.req.id, ScmpNotifRespFlags::empty())
        } else {
            ScmpNotifResp::new_error(h.req.id, -libc::EPERM, ScmpNotifRespFlags::empty())
        };
        self.emit(Event::ExecRequest(Box::new(h.record)));
        resp
    }

    /// The program's name for the rules and the resolved path of the `opened` file (named
    /// `filename` by the caller). One lookup, by the kernel; the descriptor then gives the
    /// canonical path and the size (a memfd's "path" is `/memfd:name (deleted)`).
    fn identify(
        &self,
        opened: Option<&exe_identity::Opened>,
        filename: &[u8],
    ) -> (String, Option<PathBuf>) {
        let resolved = opened.and_then(|o| o.resolved.clone());
        let base = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let by_name = resolved
            .as_deref()
            .and_then(base)
            .or_else(|| base(Path::new(OsStr::from_bytes(filename))))
            .unwrap_or_default();
        let by_content = opened.and_then(|o| {
            let st = o.st.as_ref()?;
            self.policy
                .identities
                .identify(st.st_size as u64, || File::open(o.fd_path()).ok())
                .map(str::to_string)
        });
        (by_content.unwrap_or(by_name), resolved)
    }

    /// The interpreters the kernel will run for this exec, each with its record; Err when the
    /// chain cannot be followed (the exec is refused: what would run is unknown).
    fn interpreters(
        &self,
        exec: &Exec,
        pid: u32,
    ) -> Result<Vec<(interpreters::Link, Interpreter)>, interpreters::Unfollowable> {
        // A file that cannot be read here cannot be run by its caller either; the kernel
        // says why when it tries.
        let Some(head) = interpreters::read_head(&exec.open_path) else {
            return Ok(Vec::new());
        };
        let handlers = interpreters::Handlers::current();
        let open = |p: &[u8]| interpreters::read_head(&interpreters::open_path(pid, p));
        // The kernel passes its own name of the file on (`/dev/fd/N` for an execveat).
        let chain = interpreters::follow(&exec.kernel_filename, &head, &handlers, &open)?;
        Ok(chain
            .into_iter()
            .map(|link| {
                let at = interpreters::open_path(pid, &link.path);
                let opened = exe_identity::Opened::open(&at);
                let (program, _) = self.identify(opened.as_ref(), &link.path);
                let record = Interpreter {
                    path: escape_bytes(&link.path),
                    program,
                    via: link.via.clone(),
                };
                (link, record)
            })
            .collect())
    }

    fn emit(&self, event: Event) {
        // Blocks when the log is behind: the exec waits rather than going unrecorded.
        let _ = self.events.blocking_send((clock::boot_ns(), event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_covers_the_argument_tail_the_kernel_sees() {
        let argv = [b"ls".to_vec(), b"-la".to_vec(), b"/tmp".to_vec()];
        let exe = ExeIdentity {
            name: b"ls".to_vec(),
            ino: 42,
        };
        let t = token(b"/usr/bin/ls", &argv, &exe);
        assert_eq!(t.exe_name_hash, fnv1a(FNV_OFFSET, b"ls"));
        assert_eq!(t.exe_ino, 42);
        assert_eq!(t.tail_len, 9);
        assert_eq!(t.tail_hash, fnv1a(FNV_OFFSET, b"-la\0/tmp\0"));
        assert_eq!(t.filename_hash, fnv1a(FNV_OFFSET, b"/usr/bin/ls"));
        // A script: the kernel's argument area is `/bin/sh ./s.sh -la /tmp`; the tail binds
        // the script's name too (and an interpreter's argument, which comes before it).
        let script = token(
            b"./s.sh",
            &[
                b"/bin/sh".to_vec(),
                b"./s.sh".to_vec(),
                b"-la".to_vec(),
                b"/tmp".to_vec(),
            ],
            &exe,
        );
        assert_eq!(script.tail_hash, fnv1a(FNV_OFFSET, b"./s.sh\0-la\0/tmp\0"));
        let big = vec![b'x'; 10_000];
        let t = token(b"/bin/echo", &[b"echo".to_vec(), big.clone()], &exe);
        assert_eq!(t.tail_len, 10_001);
        let mut tail = big[big.len() - (TOKEN_TAIL_MAX - 1)..].to_vec();
        tail.push(0);
        assert_eq!(t.tail_hash, fnv1a(FNV_OFFSET, &tail));
    }
}
