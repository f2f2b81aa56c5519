//! Which tool call each process belongs to, so that its records carry `tool_call_id`.
//!
//! A call starts with the agent API's `tool_call_start`, sent by the process that runs the
//! tool; that process and everything forked below it belong to the call until its
//! `tool_call_end`. Records are tagged as the pipeline writes them, in time order, so a fork
//! seen after the start is tagged and one before it is not. A process keeps its tag after it
//! exits (its folded file records may be written later); a reused pid gets its parent's.
use std::collections::HashMap;

use crate::events::{Event, ToolCallPhase};

#[derive(Default)]
pub struct ToolCalls {
    by_pid: HashMap<u32, String>,
}

impl ToolCalls {
    /// The tool call `event` belongs to, updating the table with what the event says.
    pub fn tag(&mut self, event: &mut Event) -> Option<String> {
        match event {
            Event::AgentToolCall(call) => match call.phase {
                ToolCallPhase::Start => {
                    self.by_pid.insert(call.pid, call.id.clone());
                    Some(call.id.clone())
                }
                ToolCallPhase::End => {
                    let before = self.by_pid.len();
                    self.by_pid.retain(|_, id| *id != call.id);
                    call.processes = Some((before - self.by_pid.len()) as u64);
                    Some(call.id.clone())
                }
            },
            Event::Fork(f) => {
                match self.by_pid.get(&f.ppid).cloned() {
                    Some(id) => self.by_pid.insert(f.pid, id),
                    None => self.by_pid.remove(&f.pid),
                };
                self.by_pid.get(&f.pid).cloned()
            }
            other => other.pid().and_then(|pid| self.by_pid.get(&pid).cloned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AgentToolCall, Exit, Fork};

    fn call(pid: u32, id: &str, phase: ToolCallPhase) -> Event {
        Event::AgentToolCall(AgentToolCall {
            pid,
            id: id.into(),
            phase,
            name: None,
            status: None,
            processes: None,
        })
    }

    #[test]
    fn a_call_covers_its_process_subtree_until_it_ends() {
        let mut t = ToolCalls::default();
        let fork = |t: &mut ToolCalls, pid, ppid| t.tag(&mut Event::Fork(Fork { pid, ppid }));
        assert_eq!(fork(&mut t, 20, 10), None, "before the call");
        assert_eq!(
            t.tag(&mut call(10, "c1", ToolCallPhase::Start)).as_deref(),
            Some("c1")
        );
        assert_eq!(fork(&mut t, 11, 10).as_deref(), Some("c1"));
        assert_eq!(fork(&mut t, 12, 11).as_deref(), Some("c1"), "grandchild");
        assert_eq!(
            t.tag(&mut Event::Exit(Exit::from_wait_status(12, 11, 0)))
                .as_deref(),
            Some("c1")
        );
        assert_eq!(
            fork(&mut t, 21, 20),
            None,
            "a sibling subtree is not in the call"
        );
        // pid 12 reused by an untagged parent: not in the call.
        assert_eq!(fork(&mut t, 12, 20), None);
        let mut end = call(10, "c1", ToolCallPhase::End);
        assert_eq!(t.tag(&mut end).as_deref(), Some("c1"));
        let Event::AgentToolCall(end) = end else {
            panic!()
        };
        assert_eq!(end.processes, Some(2), "10 and 11 (12 was reused)");
        assert_eq!(fork(&mut t, 13, 10), None, "after the end");
    }
}
