//! One-use tokens: account creation tokens (admin, push, exchanged from a
//! validated request token) and auth tokens (QR login → API key).
//!
//! Every "use" is a conditional UPDATE inside one write transaction, so two
//! concurrent requests cannot spend the same token twice.

use super::notifications::{self, Channel};
use crate::app::App;
use crate::db::accounts::Account;
use crate::db::{self, tokens as rows};
use crate::domain::random;
use crate::domain::rules::{self, Input};
use crate::domain::time;
use crate::error::{invalid, AppError, AppResult, FieldErrors};
use crate::notify::{self, NotifyError};

pub use rows::{CreationToken, RequestToken};

/// Auth tokens are valid this long after creation (api.md §5.3).
pub const AUTH_TOKEN_MINUTES: i64 = 5;

/// The message of an unusable creation token (FlexiAPI's wording).
pub const INVALID_CREATION_TOKEN: &str = "Please provide a valid account_creation_token";

/// `POST /api/account_creation_tokens` (admin): a fresh token.
pub fn create_creation_token(app: &App) -> AppResult<CreationToken> {
    let token = random::alphanumeric(random::TOKEN_LEN);
    app.db.write(|tx| Ok(rows::insert_creation_token(tx, &token, None)?))
}

/// `POST /api/account_creation_request_tokens`: a token the user validates
/// on the web page at [`validation_url`].
pub fn create_request_token(app: &App) -> AppResult<RequestToken> {
    let token = random::alphanumeric(random::TOKEN_LEN);
    app.db.write(|tx| Ok(rows::insert_request_token(tx, &token)?))
}

/// `<APP_URL>/creation_token/check/<token>`, the page validating a request token.
pub fn validation_url(app: &App, token: &str) -> String {
    app.config.url(&format!("/creation_token/check/{token}"))
}

/// A request token that can still be validated (unknown or used → 404);
/// for the portal's validation page.
pub fn request_token_for_check(app: &App, token: &str) -> AppResult<RequestToken> {
    app.db.read(|c| rows::request_token(c, token))?.filter(|t| !t.used).ok_or_else(AppError::not_found)
}

/// Marks a request token validated (the portal calls this once the visitor
/// solved the captcha). Unknown or used → 404; validating twice is harmless.
pub fn validate_request_token(app: &App, token: &str) -> AppResult<RequestToken> {
    app.db.write(|tx| {
        let found = rows::request_token(tx, token)?.filter(|t| !t.used).ok_or_else(AppError::not_found)?;
        rows::validate_request_token(tx, found.id)?;
        Ok(rows::request_token(tx, token)?.unwrap_or(found))
    })
}

/// `POST /api/account_creation_tokens/using-account-creation-request-token`:
/// exchanges a validated request token, once, for a creation token.
/// Missing, unknown or used → 422; not validated yet → 404.
pub fn exchange_request_token(app: &App, input: &Input) -> AppResult<CreationToken> {
    let field = "account_creation_request_token";
    let mut errors = FieldErrors::default();
    let value = input.required(field, &mut errors);
    errors.into_result()?;
    let value = value.unwrap_or_default();
    let bad = || invalid(field, format!("Please provide a valid {field}"));
    if value.len() != random::TOKEN_LEN {
        return Err(bad());
    }
    app.db.write(|tx| {
        let request = rows::request_token(tx, &value)?.filter(|t| !t.used).ok_or_else(bad)?;
        if request.validated_at.is_none() {
            return Err(AppError::NotFound(String::new()));
        }
        let token = rows::insert_creation_token(tx, &random::alphanumeric(random::TOKEN_LEN), None)?;
        // Conditional: a concurrent exchange of the same request token loses.
        if !rows::use_request_token(tx, request.id, token.id)? {
            return Err(bad());
        }
        Ok(token)
    })
}

/// `POST /api/account_creation_tokens/send-by-push`: a creation token sent
/// to a device through `flexisip_pusher`.
///
/// 422 for missing fields; 403 when a token was pushed to that device less
/// than `APP_API_ACCOUNT_CREATION_TOKEN_RETRY_MINUTES` ago (seed 003; any
/// token, used or not, so a device cannot be flooded) or the per-device/IP
/// limit is reached; 503 when the pusher is missing or fails (nothing stored).
pub fn send_by_push(app: &App, input: &Input, client_ip: &str) -> AppResult<()> {
    let mut errors = FieldErrors::default();
    let provider = input.required("pn_provider", &mut errors);
    let param = input.required("pn_param", &mut errors);
    let prid = input.required("pn_prid", &mut errors);
    for (field, value) in [("pn_provider", &provider), ("pn_param", &param), ("pn_prid", &prid)] {
        if value.as_ref().is_some_and(|v| v.len() > 255 || v.chars().any(char::is_control)) {
            errors.add(field, format!("The {} format is invalid.", rules::label(field)));
        }
    }
    errors.into_result()?;
    let (provider, param, prid) = (provider.unwrap_or_default(), param.unwrap_or_default(), prid.unwrap_or_default());

    let since = time::minutes_ago_sql(app.config.account_creation_token_retry_minutes);
    let recent = app.db.read(|c| rows::push_tokens_since(c, &provider, &param, &prid, &since, false))?;
    if recent > 0 {
        return Err(AppError::Forbidden("Last token requested too recently".into()));
    }
    let device = format!("{provider}/{param}/{prid}");
    notifications::throttle(app, Channel::Push, &device, client_ip)
        .map_err(|_| AppError::Forbidden("Tokens limit reached for this device".into()))?;

    let token = random::alphanumeric(random::TOKEN_LEN);
    let pushed = notify::push::push_token(
        app.config.flexisip_pusher_path.as_deref(),
        app.config.flexisip_pusher_firebase_key.as_deref(),
        &provider,
        &param,
        &prid,
        &token,
    );
    match pushed {
        Ok(()) => {}
        Err(NotifyError::Invalid(m)) => return Err(invalid("pn_prid", m)),
        Err(NotifyError::Disabled) => {
            crate::log_line!("push: APP_FLEXISIP_PUSHER_PATH is not configured");
            return Err(AppError::Unavailable("Token not sent".into()));
        }
        Err(e) => {
            crate::log_line!("push: token not sent: {e}");
            return Err(AppError::Unavailable("Token not sent".into()));
        }
    }
    app.db.write(|tx| Ok(rows::insert_creation_token(tx, &token, Some((&provider, &param, &prid)))?))?;
    Ok(())
}

// --- auth tokens ---

/// `POST /api/accounts/auth_token`: an unattached token.
pub fn create_auth_token(app: &App) -> AppResult<db::auth::AuthToken> {
    let token = random::alphanumeric(random::AUTH_TOKEN_LEN);
    app.db.write(|tx| Ok(db::auth::insert_auth_token(tx, &token, None)?))
}

/// `GET /api/accounts/auth_token/{token}/attach`: attaches a fresh,
/// unattached token to `account`; anything else → 404.
pub fn attach_auth_token(app: &App, token: &str, account: &Account) -> AppResult<()> {
    app.db.write(|tx| {
        let found = db::auth::fresh_auth_token(tx, token, AUTH_TOKEN_MINUTES)?.ok_or_else(AppError::not_found)?;
        if found.account_id.is_some() || !db::auth::attach_auth_token(tx, found.id, account.id)? {
            return Err(AppError::not_found());
        }
        Ok(())
    })
}

/// `GET /api/accounts/me/api_key/{token}`: consumes a fresh, attached token
/// and returns a new API key for its account (the previous key stops working).
pub fn api_key_from_auth_token(app: &App, token: &str) -> AppResult<String> {
    let key = random::alphanumeric(random::API_KEY_LEN);
    app.db.write(|tx| {
        let found = db::auth::fresh_auth_token(tx, token, AUTH_TOKEN_MINUTES)?.ok_or_else(AppError::not_found)?;
        let account_id = found.account_id.ok_or_else(AppError::not_found)?;
        if !db::auth::consume_auth_token(tx, found.id)? {
            return Err(AppError::not_found());
        }
        db::auth::replace_api_key(tx, account_id, &key)?;
        Ok(key)
    })
}
