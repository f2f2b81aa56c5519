//! The sandbox side of Warden (launcher and agent API client); see issue #4.
