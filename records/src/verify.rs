//! `warden replay --verify`: checks a log's hash chain and says where and how it is damaged.
//!
//! Each record's `prev_hash` is the SHA-256 of the previous line's bytes, so a break between
//! two lines tells, with the sequence numbers around it, what happened there: the earlier
//! record was changed (seqs consecutive), records were removed (seqs missing from the whole
//! file), or lines were moved (the missing seqs are elsewhere in the file). The end of the log
//! is anchored by the head file the writer keeps beside it and by `session.end`.
use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::Serialize;
use warden_wire::string_enum;

use crate::{
    audit_log::{self, chain_seed, line_hash},
    events::{Event, Record},
};

string_enum! {
    /// How a log is damaged, as `--verify` reports it.
    Damage, "damage" {
        /// A record's content differs from what the next record chained to.
        Changed = "changed",
        /// Records are missing from the middle or the start.
        Removed = "removed",
        /// Records are in another order than written.
        Reordered = "reordered",
        /// Records are missing from the end.
        Truncated = "truncated",
        /// The last line has no newline: a torn write, or a cut in the middle of a line.
        PartialLine = "partial_line",
        /// A line is not a Warden record at all.
        NotARecord = "not_a_record",
        /// The log has no hash chain (written by a Warden before it existed).
        Unchained = "unchained",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub damage: Damage,
    /// 1-based line of the file where it shows.
    pub line: u64,
    /// The record concerned, when known.
    pub seq: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let damage = serde_json::to_value(self.damage)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        write!(f, "line {}: {damage}: {}", self.line, self.message)
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub log: PathBuf,
    /// Complete records read.
    pub records: u64,
    /// The log ends with `session.end`.
    pub ended: bool,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.intact() {
            write!(
                f,
                "{}: intact, {} records, {}",
                self.log.display(),
                self.records,
                if self.ended {
                    "ends with session.end"
                } else {
                    "no session.end yet (running, or its supervisor died)"
                }
            )
        } else {
            writeln!(
                f,
                "{}: DAMAGED ({} problems)",
                self.log.display(),
                self.problems.len()
            )?;
            for p in &self.problems {
                writeln!(f, "  {p}")?;
            }
            Ok(())
        }
    }
}

struct Line {
    number: u64,
    hash: String,
    record: Record,
}

pub fn verify(path: &Path) -> std::io::Result<Report> {
    Ok(verify_and_read(path)?.0)
}

/// Checks the log and returns its records (those that parse) with the report: one read of
/// the file for both, as `warden triage` needs.
pub fn verify_and_read(path: &Path) -> std::io::Result<(Report, Vec<Record>)> {
    let bytes = std::fs::read(path)?;
    let head = audit_log::read_head(path)?;
    Ok(check_records(path, &bytes, head.as_ref()))
}

/// Checks the log `bytes` (and its head file's contents, when there is one).
pub fn check(path: &Path, bytes: &[u8], head: Option<&audit_log::Head>) -> Report {
    check_records(path, bytes, head).0
}

fn check_records(
    path: &Path,
    bytes: &[u8],
    head: Option<&audit_log::Head>,
) -> (Report, Vec<Record>) {
    let mut segments: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // split leaves an empty segment after the final newline; anything else there is partial.
    let tail = segments.pop().unwrap_or_default();
    let (lines, problems) = parse_lines(&segments);
    let report = judge(path, &lines, problems, tail, head);
    (report, lines.into_iter().map(|l| l.record).collect())
}

/// Parses and hashes the lines, on every core (a long session's log is hundreds of MB).
fn parse_lines(segments: &[&[u8]]) -> (Vec<Line>, Vec<Problem>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = segments.len().div_ceil(cores).max(1);
    let parse_chunk = |start: usize, part: &[&[u8]]| {
        let mut lines = Vec::with_capacity(part.len());
        let mut problems = Vec::new();
        for (i, raw) in part.iter().enumerate() {
            let number = (start + i) as u64 + 1;
            match serde_json::from_slice::<Record>(raw) {
                Ok(record) => lines.push(Line {
                    number,
                    hash: line_hash(raw),
                    record,
                }),
                Err(e) => problems.push(Problem {
                    damage: Damage::NotARecord,
                    line: number,
                    seq: None,
                    message: format!("not a valid record ({e})"),
                }),
            }
        }
        (lines, problems)
    };
    let parts: Vec<(Vec<Line>, Vec<Problem>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = segments
            .chunks(chunk)
            .enumerate()
            .map(|(k, part)| scope.spawn(move || parse_chunk(k * chunk, part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a parser thread does not panic"))
            .collect()
    });
    let mut lines = Vec::with_capacity(segments.len());
    let mut problems = Vec::new();
    for (l, p) in parts {
        lines.extend(l);
        problems.extend(p);
    }
    (lines, problems)
}

/// The chain's and the file's problems, given its parsed lines.
fn judge(
    path: &Path,
    lines: &[Line],
    mut problems: Vec<Problem>,
    tail: &[u8],
    head: Option<&audit_log::Head>,
) -> Report {
    let segments_len = lines.len() + problems.len();
    if !tail.is_empty() {
        problems.push(Problem {
            damage: Damage::PartialLine,
            line: segments_len as u64 + 1,
            seq: None,
            message: format!(
                "the last {} bytes are an incomplete line (a torn write, or the file was cut)",
                tail.len()
            ),
        });
    }
    let ended = lines
        .last()
        .is_some_and(|l| matches!(l.record.event, Event::SessionEnd(_)));
    let Some(first) = lines.first() else {
        return Report {
            log: path.to_path_buf(),
            records: 0,
            ended,
            problems,
        };
    };
    if lines.iter().all(|l| l.record.prev_hash.is_empty()) {
        problems.push(Problem {
            damage: Damage::Unchained,
            line: first.number,
            seq: Some(first.record.seq),
            message: "the log has no hash chain: it cannot be verified".into(),
        });
        return Report {
            log: path.to_path_buf(),
            records: lines.len() as u64,
            ended,
            problems,
        };
    }
    let session = first.record.session.clone();
    let where_seq: HashMap<u64, u64> = lines.iter().map(|l| (l.record.seq, l.number)).collect();

    for (i, line) in lines.iter().enumerate() {
        let rec = &line.record;
        if rec.session != session {
            problems.push(Problem {
                damage: Damage::Changed,
                line: line.number,
                seq: Some(rec.seq),
                message: format!("record of another session ({})", rec.session),
            });
        }
        let (expected_hash, expected_seq, prev) = match i.checked_sub(1).map(|p| &lines[p]) {
            Some(p) => (p.hash.clone(), p.record.seq + 1, Some(p)),
            None => (chain_seed(&session), 0, None),
        };
        let chained = rec.prev_hash == expected_hash;
        if chained && rec.seq == expected_seq {
            continue;
        }
        let problem = if rec.seq < expected_seq {
            Problem {
                damage: Damage::Reordered,
                line: line.number,
                seq: Some(rec.seq),
                message: format!(
                    "seq {} comes after seq {}",
                    rec.seq,
                    expected_seq.saturating_sub(1)
                ),
            }
        } else if rec.seq > expected_seq {
            let missing: Vec<u64> = (expected_seq..rec.seq)
                .filter(|s| !where_seq.contains_key(s))
                .collect();
            if missing.is_empty() {
                Problem {
                    damage: Damage::Reordered,
                    line: line.number,
                    seq: Some(rec.seq),
                    message: format!(
                        "seq {} is here where seq {expected_seq} belongs (it is at line {})",
                        rec.seq, where_seq[&expected_seq]
                    ),
                }
            } else {
                Problem {
                    damage: Damage::Removed,
                    line: line.number,
                    seq: Some(rec.seq),
                    message: format!(
                        "{} before seq {}: {}",
                        if missing.len() == 1 {
                            "1 record removed".to_string()
                        } else {
                            format!("{} records removed", missing.len())
                        },
                        rec.seq,
                        ranges(&missing)
                    ),
                }
            }
        } else {
            // Seqs follow each other but the hash does not: the previous line changed (or
            // this record's own prev_hash did, which is the same break).
            match prev {
                Some(p) => Problem {
                    damage: Damage::Changed,
                    line: p.number,
                    seq: Some(p.record.seq),
                    message: format!(
                        "record seq {} was changed: the next record (line {}) chained to other bytes",
                        p.record.seq, line.number
                    ),
                },
                None => Problem {
                    damage: Damage::Changed,
                    line: line.number,
                    seq: Some(rec.seq),
                    message: "the first record does not carry its session's chain seed".into(),
                },
            }
        };
        problems.push(problem);
    }

    let last = lines.last().expect("not empty");
    if let Some(head) = head.filter(|h| h.session == session) {
        if head.seq > last.record.seq {
            problems.push(Problem {
                damage: Damage::Truncated,
                line: last.number,
                seq: Some(last.record.seq),
                message: format!(
                    "the log ends at seq {} but seq {} was on disk (head file): {} records cut off the end",
                    last.record.seq,
                    head.seq,
                    head.seq - last.record.seq
                ),
            });
        } else if let Some(at) = lines.iter().find(|l| l.record.seq == head.seq)
            && at.hash != head.hash
        {
            problems.push(Problem {
                damage: Damage::Changed,
                line: at.number,
                seq: Some(head.seq),
                message: format!(
                    "record seq {} differs from the one the head file recorded",
                    head.seq
                ),
            });
        }
    }
    if let Event::SessionEnd(end) = &last.record.event
        && end.records != last.record.seq
    {
        problems.push(Problem {
            damage: Damage::Changed,
            line: last.number,
            seq: Some(last.record.seq),
            message: format!(
                "session.end counts {} records before it but has seq {}",
                end.records, last.record.seq
            ),
        });
    }
    problems.sort_by_key(|p| p.line);
    Report {
        log: path.to_path_buf(),
        records: lines.len() as u64,
        ended,
        problems,
    }
}

/// `3, 5-9` for [3, 5, 6, 7, 8, 9] (sorted input).
fn ranges(seqs: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        while i + 1 < seqs.len() && seqs[i + 1] == seqs[i] + 1 {
            i += 1;
        }
        out.push(if seqs[i] == start {
            format!("seq {start}")
        } else {
            format!("seq {start}-{}", seqs[i])
        });
        i += 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        audit_log::AuditWriter,
        clock::Clock,
        events::{EndReason, Fork, SessionEnd},
    };

    /// A synced log of `n` fork records and a session.end; returns its lines and head.
    fn log(n: u32) -> (Vec<String>, audit_log::Head) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(audit_log::FILE_NAME);
        let mut w = AuditWriter::create(&path, "sess", Clock::new()).unwrap();
        for pid in 0..n {
            w.append(u64::from(pid), Event::Fork(Fork { pid, ppid: 1 }))
                .unwrap();
        }
        let records = w.records();
        w.append(
            99,
            Event::SessionEnd(SessionEnd {
                reason: EndReason::Exited,
                exit_code: Some(0),
                signal: None,
                status: 0,
                killed: 0,
                duration_ms: 1,
                records,
                lost: 0,
                error: None,
            }),
        )
        .unwrap();
        w.sync().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let head = audit_log::read_head(&path).unwrap().unwrap();
        (text.lines().map(String::from).collect(), head)
    }

    fn run(lines: &[String], head: &audit_log::Head) -> Report {
        let mut bytes = lines.join("\n");
        bytes.push('\n');
        check(Path::new("events.jsonl"), bytes.as_bytes(), Some(head))
    }

    fn only(report: &Report) -> &Problem {
        assert_eq!(report.problems.len(), 1, "{report}");
        &report.problems[0]
    }

    #[test]
    fn an_intact_log_verifies() {
        let (lines, head) = log(5);
        let r = run(&lines, &head);
        assert!(r.intact(), "{r}");
        assert!(r.ended);
        assert_eq!(r.records, 6);
        assert_eq!(head.seq, 5);
    }

    #[test]
    fn a_changed_record_is_named() {
        let (mut lines, head) = log(5);
        lines[2] = lines[2].replace("\"pid\":2", "\"pid\":7");
        let r = run(&lines, &head);
        let p = only(&r);
        assert_eq!(
            (p.damage, p.line, p.seq),
            (Damage::Changed, 3, Some(2)),
            "{r}"
        );
    }

    #[test]
    fn a_changed_last_record_is_caught_by_the_head() {
        let (mut lines, head) = log(3);
        let last = lines.len() - 1;
        lines[last] = lines[last].replace("\"duration_ms\":1", "\"duration_ms\":2");
        let p = only(&run(&lines, &head)).clone();
        assert_eq!((p.damage, p.seq), (Damage::Changed, Some(3)));
    }

    #[test]
    fn removed_records_are_counted() {
        let (mut lines, head) = log(6);
        lines.drain(2..4);
        let r = run(&lines, &head);
        let p = only(&r);
        assert_eq!((p.damage, p.line), (Damage::Removed, 3), "{r}");
        assert!(p.message.contains("seq 2-3"), "{}", p.message);
        // The first record too.
        let (mut lines, head) = log(2);
        lines.remove(0);
        let p = only(&run(&lines, &head)).clone();
        assert_eq!((p.damage, p.line), (Damage::Removed, 1), "{p}");
    }

    #[test]
    fn reordered_records_are_named() {
        let (mut lines, head) = log(6);
        lines.swap(2, 3);
        let r = run(&lines, &head);
        assert!(!r.intact());
        assert!(
            r.problems.iter().all(|p| p.damage == Damage::Reordered),
            "{r}"
        );
        assert_eq!(r.problems[0].line, 3, "{r}");
    }

    #[test]
    fn truncation_and_partial_lines_are_detected() {
        let (lines, head) = log(6);
        let r = run(&lines[..4], &head);
        let p = only(&r);
        assert_eq!((p.damage, p.seq), (Damage::Truncated, Some(3)), "{r}");
        assert!(p.message.contains("3 records cut off"), "{}", p.message);

        let mut bytes = lines.join("\n");
        bytes.truncate(bytes.len() - 10);
        let r = check(Path::new("x"), bytes.as_bytes(), Some(&head));
        assert!(
            r.problems
                .iter()
                .any(|p| p.damage == Damage::PartialLine && p.line == lines.len() as u64),
            "{r}"
        );
        assert!(
            r.problems.iter().any(|p| p.damage == Damage::Truncated),
            "{r}"
        );
    }

    #[test]
    fn garbage_lines_are_not_records() {
        let (mut lines, head) = log(3);
        lines[1] = "{not json".into();
        let r = run(&lines, &head);
        assert_eq!(r.problems[0].damage, Damage::NotARecord, "{r}");
        assert_eq!(r.problems[0].line, 2);
    }

    #[test]
    fn ranges_are_compact() {
        assert_eq!(ranges(&[3, 5, 6, 7]), "seq 3, seq 5-7");
    }
}
