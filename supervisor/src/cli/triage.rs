//! `warden triage`: one session, every session, or those since a time, through the detection
//! library; text for a person, JSON, or OCSF for a SIEM.
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};
use warden::{audit_log, log_view};
use warden_triage::{Baselines, Report, Reviewer, Severity, SigmaRules};

use super::args::TriageArgs;

/// One session's log, triaged.
struct Triaged {
    log: PathBuf,
    chain_problems: Vec<String>,
    report: Report,
}

/// What runs beside the built-in detections.
struct Extras {
    sigma: Option<SigmaRules>,
    baselines: Option<Baselines>,
    /// Where Warden's own sessions are: only those are learnt (a log file from elsewhere says
    /// whatever its author wrote, hash chain and all).
    recorded: PathBuf,
    accept: bool,
    reviewer: Option<Reviewer>,
    html: Option<PathBuf>,
}

pub fn triage(args: TriageArgs) -> anyhow::Result<i32> {
    let state = &args.state.state_dir;
    // Rules first: a broken set fails before any log is read.
    let sigma = args.rules.as_deref().map(SigmaRules::load).transpose()?;
    if let Some(rules) = &sigma {
        for s in rules.skipped() {
            eprintln!("warden: sigma rule skipped: {s}");
        }
    }
    let reviewer = match args.reviewer_command.as_deref() {
        Some(cmd) if cmd.split_whitespace().next().is_none() => {
            bail!("--reviewer-command is empty")
        }
        Some(cmd) => Some(Reviewer {
            command: cmd.split_whitespace().map(String::from).collect(),
            timeout: std::time::Duration::from_secs(args.reviewer_timeout),
        }),
        None => None,
    };
    let extras = Extras {
        sigma,
        baselines: (!args.no_baseline).then(|| Baselines::open(state)),
        recorded: canonical(&state.join("sessions")),
        accept: args.accept,
        reviewer,
        html: args.html.clone(),
    };
    let logs = match (&args.session, &args.since) {
        (Some(spec), _) => vec![log_view::locate(spec, state)?],
        (None, Some(since)) => {
            let since = parse_since(since, OffsetDateTime::now_utc())?;
            let mut logs = Vec::new();
            for log in recorded(state)? {
                if started(&log)?.is_some_and(|t| t >= since) {
                    logs.push(log);
                }
            }
            logs
        }
        (None, None) => recorded(state)?,
    };
    let many = args.session.is_none();
    let mut serious = false;
    let mut triaged = Vec::with_capacity(logs.len());
    for log in logs {
        let t = run_one(log, &extras)?;
        serious |= t
            .report
            .findings
            .iter()
            .any(|f| f.severity >= Severity::High);
        triaged.push(t);
    }
    if args.ocsf {
        print_ocsf(&triaged)?;
    } else if args.json {
        let reports: Vec<serde_json::Value> = triaged.iter().map(json).collect();
        let out = if many {
            serde_json::json!({ "sessions": reports })
        } else {
            reports.into_iter().next().unwrap_or_default()
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&triaged, many);
    }
    Ok(i32::from(serious))
}

fn run_one(log: PathBuf, x: &Extras) -> anyhow::Result<Triaged> {
    let (chain, records) = warden::verify::verify_and_read(&log)
        .with_context(|| format!("reading {}", log.display()))?;
    let mut report = warden_triage::triage(&records);
    if let Some(rules) = &x.sigma {
        report.add(rules.evaluate(&records));
    }
    if let Some(baselines) = &x.baselines {
        let learnable = canonical(&log).starts_with(&x.recorded);
        with_baseline(baselines, &mut report, &records, x.accept, learnable);
    }
    if let Some(reviewer) = &x.reviewer
        && let Err(e) = reviewer.review(&mut report, &records)
    {
        // Every finding is marked "needs review" with the reason; the report goes on.
        eprintln!("warden: the reviewer: {e}");
    }
    if let Some(file) = &x.html {
        let page = warden_triage::html(&report, &records, &log.display().to_string(), Some(&chain));
        std::fs::write(file, page).with_context(|| format!("writing {}", file.display()))?;
        eprintln!("warden: report written to {}", file.display());
    }
    // Freeing a long session's records takes as long as a detection pass: on another core.
    std::thread::spawn(move || drop(records));
    Ok(Triaged {
        chain_problems: chain.problems.iter().map(ToString::to_string).collect(),
        report,
        log,
    })
}

/// Deviations from the workspace's baseline join the report; then the session is learnt
/// (unless it has findings) or accepted, when it is one Warden recorded here (`learnable`).
/// A baseline that cannot be read is said, and the rest of the report stands.
fn with_baseline(
    baselines: &Baselines,
    report: &mut Report,
    records: &[warden::events::Record],
    accept: bool,
    learnable: bool,
) {
    let baseline = match baselines.baseline_for(records) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("warden: baseline: {e}");
            return;
        }
    };
    report.add(baseline.deviations(records));
    if !learnable {
        eprintln!(
            "warden: {baseline}; this session: compared, not learnt: it is not one recorded in \
             this state directory"
        );
        return;
    }
    let learnt = if accept {
        baselines.accept(records)
    } else {
        baselines.learn(records, !report.findings.is_empty())
    };
    match learnt {
        Ok(l) => eprintln!("warden: {baseline}; this session: {l}"),
        Err(e) => eprintln!("warden: baseline: {e}"),
    }
}

fn json(t: &Triaged) -> serde_json::Value {
    serde_json::json!({
        "log": t.log.display().to_string(),
        "chain_intact": t.chain_problems.is_empty(),
        "chain_problems": t.chain_problems,
        "session": t.report.session,
        "records": t.report.records,
        "findings": t.report.findings,
    })
}

fn print_ocsf(triaged: &[Triaged]) -> anyhow::Result<()> {
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    for t in triaged {
        let log = t.log.display().to_string();
        for event in warden_triage::detection_findings(&t.report, now_ms, &log) {
            println!("{}", serde_json::to_string(&event)?);
        }
    }
    Ok(())
}

fn print_text(triaged: &[Triaged], many: bool) {
    for (i, t) in triaged.iter().enumerate() {
        if many && t.report.findings.is_empty() {
            continue;
        }
        if i > 0 {
            println!();
        }
        if !t.chain_problems.is_empty() {
            println!(
                "the log's hash chain is damaged: the evidence below may have been changed \
                 (`warden replay {} --verify`)",
                t.log.display()
            );
        }
        print!("{}", warden_triage::text(&t.report));
    }
    if many {
        let flagged = triaged
            .iter()
            .filter(|t| !t.report.findings.is_empty())
            .count();
        println!(
            "{} session{} triaged, {flagged} with findings",
            triaged.len(),
            if triaged.len() == 1 { "" } else { "s" }
        );
    }
}

/// Every session log in the state directory, oldest first (session ids are UUIDv7: they sort
/// by start time).
fn recorded(state_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = state_dir.join("sessions");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| Some(e.ok()?.path().join(audit_log::FILE_NAME)))
        .filter(|log| log.is_file())
        .collect();
    logs.sort();
    Ok(logs)
}

/// `path` with links and `..` resolved, as far as it exists.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// When a session started: its first record's time.
fn started(log: &Path) -> anyhow::Result<Option<OffsetDateTime>> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(log).with_context(|| format!("reading {}", log.display()))?;
    let mut first = String::new();
    std::io::BufReader::new(file).read_line(&mut first)?;
    let Ok(record) = serde_json::from_str::<warden::events::Record>(&first) else {
        return Ok(None);
    };
    Ok(OffsetDateTime::parse(&record.time, &Rfc3339).ok())
}

/// `--since`: an RFC 3339 time, a date (midnight UTC), or an age before `now`.
fn parse_since(s: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_format) {
        return Ok(d.midnight().assume_utc());
    }
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = match n.parse() {
        Ok(n) => n,
        Err(_) => bail!(
            "--since `{s}`: expected an RFC 3339 time (2026-12-07T09:00:00Z), a date \
             (2026-12-07) or an age (30m, 12h, 7d)"
        ),
    };
    let age = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => bail!("--since `{s}`: an age's unit is s, m, h or d"),
    };
    Ok(now - age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let now = time::macros::datetime!(2026-12-07 12:00 UTC);
        let cases = [
            (
                "2026-12-07T09:30:00Z",
                Some(time::macros::datetime!(2026-12-07 09:30 UTC)),
            ),
            (
                "2026-12-06",
                Some(time::macros::datetime!(2026-12-06 00:00 UTC)),
            ),
            ("90m", Some(time::macros::datetime!(2026-12-07 10:30 UTC))),
            ("2d", Some(time::macros::datetime!(2026-12-05 12:00 UTC))),
            ("yesterday", None),
            ("5w", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_since(s, now).ok(), want, "{s}");
        }
    }
}
