//! Tailing: discovery of log files, file identity, framing of lines, checkpoints.
//!
//! This module knows nothing of Kubernetes or of log formats: it hands out physical lines with
//! their byte offsets. A file's identity survives renames (rotation) and detects inode reuse.
//! It imports nothing of the crate but the configuration vocabulary ([`crate::settings`]).

pub mod checkpoint;
pub mod config;
pub mod discover;
pub mod file;
pub mod identity;
pub mod watch;

pub use checkpoint::{Checkpoint, CheckpointEntry, CheckpointError};
pub use file::{Line, ReadOutcome, TailedFile};
pub use identity::{FileId, Fingerprint, IdScheme};
