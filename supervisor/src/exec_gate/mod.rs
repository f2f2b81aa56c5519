//! The exec gate: every execve/execveat of the session stops in the kernel (seccomp user
//! notification) until this gate has read what is being executed, decided, and replied.
//! It also answers the system calls the sandbox refuses, recording each attempt.
//!
//! It runs on its own thread: replies must not wait behind the async runtime. If the
//! supervisor dies, the listener closes and the held calls fail (fail closed).
pub mod target_memory;

use std::{
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
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tokio::sync::mpsc;

use crate::{
    clock,
    events::{Event, ExecRequest, SyscallDenied, Verdict, escape::escape_bytes},
    exec_policy::{ExecDecision, ExecPolicy},
};
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

/// The approval the kernel checks when the new image is in place.
fn token(kernel_filename: &[u8], argv: &[Vec<u8>]) -> ExecToken {
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
    }
}

impl Gate {
    /// Serves notifications until the listener hangs up (no process of the session is left)
    /// or `stop` is set.
    pub fn run(mut self, listener: OwnedFd, stop: Arc<AtomicBool>) {
        let fd = listener.as_raw_fd();
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
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
            let resp = self.handle(&req, fd);
            if let Err(e) = resp.respond(fd) {
                tracing::debug!("exec gate: reply to pid {}: {e}", req.pid);
            }
        }
    }

    fn handle(&mut self, req: &ScmpNotifReq, fd: i32) -> ScmpNotifResp {
        let started = Instant::now();
        let name = req.data.syscall.get_name().unwrap_or_else(|_| "?".into());
        let deny = ScmpNotifResp::new_error(req.id, -libc::EPERM, ScmpNotifRespFlags::empty());
        if name != "execve" && name != "execveat" {
            self.emit(Event::SyscallDenied(SyscallDenied {
                pid: req.pid,
                args: req.data.args.iter().map(|a| format!("{a:#x}")).collect(),
                rule: format!("seccomp:{name}"),
                syscall: name,
            }));
            return deny;
        }
        let exec = match read_exec(req, name == "execveat") {
            Ok(e) => e,
            Err(e) => {
                // Could not see what would run: refuse rather than guess.
                tracing::warn!("exec gate: reading the exec of pid {}: {e}", req.pid);
                return deny;
            }
        };
        // The pid could have been reused while we read its memory.
        if notify_id_valid(fd, req.id).is_err() {
            return deny;
        }
        let (program, resolved) = self.identify(&exec);
        let argv: Vec<String> = exec
            .argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let matched = self
            .policy
            .decide(&program, argv.get(1..).unwrap_or_default(), &self.home);
        let mut verdict = match matched.as_ref().map(|m| m.decision) {
            // `prompt` has nobody to ask yet (issue #6): it denies.
            Some(ExecDecision::Forbidden | ExecDecision::Prompt) => Verdict::Deny,
            _ => Verdict::Allow,
        };
        let mut problem = None;
        if verdict == Verdict::Allow {
            // Unread arguments cannot be bound to the approval.
            problem = if exec.argv_truncated {
                Some("arguments too large to check".to_string())
            } else {
                let t = token(&exec.kernel_filename, &exec.argv);
                self.tokens
                    .insert(req.pid, t, 0)
                    .err()
                    .map(|e| format!("recording the approval: {e}"))
            };
            if problem.is_some() {
                verdict = Verdict::Deny;
            }
        }
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
            verdict,
            source: "policy".into(),
            decision: None,
            rule: None,
            rule_source: None,
            reason: None,
            matched: Vec::new(),
            wait_us: 0,
        };
        if let Some(m) = matched {
            let is_exec_itself = m.command.first() == Some(&record.program)
                && m.command[1..] == *argv.get(1..).unwrap_or_default();
            record.decision = Some(m.decision);
            record.rule = Some(m.rule);
            record.rule_source = Some(m.source);
            record.reason = Some(if m.decision == ExecDecision::Prompt {
                format!(
                    "{}; needs approval, and no approval flow is available (denied)",
                    m.reason
                )
            } else {
                m.reason
            });
            if !is_exec_itself {
                record.matched = m
                    .command
                    .iter()
                    .map(|w| escape_bytes(w.as_bytes()))
                    .collect();
            }
        }
        if let Some(p) = problem {
            record.reason = Some(p);
        }
        record.wait_us = started.elapsed().as_micros() as u64;
        self.emit(Event::ExecRequest(record));
        match verdict {
            Verdict::Allow => ScmpNotifResp::new_continue(req.id, ScmpNotifRespFlags::empty()),
            _ => deny,
        }
    }

    /// The program's name for the rules and the resolved path of the file.
    fn identify(&self, exec: &Exec) -> (String, Option<PathBuf>) {
        // One lookup, by the kernel; the descriptor then gives the canonical path and the
        // size (a memfd's "path" is `/memfd:name (deleted)`).
        let opened = nix::fcntl::open(
            &exec.open_path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok();
        let fd_path = opened
            .as_ref()
            .map(|fd| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())));
        let resolved = fd_path.as_ref().and_then(|p| std::fs::read_link(p).ok());
        let base = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let by_name = resolved
            .as_deref()
            .and_then(base)
            .or_else(|| base(Path::new(OsStr::from_bytes(&exec.filename))))
            .unwrap_or_default();
        let by_content = opened
            .as_ref()
            .and_then(|fd| nix::sys::stat::fstat(fd).ok())
            .and_then(|st| {
                self.policy
                    .identities
                    .identify(st.st_size as u64, || File::open(fd_path.as_ref()?).ok())
                    .map(str::to_string)
            });
        (by_content.unwrap_or(by_name), resolved)
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
        let t = token(b"/usr/bin/ls", &argv);
        assert_eq!(t.tail_len, 9);
        assert_eq!(t.tail_hash, fnv1a(FNV_OFFSET, b"-la\0/tmp\0"));
        assert_eq!(t.filename_hash, fnv1a(FNV_OFFSET, b"/usr/bin/ls"));
        // A script: the kernel's argument area is `/bin/sh ./s.sh -la /tmp`; its tail is the
        // same bytes.
        assert_eq!(
            token(
                b"./s.sh",
                &[b"./s.sh".to_vec(), b"-la".to_vec(), b"/tmp".to_vec()]
            )
            .tail_hash,
            t.tail_hash
        );
        let big = vec![b'x'; 10_000];
        let t = token(b"/bin/echo", &[b"echo".to_vec(), big.clone()]);
        assert_eq!(t.tail_len, 10_001);
        let mut tail = big[big.len() - (TOKEN_TAIL_MAX - 1)..].to_vec();
        tail.push(0);
        assert_eq!(t.tail_hash, fnv1a(FNV_OFFSET, &tail));
    }
}
