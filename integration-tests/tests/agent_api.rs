//! The agent API: tool-call ids on the kernel events of the call's process subtree (in the log
//! and over OTLP), prompts redacted unless the requirements allow them, and no reports from
//! processes outside the session.
use std::{path::PathBuf, process::Stdio, time::Duration};

use warden::events::{AgentPrompt, AgentToolCall, ToolCallPhase};
use warden_integration_tests::{collector::Collector, *};

fn reporter() -> String {
    warden_bin()
        .with_file_name("warden-agent-report")
        .display()
        .to_string()
}

fn prompts(s: &Session) -> Vec<&AgentPrompt> {
    picked!(s, Event::AgentPrompt(p) => p)
}

#[test]
fn kernel_events_of_a_tool_call_carry_its_id() {
    let collector = Collector::start("127.0.7.6", 4760);
    let r = reporter();
    let script = format!(
        "/bin/true; {r} tool-call call-7 --name shell -- /bin/sh -c '/bin/true; ls / >/dev/null & wait; exit 4'; echo status=$?; /bin/true"
    );
    let url = collector.grpc_url();
    let s = run_session(
        &["--otlp-endpoint", &url, "--otlp-protocol", "grpc"],
        &["sh", "-c", &script],
    );
    assert!(s.status.success(), "{}", s.stderr);
    assert!(
        s.stdout.contains("status=4"),
        "the tool's status: {}",
        s.stdout
    );
    let tagged = |r: &Record| r.tool_call_id.as_deref() == Some("call-7");
    let calls: Vec<(&Record, &AgentToolCall)> =
        picked!(record r in s, Event::AgentToolCall(c) => (r, c));
    assert_eq!(calls.len(), 2);
    let (start, end) = (calls[0], calls[1]);
    assert_eq!(
        (start.1.phase, end.1.phase),
        (ToolCallPhase::Start, ToolCallPhase::End)
    );
    assert_eq!(start.1.name.as_deref(), Some("shell"));
    assert_eq!(end.1.status.as_deref(), Some("exit 4"));
    let (from, to) = (start.0.seq, end.0.seq);
    // Every exec, fork, exit and file record of the subtree between start and end is tagged;
    // nothing outside the subtree is.
    let subtree_execs: Vec<&Record> = s
        .records
        .iter()
        .filter(|r| matches!(r.event, Event::Exec(_)) && r.seq > from && r.seq < to)
        .collect();
    let names: Vec<&str> = subtree_execs
        .iter()
        .map(|r| match &r.event {
            Event::Exec(e) => e.filename.as_str(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        names,
        ["/bin/sh", "/bin/true", "/usr/bin/ls"],
        "{}",
        s.stderr
    );
    assert!(subtree_execs.iter().all(|r| tagged(r)), "{subtree_execs:?}");
    assert!(
        s.records
            .iter()
            .filter(|r| r.seq > from && r.seq < to)
            .filter(|r| matches!(r.event, Event::Fork(_) | Event::FileOpen(_)))
            .all(tagged)
    );
    let outside: Vec<&Record> = s
        .records
        .iter()
        .filter(|r| matches!(&r.event, Event::Exec(e) if e.filename == "/bin/true"))
        .filter(|r| !tagged(r))
        .collect();
    assert_eq!(outside.len(), 2, "the /bin/true before and after the call");
    assert!(
        s.records
            .iter()
            .filter(|r| r.seq < from)
            .all(|r| !tagged(r))
    );
    assert!(s.records.iter().filter(|r| r.seq > to).all(|r| !tagged(r)));

    // The same id reaches the collector.
    let got = collector.wait_for_session(&s.records[0].session, s.records.len());
    let ls = got
        .values()
        .find(|r| {
            r.name == "warden.exec" && r.attr("process.executable.path") == Some("/usr/bin/ls")
        })
        .expect("ls exported");
    assert_eq!(ls.attr("warden.tool_call.id"), Some("call-7"));
    let call = &got[&start.0.seq];
    assert_eq!(call.name, "warden.agent.tool_call");
    assert_eq!(call.attr("warden.tool_call.phase"), Some("start"));
}

#[test]
fn prompts_are_redacted_unless_the_requirements_allow_them() {
    let r = reporter();
    // From a file on stdin: the prompt must not reach the log through a command line.
    let dir = tempfile::tempdir().unwrap();
    let prompt = dir.path().join("prompt");
    std::fs::write(&prompt, "deploy with token hunter2").unwrap();
    let script = format!("{r} prompt < {}", prompt.display());
    let s = run_session(&[], &["sh", "-c", &script]);
    assert!(s.status.success(), "{}", s.stderr);
    let p = prompts(&s);
    assert_eq!(p.len(), 1);
    assert!(p[0].redacted && p[0].text.is_none());
    assert_eq!(p[0].bytes, 25);
    assert_eq!(
        p[0].sha256,
        warden::audit_log::line_hash(b"deploy with token hunter2")
    );
    let raw = std::fs::read_to_string(&s.log).unwrap();
    assert!(!raw.contains("hunter2"), "the prompt is nowhere in the log");

    let dir = private_dir();
    let req = requirements_file(dir.path(), "[telemetry]\nlog_prompts = true\n");
    let s = run_session(&["--requirements", &req], &["sh", "-c", &script]);
    assert!(s.status.success(), "{}", s.stderr);
    let p = prompts(&s);
    assert_eq!(p[0].text.as_deref(), Some("deploy with token hunter2"));
    assert!(!p[0].redacted);
}

#[test]
fn a_process_outside_the_session_cannot_report() {
    let state = private_dir();
    let mut child = warden_command(state.path(), &[], &["sleep", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sessions = state.path().join("sessions");
    let mut socket = PathBuf::new();
    assert!(wait_for(Duration::from_secs(5), || {
        let Some(id) = std::fs::read_dir(&sessions)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
        else {
            return false;
        };
        socket = PathBuf::from("/run/warden-agent")
            .join(format!("{}.sock", id.file_name().to_string_lossy()));
        socket.exists()
    }));
    // This test process is not in the session cgroup.
    let err = warden_agent_api::Client::connect(&socket)
        .unwrap()
        .prompt("let me in")
        .unwrap_err();
    assert!(
        err.to_string().contains("not a process of this session"),
        "{err}"
    );
    let status = child.wait().unwrap();
    assert!(status.success());
    let out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: {
            use std::io::Read;
            let mut e = Vec::new();
            child.stderr.take().unwrap().read_to_end(&mut e).unwrap();
            e
        },
    };
    let s = finish(state, out);
    assert!(prompts(&s).is_empty(), "nothing recorded from outside");
    assert!(!socket.exists(), "the socket is removed with the session");
}
