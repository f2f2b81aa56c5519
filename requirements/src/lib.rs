//! Requirements and user configuration; see issue #5.
