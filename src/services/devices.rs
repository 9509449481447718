//! The devices Flexisip's registrar keeps for an account (Redis), behind
//! `DEVICES_MANAGEMENT`. Redis being down shows no device (logged), within
//! the notify client's timeouts, rather than failing the page or the API.

use super::notifications;
use crate::app::App;
use crate::db::accounts::Account;
use crate::error::{AppError, AppResult};
use crate::notify::redis::{self, Device};
use crate::notify::NotifyError;

fn enabled(app: &App) -> AppResult<()> {
    if !app.config.devices_management {
        return Err(AppError::NotFound(String::new()));
    }
    Ok(())
}

/// The account's devices, newest first; 404 when `DEVICES_MANAGEMENT` is
/// off; empty (and logged) when Redis cannot be read.
pub fn list(app: &App, account: &Account) -> AppResult<Vec<Device>> {
    enabled(app)?;
    match redis::list_devices(&notifications::redis_settings(&app.config), &account.username, &account.domain) {
        Ok(devices) => Ok(devices),
        Err(e) => {
            crate::log_line!("devices: cannot read Redis: {e}");
            Ok(Vec::new())
        }
    }
}

/// Removes a device (unknown ones included: nothing to do); 404 when
/// `DEVICES_MANAGEMENT` is off; 503 when Redis cannot be reached, so the
/// user knows the device was not removed.
pub fn remove(app: &App, account: &Account, uuid: &str) -> AppResult<()> {
    enabled(app)?;
    match redis::delete_device(&notifications::redis_settings(&app.config), &account.username, &account.domain, uuid) {
        Ok(()) => Ok(()),
        Err(NotifyError::Invalid(m)) => Err(crate::error::invalid("uuid", m)),
        Err(e) => {
            crate::log_line!("devices: cannot write Redis: {e}");
            Err(AppError::Unavailable("The device list cannot be reached, please retry later.".into()))
        }
    }
}
