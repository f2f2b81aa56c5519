//! How Warden spells the values that leave the process (audit log, OTLP, requirement files,
//! the launch spec, the terminal): `string_enum!` writes each value's name once and derives
//! `as_str`, `Display`, `FromStr`, serde and `ALL` from it. Also the one value the launcher
//! and the requirements share, the sandbox mode.
use std::{fmt, marker::PhantomData, str::FromStr};

use serde::de::{self, Visitor};

#[doc(hidden)]
pub use serde as __serde;

/// Why a string is not a valid value of its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

/// Deserializes a string through `FromStr`, reporting the `InvalidValue` text as the error.
#[doc(hidden)]
pub struct ParseVisitor<T>(&'static str, PhantomData<T>);

impl<T> ParseVisitor<T> {
    pub fn new(what: &'static str) -> Self {
        Self(what, PhantomData)
    }
}

impl<T: FromStr<Err = InvalidValue>> Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (a string)", self.0)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        s.parse().map_err(E::custom)
    }
}

/// serde support through `FromStr` and `Display`, for types written as one string.
#[macro_export]
macro_rules! serde_via_str {
    ($name:ty, $what:literal) => {
        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str($crate::ParseVisitor::<Self>::new($what))
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
/// An enum spelled as one of a fixed set of strings: every name that leaves the process (the
/// audit log, OTLP, requirement files, the terminal) is written once, in its invocation, and
/// `as_str`, `Display`, `FromStr`, serde and `ALL` all come from it.
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])* $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::InvalidValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<String> = Self::ALL.iter().map(|v| format!("`{v}`")).collect();
                    $crate::InvalidValue(format!(
                        "unknown {} `{s}`, expected one of {}",
                        $what,
                        names.join(", ")
                    ))
                })
            }
        }

        $crate::serde_via_str!($name, $what);
    };
}

string_enum! {
    /// How much of the file system the sandboxed agent may write.
    SandboxMode, "sandbox mode" {
        ReadOnly = "read-only",
        WorkspaceWrite = "workspace-write",
        DangerFullAccess = "danger-full-access",
    }
}

string_enum! {
    /// How a credential reaches the agent, narrowest first; the credential store and the
    /// requirements (`credentials.allowed_deliveries`) share it.
    CredentialDelivery, "credential delivery" {
        /// The agent holds a placeholder; Warden's egress path swaps it for the value.
        Inject = "inject",
        /// The agent asks Warden through the session's agent socket (git's credential helper).
        Helper = "helper",
        /// A variable in the agent's environment at launch.
        Env = "env",
    }
}

string_enum! {
    /// What live triage does about a finding of a given severity (the requirements'
    /// `triage.on_<severity>`), mildest first; the `finding` record says which it did.
    TriageAction, "triage action" {
        /// Recorded and exported; the session goes on.
        Record = "record",
        /// The session is frozen and a person (or the reviewer command) is asked whether it
        /// goes on; a refusal, the timeout or nobody to ask ends it.
        Ask = "ask",
        /// The session is ended (its processes killed).
        End = "end",
    }
}
