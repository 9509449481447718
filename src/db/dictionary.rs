//! Per-account lists: `contacts`, `account_types` and their pivot,
//! `account_actions`, `external_accounts`.

use super::optional;
use super::query_in_by_account;
use super::Cached;
use crate::domain::time;
use rusqlite::{params, Connection};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountType {
    pub id: i64,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub id: i64,
    pub account_id: i64,
    pub key: String,
    pub code: String,
}

pub fn types_of(conn: &Connection, account_id: i64) -> rusqlite::Result<Vec<AccountType>> {
    Ok(types_of_many(conn, &[account_id])?.remove(&account_id).unwrap_or_default())
}

/// The types of several accounts (each list ordered by type id), by account id.
pub fn types_of_many(conn: &Connection, account_ids: &[i64]) -> rusqlite::Result<HashMap<i64, Vec<AccountType>>> {
    let mut by_account = query_in_by_account(
        conn,
        "SELECT p.account_id, t.id, t.\"key\" FROM account_types t JOIN account_account_type p ON p.account_type_id = t.id \
         WHERE p.account_id IN ({in})",
        account_ids,
        |r| Ok((r.get(0)?, AccountType { id: r.get(1)?, key: r.get(2)? })),
    )?;
    // Sorted here: in SQL the sort took a temporary B-tree on every query.
    by_account.values_mut().for_each(|types| types.sort_unstable_by_key(|t| t.id));
    Ok(by_account)
}

pub fn actions_of(conn: &Connection, account_id: i64) -> rusqlite::Result<Vec<Action>> {
    Ok(actions_of_many(conn, &[account_id])?.remove(&account_id).unwrap_or_default())
}

/// The actions of several accounts (each list ordered by id), by account id.
pub fn actions_of_many(conn: &Connection, account_ids: &[i64]) -> rusqlite::Result<HashMap<i64, Vec<Action>>> {
    query_in_by_account(
        conn,
        "SELECT id, account_id, \"key\", code FROM account_actions WHERE account_id IN ({in}) ORDER BY id",
        account_ids,
        |r| Ok((r.get(1)?, Action { id: r.get(0)?, account_id: r.get(1)?, key: r.get(2)?, code: r.get(3)? })),
    )
}

pub fn action(conn: &Connection, account_id: i64, action_id: i64) -> rusqlite::Result<Option<Action>> {
    optional(conn.cached_row(
        "SELECT id, account_id, \"key\", code FROM account_actions WHERE account_id = ?1 AND id = ?2",
        [account_id, action_id],
        |r| Ok(Action { id: r.get(0)?, account_id: r.get(1)?, key: r.get(2)?, code: r.get(3)? }),
    ))
}

pub fn insert_action(conn: &Connection, account_id: i64, key: &str, code: &str) -> rusqlite::Result<Action> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO account_actions (account_id, \"key\", code, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![account_id, key, code, now],
    )?;
    Ok(Action { id: conn.last_insert_rowid(), account_id, key: key.to_string(), code: code.to_string() })
}

pub fn update_action(conn: &Connection, action_id: i64, key: &str, code: &str) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE account_actions SET \"key\" = ?1, code = ?2, updated_at = ?3 WHERE id = ?4",
        params![key, code, time::now_sql(), action_id],
    )?;
    Ok(())
}

pub fn delete_action(conn: &Connection, action_id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM account_actions WHERE id = ?1", [action_id])
}

pub fn all_types(conn: &Connection) -> rusqlite::Result<Vec<AccountType>> {
    let mut stmt = conn.prepare_cached("SELECT id, \"key\" FROM account_types ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok(AccountType { id: r.get(0)?, key: r.get(1)? }))?;
    rows.collect()
}

pub fn type_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<AccountType>> {
    optional(conn.cached_row("SELECT id, \"key\" FROM account_types WHERE id = ?1", [id], |r| {
        Ok(AccountType { id: r.get(0)?, key: r.get(1)? })
    }))
}

pub fn type_key_taken(conn: &Connection, key: &str, except_id: Option<i64>) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM account_types WHERE \"key\" = ?1 AND id <> ?2)",
        params![key, except_id.unwrap_or(-1)],
        |r| r.get(0),
    )
}

pub fn insert_type(conn: &Connection, key: &str) -> rusqlite::Result<AccountType> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO account_types (\"key\", created_at, updated_at) VALUES (?1, ?2, ?2)",
        params![key, now],
    )?;
    Ok(AccountType { id: conn.last_insert_rowid(), key: key.to_string() })
}

pub fn update_type(conn: &Connection, id: i64, key: &str) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE account_types SET \"key\" = ?1, updated_at = ?2 WHERE id = ?3",
        params![key, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn delete_type(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM account_types WHERE id = ?1", [id])
}

pub fn has_type(conn: &Connection, account_id: i64, type_id: i64) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM account_account_type WHERE account_id = ?1 AND account_type_id = ?2)",
        [account_id, type_id],
        |r| r.get(0),
    )
}

pub fn attach_type(conn: &Connection, account_id: i64, type_id: i64) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO account_account_type (account_id, account_type_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![account_id, type_id, now],
    )?;
    Ok(())
}

pub fn detach_type(conn: &Connection, account_id: i64, type_id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute(
        "DELETE FROM account_account_type WHERE account_id = ?1 AND account_type_id = ?2",
        [account_id, type_id],
    )
}

// --- contacts ---

pub fn contact_ids(conn: &Connection, account_id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT contact_id FROM contacts WHERE account_id = ?1 ORDER BY contact_id")?;
    let rows = stmt.query_map([account_id], |r| r.get(0))?;
    rows.collect()
}

pub fn is_contact(conn: &Connection, account_id: i64, contact_id: i64) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT EXISTS(SELECT 1 FROM contacts WHERE account_id = ?1 AND contact_id = ?2)",
        [account_id, contact_id],
        |r| r.get(0),
    )
}

pub fn add_contact(conn: &Connection, account_id: i64, contact_id: i64) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO contacts (account_id, contact_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![account_id, contact_id, now],
    )?;
    Ok(())
}

pub fn remove_contact(conn: &Connection, account_id: i64, contact_id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM contacts WHERE account_id = ?1 AND contact_id = ?2", [account_id, contact_id])
}

// --- external accounts ---

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalAccount {
    pub id: i64,
    pub username: String,
    pub domain: String,
    pub password: String,
    pub algorithm: String,
    pub account_id: Option<i64>,
    pub realm: Option<String>,
    pub registrar: Option<String>,
    pub outbound_proxy: Option<String>,
    /// `UDP`, `TCP` or `TLS`; `None` for imported rows (the client decides).
    pub protocol: Option<String>,
}

impl ExternalAccount {
    /// The realm its HA1 was computed with: the realm, else the domain.
    pub fn effective_realm(&self) -> &str {
        self.realm.as_deref().unwrap_or(&self.domain)
    }
}

/// Which of `account_ids` have an external account attached.
pub fn with_external_account(conn: &Connection, account_ids: &[i64]) -> rusqlite::Result<Vec<i64>> {
    crate::db::query_in(
        conn,
        "SELECT DISTINCT account_id FROM external_accounts WHERE account_id IN ({in})",
        account_ids,
        |r| r.get(0),
    )
}

pub fn external_account_of(conn: &Connection, account_id: i64) -> rusqlite::Result<Option<ExternalAccount>> {
    optional(conn.cached_row(
        "SELECT id, username, domain, password, algorithm, account_id, realm, registrar, outbound_proxy, protocol \
         FROM external_accounts WHERE account_id = ?1 ORDER BY id LIMIT 1",
        [account_id],
        |r| {
            Ok(ExternalAccount {
                id: r.get(0)?,
                username: r.get(1)?,
                domain: r.get(2)?,
                password: r.get(3)?,
                algorithm: r.get(4)?,
                account_id: r.get(5)?,
                realm: r.get(6)?,
                registrar: r.get(7)?,
                outbound_proxy: r.get(8)?,
                protocol: r.get(9)?,
            })
        },
    ))
}

/// Is (username, domain) an external account other than `except_id`?
pub fn external_account_taken(
    conn: &Connection,
    username: &str,
    domain: &str,
    except_id: Option<i64>,
) -> rusqlite::Result<bool> {
    conn.cached_row(
        "SELECT count(*) FROM external_accounts WHERE username = ?1 AND domain = ?2 AND id IS NOT ?3",
        params![username, domain, except_id],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Attaches the first unused external account; false when none is left.
pub fn consume_external_account(conn: &Connection, account_id: i64) -> rusqlite::Result<bool> {
    Ok(conn.cached_execute(
        "UPDATE external_accounts SET used = 1, account_id = ?1, updated_at = ?2 \
         WHERE id = (SELECT id FROM external_accounts WHERE used = 0 AND account_id IS NULL ORDER BY id LIMIT 1)",
        params![account_id, time::now_sql()],
    )? == 1)
}

/// Attaches `e` to `account_id`: updates the attached row in place
/// (keeping its id and group) or inserts one, marked used.
pub fn save_external_account(conn: &Connection, account_id: i64, e: &ExternalAccount) -> rusqlite::Result<()> {
    let now = time::now_sql();
    let updated = conn.cached_execute(
        "UPDATE external_accounts SET username = ?2, domain = ?3, password = ?4, algorithm = ?5, realm = ?6, \
         registrar = ?7, outbound_proxy = ?8, protocol = ?9, used = 1, updated_at = ?10 WHERE account_id = ?1",
        params![
            account_id,
            e.username,
            e.domain,
            e.password,
            e.algorithm,
            e.realm,
            e.registrar,
            e.outbound_proxy,
            e.protocol,
            now
        ],
    )?;
    if updated == 0 {
        conn.cached_execute(
            "INSERT INTO external_accounts (username, domain, \"group\", password, algorithm, used, account_id, \
             realm, registrar, outbound_proxy, protocol, created_at, updated_at) \
             VALUES (?1, ?2, '', ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            params![
                e.username,
                e.domain,
                e.password,
                e.algorithm,
                account_id,
                e.realm,
                e.registrar,
                e.outbound_proxy,
                e.protocol,
                now
            ],
        )?;
    }
    Ok(())
}

/// Deletes the external account attached to an account.
pub fn delete_external_account(conn: &Connection, account_id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM external_accounts WHERE account_id = ?1", [account_id])
}
