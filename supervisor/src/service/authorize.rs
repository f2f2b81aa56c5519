//! Who may start a session through the daemon: root, and the users and group members the
//! requirements name (`service.allowed_users`, `service.allowed_groups`). Nothing named: only
//! root. The refusal says which keys decided and where they are set.
use warden_requirements::{Effective, Setting, values::NonEmpty};

/// The person asking, as the kernel and the user database know them.
pub struct Asker<'a> {
    pub uid: u32,
    pub name: &'a str,
    /// Primary and supplementary groups of the asking process.
    pub groups: &'a [u32],
}

/// Looks up a group name (the caller passes the system's group database).
pub trait Groups {
    fn gid(&self, name: &str) -> Option<u32>;
}

/// The system's group database.
pub struct SystemGroups;

impl Groups for SystemGroups {
    fn gid(&self, name: &str) -> Option<u32> {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    }
}

/// `Ok` when `asker` may start sessions; else the sentence that tells them why not.
pub fn may_start(asker: &Asker<'_>, req: &Effective, groups: &impl Groups) -> Result<(), String> {
    if asker.uid == 0 {
        return Ok(());
    }
    let users = req.service_allowed_users.as_ref();
    let allowed_groups = req.service_allowed_groups.as_ref();
    let user_listed = users.is_some_and(|u| {
        u.value
            .iter()
            .any(|n| n.as_str() == asker.name || n.as_str() == asker.uid.to_string())
    });
    let in_group = allowed_groups.is_some_and(|g| {
        g.value.iter().any(|n| {
            let gid = n.as_str().parse().ok().or_else(|| groups.gid(n.as_str()));
            gid.is_some_and(|gid| asker.groups.contains(&gid))
        })
    });
    if user_listed || in_group {
        return Ok(());
    }
    let said = |key: &str, s: Option<&Setting<Vec<NonEmpty>>>| match s {
        Some(s) => format!("{key} = [{}] ({})", names(&s.value), s.origin),
        None => format!("{key} is not set"),
    };
    Err(format!(
        "user {} (uid {}) may not start Warden sessions: {}; {}. An administrator can add \
         the user to one of those groups, or to service.allowed_users",
        asker.name,
        asker.uid,
        said("service.allowed_users", users),
        said("service.allowed_groups", allowed_groups),
    ))
}

fn names(list: &[NonEmpty]) -> String {
    list.iter()
        .map(|n| format!("{:?}", n.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_requirements::{Layer, LayerKind, merge};

    struct Table;

    impl Groups for Table {
        fn gid(&self, name: &str) -> Option<u32> {
            match name {
                "warden" => Some(500),
                "devs" => Some(600),
                _ => None,
            }
        }
    }

    fn effective(text: &str) -> Effective {
        merge(&[Layer::parse(LayerKind::Local, "/etc/warden/requirements.toml", text).unwrap()])
    }

    #[test]
    fn who_may_start() {
        let both = "[service]\nallowed_users = [\"alice\", \"1002\"]\nallowed_groups = [\"warden\", \"700\", \"nosuch\"]\n";
        // (requirements, uid, name, groups, allowed)
        let rows: &[(&str, u32, &str, &[u32], bool)] = &[
            ("", 0, "root", &[0], true),
            ("", 1000, "bob", &[1000, 500], false),
            (both, 1000, "alice", &[1000], true),
            (both, 1002, "carol", &[1002], true),
            (both, 1003, "dave", &[1003, 500], true),
            (both, 1004, "erin", &[1004, 700], true),
            (both, 1005, "frank", &[1005, 600], false),
            (both, 1006, "nosuch", &[1006], false),
            (
                "[service]\nallowed_groups = []\n",
                1000,
                "bob",
                &[500],
                false,
            ),
        ];
        for (text, uid, name, groups, allowed) in rows {
            let asker = Asker {
                uid: *uid,
                name,
                groups,
            };
            let got = may_start(&asker, &effective(text), &Table);
            assert_eq!(got.is_ok(), *allowed, "{name} with {text:?}: {got:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_keys_and_where_they_are_set() {
        let text = "[service]\nallowed_groups = [\"warden\"]\n";
        let asker = Asker {
            uid: 1000,
            name: "bob",
            groups: &[1000],
        };
        let err = may_start(&asker, &effective(text), &Table).unwrap_err();
        assert!(
            err.starts_with("user bob (uid 1000) may not start Warden sessions"),
            "{err}"
        );
        assert!(err.contains("service.allowed_users is not set"), "{err}");
        assert!(
            err.contains(
                "service.allowed_groups = [\"warden\"] (/etc/warden/requirements.toml line 2"
            ),
            "{err}"
        );
    }
}
