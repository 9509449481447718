//! Rate limits (fixed windows), keyed by client IP and by target (phone,
//! email, device). Counters live in the database so several nodes share them.

use crate::app::App;
use crate::db;
use crate::domain::time;
use crate::error::{AppError, AppResult};
use rusqlite::Connection;

/// A limit: at most `max` hits per `window_seconds`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: i64,
    pub window_seconds: i64,
}

/// Counts a hit on `bucket` (e.g. `sms:phone:+3361234`, `login:ip:1.2.3.4`)
/// and refuses it with 429 once the window is full.
pub fn hit(app: &App, bucket: &str, limit: Limit) -> AppResult<()> {
    if limit.max <= 0 {
        return Ok(());
    }
    app.db.write(|tx| hit_in(tx, bucket, limit))
}

/// `hit` inside the caller's write transaction: the hit is counted only if
/// that transaction commits, so a request refused later (422) costs nothing.
pub fn hit_in(tx: &Connection, bucket: &str, limit: Limit) -> AppResult<()> {
    if count(tx, bucket, limit)? {
        Ok(())
    } else {
        Err(too_many())
    }
}

/// Checks several buckets (e.g. per IP and per target) in one transaction;
/// all are counted, even when one of them refuses.
pub fn hit_all(app: &App, buckets: &[(String, Limit)]) -> AppResult<()> {
    if buckets.iter().all(|(_, limit)| limit.max <= 0) {
        return Ok(());
    }
    let mut allowed = true;
    app.db.write(|tx| {
        for (bucket, limit) in buckets {
            allowed &= count(tx, bucket, *limit)?;
        }
        Ok(())
    })?;
    if allowed {
        Ok(())
    } else {
        Err(too_many())
    }
}

/// `hit_all` inside the caller's write transaction; refused when any bucket
/// is full (and then the transaction rolls back, counting nothing).
pub fn hit_all_in(tx: &Connection, buckets: &[(String, Limit)]) -> AppResult<()> {
    for (bucket, limit) in buckets {
        hit_in(tx, bucket, *limit)?;
    }
    Ok(())
}

/// Counts one hit; false when the window was already full.
fn count(tx: &Connection, bucket: &str, limit: Limit) -> AppResult<bool> {
    if limit.max <= 0 {
        return Ok(true);
    }
    let now = time::now_unix();
    let window_start = now - now.rem_euclid(limit.window_seconds.max(1));
    Ok(db::web::hit(tx, bucket, window_start)? <= limit.max)
}

fn too_many() -> AppError {
    AppError::TooManyRequests("Too many requests, please retry later.".into())
}
