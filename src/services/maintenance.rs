//! Cleanups: shared by the console commands and the server's janitor.

use crate::app::App;
use crate::db;
use crate::error::AppResult;

/// QR/auth tokens live this long (minutes).
pub const AUTH_TOKEN_MINUTES: i64 = 5;
/// DIGEST nonces are dropped after this long (minutes).
pub const NONCE_MINUTES: i64 = 60;

/// What a cleanup found, and how many rows went (0 when not applied).
#[derive(Debug, Default)]
pub struct Cleanup {
    pub found: Vec<String>,
    pub deleted: usize,
}

/// Accounts older than `days`, unconfirmed unless `and_confirmed`.
/// Like every command, this sees the default domain only.
pub fn clear_unconfirmed(app: &App, days: i64, and_confirmed: bool, apply: bool) -> AppResult<Cleanup> {
    app.db.write(|tx| {
        let rows = db::maintenance::unconfirmed_accounts(tx, days, and_confirmed, Some(&app.config.sip_domain))?;
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let deleted = if apply { db::maintenance::delete_accounts(tx, &ids)? } else { 0 };
        Ok(Cleanup { found: rows.into_iter().map(|(_, sip)| sip).collect(), deleted })
    })
}

pub fn clear_tombstones(app: &App, days: i64, apply: bool) -> AppResult<Cleanup> {
    app.db.write(|tx| {
        let rows = db::maintenance::old_tombstones(tx, days)?;
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let deleted = if apply { db::maintenance::delete_tombstones(tx, &ids)? } else { 0 };
        Ok(Cleanup { found: rows.into_iter().map(|(_, sip)| sip).collect(), deleted })
    })
}

pub fn clear_api_keys(app: &App, minutes: i64) -> AppResult<usize> {
    app.db.write(|tx| Ok(db::auth::delete_api_keys_unused_for(tx, minutes)?))
}

/// Nonces deleted per write job: a busy server's hour of nonces is
/// hundreds of thousands of rows, and one job deleting them all would hold
/// every other write back for seconds.
const NONCE_CHUNK: i64 = 2_000;

/// Every alphanumeric key is in `ALL_KEYS`.
const ALL_KEYS: (&str, &str) = ("", "~");

/// `digest:clear-nonces`: every nonce created more than `minutes` ago, from
/// any version (the whole table is looked at).
pub fn clear_nonces(app: &App, minutes: i64) -> AppResult<usize> {
    clear_nonces_in(app, minutes, ALL_KEYS)
}

/// The server's hourly cleanup: the same, reading the expired rows and
/// (almost) no others. This version's nonces start with their creation time,
/// so the expired ones sort below the cutoff's prefix; keys above the
/// prefix of tomorrow cannot be this version's, they are random nonces of
/// older versions, swept too. Only an older random nonce falling between the
/// two waits for `digest:clear-nonces`.
pub fn clear_expired_nonces(app: &App) -> AppResult<usize> {
    use crate::domain::random::time_prefix;
    let now = crate::domain::time::now_unix().max(0) as u64;
    let cutoff = time_prefix(now.saturating_sub(NONCE_MINUTES as u64 * 60) * 1_000_000);
    let tomorrow = time_prefix((now + 86_400) * 1_000_000);
    Ok(clear_nonces_in(app, NONCE_MINUTES, ("", &cutoff))?
        + clear_nonces_in(app, NONCE_MINUTES, (&tomorrow, ALL_KEYS.1))?)
}

fn clear_nonces_in(app: &App, minutes: i64, keys: (&str, &str)) -> AppResult<usize> {
    let mut total = 0;
    loop {
        let deleted = app.db.write(|tx| Ok(db::auth::delete_nonces_older_than(tx, minutes, keys, NONCE_CHUNK)?))?;
        total += deleted;
        if (deleted as i64) < NONCE_CHUNK {
            return Ok(total);
        }
    }
}

/// Expired short-lived state: auth tokens, idle sessions, old rate-limit windows.
pub fn clear_expired_state(app: &App) -> AppResult<usize> {
    let session_minutes = app.config.session_lifetime_minutes;
    let day_ago = crate::domain::time::now_unix() - 86_400;
    app.db.write(|tx| {
        Ok(db::auth::delete_auth_tokens_older_than(tx, AUTH_TOKEN_MINUTES)?
            + db::maintenance::delete_sessions_idle_for(tx, session_minutes)?
            + db::maintenance::delete_stale_rate_limits(tx, day_ago)?)
    })
}
