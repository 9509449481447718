//! flexiapi: the SIP account manager for Flexisip in one binary.
//!
//! Layers, outermost first: `cli` and `http` parse input and render output;
//! `services` hold the rules shared by the API, the portal and the CLI;
//! `db` holds every SQL statement; `domain` holds pure types and rules.

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
