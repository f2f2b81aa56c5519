//! Who decides a request that needs approval: the approval policy, the reviewer, whether a
//! reviewer command exists, whether anyone can answer, and the auto-reviewer's risk. Pure; the
//! approvals broker carries the decision out (asks, waits, records).
use warden_records::events::{DecisionSource, Risk, RiskLevel, Verdict};
use warden_requirements::values::{ApprovalPolicy, Reviewer};

/// What happens to a request: decided now, or asked of someone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextStep {
    Decide(Verdict, DecisionSource, String),
    Ask(DecisionSource),
}

/// The session's answerers.
#[derive(Clone, Copy, Debug)]
pub struct Answerers {
    pub policy: ApprovalPolicy,
    pub reviewer: Reviewer,
    /// The requirements name a reviewer command.
    pub reviewer_command: bool,
    /// Nobody will answer (no terminal prompt, no approvals socket).
    pub unattended: bool,
}

/// `never` denies; the external reviewer answers everything; the auto-reviewer approves low
/// risk and refuses critical risk, and sends the rest to the reviewer command if there is one;
/// what is left needs a person, denied at once when nobody can answer.
pub fn route(who: Answerers, risk: Option<&Risk>) -> NextStep {
    if who.policy == ApprovalPolicy::Never {
        return NextStep::Decide(
            Verdict::Deny,
            DecisionSource::Policy,
            "approval policy `never`: what needs approval is denied".into(),
        );
    }
    let reasons = |r: &Risk| r.reasons.join("; ");
    let mut nobody = DecisionSource::Policy;
    match (who.reviewer, risk) {
        (Reviewer::External, _) => return NextStep::Ask(DecisionSource::Reviewer),
        (Reviewer::AutoReview, Some(r)) if r.level == RiskLevel::Low => {
            return NextStep::Decide(
                Verdict::Allow,
                DecisionSource::AutoReview,
                format!("low risk: {}", reasons(r)),
            );
        }
        (Reviewer::AutoReview, Some(r)) if r.level == RiskLevel::Critical => {
            return NextStep::Decide(
                Verdict::Deny,
                DecisionSource::AutoReview,
                format!("critical risk: {}", reasons(r)),
            );
        }
        (Reviewer::AutoReview, _) if who.reviewer_command => {
            return NextStep::Ask(DecisionSource::Reviewer);
        }
        (Reviewer::AutoReview, _) => nobody = DecisionSource::AutoReview,
        _ => {}
    }
    if who.unattended {
        let why = match risk {
            Some(r) => format!(
                "{} risk ({}) needs a person, and the session is unattended",
                r.level,
                reasons(r)
            ),
            None => "needs a person's approval, and the session is unattended".into(),
        };
        return NextStep::Decide(Verdict::Deny, nobody, why);
    }
    NextStep::Ask(DecisionSource::User)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApprovalPolicy::{Never, OnRequest, Untrusted};
    use DecisionSource::{AutoReview, Policy, User};
    use Reviewer::{External, User as Person};
    use RiskLevel::{Critical, High, Low, Medium};

    /// Who decides, for every policy, reviewer, reviewer command, attendance and risk: `Ok`
    /// asks that source, `Err` decides at once (allowed?, by).
    #[test]
    fn every_policy_reviewer_and_risk() {
        type Want = Result<DecisionSource, (bool, DecisionSource)>;
        type Case = (
            ApprovalPolicy,
            Reviewer,
            bool,
            bool,
            Option<RiskLevel>,
            Want,
        );
        let reviewer = DecisionSource::Reviewer;
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // `never` denies whoever would review, whatever the risk.
            (Never, Person, false, false, None, Err((false, Policy))),
            (Never, Reviewer::AutoReview, true, false, Some(Low), Err((false, Policy))),
            (Never, External, true, true, Some(Critical), Err((false, Policy))),
            // A person is asked, unless nobody can answer.
            (OnRequest, Person, false, false, None, Ok(User)),
            (Untrusted, Person, false, false, Some(Low), Ok(User)),
            (OnRequest, Person, false, true, None, Err((false, Policy))),
            (Untrusted, Person, true, true, Some(High), Err((false, Policy))),
            // The external reviewer answers everything, attended or not.
            (OnRequest, External, true, false, None, Ok(reviewer)),
            (Untrusted, External, true, true, Some(Critical), Ok(reviewer)),
            // The auto-reviewer decides the ends of the scale itself...
            (OnRequest, Reviewer::AutoReview, false, true, Some(Low), Err((true, AutoReview))),
            (Untrusted, Reviewer::AutoReview, true, false, Some(Low), Err((true, AutoReview))),
            (OnRequest, Reviewer::AutoReview, true, false, Some(Critical), Err((false, AutoReview))),
            (Untrusted, Reviewer::AutoReview, false, true, Some(Critical), Err((false, AutoReview))),
            // ... and sends the middle to the reviewer command, else to a person.
            (OnRequest, Reviewer::AutoReview, true, true, Some(Medium), Ok(reviewer)),
            (Untrusted, Reviewer::AutoReview, true, false, Some(High), Ok(reviewer)),
            (OnRequest, Reviewer::AutoReview, true, true, None, Ok(reviewer)),
            (OnRequest, Reviewer::AutoReview, false, false, Some(Medium), Ok(User)),
            (Untrusted, Reviewer::AutoReview, false, true, Some(High), Err((false, AutoReview))),
            (OnRequest, Reviewer::AutoReview, false, true, None, Err((false, AutoReview))),
        ];
        for &(policy, rev, command, unattended, level, ref want) in cases {
            let risk = level.map(|level| Risk {
                level,
                reasons: vec!["because".into()],
            });
            let who = Answerers {
                policy,
                reviewer: rev,
                reviewer_command: command,
                unattended,
            };
            let got = match route(who, risk.as_ref()) {
                NextStep::Ask(source) => Ok(source),
                NextStep::Decide(verdict, source, why) => {
                    assert!(!why.is_empty());
                    Err((verdict == Verdict::Allow, source))
                }
            };
            assert_eq!(&got, want, "{who:?} {level:?}");
        }
    }

    /// The reason names the risk as the log spells it.
    #[test]
    fn unattended_denials_say_why() {
        let who = Answerers {
            policy: OnRequest,
            reviewer: Person,
            reviewer_command: false,
            unattended: true,
        };
        let risk = Risk {
            level: High,
            reasons: vec!["writes outside the workspace".into()],
        };
        let NextStep::Decide(_, _, why) = route(who, Some(&risk)) else {
            panic!("not decided")
        };
        assert_eq!(
            why,
            "high risk (writes outside the workspace) needs a person, and the session is unattended"
        );
    }
}
