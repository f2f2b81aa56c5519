//! How many sessions a user may hold at once (`service.max_sessions_per_user`).
//!
//! Threat: the kernel bounds the programs on one hook for the whole machine (64 sessions on
//! the tracepoint tier, 38 on the others), and a session beyond waits for room. Without a
//! cap one user could hold every slot and make everybody else's sessions wait for ever.
//!
//! A user's sessions are the live registrations in RUN_DIR (whoever started them, this daemon
//! or one before it) and the sessions this daemon started that have not registered yet
//! (loading, or waiting for room), counted once each by their supervisor's pid.
use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
    sync::Mutex,
};

use warden_requirements::Setting;

use crate::recovery;

/// The sessions this daemon started that still run, by supervisor pid: their user.
#[derive(Default)]
pub struct Quota {
    started: Mutex<HashMap<u32, u32>>,
}

impl Quota {
    /// Counts `uid`'s sessions and, under the cap, starts one more with `start` (which
    /// returns the new supervisor's pid). The count and the start happen under one lock, so
    /// that requests at once cannot each find room for one.
    pub fn admit(
        &self,
        uid: u32,
        name: &str,
        cap: Option<&Setting<u32>>,
        run_dir: &Path,
        start: impl FnOnce() -> Result<u32, String>,
    ) -> Result<(), String> {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if uid != 0 {
            let mut pids: BTreeSet<u32> = recovery::live(run_dir)
                .into_iter()
                .filter(|s| s.uid == uid)
                .map(|s| s.supervisor_pid)
                .collect();
            pids.extend(started.iter().filter(|&(_, &u)| u == uid).map(|(&p, _)| p));
            within(uid, name, pids.len(), cap)?;
        }
        let pid = start()?;
        started.insert(pid, uid);
        Ok(())
    }

    /// The session's supervisor has exited.
    pub fn ended(&self, pid: u32) {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }
}

/// `Ok` when a user holding `running` sessions may start one more.
fn within(uid: u32, name: &str, running: usize, cap: Option<&Setting<u32>>) -> Result<(), String> {
    match cap {
        Some(cap) if running >= cap.value as usize => Err(format!(
            "user {name} (uid {uid}) has {running} Warden sessions running or starting, the \
             most service.max_sessions_per_user = {} ({}) allows: end one (`warden status` \
             lists them) and try again",
            cap.value, cap.origin
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_requirements::{Layer, LayerKind, merge};

    fn cap(text: &str) -> Option<Setting<u32>> {
        merge(&[Layer::parse(LayerKind::Local, "/etc/warden/requirements.toml", text).unwrap()])
            .service_max_sessions_per_user
    }

    #[test]
    fn a_user_starts_sessions_up_to_the_cap() {
        let two = "[service]\nmax_sessions_per_user = 2\n";
        let zero = "[service]\nmax_sessions_per_user = 0\n";
        // (requirements, sessions running, may start one more)
        let rows: &[(&str, usize, bool)] = &[
            ("", 0, true),
            ("", 500, true),
            (two, 0, true),
            (two, 1, true),
            (two, 2, false),
            (two, 3, false),
            (zero, 0, false),
        ];
        for (text, running, allowed) in rows {
            let got = within(1000, "bob", *running, cap(text).as_ref());
            assert_eq!(got.is_ok(), *allowed, "{running} with {text:?}: {got:?}");
        }
    }

    #[test]
    fn the_refusal_names_the_key_its_value_and_where_it_is_set() {
        let err = within(
            1000,
            "bob",
            2,
            cap("[service]\nmax_sessions_per_user = 2\n").as_ref(),
        )
        .unwrap_err();
        assert!(
            err.starts_with("user bob (uid 1000) has 2 Warden sessions running or starting"),
            "{err}"
        );
        assert!(
            err.contains("service.max_sessions_per_user = 2 (/etc/warden/requirements.toml line 2"),
            "{err}"
        );
    }

    #[test]
    fn sessions_not_yet_registered_count_and_ended_ones_do_not() {
        let run_dir = tempfile::tempdir().unwrap();
        let quota = Quota::default();
        let one = cap("[service]\nmax_sessions_per_user = 1\n");
        let start = |pid| move || Ok(pid);
        quota
            .admit(1000, "bob", one.as_ref(), run_dir.path(), start(10))
            .unwrap();
        // Not registered yet (still loading, or waiting for room): it counts.
        let refused = quota.admit(1000, "bob", one.as_ref(), run_dir.path(), start(11));
        assert!(refused.is_err());
        // Another user's count is their own; root has no cap.
        quota
            .admit(1001, "carol", one.as_ref(), run_dir.path(), start(12))
            .unwrap();
        quota
            .admit(0, "root", one.as_ref(), run_dir.path(), start(13))
            .unwrap();
        quota
            .admit(0, "root", one.as_ref(), run_dir.path(), start(14))
            .unwrap();
        quota.ended(10);
        quota
            .admit(1000, "bob", one.as_ref(), run_dir.path(), start(15))
            .unwrap();
        // A start that fails takes no room.
        quota.ended(15);
        let failed = quota.admit(1000, "bob", one.as_ref(), run_dir.path(), || {
            Err("no such directory".to_owned())
        });
        assert_eq!(failed, Err("no such directory".to_owned()));
        quota
            .admit(1000, "bob", one.as_ref(), run_dir.path(), start(16))
            .unwrap();
    }
}
