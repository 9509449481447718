//! flexiapi: the SIP account manager for Flexisip in one binary.
//!
//! Layers, outermost first: `cli` and `http` parse input and render output;
//! `services` hold the rules shared by the API, the portal and the CLI;
//! `db` holds every SQL statement; `domain` holds pure types and rules.

/// A log line to stderr (journald) in one `write`: `eprintln!` issues a
/// system call per formatted piece (nine for an access-log line), and a
/// daemon must not panic when stderr is gone.
#[macro_export]
macro_rules! log_line {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::write_log_line(line.as_bytes());
    }};
}

/// Writes one whole log line to stderr with one `write`, without taking
/// the standard library's stderr lock: every worker logs every request,
/// and that lock was where they queued. A line written at once is not
/// interleaved with another (a pipe takes up to 4 KiB whole; journald reads
/// stderr through a stream socket, one line per record).
#[doc(hidden)]
pub fn write_log_line(line: &[u8]) {
    use std::io::Write as _;
    use std::os::fd::FromRawFd as _;
    // SAFETY: fd 2 stays open for the whole process; ManuallyDrop keeps this
    // borrowed File from closing it.
    let mut stderr = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(2) });
    let _ = stderr.write_all(line);
}

pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod janitor;
pub mod metrics;
pub mod notify;
pub mod provisioning;
pub mod services;
pub mod views;
