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

/// Writes one whole log line to stderr. A line of up to 4 KiB goes out in
/// one `write` without the standard library's stderr lock (every worker
/// logs every request, and that lock was where they queued): a pipe takes
/// such a write whole, so lines never interleave. Longer lines, and the
/// rest of a write the kernel cut short, go through the lock.
#[doc(hidden)]
pub fn write_log_line(line: &[u8]) {
    use std::io::Write as _;
    const WHOLE: usize = 4096;
    let mut rest = line;
    if line.len() <= WHOLE {
        // SAFETY: `line` is a valid buffer of `line.len()` bytes; fd 2 is the
        // process's stderr, open for its whole life.
        let written = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
        match usize::try_from(written) {
            Ok(n) if n >= line.len() => return,
            Ok(n) => rest = &line[n..],
            Err(_) => {}
        }
    }
    let _ = std::io::stderr().lock().write_all(rest);
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
