//! Site hooks (seed 002's provisioning and account service hooks), the
//! single-binary way: executables named in the configuration.
//!
//! NOTE: being written as part of the provisioning work; `account_event`
//! keeps this signature.

use crate::app::App;
use crate::db::accounts::Account;

/// Account events a hook is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEvent {
    Created,
    Edited,
    Activated,
    Deleted,
}

/// Notifies `ACCOUNT_SERVICE_HOOK` (if configured) of an account event.
/// Never fails the caller: a failing hook is logged.
pub fn account_event(_app: &App, _event: AccountEvent, _account: &Account) {}
