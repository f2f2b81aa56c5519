use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::events::RequestKind;

struct Harness {
    broker: Arc<Broker>,
    events: mpsc::Receiver<(u64, Event)>,
}

fn harness(policy: ApprovalPolicy, reviewer: Reviewer, f: impl FnOnce(&mut Config)) -> Harness {
    let (tx, rx) = mpsc::channel(64);
    let mut cfg = Config {
        session: "0123456789abcdef".into(),
        request_tag: "89abcdef".into(),
        options: Options {
            policy,
            reviewer,
            reviewer_command: None,
            timeout: Duration::from_secs(30),
            reviewer_timeout: Duration::from_secs(5),
            unattended: false,
            approvers_gid: None,
            managed_domains_only: false,
        },
        risk: risk::Context {
            workspace: "/work/project".into(),
            home: "/home/u".into(),
            protected: vec!["/home/u/.ssh".into()],
        },
    };
    f(&mut cfg);
    Harness {
        broker: Broker::new(cfg, tx, tokio::runtime::Handle::current()),
        events: rx,
    }
}

fn exec_request(argv: &[&str], known_safe: bool) -> Request {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    Request {
        subject: Subject {
            request: RequestKind::Exec,
            pid: 42,
            program: Some(argv[0].clone()),
            argv: argv.clone(),
            name: None,
            qtype: None,
            credential: None,
        },
        why: "test".into(),
        rule: Some("exec.rules=x".into()),
        facts: Facts::Exec {
            commands: vec![argv],
            known_safe,
            writes_file: false,
            required_prompt: false,
            cwd: None,
        },
    }
}

fn dns_request(name: &str) -> Request {
    Request {
        subject: Subject {
            request: RequestKind::Dns,
            pid: 0,
            program: None,
            argv: Vec::new(),
            name: Some(name.into()),
            qtype: Some("A".into()),
            credential: None,
        },
        why: "unknown".into(),
        rule: None,
        facts: Facts::Dns {
            name: name.into(),
            qtype: "A".into(),
            over_budget: false,
        },
    }
}

fn decided(r: Review) -> Answer {
    match r {
        Review::Decided(a) => a,
        Review::Pending { id, .. } => panic!("{id} is pending"),
    }
}

async fn pending(r: Review) -> (String, oneshot::Receiver<Answer>) {
    match r {
        Review::Pending { id, answer } => (id, answer),
        Review::Decided(a) => panic!("decided: {a:?}"),
    }
}

impl Harness {
    /// The next record of `kind`.
    async fn next(&mut self, kind: &str) -> Event {
        loop {
            let (_, e) = tokio::time::timeout(Duration::from_secs(5), self.events.recv())
                .await
                .expect("a record in time")
                .expect("open");
            if e.kind() == kind {
                return e;
            }
        }
    }
}

#[tokio::test]
async fn never_denies_without_asking() {
    let mut h = harness(ApprovalPolicy::Never, Reviewer::User, |_| {});
    let a = decided(h.broker.review(exec_request(&["npm", "publish"], false)));
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::Deny, DecisionSource::Policy)
    );
    let Event::Approval(rec) = h.next("approval").await else {
        unreachable!()
    };
    assert_eq!(rec.policy, "never");
    assert_eq!(rec.verdict, Verdict::Deny);
}

#[tokio::test]
async fn auto_review_approves_low_refuses_critical_and_asks_about_the_rest() {
    let mut h = harness(ApprovalPolicy::OnRequest, Reviewer::AutoReview, |_| {});
    let a = decided(h.broker.review(exec_request(&["cargo", "test"], false)));
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::Allow, DecisionSource::AutoReview)
    );
    assert!(a.reason.starts_with("low risk"), "{}", a.reason);
    let a = decided(
        h.broker
            .review(exec_request(&["cat", "/home/u/.ssh/id_rsa"], true)),
    );
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::Deny, DecisionSource::AutoReview)
    );
    assert!(a.reason.contains("protected path"), "{}", a.reason);
    // The rest goes to a person, and the record says what the classifier thought: an
    // unknown domain is medium, one step higher after the refusal above.
    let (id, _rx) = pending(h.broker.review(dns_request("example.com"))).await;
    let Event::ApprovalRequest(req) = h.next("approval.request").await else {
        unreachable!()
    };
    assert_eq!(req.id, id);
    assert_eq!(req.asked, DecisionSource::User);
    let risk = req.risk.clone().unwrap();
    assert_eq!(risk.level, RiskLevel::High, "{risk:?}");
    assert!(
        risk.reasons
            .iter()
            .any(|r| r.contains("not a known developer service"))
    );
    assert!(risk.reasons.iter().any(|r| r.contains("refused 1 time")));
}

#[tokio::test]
async fn unattended_sessions_deny_what_needs_a_person() {
    let h = harness(ApprovalPolicy::OnRequest, Reviewer::AutoReview, |c| {
        c.options.unattended = true
    });
    let a = decided(h.broker.review(dns_request("example.com")));
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::Deny, DecisionSource::AutoReview)
    );
    assert!(a.reason.contains("unattended"), "{}", a.reason);
    let h = harness(ApprovalPolicy::OnRequest, Reviewer::User, |c| {
        c.options.unattended = true
    });
    let a = decided(h.broker.review(dns_request("example.com")));
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::Deny, DecisionSource::Policy)
    );
}

#[tokio::test]
async fn a_person_answers_identical_requests_at_once_and_session_approvals_are_reused() {
    let mut h = harness(ApprovalPolicy::OnRequest, Reviewer::User, |_| {});
    let (id, first) = pending(h.broker.review(exec_request(&["make", "deploy"], false))).await;
    let (same, second) = pending(h.broker.review(exec_request(&["make", "deploy"], false))).await;
    assert_eq!(id, same, "identical requests wait for one answer");
    assert_eq!(h.broker.pending().len(), 1);
    let reply = Reply {
        approve: true,
        scope: Scope::Session,
        reason: None,
    };
    h.broker.answer(&id, &reply, "uid 1000".into()).unwrap();
    assert_eq!(
        h.broker.answer(&id, &reply, "uid 1000".into()),
        Err(AnswerError::NotPending(id.clone()))
    );
    for rx in [first, second] {
        let a = rx.await.unwrap();
        assert_eq!(
            (a.verdict, a.scope, a.source),
            (Verdict::Allow, Scope::Session, DecisionSource::User)
        );
        assert_eq!(a.by.as_deref(), Some("uid 1000"));
    }
    // Later: decided by the session rule, without asking.
    let a = decided(h.broker.review(exec_request(&["make", "deploy"], false)));
    assert_eq!((a.verdict, a.id.as_str()), (Verdict::Allow, id.as_str()));
    assert!(a.reason.contains("approved for the session"));
    // A different command is asked again.
    pending(h.broker.review(exec_request(&["make", "clean"], false))).await;
    let Event::Approval(rec) = h.next("approval").await else {
        unreachable!()
    };
    assert_eq!(rec.scope, Scope::Session);
}

#[tokio::test]
async fn a_denial_covers_retries_only_and_nobody_answering_denies() {
    let h = harness(ApprovalPolicy::OnRequest, Reviewer::User, |c| {
        c.options.timeout = Duration::from_millis(200)
    });
    let (id, rx) = pending(h.broker.review(exec_request(&["make", "deploy"], false))).await;
    let deny = Reply {
        approve: false,
        scope: Scope::Session,
        reason: Some("not today".into()),
    };
    h.broker.answer(&id, &deny, "terminal".into()).unwrap();
    let a = rx.await.unwrap();
    assert_eq!((a.verdict, a.scope), (Verdict::Deny, Scope::Once));
    assert_eq!(a.reason, "not today");
    // The same process retrying at once (a shell trying the next PATH entry) is not asked
    // about again...
    let again = decided(h.broker.review(exec_request(&["make", "deploy"], false)));
    assert_eq!(
        (again.verdict, again.id.as_str()),
        (Verdict::Deny, id.as_str())
    );
    assert!(again.reason.contains("denied moments ago"));
    // ...another process is: a denial is never a session rule.
    let mut other = exec_request(&["make", "deploy"], false);
    other.subject.pid = 43;
    let (_, rx) = pending(h.broker.review(other)).await;
    let a = rx.await.unwrap();
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::Deny, DecisionSource::Timeout)
    );
    assert!(h.broker.pending().is_empty());
}

/// A frozen session's held exec is restarted by the kernel when it thaws: the same request of
/// the same process gets the answer just given, once; another process is asked.
#[tokio::test]
async fn an_approval_once_covers_the_same_exec_restarted() {
    let h = harness(ApprovalPolicy::OnRequest, Reviewer::User, |c| {
        c.options.timeout = Duration::from_millis(200)
    });
    let (id, rx) = pending(h.broker.review(exec_request(&["make", "deploy"], false))).await;
    let once = Reply {
        approve: true,
        scope: Scope::Once,
        reason: None,
    };
    h.broker.answer(&id, &once, "the terminal".into()).unwrap();
    assert_eq!(rx.await.unwrap().verdict, Verdict::Allow);
    let again = decided(h.broker.review(exec_request(&["make", "deploy"], false)));
    assert_eq!(
        (again.verdict, again.scope, again.id.as_str()),
        (Verdict::Allow, Scope::Once, id.as_str())
    );
    assert!(
        again.reason.contains("approved moments ago"),
        "{}",
        again.reason
    );
    let mut other = exec_request(&["make", "deploy"], false);
    other.subject.pid = 43;
    let (_, rx) = pending(h.broker.review(other)).await;
    assert_eq!(rx.await.unwrap().source, DecisionSource::Timeout);
}

#[tokio::test]
async fn refusals_make_the_auto_reviewer_careful() {
    let h = harness(ApprovalPolicy::OnRequest, Reviewer::AutoReview, |c| {
        c.options.unattended = true
    });
    let allowed = decided(h.broker.review(exec_request(&["cargo", "build"], false)));
    assert_eq!(allowed.verdict, Verdict::Allow);
    h.broker.note_refusal();
    let a = decided(h.broker.review(exec_request(&["cargo", "build"], false)));
    assert_eq!(a.verdict, Verdict::Deny, "{}", a.reason);
    assert!(a.reason.contains("refused 1 time"), "{}", a.reason);
}

fn reviewer(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

#[tokio::test]
async fn the_reviewer_command_answers_and_fails_closed() {
    let cases: &[(&str, Verdict, DecisionSource, &str)] = &[
        (
            r#"read -r req; case "$req" in *'"make"'*) echo '{"decision":"approve","reason":"builds"}';; *) echo '{"decision":"deny"}';; esac"#,
            Verdict::Allow,
            DecisionSource::Reviewer,
            "reviewer: builds",
        ),
        (
            "cat >/dev/null; echo 'sure, go ahead'",
            Verdict::Deny,
            DecisionSource::Reviewer,
            "not valid",
        ),
        (
            "kill -SEGV $$",
            Verdict::Deny,
            DecisionSource::Reviewer,
            "failed",
        ),
        (
            "echo broken >&2; exit 3",
            Verdict::Deny,
            DecisionSource::Reviewer,
            "broken",
        ),
        (
            "sleep 30",
            Verdict::Deny,
            DecisionSource::Timeout,
            "did not answer within",
        ),
    ];
    for (script, verdict, source, reason) in cases {
        let h = harness(ApprovalPolicy::OnRequest, Reviewer::External, |c| {
            c.options.reviewer_command = Some(reviewer(script));
            c.options.reviewer_timeout = Duration::from_millis(500);
        });
        let started = Instant::now();
        let (_, rx) = pending(h.broker.review(exec_request(&["make", "all"], false))).await;
        let a = rx.await.unwrap();
        assert_eq!(
            (a.verdict, a.source),
            (*verdict, *source),
            "{script}: {a:?}"
        );
        assert!(a.reason.contains(reason), "{script}: {}", a.reason);
        assert!(started.elapsed() < Duration::from_secs(5), "{script}");
    }
}

#[tokio::test]
async fn a_hung_up_terminal_denies_what_waits_for_a_person_and_asks_nothing_more() {
    let h = harness(ApprovalPolicy::OnRequest, Reviewer::User, |_| {});
    let (queue, mut shown) = mpsc::unbounded_channel();
    h.broker.attach_terminal(queue);
    let (id, rx) = pending(h.broker.review(exec_request(&["make", "deploy"], false))).await;
    assert_eq!(id, "89abcdef-1", "the session's tag, then a counter");
    assert_eq!(shown.try_recv().unwrap(), id, "shown at the terminal");
    h.broker.terminal_hung_up();
    let a = rx.await.unwrap();
    assert_eq!(
        (a.verdict, a.source),
        (Verdict::Deny, DecisionSource::Policy)
    );
    assert_eq!(a.reason, "the terminal hung up before an answer");
    // A later request is not shown there: the prompt's queue is closed.
    let (later, _rx) = pending(h.broker.review(exec_request(&["make", "clean"], false))).await;
    assert_eq!(later, "89abcdef-2");
    assert_eq!(
        shown.try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    );
    assert_eq!(h.broker.pending().len(), 1, "it waits for warden approvals");
}
