//! `account_creation_tokens`, `account_creation_request_tokens`,
//! `email_changed`, `phone_change_codes`: one-use codes and tokens.

use super::optional;
use super::Cached;
use crate::domain::time;
use rusqlite::{params, Connection};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationToken {
    pub id: i64,
    pub token: String,
    pub used: bool,
    pub account_id: Option<i64>,
}

pub fn insert_creation_token(
    conn: &Connection,
    token: &str,
    push: Option<(&str, &str, &str)>,
) -> rusqlite::Result<CreationToken> {
    let now = time::now_sql();
    let (provider, param, prid) = match push {
        Some((a, b, c)) => (Some(a), Some(b), Some(c)),
        None => (None, None, None),
    };
    conn.cached_execute(
        "INSERT INTO account_creation_tokens (token, pn_provider, pn_param, pn_prid, used, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        params![token, provider, param, prid, now],
    )?;
    Ok(CreationToken { id: conn.last_insert_rowid(), token: token.to_string(), used: false, account_id: None })
}

/// Marks an unused token used by `account_id`; false if it was not usable
/// (unknown, or used by a concurrent request first).
pub fn use_creation_token(conn: &Connection, token: &str, account_id: i64) -> rusqlite::Result<bool> {
    Ok(conn.cached_execute(
        "UPDATE account_creation_tokens SET used = 1, account_id = ?1, updated_at = ?2 WHERE token = ?3 AND used = 0",
        params![account_id, time::now_sql(), token],
    )? == 1)
}

/// Undoes [`use_creation_token`] for `account_id` (the notification it paid
/// for could not be sent).
pub fn unuse_creation_token(conn: &Connection, token: &str, account_id: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE account_creation_tokens SET used = 0, account_id = NULL, updated_at = ?1 WHERE token = ?2 AND used = 1 AND account_id = ?3",
        params![time::now_sql(), token, account_id],
    )? == 1)
}

pub fn creation_token_usable(conn: &Connection, token: &str) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM account_creation_tokens WHERE token = ?1 AND used = 0)",
        [token],
        |r| r.get(0),
    )
}

pub fn creation_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<CreationToken>> {
    optional(conn.cached_row(
        "SELECT id, token, used, account_id FROM account_creation_tokens WHERE token = ?1",
        [token],
        |r| Ok(CreationToken { id: r.get(0)?, token: r.get(1)?, used: r.get(2)?, account_id: r.get(3)? }),
    ))
}

/// Push tokens sent to one device since `since` (used or not).
pub fn push_tokens_since(
    conn: &Connection,
    provider: &str,
    param: &str,
    prid: &str,
    since: &str,
    used_only: bool,
) -> rusqlite::Result<i64> {
    conn.cached_row(
        "SELECT count(*) FROM account_creation_tokens WHERE pn_provider = ?1 AND pn_param = ?2 AND pn_prid = ?3 \
         AND created_at >= ?4 AND (?5 = 0 OR used = 1)",
        params![provider, param, prid, since, used_only],
        |r| r.get(0),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestToken {
    pub id: i64,
    pub token: String,
    pub used: bool,
    pub validated_at: Option<String>,
    pub acc_creation_token_id: Option<i64>,
}

pub fn insert_request_token(conn: &Connection, token: &str) -> rusqlite::Result<RequestToken> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO account_creation_request_tokens (token, used, created_at, updated_at) VALUES (?1, 0, ?2, ?2)",
        params![token, now],
    )?;
    Ok(RequestToken {
        id: conn.last_insert_rowid(),
        token: token.to_string(),
        used: false,
        validated_at: None,
        acc_creation_token_id: None,
    })
}

pub fn request_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<RequestToken>> {
    optional(conn.cached_row(
        "SELECT id, token, used, validated_at, acc_creation_token_id FROM account_creation_request_tokens WHERE token = ?1",
        [token],
        |r| Ok(RequestToken { id: r.get(0)?, token: r.get(1)?, used: r.get(2)?, validated_at: r.get(3)?, acc_creation_token_id: r.get(4)? }),
    ))
}

pub fn validate_request_token(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute(
        "UPDATE account_creation_request_tokens SET validated_at = ?1, updated_at = ?1 WHERE id = ?2 AND validated_at IS NULL",
        params![now, id],
    )?;
    Ok(())
}

/// Marks a validated request token used and links the creation token; false
/// when a concurrent request used it first.
pub fn use_request_token(conn: &Connection, id: i64, creation_token_id: i64) -> rusqlite::Result<bool> {
    Ok(conn.cached_execute(
        "UPDATE account_creation_request_tokens SET used = 1, acc_creation_token_id = ?1, updated_at = ?2 WHERE id = ?3 AND used = 0",
        params![creation_token_id, time::now_sql(), id],
    )? == 1)
}

// --- pending email change ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    pub account_id: i64,
    pub new_email: String,
    pub hash: String,
    pub created_at: String,
}

pub fn email_change_of(conn: &Connection, account_id: i64) -> rusqlite::Result<Option<EmailChange>> {
    Ok(email_changes_of_many(conn, &[account_id])?.remove(&account_id))
}

/// The pending email changes (at most one per account) of several accounts.
pub fn email_changes_of_many(
    conn: &Connection,
    account_ids: &[i64],
) -> rusqlite::Result<std::collections::HashMap<i64, EmailChange>> {
    let rows = super::query_in(
        conn,
        "SELECT account_id, new_email, hash, created_at FROM email_changed WHERE account_id IN ({in})",
        account_ids,
        |r| Ok(EmailChange { account_id: r.get(0)?, new_email: r.get(1)?, hash: r.get(2)?, created_at: r.get(3)? }),
    )?;
    Ok(rows.into_iter().map(|c| (c.account_id, c)).collect())
}

pub fn email_change_by_hash(conn: &Connection, hash: &str) -> rusqlite::Result<Option<EmailChange>> {
    optional(conn.cached_row(
        "SELECT account_id, new_email, hash, created_at FROM email_changed WHERE hash = ?1",
        [hash],
        |r| Ok(EmailChange { account_id: r.get(0)?, new_email: r.get(1)?, hash: r.get(2)?, created_at: r.get(3)? }),
    ))
}

pub fn replace_email_change(conn: &Connection, account_id: i64, new_email: &str, hash: &str) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute("DELETE FROM email_changed WHERE account_id = ?1", [account_id])?;
    conn.cached_execute(
        "INSERT INTO email_changed (account_id, new_email, hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![account_id, new_email, hash, now],
    )?;
    Ok(())
}

pub fn delete_email_change(conn: &Connection, account_id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM email_changed WHERE account_id = ?1", [account_id])
}

// --- pending phone change ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneChange {
    pub account_id: i64,
    pub code: String,
    pub phone: String,
    pub created_at: String,
}

pub fn phone_change_of(conn: &Connection, account_id: i64) -> rusqlite::Result<Option<PhoneChange>> {
    optional(conn.cached_row(
        "SELECT account_id, code, phone, created_at FROM phone_change_codes WHERE account_id = ?1",
        [account_id],
        |r| Ok(PhoneChange { account_id: r.get(0)?, code: r.get(1)?, phone: r.get(2)?, created_at: r.get(3)? }),
    ))
}

pub fn replace_phone_change(conn: &Connection, account_id: i64, phone: &str, code: &str) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute("DELETE FROM phone_change_codes WHERE account_id = ?1", [account_id])?;
    conn.cached_execute(
        "INSERT INTO phone_change_codes (account_id, code, phone, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![account_id, code, phone, now],
    )?;
    Ok(())
}

pub fn delete_phone_change(conn: &Connection, account_id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM phone_change_codes WHERE account_id = ?1", [account_id])
}
