//! docs/audit-log.md names every record kind and every value Warden writes, spelled as the
//! code spells them: a query written from the docs finds what the log and OTLP carry.
use crate::events::*;
use crate::exec_policy::ExecDecision;
use crate::kernel::hook_tier::HookTier;
use crate::network::dns_budget::{Budget, Scope as BudgetScope};
use crate::verify::Damage;

const DOC: &str = include_str!("../../docs/audit-log.md");

/// The `### ` headings that describe kinds.
fn headings() -> Vec<&'static str> {
    DOC.lines().filter(|l| l.starts_with("### ")).collect()
}

/// The first cells of the OTLP attribute table.
fn otlp_rows() -> Vec<&'static str> {
    let otlp = &DOC[DOC.find("## Telemetry (OTLP)").expect("an OTLP section")..];
    otlp.lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" | ").next())
        .collect()
}

fn ticked(name: &str) -> String {
    format!("`{name}`")
}

#[test]
fn every_kind_has_its_section_and_its_otlp_row() {
    let headings = headings();
    let rows = otlp_rows();
    for kind in KINDS {
        assert!(
            headings.iter().any(|h| h.contains(&ticked(kind))),
            "docs/audit-log.md has no `### ` section for `{kind}`"
        );
        // A row names the kind, or its family (`file.*`).
        let family = format!("`{}.*`", kind.split('.').next().unwrap_or(kind));
        assert!(
            rows.iter()
                .any(|r| r.contains(&ticked(kind)) || r.contains(&family)),
            "docs/audit-log.md's OTLP table has no row for `{kind}`"
        );
    }
    assert!(DOC.contains("the event name `warden.<kind>`"));
}

#[test]
fn every_value_is_in_the_docs() {
    fn names<T: ToString>(all: &[T]) -> Vec<String> {
        all.iter().map(T::to_string).collect()
    }
    let enums = [
        ("end reason", names(EndReason::ALL)),
        ("verdict", names(Verdict::ALL)),
        ("decision source", names(DecisionSource::ALL)),
        ("rule decision", names(ExecDecision::ALL)),
        ("exec token problem", names(TokenProblem::ALL)),
        ("LSM hook", names(LsmHook::ALL)),
        ("request kind", names(RequestKind::ALL)),
        ("risk level", names(RiskLevel::ALL)),
        ("approval scope", names(Scope::ALL)),
        ("tool call phase", names(ToolCallPhase::ALL)),
        ("backlog action", names(BacklogAction::ALL)),
        ("DNS budget", names(Budget::ALL)),
        ("DNS budget scope", names(BudgetScope::ALL)),
        ("hook tier", names(HookTier::ALL)),
        ("damage", names(Damage::ALL)),
        ("credential outcome", names(CredentialOutcome::ALL)),
        ("guard arming", names(GuardArming::ALL)),
        ("guard verdict", names(GuardVerdict::ALL)),
        (
            "credential delivery",
            names(warden_wire::CredentialDelivery::ALL),
        ),
    ];
    for (what, values) in enums {
        for value in values {
            assert!(
                DOC.contains(&ticked(&value)),
                "docs/audit-log.md does not name the {what} `{value}`"
            );
        }
    }
}
