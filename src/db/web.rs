//! `sessions`, `rate_limits`, `spaces`: state the portal and the limits
//! share between requests (and, later, between nodes).

use super::optional;
use super::Cached;
use crate::domain::time;
use rusqlite::{params, Connection};

/// Counts one hit in the fixed window starting at `window_start` and
/// returns the hits in that window, in one statement (atomic).
pub fn hit(conn: &Connection, bucket: &str, window_start: i64) -> rusqlite::Result<i64> {
    conn.cached_row(
        "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?1, ?2, 1) \
         ON CONFLICT (bucket) DO UPDATE SET \
           hits = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.hits + 1 ELSE 1 END, \
           window_start = excluded.window_start \
         RETURNING hits",
        params![bucket, window_start],
        |r| r.get(0),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub id: i64,
    pub domain: String,
    pub host: String,
    pub name: String,
    pub is_super: bool,
}

pub fn space_by_host(conn: &Connection, host: &str) -> rusqlite::Result<Option<Space>> {
    optional(conn.cached_row("SELECT id, domain, host, name, super FROM spaces WHERE host = ?1", [host], |r| {
        Ok(Space { id: r.get(0)?, domain: r.get(1)?, host: r.get(2)?, name: r.get(3)?, is_super: r.get(4)? })
    }))
}

pub fn space_by_domain(conn: &Connection, domain: &str) -> rusqlite::Result<Option<Space>> {
    optional(conn.cached_row("SELECT id, domain, host, name, super FROM spaces WHERE domain = ?1", [domain], |r| {
        Ok(Space { id: r.get(0)?, domain: r.get(1)?, host: r.get(2)?, name: r.get(3)?, is_super: r.get(4)? })
    }))
}

pub fn all_spaces(conn: &Connection) -> rusqlite::Result<Vec<Space>> {
    let mut stmt = conn.prepare_cached("SELECT id, domain, host, name, super FROM spaces ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Space { id: r.get(0)?, domain: r.get(1)?, host: r.get(2)?, name: r.get(3)?, is_super: r.get(4)? })
    })?;
    rows.collect()
}

/// Creates the Space of `domain` on `host` unless that domain or that host
/// already has one; true when it was created.
pub fn insert_space_if_free(conn: &Connection, domain: &str, host: &str) -> rusqlite::Result<bool> {
    let now = time::now_sql();
    let inserted = conn.cached_execute(
        "INSERT INTO spaces (domain, host, name, super, created_at, updated_at) \
         SELECT ?1, ?2, ?1, 0, ?3, ?3 WHERE NOT EXISTS (SELECT 1 FROM spaces WHERE domain = ?1 OR host = ?2)",
        params![domain, host, now],
    )?;
    Ok(inserted == 1)
}

pub fn upsert_space(conn: &Connection, domain: &str, host: &str, name: &str, is_super: bool) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO spaces (domain, host, name, super, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
         ON CONFLICT (domain) DO UPDATE SET host = excluded.host, name = excluded.name, super = excluded.super, \
         updated_at = excluded.updated_at",
        params![domain, host, name, is_super, now],
    )?;
    Ok(())
}

// --- sessions ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub account_id: Option<i64>,
    pub csrf_token: String,
    pub data: String,
    pub last_activity: String,
}

pub fn session(conn: &Connection, id: &str, idle_minutes: i64) -> rusqlite::Result<Option<Session>> {
    optional(conn.cached_row(
        "SELECT id, account_id, csrf_token, data, last_activity FROM sessions WHERE id = ?1 AND last_activity >= ?2",
        params![id, time::minutes_ago_sql(idle_minutes)],
        |r| {
            Ok(Session {
                id: r.get(0)?,
                account_id: r.get(1)?,
                csrf_token: r.get(2)?,
                data: r.get(3)?,
                last_activity: r.get(4)?,
            })
        },
    ))
}

pub fn insert_session(
    conn: &Connection,
    id: &str,
    account_id: Option<i64>,
    csrf: &str,
    data: &str,
) -> rusqlite::Result<()> {
    let now = time::now_sql();
    conn.cached_execute(
        "INSERT INTO sessions (id, account_id, csrf_token, data, created_at, last_activity) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id, account_id, csrf, data, now],
    )?;
    Ok(())
}

pub fn update_session(conn: &Connection, id: &str, account_id: Option<i64>, data: &str) -> rusqlite::Result<()> {
    conn.cached_execute(
        "UPDATE sessions SET account_id = ?1, data = ?2, last_activity = ?3 WHERE id = ?4",
        params![account_id, data, time::now_sql(), id],
    )?;
    Ok(())
}

pub fn delete_session(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM sessions WHERE id = ?1", [id])
}

/// Removes sessions idle for longer than `idle_minutes`.
pub fn delete_idle_sessions(conn: &Connection, idle_minutes: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM sessions WHERE last_activity < ?1", [time::minutes_ago_sql(idle_minutes)])
}

/// Ends every session of an account (deletion, password change elsewhere).
pub fn delete_sessions_of(conn: &Connection, account_id: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM sessions WHERE account_id = ?1", [account_id])
}

/// Unused external accounts (public registration closes at 0 when each
/// new account consumes one).
pub fn external_accounts_left(conn: &Connection) -> rusqlite::Result<i64> {
    conn.cached_row("SELECT count(*) FROM external_accounts WHERE used = 0", [], |r| r.get(0))
}

/// Activated accounts of a domain (the home page counter).
pub fn activated_count(conn: &Connection, domain: &str) -> rusqlite::Result<i64> {
    conn.cached_row("SELECT count(*) FROM accounts WHERE activated = 1 AND domain = ?1", [domain], |r| r.get(0))
}
