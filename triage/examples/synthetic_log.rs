//! A long session log for benchmarks, made from a real one: its records repeated (with time
//! moving on and pids shifted each round, as a long session reuses pids) until N, written with
//! a valid hash chain so that `warden triage` checks it as it would a real log.
//! Usage: synthetic_log TEMPLATE.jsonl OUT.jsonl N
use std::path::Path;

use warden_records::{
    audit_log::{self, AuditWriter},
    clock::Clock,
    events::Event,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, template, out, n] = args.as_slice() else {
        return Err("usage: synthetic_log TEMPLATE.jsonl OUT.jsonl N".into());
    };
    let n: u64 = n.parse()?;
    let records = audit_log::read(Path::new(template))?;
    let (start, body): (Vec<_>, Vec<_>) = records
        .iter()
        .partition(|r| matches!(r.event, Event::SessionStart(_)));
    let body: Vec<_> = body
        .into_iter()
        .filter(|r| !matches!(r.event, Event::SessionEnd(_)))
        .collect();
    let (Some(first), false) = (start.first(), body.is_empty()) else {
        return Err("the template needs a session.start and other records".into());
    };
    let t0 = first.boot_ns;
    let span = body.iter().map(|r| r.boot_ns - t0).max().unwrap_or(0) + 1_000_000;
    let mut w = AuditWriter::create(Path::new(out), "bench-triage", Clock::new())?;
    w.append(t0, first.event.clone())?;
    let mut round = 0u64;
    while w.records() < n {
        for r in &body {
            if w.records() >= n {
                break;
            }
            let mut event = r.event.clone();
            shift_pids(&mut event, (round as u32 % 64) * 100_000);
            w.append(r.boot_ns + round * span, event)?;
        }
        round += 1;
    }
    w.flush()?;
    Ok(())
}

/// A later round's processes get other pids (a long session reuses few): every `pid` and
/// `ppid` of the record, whatever its kind.
fn shift_pids(e: &mut Event, by: u32) {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(&*e) else {
        return;
    };
    for key in ["pid", "ppid"] {
        if let Some(serde_json::Value::Number(n)) = fields.get(key)
            && let Some(pid) = n.as_u64().filter(|&p| p != 0)
        {
            fields.insert(key.into(), (pid + u64::from(by)).into());
        }
    }
    if let Ok(shifted) = serde_json::from_value(serde_json::Value::Object(fields)) {
        *e = shifted;
    }
}
