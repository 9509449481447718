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
    if limit.max <= 0 {
        return Ok(());
    }
    let now = time::now_unix();
    let window_start = now - now.rem_euclid(limit.window_seconds.max(1));
    if db::web::hit(tx, bucket, window_start)? > limit.max {
        return Err(AppError::TooManyRequests("Too many requests, please retry later.".into()));
    }
    Ok(())
}

/// Checks several buckets (e.g. per IP and per target); all are counted.
pub fn hit_all(app: &App, buckets: &[(String, Limit)]) -> AppResult<()> {
    let mut refused = None;
    for (bucket, limit) in buckets {
        if let Err(e) = hit(app, bucket, *limit) {
            refused = Some(e);
        }
    }
    refused.map_or(Ok(()), Err)
}

/// `hit_all` inside the caller's write transaction; refused when any bucket
/// is full (and then the transaction rolls back, counting nothing).
pub fn hit_all_in(tx: &Connection, buckets: &[(String, Limit)]) -> AppResult<()> {
    for (bucket, limit) in buckets {
        hit_in(tx, bucket, *limit)?;
    }
    Ok(())
}
