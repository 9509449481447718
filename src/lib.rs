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
        use std::io::Write as _;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
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
