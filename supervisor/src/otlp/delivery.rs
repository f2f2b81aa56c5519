//! Delivery: the audit log, read from the export cursor, sent in order in batches; the cursor
//! moves only when the collector has acknowledged a batch. While the collector is unreachable
//! the log is the buffer: the same batch is retried with exponential backoff (bounded delay),
//! and the backlog waits on disk. Its size is bounded by the backlog limit, where the policy
//! either freezes the session until it drains or skips it with an `export.backlog` record.
use std::{
    collections::VecDeque,
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use warden_requirements::values::BacklogPolicy;

use super::{cursor::Cursor, transport::Exporter};
use crate::{
    clock,
    events::{BacklogAction, Event, ExportBacklog, Record},
    freezer::{Freezer, Hold},
};

/// Records per export request.
const BATCH_RECORDS: usize = 512;
/// Bytes read from the log at a time.
const READ_CHUNK: usize = 1 << 20;
/// How often a followed log is looked at for new records.
const POLL: Duration = Duration::from_millis(100);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where a live session is, for its exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    Running,
    /// The session's processes are gone: nothing to freeze, no more backlog records.
    Ending,
    /// `session.end` is written: send the rest within the grace.
    Ended,
}

/// The backlog limit of a live session.
pub struct BacklogControl {
    pub max_bytes: u64,
    pub policy: BacklogPolicy,
    /// The session cgroup's freezer, shared with live triage.
    pub freezer: Arc<Freezer>,
    /// Where `export.backlog` records go (the pipeline's user-space events). Weak: the
    /// pipeline's last drain waits for every sender, and a slow export must not hold it.
    pub events: mpsc::WeakSender<(u64, Event)>,
    paused: bool,
}

impl BacklogControl {
    pub fn new(
        max_bytes: u64,
        policy: BacklogPolicy,
        freezer: Arc<Freezer>,
        events: mpsc::WeakSender<(u64, Event)>,
    ) -> Self {
        Self {
            max_bytes,
            policy,
            freezer,
            events,
            paused: false,
        }
    }

    async fn record(&self, event: ExportBacklog) {
        let sent = match self.events.upgrade() {
            Some(tx) => tx
                .send((clock::boot_ns(), Event::ExportBacklog(event)))
                .await
                .is_ok(),
            None => false,
        };
        if !sent {
            // Only at the very end of a session: its log is closed.
            tracing::warn!("the session's log is closed: an export.backlog record was not written");
        }
    }

    fn freeze(&mut self, frozen: bool) {
        match frozen {
            true => self.freezer.hold(Hold::ExportBacklog),
            false => self.freezer.release(Hold::ExportBacklog),
        }
        self.paused = frozen;
    }

    /// Thaws the session if it is frozen: the backlog is gone.
    async fn release(&mut self, backlog: u64) {
        if self.paused {
            self.freeze(false);
            self.record(ExportBacklog {
                action: BacklogAction::Resumed,
                backlog_bytes: backlog,
                limit_bytes: self.max_bytes,
                from_seq: None,
                to_seq: None,
                records: None,
            })
            .await;
        }
    }
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything up to `session.end` was acknowledged.
    Done,
    /// Records from `next_seq` on are still to be sent (collector unreachable, or the log has
    /// no `session.end` yet).
    Pending {
        next_seq: u64,
        error: Option<String>,
    },
}

struct Line {
    record: Record,
    /// Offset just past this line's newline.
    end: u64,
}

/// Reads complete lines of the log from an offset on.
struct Tail {
    file: File,
    /// Offset of the first byte of `partial`.
    pos: u64,
    partial: Vec<u8>,
    path: PathBuf,
}

impl Tail {
    fn open(path: &Path, offset: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            file,
            pos: offset,
            partial: Vec::new(),
            path: path.to_path_buf(),
        })
    }

    /// Appends to `queue` the complete lines written since the last call (at most a chunk).
    fn read(&mut self, queue: &mut VecDeque<Line>) -> io::Result<()> {
        let start = self.partial.len();
        self.partial.resize(start + READ_CHUNK, 0);
        let n = self.file.read(&mut self.partial[start..])?;
        self.partial.truncate(start + n);
        let Some(last_newline) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        let mut offset = self.pos;
        for raw in complete.split_inclusive(|&b| b == b'\n') {
            offset += raw.len() as u64;
            match serde_json::from_slice::<Record>(&raw[..raw.len() - 1]) {
                Ok(record) => queue.push_back(Line {
                    record,
                    end: offset,
                }),
                // Never sent, never silent: `warden replay --verify` tells what happened.
                Err(e) => tracing::error!(
                    "{} at byte {}: not a record, not exported: {e}",
                    self.path.display(),
                    offset - raw.len() as u64
                ),
            }
        }
        self.pos = offset;
        Ok(())
    }

    /// Skips to the end of the log's complete lines: the seq of the last one and the offset
    /// after it, or `None` if nothing complete lies ahead.
    fn skip_to_end(&mut self) -> io::Result<Option<(u64, u64)>> {
        let len = self.file.metadata()?.len();
        // The last complete line is within the last few records' size: read a bounded tail.
        let window = len.saturating_sub(self.pos).min(4 * READ_CHUNK as u64);
        let from = len - window;
        let mut buf = vec![0; window as usize];
        self.file.seek(SeekFrom::Start(from))?;
        self.file.read_exact(&mut buf)?;
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            self.file
                .seek(SeekFrom::Start(self.pos + self.partial.len() as u64))?;
            return Ok(None);
        };
        let begin = buf[..end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let record: Record = serde_json::from_slice(&buf[begin..end])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let after = from + end as u64 + 1;
        self.file.seek(SeekFrom::Start(after))?;
        self.pos = after;
        self.partial.clear();
        Ok(Some((record.seq, after)))
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        d
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_FIRST;
    }
}

/// A delivery of one session's log.
pub struct Delivery<'a> {
    pub exporter: &'a Exporter,
    pub log: PathBuf,
    pub cursor: Cursor,
    /// Where the cursor is persisted; `None` for a one-off resend (`warden replay --otlp`).
    pub session_dir: Option<PathBuf>,
    /// A live session: its state, and its backlog limit.
    pub live: Option<(watch::Receiver<SessionState>, Option<BacklogControl>)>,
    /// How long to keep trying once the log is complete (the session ended, or from the start
    /// for a finished session).
    pub grace: Duration,
}

impl Delivery<'_> {
    pub async fn run(mut self) -> io::Result<Outcome> {
        let mut tail = Tail::open(&self.log, self.cursor.offset)?;
        let mut queue = VecDeque::new();
        let mut inflight: Vec<Record> = Vec::new();
        let mut inflight_end = self.cursor.offset;
        let mut backoff = Backoff(BACKOFF_FIRST);
        let mut failing: Option<String> = None;
        let (mut state, mut control) = match self.live.take() {
            Some((state, control)) => (Some(state), control),
            None => (None, None),
        };
        let mut deadline = state.is_none().then(|| Instant::now() + self.grace);
        loop {
            let current = state.as_ref().map(|s| *s.borrow());
            if current != Some(SessionState::Running)
                && let Some(mut c) = control.take()
                && c.paused
            {
                // The session ended frozen (it was killed, or its last process was already
                // exiting): its processes are gone and the pipeline may be too, so no record;
                // session.end closes the pause.
                c.freeze(false);
                tracing::info!("the session ended while paused for its telemetry backlog");
            }
            if current == Some(SessionState::Ended) && deadline.is_none() {
                deadline = Some(Instant::now() + self.grace);
            }
            if queue.len() < BATCH_RECORDS {
                tail.read(&mut queue)?;
            }
            if let Some(c) = control.as_mut() {
                self.limit_backlog(c, &mut tail, &mut queue, &mut inflight)
                    .await?;
            }
            if inflight.is_empty() {
                while inflight.len() < BATCH_RECORDS
                    && let Some(line) = queue.pop_front()
                {
                    inflight_end = line.end;
                    inflight.push(line.record);
                }
            }
            if inflight.is_empty() {
                if self.cursor.done {
                    return Ok(Outcome::Done);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(self.pending(None));
                }
                if current.is_none() || current == Some(SessionState::Ended) {
                    // A complete log with nothing left but no session.end: it stays pending.
                    let more = tail.len()? > tail.pos + tail.partial.len() as u64;
                    if !more {
                        return Ok(self.pending(None));
                    }
                }
                self.wait(state.as_mut(), POLL).await;
                continue;
            }
            let sent =
                tokio::time::timeout(Duration::from_secs(30), self.exporter.send(&inflight)).await;
            match sent {
                Ok(Ok(())) => {
                    let last = inflight.last().expect("not empty");
                    self.cursor.next_seq = last.seq + 1;
                    self.cursor.offset = inflight_end;
                    self.cursor.done = matches!(last.event, Event::SessionEnd(_));
                    inflight.clear();
                    if let Some(dir) = &self.session_dir {
                        self.cursor.store(dir)?;
                    }
                    if let Some(e) = failing.take() {
                        tracing::warn!(
                            "OTLP collector {} reachable again (after: {e}); sending the backlog",
                            self.exporter.endpoint()
                        );
                    }
                    backoff.reset();
                    if let Some(c) = control.as_mut()
                        && c.paused
                        && tail.len()? - self.cursor.offset <= c.max_bytes / 2
                    {
                        let backlog = tail.len()? - self.cursor.offset;
                        c.release(backlog).await;
                    }
                }
                failed => {
                    let e = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_string(),
                    };
                    if failing.is_none() {
                        tracing::warn!(
                            "OTLP collector {}: {e}; the log keeps the records, retrying",
                            self.exporter.endpoint()
                        );
                    }
                    failing = Some(e.clone());
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(self.pending(Some(e)));
                    }
                    let delay = backoff.next();
                    self.wait(state.as_mut(), delay).await;
                }
            }
        }
    }

    fn pending(&self, error: Option<String>) -> Outcome {
        Outcome::Pending {
            next_seq: self.cursor.next_seq,
            error,
        }
    }

    /// Sleeps `delay`, waking early when the session changes state.
    async fn wait(&self, state: Option<&mut watch::Receiver<SessionState>>, delay: Duration) {
        match state {
            Some(s) if *s.borrow() != SessionState::Ended => {
                // Err: the session side is gone; the state will not change any more.
                if let Ok(Err(_)) = tokio::time::timeout(delay, s.changed()).await {
                    tokio::time::sleep(delay).await;
                }
            }
            _ => tokio::time::sleep(delay).await,
        }
    }

    /// Applies the backlog limit: the bytes of log not yet acknowledged.
    async fn limit_backlog(
        &mut self,
        c: &mut BacklogControl,
        tail: &mut Tail,
        queue: &mut VecDeque<Line>,
        inflight: &mut Vec<Record>,
    ) -> io::Result<()> {
        let backlog = tail.len()? - self.cursor.offset;
        if backlog <= c.max_bytes {
            return Ok(());
        }
        match c.policy {
            BacklogPolicy::Pause => {
                if !c.paused {
                    tracing::warn!(
                        "{backlog} bytes of telemetry wait for the collector (limit {}): \
                         freezing the session until they are sent",
                        c.max_bytes
                    );
                    c.freeze(true);
                    c.record(ExportBacklog {
                        action: BacklogAction::Paused,
                        backlog_bytes: backlog,
                        limit_bytes: c.max_bytes,
                        from_seq: None,
                        to_seq: None,
                        records: None,
                    })
                    .await;
                }
            }
            BacklogPolicy::Drop => {
                let Some((to_seq, end)) = tail.skip_to_end()? else {
                    return Ok(());
                };
                let from_seq = self.cursor.next_seq;
                queue.clear();
                inflight.clear();
                self.cursor.next_seq = to_seq + 1;
                self.cursor.offset = end;
                if let Some(dir) = &self.session_dir {
                    self.cursor.store(dir)?;
                }
                let records = to_seq + 1 - from_seq;
                tracing::warn!(
                    "{backlog} bytes of telemetry wait for the collector (limit {}): records \
                     seq {from_seq}-{to_seq} are not exported (they stay in the log)",
                    c.max_bytes
                );
                c.record(ExportBacklog {
                    action: BacklogAction::Dropped,
                    backlog_bytes: backlog,
                    limit_bytes: c.max_bytes,
                    from_seq: Some(from_seq),
                    to_seq: Some(to_seq),
                    records: Some(records),
                })
                .await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{audit_log::AuditWriter, clock::Clock, events::Fork};
    use std::io::Write as _;

    #[test]
    fn the_tail_reads_complete_lines_with_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut w = AuditWriter::create(&path, "s", Clock::new()).unwrap();
        for pid in 0..3 {
            w.append(1, Event::Fork(Fork { pid, ppid: 0 })).unwrap();
        }
        w.flush().unwrap();
        let sizes: Vec<u64> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| l.len() as u64 + 1)
            .collect();
        // A torn last line is left for later.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"session\":").unwrap();

        let mut tail = Tail::open(&path, sizes[0]).unwrap();
        let mut queue = VecDeque::new();
        tail.read(&mut queue).unwrap();
        let got: Vec<(u64, u64)> = queue.iter().map(|l| (l.record.seq, l.end)).collect();
        assert_eq!(
            got,
            [
                (1, sizes[0] + sizes[1]),
                (2, sizes[0] + sizes[1] + sizes[2])
            ]
        );
        // The rest of the line arrives.
        f.write_all(b"\"s\",\"seq\":3,\"time\":\"\",\"boot_ns\":1,\"kind\":\"fork\",\"pid\":1,\"ppid\":0}\n")
            .unwrap();
        queue.clear();
        tail.read(&mut queue).unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].record.seq, 3);

        let mut tail = Tail::open(&path, 0).unwrap();
        let total = std::fs::metadata(&path).unwrap().len();
        assert_eq!(tail.skip_to_end().unwrap(), Some((3, total)));
    }

    #[test]
    fn backoff_is_bounded() {
        let mut b = Backoff(BACKOFF_FIRST);
        let delays: Vec<Duration> = (0..10).map(|_| b.next()).collect();
        assert_eq!(delays[0], BACKOFF_FIRST);
        assert_eq!(delays[1], BACKOFF_FIRST * 2);
        assert_eq!(*delays.last().unwrap(), BACKOFF_MAX);
        b.reset();
        assert_eq!(b.next(), BACKOFF_FIRST);
    }
}
