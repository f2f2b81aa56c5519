//! Who the supervised command runs as: the user who invoked Warden through sudo, or `--user`.
use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from the group database).
    pub groups: Vec<u32>,
    pub home: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no such user: {0}")]
    NoSuchUser(String),
    #[error("{var}={value:?} is not a numeric id")]
    BadEnv { var: &'static str, value: String },
    #[error("looking up user {0}: {1}")]
    Lookup(String, nix::Error),
}

/// `--user` (name or uid) wins; then SUDO_UID/SUDO_GID; then the current user.
pub fn resolve(flag: Option<&str>) -> Result<TargetUser, UserError> {
    if let Some(spec) = flag {
        let user = match spec.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(spec),
        }
        .map_err(|e| UserError::Lookup(spec.to_string(), e))?
        .ok_or_else(|| UserError::NoSuchUser(spec.to_string()))?;
        return from_user(user, None);
    }
    let env_id = |var: &'static str| -> Result<Option<u32>, UserError> {
        match std::env::var(var) {
            Ok(value) => value
                .parse()
                .map(Some)
                .map_err(|_| UserError::BadEnv { var, value }),
            Err(_) => Ok(None),
        }
    };
    let uid = env_id("SUDO_UID")?.unwrap_or_else(|| Uid::current().as_raw());
    let gid = env_id("SUDO_GID")?;
    let user = User::from_uid(Uid::from_raw(uid))
        .map_err(|e| UserError::Lookup(uid.to_string(), e))?
        .ok_or_else(|| UserError::NoSuchUser(uid.to_string()))?;
    from_user(user, gid)
}

fn from_user(user: User, gid: Option<u32>) -> Result<TargetUser, UserError> {
    let gid = gid.unwrap_or(user.gid.as_raw());
    let cname = std::ffi::CString::new(user.name.clone())
        .map_err(|_| UserError::NoSuchUser(user.name.clone()))?;
    let groups = nix::unistd::getgrouplist(&cname, Gid::from_raw(gid))
        .map_err(|e| UserError::Lookup(user.name.clone(), e))?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    Ok(TargetUser {
        name: user.name,
        uid: user.uid.as_raw(),
        gid,
        groups,
        home: user.dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_by_name_and_uid() {
        let by_name = resolve(Some("nobody")).unwrap();
        let by_uid = resolve(Some(&by_name.uid.to_string())).unwrap();
        assert_eq!(by_name, by_uid);
        assert!(by_name.groups.contains(&by_name.gid));
        assert!(matches!(
            resolve(Some("no-such-user-xyz")),
            Err(UserError::NoSuchUser(_))
        ));
    }
}
