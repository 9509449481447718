//! SIP messages sent through `linphone-daemon` (`POST /api/messages`).

use crate::app::App;
use crate::domain::rules::Input;
use crate::error::{invalid, AppError, AppResult, FieldErrors};
use crate::notify::{daemon, NotifyError};

/// Sends `body` to `to` (`user@domain`, `sip:` tolerated) and returns the
/// daemon's message id. 404 when `APP_LINPHONE_DAEMON_UNIX_PATH` is unset;
/// 422 for missing fields, a bad recipient (the daemon's reason) or an
/// unreachable daemon (FlexiAPI's "internal socket" text).
pub fn send(app: &App, input: &Input) -> AppResult<String> {
    let Some(path) = app.config.linphone_daemon_unix_path.as_deref() else {
        return Err(AppError::NotFound(String::new()));
    };
    let mut errors = FieldErrors::default();
    let to = input.required("to", &mut errors);
    let body = input.required("body", &mut errors);
    errors.into_result()?;
    let (Some(to), Some(body)) = (to, body) else {
        return Err(AppError::unvalidated());
    };
    let to = to.strip_prefix("sip:").unwrap_or(&to).to_string();
    match daemon::send_message(path, &to, &body) {
        Ok(id) => Ok(id),
        Err(NotifyError::Rejected(reason)) => Err(invalid("to", reason)),
        Err(NotifyError::Invalid(m)) => Err(invalid("to", m)),
        Err(e) => {
            crate::log_line!("messages: linphone-daemon: {e}");
            Err(invalid("to", daemon::SOCKET_ERROR))
        }
    }
}
