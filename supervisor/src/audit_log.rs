//! The audit log: one JSON record per line, append-only, one file per session.
//!
//! A single writer assigns sequence numbers, so they are gap-free by construction. Records
//! reach the file at every flush (each drained batch) and the disk at every sync (at most a
//! second apart, and at the end of the session).
use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader, BufWriter, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use crate::{
    clock::Clock,
    events::{Event, Record},
};

/// File name of the log inside a session directory.
pub const FILE_NAME: &str = "events.jsonl";

pub struct AuditWriter {
    out: BufWriter<File>,
    path: PathBuf,
    session: String,
    clock: Clock,
    next_seq: u64,
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
    let last = match lines.next_back() {
        Some(l) => parse(l)?,
        None => first.clone(),
    };
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
        let record = Record {
            session: self.session.clone(),
            seq: self.next_seq,
            time: self.clock.rfc3339(boot_ns),
            boot_ns,
            event,
        };
        serde_json::to_writer(&mut self.out, &record)?;
        self.out.write_all(b"\n")?;
        self.next_seq += 1;
        Ok(record)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and waits until the data is on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
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
        w.flush().unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
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
