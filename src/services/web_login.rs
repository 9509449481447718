//! Portal-only rules: the login form (username or phone + password against
//! the stored HA1s of either algorithm), rate-limited per client and per
//! account, and the admin toggles the portal offers on an account page.

use super::accounts::password_matches;
use super::ratelimit::{self, Limit};
use super::Scope;
use crate::app::App;
use crate::db::accounts::{self as rows, Account};
use crate::domain::rules::{self, Input};
use crate::error::{invalid, AppError, AppResult, FieldErrors};

/// Login attempts per client IP.
pub const IP_LIMIT: Limit = Limit { max: 20, window_seconds: 300 };
/// Login attempts per username.
pub const USER_LIMIT: Limit = Limit { max: 10, window_seconds: 300 };

/// The message for an unknown account and for a wrong password alike, so
/// the form does not tell which usernames exist.
pub const WRONG_CREDENTIALS: &str = "Wrong username or password.";

/// `POST /authenticate`: `username` (or the phone number) and `password`.
pub fn login(app: &App, scope: &Scope, input: &Input, client_ip: &str) -> AppResult<Account> {
    let mut errors = FieldErrors::default();
    let username = input.required("username", &mut errors);
    let password = input.required("password", &mut errors);
    errors.into_result()?;
    let (Some(username), Some(password)) = (username, password) else {
        return Err(AppError::unvalidated());
    };
    ratelimit::hit_all(
        app,
        &[(format!("login:ip:{client_ip}"), IP_LIMIT), (format!("login:user:{}", username.to_lowercase()), USER_LIMIT)],
    )?;
    let account = app.db.read(|c| {
        if let Some(a) = rows::by_sip(c, &username, &scope.domain)? {
            return Ok(Some(a));
        }
        if rules::is_valid_phone(&username) {
            return Ok(rows::by_phone(c, &username)?.filter(|a| a.domain == scope.domain));
        }
        Ok(None)
    })?;
    let Some(account) = account else {
        return Err(invalid("username", WRONG_CREDENTIALS));
    };
    let passwords = app.db.read(|c| rows::passwords(c, account.id))?;
    if !password_matches(app, &account, &passwords, &password) {
        return Err(invalid("username", WRONG_CREDENTIALS));
    }
    Ok(account)
}

/// Checks the current password of a logged-in account before a sensitive
/// change (email, phone, password). `field` names the form field.
pub fn reauthenticate(app: &App, account: &Account, input: &Input, field: &str) -> AppResult<()> {
    let mut errors = FieldErrors::default();
    let Some(password) = input.required(field, &mut errors) else {
        return Err(AppError::Validation(errors));
    };
    ratelimit::hit(app, &format!("reauth:account:{}", account.id), USER_LIMIT)?;
    let passwords = app.db.read(|c| rows::passwords(c, account.id))?;
    if !password_matches(app, account, &passwords, &password) {
        return Err(invalid(field, "The current password is incorrect."));
    }
    Ok(())
}

/// Grants or removes the admin role; an admin cannot remove their own.
pub fn set_admin(app: &App, actor: &Account, account: &Account, admin: bool) -> AppResult<Account> {
    if !admin && actor.id == account.id {
        return Err(AppError::Forbidden("You cannot remove your own admin role.".into()));
    }
    app.db.write(|tx| Ok(rows::set_admin(tx, account.id, admin)?))?;
    super::accounts::reload(app, account.id)
}

/// The portal's double entry: `<field>_confirmation` must equal `<field>`.
pub fn check_confirmation(input: &Input, field: &str) -> AppResult<()> {
    let confirmation = format!("{field}_confirmation");
    if input.text(field).is_some() && input.text(field) != input.text(&confirmation) {
        return Err(invalid(&confirmation, format!("The {} confirmation does not match.", rules::label(field))));
    }
    Ok(())
}

/// Account deletion: `identifier` must be the account's full SIP address
/// (compared with the logged-in account, never with a form field).
pub fn check_identifier(account: &Account, input: &Input) -> AppResult<()> {
    let mut errors = FieldErrors::default();
    if let Some(identifier) = input.required("identifier", &mut errors) {
        if identifier != account.sip() {
            errors.add("identifier", "The identifier does not match your SIP address.");
        }
    }
    errors.into_result()
}

/// QR login, second direction: a fresh token attached to an account logs
/// the device presenting it in, once. Unknown, expired, unattached or
/// already used → 404.
pub fn login_with_auth_token(app: &App, scope: &Scope, token: &str) -> AppResult<Account> {
    use super::tokens::AUTH_TOKEN_MINUTES;
    let account_id = app.db.write(|tx| {
        let found =
            crate::db::auth::fresh_auth_token(tx, token, AUTH_TOKEN_MINUTES)?.ok_or_else(AppError::not_found)?;
        let account_id = found.account_id.ok_or_else(AppError::not_found)?;
        if !crate::db::auth::consume_auth_token(tx, found.id)? {
            return Err(AppError::not_found());
        }
        Ok(account_id)
    })?;
    super::accounts::find(app, scope, account_id)
}

/// QR login, first direction: the state of the token a waiting guest page
/// shows. `Ok(None)` while nobody scanned it; `Ok(Some(account))` once a
/// logged-in device attached it (the token is then consumed); 404 when it
/// is unknown or expired (the page starts over with a fresh one).
pub fn poll_auth_token(app: &App, scope: &Scope, token: &str) -> AppResult<Option<Account>> {
    use super::tokens::AUTH_TOKEN_MINUTES;
    let found = app
        .db
        .read(|c| crate::db::auth::fresh_auth_token(c, token, AUTH_TOKEN_MINUTES))?
        .ok_or_else(AppError::not_found)?;
    if found.account_id.is_none() {
        return Ok(None);
    }
    login_with_auth_token(app, scope, token).map(Some)
}

/// Recovery forms: attempts per client IP, counted whether or not the
/// account exists (the answer is the same either way).
pub const RECOVERY_IP_LIMIT: Limit = Limit { max: 10, window_seconds: 3600 };

pub fn recovery_throttle(app: &App, client_ip: &str) -> AppResult<()> {
    ratelimit::hit(app, &format!("recovery:ip:{client_ip}"), RECOVERY_IP_LIMIT)
}

/// A required checkbox (terms of use, privacy policy).
pub fn check_accepted(input: &Input, field: &str, errors: &mut FieldErrors) {
    if !matches!(input.text(field).as_deref(), Some("1") | Some("true") | Some("on") | Some("yes")) {
        errors.add(field, format!("The {} must be accepted.", rules::label(field)));
    }
}

/// Recovery by email: `email` (and `username` when emails are not unique).
/// 422 for malformed fields; `Ok(None)` when no account matches (the
/// caller answers as if one did).
pub fn recovery_account_by_email(app: &App, scope: &Scope, input: &Input) -> AppResult<Option<Account>> {
    let mut errors = FieldErrors::default();
    let email = input.required("email", &mut errors);
    if email.as_deref().is_some_and(|e| !rules::is_valid_email(e)) {
        errors.add("email", "The email must be a valid email address.");
    }
    let username = if app.config.account_email_unique { None } else { input.required("username", &mut errors) };
    errors.into_result()?;
    let Some(email) = email else { return Err(AppError::unvalidated()) };
    let account = match username {
        Some(u) => app.db.read(|c| {
            let by_name = rows::by_sip(c, &u, &scope.domain)?;
            let by_phone = if rules::is_valid_phone(&u) { rows::by_phone(c, &u)? } else { None };
            Ok(by_name.or(by_phone))
        })?,
        None => app.db.read(|c| rows::by_email(c, &email, Some(&scope.domain)))?,
    };
    Ok(account.filter(|a| a.domain == scope.domain && a.email.as_deref() == Some(email.as_str())))
}

/// The PNG of a QR-login token: an unattached token encodes the URL a
/// logged-in device opens to attach it; an attached one the URL a new
/// device opens to log in. 404 unless the token is fresh.
pub fn auth_token_qr(app: &App, token: &str) -> AppResult<Vec<u8>> {
    use super::tokens::AUTH_TOKEN_MINUTES;
    let found = app
        .db
        .read(|c| crate::db::auth::fresh_auth_token(c, token, AUTH_TOKEN_MINUTES))?
        .ok_or_else(AppError::not_found)?;
    let path = match found.account_id {
        None => format!("/auth_tokens/auth/external/{}", found.token),
        Some(_) => format!("/auth_tokens/auth/{}", found.token),
    };
    crate::provisioning::qr::qr_png(&app.config.url(&path)).map_err(AppError::Internal)
}
