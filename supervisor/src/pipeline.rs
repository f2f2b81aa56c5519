//! The event pipeline: kernel ring buffer -> decode -> audit log (and the live view).
//!
//! Lost events are never silent: the kernel counts what it could not write, this pipeline
//! counts what it could not decode, and both become `events.lost` records.
use std::{io, sync::Arc, time::Duration};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    audit_log::AuditWriter,
    clock,
    decode::{Decoded, Labels, decode},
    events::{Event, EventsLost},
    file_activity::FileActivity,
    kernel::programs::{EventSource, LostCounts},
    live_triage::{Asker, LiveTriage},
    live_view::LiveView,
    network::connect_activity::ConnectActivity,
    tool_calls::ToolCalls,
};

/// How often the ring buffer and the user-space events are drained (the kernel side only
/// wakes us when its buffer fills up).
const TICK: Duration = Duration::from_millis(20);
/// How long, at the end, producers of user-space events get to finish (longer than a DNS
/// upstream exchange can take).
const USER_EVENTS_GRACE: Duration = Duration::from_secs(10);
/// Longest time records stay in the page cache before an fsync.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Events produced in user space (the DNS proxy...), with their CLOCK_BOOTTIME stamp.
pub type UserEvents = mpsc::Receiver<(u64, Event)>;

pub struct Pipeline {
    writer: AuditWriter,
    live: Option<LiveView>,
    labels: Arc<dyn Labels + Send + Sync>,
    files: FileActivity,
    connects: ConnectActivity,
    lost_seen: LostCounts,
    undecodable: u64,
    undecodable_reported: u64,
    tool_calls: ToolCalls,
    triage: Option<LiveTriage>,
}

/// What the pipeline hands back when it stops.
pub struct Finished {
    pub writer: AuditWriter,
    pub lost_total: u64,
    /// The live view, for the session's last records.
    pub live: Option<LiveView>,
}

impl Pipeline {
    /// `live`: also show the records on stderr, for a person watching.
    pub fn new(
        writer: AuditWriter,
        live: Option<LiveView>,
        labels: Arc<dyn Labels + Send + Sync>,
    ) -> Self {
        Self {
            writer,
            live,
            labels,
            files: FileActivity::default(),
            connects: ConnectActivity::default(),
            lost_seen: LostCounts::default(),
            undecodable: 0,
            undecodable_reported: 0,
            tool_calls: ToolCalls::default(),
            triage: None,
        }
    }

    /// Runs live triage over every record written.
    pub fn with_triage(mut self, triage: LiveTriage) -> Self {
        self.triage = Some(triage);
        self
    }

    /// Live triage's questions go to the session's approval flow.
    pub fn triage_asks(&mut self, asker: Asker) {
        if let Some(t) = self.triage.as_mut() {
            t.ask_with(asker);
        }
    }

    /// Writes a user-space event (session start, ...) through the same sequence.
    pub fn append(&mut self, event: Event) -> io::Result<()> {
        self.append_at(clock::boot_ns(), event)
    }

    fn append_at(&mut self, boot_ns: u64, mut event: Event) -> io::Result<()> {
        let tool_call = self.tool_calls.tag(&mut event);
        let record = self.writer.append_tagged(boot_ns, event, tool_call)?;
        if let Some(live) = self.live.as_mut() {
            live.show(&record);
        }
        // A finding follows the record that made it fire.
        let findings = match self.triage.as_mut() {
            Some(t) => t.push(&record),
            None => Vec::new(),
        };
        for finding in findings {
            let record = self.writer.append(boot_ns, finding)?;
            if let Some(live) = self.live.as_mut() {
                live.show(&record);
            }
        }
        Ok(())
    }

    /// Runs until `stop` fires, then drains everything the kernel wrote and every user-space
    /// event sent before it.
    pub async fn run(
        mut self,
        source: EventSource,
        mut user: UserEvents,
        mut stop: oneshot::Receiver<()>,
    ) -> io::Result<Finished> {
        let EventSource { ring, lost } = source;
        // SAFETY: the ring buffer owns its map fd, which stays open and the same for as long
        // as the AsyncFd owns the ring buffer.
        let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sync = Instant::now();
        loop {
            tokio::select! {
                guard = ring.readable_mut() => {
                    let mut guard = guard?;
                    self.drain(guard.get_inner_mut(), &mut user)?;
                    guard.clear_ready();
                }
                _ = tick.tick() => {
                    self.drain(ring.get_mut(), &mut user)?;
                    self.report_lost(lost.counts().map_err(io::Error::other)?)?;
                    self.writer.flush()?;
                    if last_sync.elapsed() >= SYNC_EVERY {
                        self.writer.sync()?;
                        last_sync = Instant::now();
                    }
                }
                _ = &mut stop => break,
            }
        }
        self.drain(ring.get_mut(), &mut user)?;
        self.write_folded(true)?;
        // User-space producers finish what they started (a DNS query waiting for its
        // upstream): wait until every sender is gone, within bounds.
        let deadline = Instant::now() + USER_EVENTS_GRACE;
        while let Ok(Some((boot_ns, event))) = tokio::time::timeout_at(deadline, user.recv()).await
        {
            self.append_at(boot_ns, event)?;
        }
        if !user.is_closed() {
            tracing::error!("user-space event producers still running after the session ended");
        }
        let counts = lost.counts().map_err(io::Error::other)?;
        self.report_lost(counts)?;
        self.writer.flush()?;
        Ok(Finished {
            lost_total: counts.total() + self.undecodable,
            writer: self.writer,
            live: self.live,
        })
    }

    /// Writes what the kernel and the user-space producers have handed over since the last
    /// drain, in time order (a DNS query's redirect, seen by the kernel, before the query).
    ///
    /// User-space events are taken here, on the tick, rather than as they arrive: waking the
    /// pipeline for each one (every exec decision of the gate) costs a context switch each.
    /// The channel is bounded, so a burst waits for the next drain instead of being dropped.
    fn drain(&mut self, ring: &mut RingBuf<MapData>, user: &mut UserEvents) -> io::Result<()> {
        let mut batch = Vec::new();
        while let Some(item) = ring.next() {
            match decode(&item, self.labels.as_ref()) {
                Ok(Decoded::Event(boot_ns, event)) => {
                    if let Some(event) = self.connects.add(boot_ns, event) {
                        batch.push((boot_ns, event));
                    }
                }
                Ok(Decoded::File(call)) => self.files.add(call),
                Err(e) => {
                    self.undecodable += 1;
                    tracing::error!("dropping an undecodable kernel record: {e}");
                }
            }
        }
        while let Ok(event) = user.try_recv() {
            batch.push(event);
        }
        batch.sort_by_key(|(boot_ns, _)| *boot_ns);
        for (boot_ns, event) in batch {
            self.append_at(boot_ns, event)?;
        }
        self.write_folded(false)
    }

    /// Writes the folded file calls and connects of a finished window (or all of them).
    fn write_folded(&mut self, everything: bool) -> io::Result<()> {
        let now = clock::boot_ns();
        let mut folded = self.files.take(now, everything);
        folded.extend(self.connects.take(now, everything));
        folded.sort_by_key(|(boot_ns, _)| *boot_ns);
        for (boot_ns, event) in folded {
            self.append_at(boot_ns, event)?;
        }
        // The kernel reports a process's file calls before its exit, and they were all drained
        // before this: the exited processes' file activity is complete.
        if self.files.is_empty()
            && let Some(live) = self.live.as_mut()
        {
            live.files_written();
        }
        Ok(())
    }

    fn report_lost(&mut self, now: LostCounts) -> io::Result<()> {
        let delta = now.since(&self.lost_seen);
        let undecodable = self.undecodable - self.undecodable_reported;
        if delta.total() == 0 && undecodable == 0 {
            return Ok(());
        }
        tracing::warn!(
            "kernel events lost: exec {} fork {} exit {} network {} file {} unix {} lsm {}, undecodable {undecodable}",
            delta.exec,
            delta.fork,
            delta.exit,
            delta.network,
            delta.file,
            delta.unix,
            delta.lsm
        );
        self.append(Event::EventsLost(EventsLost {
            exec: delta.exec,
            fork: delta.fork,
            exit: delta.exit,
            network: delta.network,
            file: delta.file,
            unix: delta.unix,
            lsm: delta.lsm,
            undecodable,
            total: now.total() + self.undecodable,
        }))?;
        self.lost_seen = now;
        self.undecodable_reported = self.undecodable;
        Ok(())
    }
}
