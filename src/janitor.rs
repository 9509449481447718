//! The periodic cleanups inside `serve`, so no cron job is needed: at start
//! and then every `INTERVAL`, each run logged.

use crate::app::App;
use crate::services::maintenance;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(3600);
/// How often the WAL is checkpointed (see `db::configure`).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

pub fn start(app: Arc<App>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let interval = std::env::var("FLEXIAPI_JANITOR_INTERVAL_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(INTERVAL);
    std::thread::Builder::new()
        .name("janitor".into())
        .spawn(move || {
            let mut last: Option<Instant> = None;
            let mut last_checkpoint = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if last.is_none_or(|t| t.elapsed() >= interval) {
                    run_once(&app);
                    last = Some(Instant::now());
                }
                if last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
                    if let Err(e) = app.db.checkpoint() {
                        crate::log_line!("janitor: checkpoint failed: {e}");
                    }
                    last_checkpoint = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            // Leave the database file whole for the next reader.
            let _ = app.db.checkpoint();
        })
        .expect("cannot start the janitor thread")
}

/// One round of every cleanup; failures are logged, never fatal.
pub fn run_once(app: &App) {
    let log = |what: &str, result: Result<String, crate::error::AppError>| match result {
        Ok(summary) => crate::log_line!("janitor: {what}: {summary}"),
        Err(e) => crate::log_line!("janitor: {what} failed: {e}"),
    };
    log("nonces", maintenance::clear_expired_nonces(app).map(|n| format!("{n} expired nonces deleted")));
    let minutes = app.config.api_key_expiration_minutes;
    if minutes > 0 {
        log("api keys", maintenance::clear_api_keys(app, minutes).map(|n| format!("{n} api keys deleted")));
    }
    log("expired state", maintenance::clear_expired_state(app).map(|n| format!("{n} rows deleted")));
    if let Some(days) = app.config.clear_unconfirmed_days {
        log(
            "unconfirmed accounts",
            maintenance::clear_unconfirmed(app, days, false, true).map(|c| format!("{} accounts deleted", c.deleted)),
        );
    }
    if let Some(days) = app.config.clear_tombstones_days {
        log(
            "tombstones",
            maintenance::clear_tombstones(app, days, true).map(|c| format!("{} tombstones deleted", c.deleted)),
        );
    }
}
