//! Changes an account holder makes to their own account: email (confirmed
//! by a mailed link), phone (confirmed by an SMS code) and password.
//! Shared by `/api/accounts/me/...` and the portal.

use super::accounts::{self, check_email, check_new_phone, password_matches, unique_race_to_422};
use super::hooks::{self, AccountEvent};
use super::notifications::{self, Channel, MAIL_CODE_MINUTES, PIN_MINUTES};
use crate::app::App;
use crate::db::accounts::{self as rows, Account};
use crate::db::tokens;
use crate::domain::random;
use crate::domain::rules::{self, Input};
use crate::domain::time;
use crate::error::{invalid, AppError, AppResult, FieldErrors};
use crate::notify::mail::MailKind;
use crate::notify::sms::SmsKind;

fn older_than(created_at: &str, minutes: i64) -> bool {
    time::parse_sql(created_at).is_none_or(|t| t < time::now_unix() - minutes * 60)
}

/// `POST /api/accounts/me/email/request` and the portal's email form:
/// `email` required, valid, different from the current one, unique when
/// `ACCOUNT_EMAIL_UNIQUE` (422 otherwise). Replaces any pending request
/// and mails the new address a link `<APP_URL>/email/<hash>` (16 chars).
/// 429 past the limits; 503 when the mail cannot be sent.
pub fn request_email_change(app: &App, account: &Account, input: &Input, client_ip: &str) -> AppResult<()> {
    let mut errors = FieldErrors::default();
    let email = input.required("email", &mut errors);
    if let Some(e) = &email {
        app.db.read(|c| check_email(app, c, "email", e, Some(account.id), &mut errors))?;
        if !errors.has("email") && account.email.as_deref() == Some(e.as_str()) {
            errors.add("email", "The email must be different from the current one.");
        }
    }
    errors.into_result()?;
    let Some(email) = email else { return Err(AppError::unvalidated()) };
    notifications::throttle(app, Channel::Mail, &email, client_ip)?;
    let hash = random::alphanumeric(random::EMAIL_HASH_LEN);
    let previous = app.db.write(|tx| {
        let previous = tokens::email_change_of(tx, account.id)?;
        tokens::replace_email_change(tx, account.id, &email, &hash)?;
        Ok(previous)
    })?;
    let sent = notifications::send_mail(
        app,
        &email,
        MailKind::ChangingEmail { link: app.config.url(&format!("/email/{hash}")) },
    );
    if sent.is_err() {
        // Not sent: drop the request nobody can confirm, put back the previous one.
        let _ = app.db.write(|tx| {
            if tokens::email_change_of(tx, account.id)?.is_some_and(|p| p.hash == hash) {
                tokens::delete_email_change(tx, account.id)?;
                if let Some(p) = &previous {
                    tokens::replace_email_change(tx, account.id, &p.new_email, &p.hash)?;
                }
            }
            Ok(())
        });
    }
    sent
}

/// The portal's `/email/{hash}` (the account holder logged in): applies
/// the pending change of `account` if `hash` is its link (else 404; an
/// expired link → 404 and the request is dropped), mails "Changed Email"
/// to the new address (failure logged) and returns the updated account.
pub fn confirm_email_change(app: &App, account: &Account, hash: &str) -> AppResult<Account> {
    let updated = app
        .db
        .write(|tx| {
            let pending = tokens::email_change_of(tx, account.id)?.ok_or_else(AppError::not_found)?;
            if !crate::domain::hash::constant_time_eq(pending.hash.as_bytes(), hash.as_bytes()) {
                return Err(AppError::not_found());
            }
            if older_than(&pending.created_at, MAIL_CODE_MINUTES) {
                tokens::delete_email_change(tx, account.id)?;
                return Ok(None);
            }
            // Uniqueness may have changed since the request.
            let mut errors = FieldErrors::default();
            check_email(app, tx, "email", &pending.new_email, Some(account.id), &mut errors)?;
            errors.into_result()?;
            rows::set_email(tx, account.id, Some(&pending.new_email))?;
            tokens::delete_email_change(tx, account.id)?;
            Ok(Some(pending.new_email))
        })
        .map_err(unique_race_to_422("email"))?;
    let Some(new_email) = updated else { return Err(AppError::not_found()) };
    notifications::send_mail_logged(app, &new_email, MailKind::ChangedEmail);
    let account = accounts::reload(app, account.id)?;
    hooks::account_event(app, AccountEvent::Edited, &account);
    Ok(account)
}

/// `POST /api/accounts/me/phone/request` and the portal's phone form:
/// `phone` (+digits) not used by another account (422), then one pending
/// change per account with a fresh PIN sent by SMS ("validation code").
/// 404 when `PHONE_AUTHENTICATION` is off; 429 past the limits; 503 when
/// the SMS cannot be sent.
pub fn request_phone_change(app: &App, account: &Account, input: &Input, client_ip: &str) -> AppResult<()> {
    if !app.config.phone_authentication {
        return Err(AppError::NotFound(String::new()));
    }
    let mut errors = FieldErrors::default();
    let phone = input.required("phone", &mut errors);
    if let Some(p) = &phone {
        app.db.read(|c| check_new_phone(c, "phone", p, Some(account.id), &mut errors))?;
    }
    errors.into_result()?;
    let Some(phone) = phone else { return Err(AppError::unvalidated()) };
    notifications::throttle(app, Channel::Sms, &phone, client_ip)?;
    let pin = random::pin();
    let previous = app.db.write(|tx| {
        let previous = tokens::phone_change_of(tx, account.id)?;
        tokens::replace_phone_change(tx, account.id, &phone, &pin)?;
        Ok(previous)
    })?;
    let sent = notifications::send_sms(app, &phone, SmsKind::Validation, &pin);
    if sent.is_err() {
        // Not sent: drop the request nobody can confirm, put back the previous one.
        let _ = app.db.write(|tx| {
            if tokens::phone_change_of(tx, account.id)?.is_some_and(|p| p.code == pin) {
                tokens::delete_phone_change(tx, account.id)?;
                if let Some(p) = &previous {
                    tokens::replace_phone_change(tx, account.id, &p.phone, &p.code)?;
                }
            }
            Ok(())
        });
    }
    sent
}

/// `POST /api/accounts/me/phone`: `code` of 4 digits (422). No pending
/// change, or an expired one → 404. A wrong code drops the pending change
/// (one guess per SMS) → 403. The right code sets the phone (422 if another
/// account took it meanwhile) and returns the updated account.
pub fn confirm_phone_change(app: &App, account: &Account, input: &Input) -> AppResult<Account> {
    if !app.config.phone_authentication {
        return Err(AppError::NotFound(String::new()));
    }
    let mut errors = FieldErrors::default();
    let code = input.required("code", &mut errors);
    if code.as_deref().is_some_and(|c| c.len() != 4 || !c.bytes().all(|b| b.is_ascii_digit())) {
        errors.add("code", "The code must be 4 digits.");
    }
    errors.into_result()?;
    let code = code.unwrap_or_default();
    let outcome = app
        .db
        .write(|tx| {
            let pending = tokens::phone_change_of(tx, account.id)?.ok_or_else(AppError::not_found)?;
            if older_than(&pending.created_at, PIN_MINUTES) {
                tokens::delete_phone_change(tx, account.id)?;
                return Ok(Err(AppError::not_found()));
            }
            if !crate::domain::hash::constant_time_eq(pending.code.as_bytes(), code.as_bytes()) {
                // Committed: the code is spent even though the answer is an error.
                tokens::delete_phone_change(tx, account.id)?;
                return Ok(Err(AppError::Forbidden("Wrong code".into())));
            }
            let mut errors = FieldErrors::default();
            check_new_phone(tx, "phone", &pending.phone, Some(account.id), &mut errors)?;
            errors.into_result()?;
            rows::set_phone(tx, account.id, Some(&pending.phone))?;
            tokens::delete_phone_change(tx, account.id)?;
            Ok(Ok(()))
        })
        .map_err(unique_race_to_422("phone"))?;
    outcome?;
    let account = accounts::reload(app, account.id)?;
    hooks::account_event(app, AccountEvent::Edited, &account);
    Ok(account)
}

/// What proves the holder may set a new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The current password, as `old_password`, when the account has one
    /// (`POST /api/accounts/me/password`, the portal's password form).
    OldPassword,
    /// A recovery just proved ownership (mailed link or SMS code, the
    /// portal remembers it in the session): the forgotten password is not
    /// asked for.
    Recovered,
}

/// `POST /api/accounts/me/password`: see [`set_password`] with
/// [`Proof::OldPassword`].
pub fn change_password(app: &App, account: &Account, input: &Input) -> AppResult<bool> {
    set_password(app, account, input, Proof::OldPassword)
}

/// The one password-setting rule of the API, the portal and the CLI:
/// `algorithm` (MD5 or SHA-256) and `password` (6+ chars). With
/// [`Proof::OldPassword`], an account that has a password must give the
/// right `old_password` (checked against each stored row with its own
/// algorithm; 422 otherwise, nothing changed). The stored rows are replaced
/// by one row of the new algorithm, so the old credentials stop working.
/// The account is activated (proof of ownership, as FlexiAPI). Returns true
/// when it was the first password (decided before the replacement); the
/// "Confirmed Registration" mail is then sent when the account has an
/// email (failure logged).
pub fn set_password(app: &App, account: &Account, input: &Input, proof: Proof) -> AppResult<bool> {
    let mut errors = FieldErrors::default();
    let algorithm_text = input.required("algorithm", &mut errors);
    let password = input.required("password", &mut errors);
    let algorithm = rules::check_algorithm("algorithm", algorithm_text.as_deref(), &mut errors);
    if let Some(p) = &password {
        rules::check_password("password", p, &mut errors);
    }
    errors.into_result()?;
    let (Some(algorithm), Some(password)) = (algorithm, password) else {
        return Err(AppError::unvalidated());
    };
    let first = app.db.write(|tx| {
        let stored = rows::passwords(tx, account.id)?;
        if proof == Proof::OldPassword && !stored.is_empty() {
            let Some(old) = input.text("old_password") else {
                return Err(invalid("old_password", rules::required_message("old_password")));
            };
            if !password_matches(app, account, &stored, &old) {
                return Err(invalid("old_password", "Incorrect old password"));
            }
        }
        accounts::set_password(app, tx, account, algorithm, &password)?;
        rows::set_activated(tx, account.id, true)?;
        Ok(stored.is_empty())
    })?;
    let updated = accounts::reload(app, account.id)?;
    hooks::account_event(app, AccountEvent::Edited, &updated);
    if first {
        if let Some(email) = &updated.email {
            let c = &app.config;
            let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
            notifications::send_mail_logged(
                app,
                email,
                MailKind::ConfirmedRegistration {
                    username: updated.username.clone(),
                    domain: updated.domain.clone(),
                    proxy_registrar: non_empty(&c.account_proxy_registrar_address),
                    transport: non_empty(&c.account_transport_protocol_text),
                    custom_text: non_empty(&c.instance_confirmed_registration_text),
                },
            );
        }
    }
    Ok(first)
}
