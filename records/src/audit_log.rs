//! The audit log: one JSON record per line, append-only, one file per session.
//!
//! A single writer assigns sequence numbers, so they are gap-free by construction. Records
//! reach the file at every flush (each drained batch) and the disk at every sync (at most a
//! second apart, and at the end of the session).
//!
//! The log is hash-chained: each record carries the SHA-256 of the previous line's exact
//! bytes, so changing, removing or reordering a line breaks the chain where it happened
//! (`verify`). Cutting records off the end leaves a valid chain, so every sync also writes a
//! small head file beside the log with the seq and hash of the last record on disk.
use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader, BufWriter, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    clock::Clock,
    events::{Event, Record},
};

/// File name of the log inside a session directory.
pub const FILE_NAME: &str = "events.jsonl";
/// The head file, beside the log: the last record known to be on disk.
pub const HEAD_FILE: &str = "events.head";

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (hex) of one line of the log, without its newline.
pub fn line_hash(line: &[u8]) -> String {
    hex(&Sha256::digest(line))
}

/// The `prev_hash` of a session's first record: it ties the chain to the session id, so the
/// first record cannot be replaced by one of another session's log.
pub fn chain_seed(session: &str) -> String {
    line_hash(format!("warden audit log {session}").as_bytes())
}

/// Contents of the head file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub session: String,
    /// Seq of the last record synced to disk.
    pub seq: u64,
    /// `line_hash` of that record's line.
    pub hash: String,
}

pub fn head_path(log: &Path) -> PathBuf {
    log.with_file_name(HEAD_FILE)
}

/// The head file of `log`, if there is one.
pub fn read_head(log: &Path) -> io::Result<Option<Head>> {
    let path = head_path(log);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new contents, never a
/// mix: a temporary file, synced, renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

pub struct AuditWriter {
    out: BufWriter<File>,
    path: PathBuf,
    session: String,
    clock: Clock,
    next_seq: u64,
    /// `line_hash` of the last line written: the next record's `prev_hash`.
    prev_hash: String,
    /// Reused for each record, to hash the line before writing it.
    line: Vec<u8>,
}

/// A log reopened to be continued (see `reopen`).
pub struct Reopened {
    pub writer: AuditWriter,
    /// The file ended in a partial line (a crash mid-write), which was cut off.
    pub dropped_partial: bool,
    /// `boot_ns` of the first record.
    pub started_boot_ns: u64,
}

/// Reopens a log whose writer died, to append to it with the next sequence number.
pub fn reopen(path: &Path) -> io::Result<Reopened> {
    let bytes = std::fs::read(path)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let dropped_partial = complete < bytes.len();
    let text = std::str::from_utf8(&bytes[..complete]).map_err(io::Error::other)?;
    let parse = |line: &str| -> io::Result<Record> {
        serde_json::from_str(line).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
    };
    let mut lines = text.lines();
    let first = parse(lines.next().ok_or_else(|| io::Error::other("empty log"))?)?;
    let last_line = text.lines().next_back().unwrap_or_default();
    let last = parse(last_line)?;
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(complete as u64)?;
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
    Ok(Reopened {
        writer: AuditWriter {
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            session: last.session,
            clock: Clock::new(),
            next_seq: last.seq + 1,
            prev_hash: line_hash(last_line.as_bytes()),
            line: Vec::new(),
        },
        dropped_partial,
        started_boot_ns: first.boot_ns,
    })
}

impl AuditWriter {
    /// Creates the log; refuses to overwrite an existing one.
    pub fn create(path: &Path, session: &str, clock: Clock) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(Self {
            out: BufWriter::with_capacity(256 * 1024, file),
            path: path.to_path_buf(),
            session: session.to_string(),
            clock,
            next_seq: 0,
            prev_hash: chain_seed(session),
            line: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.next_seq
    }

    pub fn append(&mut self, boot_ns: u64, event: Event) -> io::Result<Record> {
        self.append_tagged(boot_ns, event, None)
    }

    /// Appends a record that belongs to the agent's tool call `tool_call_id`.
    pub fn append_tagged(
        &mut self,
        boot_ns: u64,
        event: Event,
        tool_call_id: Option<String>,
    ) -> io::Result<Record> {
        let record = Record {
            session: self.session.clone(),
            seq: self.next_seq,
            time: self.clock.rfc3339(boot_ns),
            boot_ns,
            prev_hash: std::mem::take(&mut self.prev_hash),
            tool_call_id,
            event,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &record)?;
        self.prev_hash = line_hash(&self.line);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.next_seq += 1;
        Ok(record)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, waits until the data is on disk, then records the last record in the head
    /// file.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        let Some(seq) = self.next_seq.checked_sub(1) else {
            return Ok(());
        };
        let head = Head {
            session: self.session.clone(),
            seq,
            hash: self.prev_hash.clone(),
        };
        write_atomically(&head_path(&self.path), &serde_json::to_vec(&head)?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: not a Warden audit record: {source}")]
    Parse {
        path: PathBuf,
        line: u64,
        source: serde_json::Error,
    },
}

/// Reads a whole log, failing on the first malformed line (named by number).
pub fn read(path: &Path) -> Result<Vec<Record>, ReadError> {
    let io_err = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut records = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(io_err)?;
        let record = serde_json::from_str(&line).map_err(|source| ReadError::Parse {
            path: path.to_path_buf(),
            line: n as u64 + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Fork;

    #[test]
    fn writes_gap_free_records_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut w = AuditWriter::create(&path, "sess", Clock::new()).unwrap();
        for pid in 0..3 {
            w.append(crate::clock::boot_ns(), Event::Fork(Fork { pid, ppid: 1 }))
                .unwrap();
        }
        w.sync().unwrap();
        assert!(AuditWriter::create(&path, "sess", Clock::new()).is_err());
        let records = read(&path).unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert!(records.iter().all(|r| r.session == "sess"));
    }

    #[test]
    fn reopen_continues_the_sequence_after_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut w = AuditWriter::create(&path, "s", Clock::new()).unwrap();
        for pid in 0..2 {
            w.append(10 + u64::from(pid), Event::Fork(Fork { pid, ppid: 0 }))
                .unwrap();
        }
        w.flush().unwrap();
        drop(w);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"sess")
            .unwrap();
        let r = reopen(&path).unwrap();
        assert!(r.dropped_partial);
        assert_eq!(r.started_boot_ns, 10);
        let mut w = r.writer;
        w.append(20, Event::Fork(Fork { pid: 9, ppid: 0 })).unwrap();
        w.sync().unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
        // The chain goes on across the reopening.
        let report = crate::verify::verify(&path).unwrap();
        assert!(report.intact(), "{report}");
        assert_eq!(read_head(&path).unwrap().unwrap().seq, 2);
    }

    #[test]
    fn names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut w = AuditWriter::create(&path, "s", Clock::new()).unwrap();
        w.append(1, Event::Fork(Fork { pid: 1, ppid: 0 })).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{not json\n").unwrap();
        let err = read(&path).unwrap_err();
        assert!(err.to_string().contains("events.jsonl:2:"), "{err}");
    }
}
