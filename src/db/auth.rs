//! `nonces`, `api_keys`, `auth_tokens`: authentication state, kept in the
//! database so several nodes behind a load balancer could share it.

use super::accounts::{self, Account};
use super::optional;
use super::Cached;
use crate::domain::time;
use rusqlite::{params, Connection};

pub fn insert_nonce(conn: &Connection, account_id: Option<i64>, nonce: &str, opaque: &str) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO nonces (account_id, nonce, opaque, nc, created_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, ?4)",
        params![account_id, nonce, opaque, now],
    )?;
    Ok(())
}

/// Outcome of presenting a nonce count.
#[derive(Debug, PartialEq, Eq)]
pub enum NonceUse {
    /// The count grew: accepted and recorded. The opaque the nonce was
    /// issued with, for the caller to compare.
    Accepted { opaque: String },
    /// The count did not grow: a replay; the nonce is now dropped.
    Replayed,
    /// No such nonce for this account.
    Unknown,
}

/// Checks and records `nc` in one conditional UPDATE, so two concurrent
/// requests with the same count cannot both pass. The common case (right
/// opaque, growing count) is that one statement; the others look at the row.
pub fn use_nonce(conn: &Connection, account_id: i64, nonce: &str, opaque: &str, nc: i64) -> rusqlite::Result<NonceUse> {
    let now = time::now_sql();
    let changed = conn.cached_execute(
        "UPDATE nonces SET nc = ?1, updated_at = ?2 WHERE nonce = ?3 AND account_id = ?4 AND nc < ?1 AND opaque = ?5",
        params![nc, now, nonce, account_id, opaque],
    )?;
    if changed == 1 {
        return Ok(NonceUse::Accepted { opaque: opaque.to_string() });
    }
    // Another opaque with a growing count: recorded all the same (the count
    // comes first), the caller refuses the opaque.
    let changed = conn.cached_execute(
        "UPDATE nonces SET nc = ?1, updated_at = ?2 WHERE nonce = ?3 AND account_id = ?4 AND nc < ?1",
        params![nc, now, nonce, account_id],
    )?;
    if changed == 1 {
        let issued = conn.cached_row("SELECT opaque FROM nonces WHERE nonce = ?1", [nonce], |r| r.get(0))?;
        return Ok(NonceUse::Accepted { opaque: issued });
    }
    let deleted =
        conn.cached_execute("DELETE FROM nonces WHERE nonce = ?1 AND account_id = ?2", params![nonce, account_id])?;
    Ok(if deleted > 0 { NonceUse::Replayed } else { NonceUse::Unknown })
}

pub fn delete_nonce(conn: &Connection, nonce: &str) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM nonces WHERE nonce = ?1", [nonce])
}

/// Deletes up to `limit` nonces created more than `minutes` ago, among
/// those whose key is in `from..below` (time-ordered nonces made before a
/// moment sort below that moment's prefix: the search is then a range of the
/// key, not a scan of the table). `+created_at` compares the stored text as
/// text, instead of converting every row's date to a number (the column's
/// NUMERIC affinity would).
pub fn delete_nonces_older_than(
    conn: &Connection,
    minutes: i64,
    (from, below): (&str, &str),
    limit: i64,
) -> rusqlite::Result<usize> {
    conn.cached_execute(
        "DELETE FROM nonces WHERE nonce IN \
         (SELECT nonce FROM nonces WHERE nonce >= ?2 AND nonce < ?3 AND +created_at < ?1 LIMIT ?4)",
        params![time::minutes_ago_sql(minutes), from, below, limit],
    )
}

// --- API keys ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub account_id: i64,
    pub key: String,
    pub last_used_at: String,
}

/// The key and its account in one query: the lookup every API-key request
/// makes.
pub fn api_key_with_account(conn: &Connection, key: &str) -> rusqlite::Result<Option<(ApiKey, Account)>> {
    let sql = super::static_sql!(
        "SELECT {}, api_keys.\"key\", api_keys.last_used_at FROM api_keys \
         JOIN accounts ON accounts.id = api_keys.account_id WHERE api_keys.\"key\" = ?1",
        accounts::qualified_columns("accounts")
    );
    optional(conn.cached_row(sql, [key], |r| {
        let account = accounts::from_row(r)?;
        let api_key = ApiKey { account_id: account.id, key: r.get(16)?, last_used_at: r.get(17)? };
        Ok((api_key, account))
    }))
}

pub fn api_key_of(conn: &Connection, account_id: i64) -> rusqlite::Result<Option<ApiKey>> {
    optional(conn.cached_row(
        "SELECT account_id, \"key\", last_used_at FROM api_keys WHERE account_id = ?1",
        [account_id],
        |r| Ok(ApiKey { account_id: r.get(0)?, key: r.get(1)?, last_used_at: r.get(2)? }),
    ))
}

/// One key per account: a new key replaces the previous one.
pub fn replace_api_key(conn: &Connection, account_id: i64, key: &str) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute("DELETE FROM api_keys WHERE account_id = ?1", [account_id])?;
    conn.cached_execute(
        "INSERT INTO api_keys (account_id, \"key\", created_at, updated_at, last_used_at) VALUES (?1, ?2, ?3, ?3, ?3)",
        params![account_id, key, now],
    )?;
    Ok(())
}

pub fn touch_api_key(conn: &Connection, key: &str, now: &str) -> rusqlite::Result<()> {
    conn.cached_execute("UPDATE api_keys SET last_used_at = ?1 WHERE \"key\" = ?2", [now, key])?;
    Ok(())
}

pub fn delete_api_keys_unused_for(conn: &Connection, minutes: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM api_keys WHERE last_used_at < ?1", [time::minutes_ago_sql(minutes)])
}

// --- auth tokens (QR login, provisioning by auth token) ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken {
    pub id: i64,
    pub account_id: Option<i64>,
    pub token: String,
    pub created_at: String,
    pub updated_at: String,
}

pub fn insert_auth_token(conn: &Connection, token: &str, account_id: Option<i64>) -> rusqlite::Result<AuthToken> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO auth_tokens (account_id, token, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![account_id, token, now],
    )?;
    Ok(AuthToken {
        id: conn.last_insert_rowid(),
        account_id,
        token: token.to_string(),
        created_at: now.clone(),
        updated_at: now,
    })
}

/// A token younger than `max_age_minutes`.
pub fn fresh_auth_token(conn: &Connection, token: &str, max_age_minutes: i64) -> rusqlite::Result<Option<AuthToken>> {
    optional(conn.cached_row(
        "SELECT id, account_id, token, created_at, updated_at FROM auth_tokens WHERE token = ?1 AND created_at >= ?2",
        params![token, time::minutes_ago_sql(max_age_minutes)],
        |r| {
            Ok(AuthToken {
                id: r.get(0)?,
                account_id: r.get(1)?,
                token: r.get(2)?,
                created_at: r.get(3)?,
                updated_at: r.get(4)?,
            })
        },
    ))
}

/// Attaches an unattached token; false when it was attached meanwhile.
pub fn attach_auth_token(conn: &Connection, id: i64, account_id: i64) -> rusqlite::Result<bool> {
    Ok(conn.cached_execute(
        "UPDATE auth_tokens SET account_id = ?1, updated_at = ?2 WHERE id = ?3 AND account_id IS NULL",
        params![account_id, time::now_sql(), id],
    )? == 1)
}

/// Deletes a token; true only for the one caller that removed it.
pub fn consume_auth_token(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn.cached_execute("DELETE FROM auth_tokens WHERE id = ?1", [id])? == 1)
}

pub fn delete_auth_tokens_older_than(conn: &Connection, minutes: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM auth_tokens WHERE created_at < ?1", [time::minutes_ago_sql(minutes)])
}
