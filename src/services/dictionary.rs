//! What hangs on an account besides its credentials: contacts, account
//! types and DTMF actions (admin API, `/me/contacts`, vCards, portal).

use super::accounts::{self, Details};
use crate::app::App;
use crate::db::accounts::{self as rows, Account};
use crate::db::dictionary::{self as dict, AccountType, Action};
use crate::domain::rules::{self, Input};
use crate::error::{invalid, AppError, AppResult, FieldErrors};

/// The 403 of action endpoints on an account without DTMF protocol.
fn dtmf_required(account: &Account) -> AppResult<()> {
    if account.dtmf_protocol.is_none() {
        return Err(AppError::Forbidden("DTMF Protocol must be configured".into()));
    }
    Ok(())
}

// --- contacts ---

/// The contacts of an account with their details, ordered by id.
pub fn contacts(app: &App, account_id: i64) -> AppResult<Vec<Details>> {
    app.db.read(|c| accounts::details_many(c, rows::contacts_of(c, account_id)?))
}

/// One contact of `account_id`, by its SIP address (`user@domain`); 404
/// when it is not a contact.
pub fn contact_by_sip(app: &App, account_id: i64, sip: &str) -> AppResult<Details> {
    let address = crate::domain::sip::SipAddress::parse_plain(sip).ok_or_else(AppError::not_found)?;
    app.db
        .read(|c| {
            let Some(contact) = rows::by_sip(c, &address.username, &address.domain)? else { return Ok(None) };
            if !dict::is_contact(c, account_id, contact.id)? {
                return Ok(None);
            }
            accounts::details(c, contact).map(Some)
        })?
        .ok_or_else(AppError::not_found)
}

/// One contact of `account_id`, by id; 404 when it is not a contact.
pub fn contact_by_id(app: &App, account_id: i64, contact_id: i64) -> AppResult<Details> {
    app.db
        .read(|c| {
            if !dict::is_contact(c, account_id, contact_id)? {
                return Ok(None);
            }
            match rows::by_id(c, contact_id)? {
                Some(a) => accounts::details(c, a).map(Some),
                None => Ok(None),
            }
        })?
        .ok_or_else(AppError::not_found)
}

/// Adds `contact` to `account`'s list; 403 when it is already there (or is
/// the account itself).
pub fn add_contact(app: &App, account: &Account, contact: &Account) -> AppResult<()> {
    if account.id == contact.id {
        return Err(AppError::Forbidden("An account cannot be its own contact".into()));
    }
    app.db.write(|tx| {
        if dict::is_contact(tx, account.id, contact.id)? {
            return Err(AppError::Forbidden(String::new()));
        }
        Ok(dict::add_contact(tx, account.id, contact.id)?)
    })
}

/// Removes a contact; 403 when it is not one. Returns the rows removed (1).
pub fn remove_contact(app: &App, account: &Account, contact_id: i64) -> AppResult<usize> {
    app.db.write(|tx| match dict::remove_contact(tx, account.id, contact_id)? {
        0 => Err(AppError::Forbidden(String::new())),
        n => Ok(n),
    })
}

// --- account types ---

pub fn types(app: &App) -> AppResult<Vec<AccountType>> {
    app.db.read(dict::all_types)
}

pub fn type_by_id(app: &App, id: i64) -> AppResult<AccountType> {
    app.db.read(|c| dict::type_by_id(c, id))?.ok_or_else(AppError::not_found)
}

/// `key`: required, alpha_dash, no uppercase, at most 64 chars, unique.
fn validate_type_key(app: &App, conn: &rusqlite::Connection, input: &Input, except: Option<i64>) -> AppResult<String> {
    let _ = app;
    let mut errors = FieldErrors::default();
    let key = input.required("key", &mut errors);
    if let Some(k) = &key {
        check_key("key", k, true, &mut errors);
        if !errors.has("key") && dict::type_key_taken(conn, k, except)? {
            errors.add("key", rules::taken_message("key"));
        }
    }
    errors.into_result()?;
    key.ok_or_else(|| invalid("key", rules::required_message("key")))
}

/// alpha_dash (or alpha_num when `dash` is false), lowercase, ≤ 64 chars.
fn check_key(field: &str, value: &str, dash: bool, errors: &mut FieldErrors) {
    let shaped = if dash { rules::is_alpha_dash(value) } else { rules::is_alpha_num(value) };
    if !shaped {
        let what = if dash { "letters, numbers, dashes and underscores" } else { "letters and numbers" };
        errors.add(field, format!("The {} must only contain {what}.", rules::label(field)));
    }
    if value.chars().any(char::is_uppercase) {
        errors.add(field, "No uppercase letters are allowed.");
    }
    if value.chars().count() > 64 {
        errors.add(field, format!("The {} may not be greater than 64 characters.", rules::label(field)));
    }
}

pub fn create_type(app: &App, input: &Input) -> AppResult<AccountType> {
    app.db
        .write(|tx| {
            let key = validate_type_key(app, tx, input, None)?;
            Ok(dict::insert_type(tx, &key)?)
        })
        .map_err(accounts::unique_race_to_422("key"))
}

/// Unknown id → 404 (checked first); same rules as creation.
pub fn update_type(app: &App, id: i64, input: &Input) -> AppResult<AccountType> {
    app.db
        .write(|tx| {
            dict::type_by_id(tx, id)?.ok_or_else(AppError::not_found)?;
            let key = validate_type_key(app, tx, input, Some(id))?;
            dict::update_type(tx, id, &key)?;
            Ok(AccountType { id, key })
        })
        .map_err(accounts::unique_race_to_422("key"))
}

/// Deletes a type (its links go with it); unknown → 404. Returns the count.
pub fn delete_type(app: &App, id: i64) -> AppResult<usize> {
    app.db.write(|tx| match dict::delete_type(tx, id)? {
        0 => Err(AppError::not_found()),
        n => Ok(n),
    })
}

/// Attaches a type: already attached → 403, unknown type → 404.
pub fn attach_type(app: &App, account: &Account, type_id: i64) -> AppResult<()> {
    app.db.write(|tx| {
        if dict::has_type(tx, account.id, type_id)? {
            return Err(AppError::Forbidden(String::new()));
        }
        dict::type_by_id(tx, type_id)?.ok_or_else(AppError::not_found)?;
        Ok(dict::attach_type(tx, account.id, type_id)?)
    })
}

/// Detaches a type: not attached → 403. Returns the count (1).
pub fn detach_type(app: &App, account: &Account, type_id: i64) -> AppResult<usize> {
    app.db.write(|tx| match dict::detach_type(tx, account.id, type_id)? {
        0 => Err(AppError::Forbidden(String::new())),
        n => Ok(n),
    })
}

// --- actions ---

/// The actions of an account; 403 without DTMF protocol.
pub fn actions(app: &App, account: &Account) -> AppResult<Vec<Action>> {
    dtmf_required(account)?;
    app.db.read(|c| dict::actions_of(c, account.id))
}

pub fn action(app: &App, account: &Account, action_id: i64) -> AppResult<Action> {
    dtmf_required(account)?;
    app.db.read(|c| dict::action(c, account.id, action_id))?.ok_or_else(AppError::not_found)
}

/// `key` and `code` of an action; on update (`current` given) an absent
/// field keeps its stored value (api.md §4.5, web.md §8: "not required").
fn validate_action(input: &Input, current: Option<&Action>) -> AppResult<(String, String)> {
    let mut errors = FieldErrors::default();
    let (key, code) = match current {
        None => (input.required("key", &mut errors), input.required("code", &mut errors)),
        Some(a) => (
            input.optional("key", &mut errors).or_else(|| Some(a.key.clone())),
            input.optional("code", &mut errors).or_else(|| Some(a.code.clone())),
        ),
    };
    if let Some(k) = &key {
        check_key("key", k, true, &mut errors);
    }
    if let Some(c) = &code {
        check_key("code", c, false, &mut errors);
    }
    errors.into_result()?;
    match (key, code) {
        (Some(k), Some(c)) => Ok((k, c)),
        _ => Err(AppError::unvalidated()),
    }
}

/// 403 without DTMF protocol (before validation), 422 for bad fields.
pub fn create_action(app: &App, account: &Account, input: &Input) -> AppResult<Action> {
    dtmf_required(account)?;
    let (key, code) = validate_action(input, None)?;
    app.db.write(|tx| Ok(dict::insert_action(tx, account.id, &key, &code)?))
}

/// 403 without DTMF protocol, 404 for an unknown action, 422 for bad fields.
pub fn update_action(app: &App, account: &Account, action_id: i64, input: &Input) -> AppResult<Action> {
    dtmf_required(account)?;
    let current = app.db.read(|c| dict::action(c, account.id, action_id))?.ok_or_else(AppError::not_found)?;
    let (key, code) = validate_action(input, Some(&current))?;
    app.db.write(|tx| {
        dict::action(tx, account.id, action_id)?.ok_or_else(AppError::not_found)?;
        dict::update_action(tx, action_id, &key, &code)?;
        Ok(Action { id: action_id, account_id: account.id, key, code })
    })
}

/// 403 without DTMF protocol, 404 for an unknown action. Returns the count.
pub fn delete_action(app: &App, account: &Account, action_id: i64) -> AppResult<usize> {
    dtmf_required(account)?;
    app.db.write(|tx| {
        dict::action(tx, account.id, action_id)?.ok_or_else(AppError::not_found)?;
        Ok(dict::delete_action(tx, action_id)?)
    })
}
