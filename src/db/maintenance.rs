//! Cleanups run by the console commands and by the server's janitor.

use super::Cached;
use crate::domain::time;
use rusqlite::{params, Connection};

/// Accounts of `domain` older than `days`, not activated unless `and_confirmed`.
pub fn unconfirmed_accounts(
    conn: &Connection,
    days: i64,
    and_confirmed: bool,
    domain: Option<&str>,
) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, username || '@' || domain FROM accounts WHERE created_at < ?1 AND (?2 OR activated = 0) \
         AND (?3 IS NULL OR domain = ?3) ORDER BY id",
    )?;
    let rows = stmt.query_map(params![time::minutes_ago_sql(days * 24 * 60), and_confirmed, domain], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    rows.collect()
}

pub fn delete_accounts(conn: &Connection, ids: &[i64]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached("DELETE FROM accounts WHERE id = ?1")?;
    let mut total = 0;
    for id in ids {
        total += stmt.execute([id])?;
    }
    Ok(total)
}

pub fn old_tombstones(conn: &Connection, days: i64) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, username || '@' || domain FROM accounts_tombstones WHERE created_at < ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([time::minutes_ago_sql(days * 24 * 60)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn delete_tombstones(conn: &Connection, ids: &[i64]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached("DELETE FROM accounts_tombstones WHERE id = ?1")?;
    let mut total = 0;
    for id in ids {
        total += stmt.execute([id])?;
    }
    Ok(total)
}

pub fn delete_sessions_idle_for(conn: &Connection, minutes: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM sessions WHERE last_activity < ?1", [time::minutes_ago_sql(minutes)])
}

pub fn delete_stale_rate_limits(conn: &Connection, before_unix: i64) -> rusqlite::Result<usize> {
    conn.cached_execute("DELETE FROM rate_limits WHERE window_start < ?1", [before_unix])
}
