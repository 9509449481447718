//! Registration statistics (api.md §5.8): accounts created per hour or day,
//! split by phone/email and activation, within the caller's scope.

use super::Scope;
use crate::app::App;
use crate::db;
use crate::domain::time;
use crate::error::AppResult;

/// The three windows of `/api/statistics/{period}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// 25 hourly buckets `YYYY-MM-DD HH`, now − 24 h to now.
    Day,
    /// 8 daily buckets `YYYY-MM-DD`, now − 7 days to now.
    Week,
    /// Daily buckets from now − 1 calendar month to now.
    Month,
}

impl Period {
    pub fn parse(text: &str) -> Option<Period> {
        match text {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }
}

/// Counts of one bucket. `email` = all − phone, as FlexiAPI counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub all: i64,
    pub phone: i64,
    pub email: i64,
    pub activated_phone: i64,
    pub activated_email: i64,
}

/// Every bucket of the period, ascending, zero-filled, for accounts created
/// since the period's start.
pub fn registrations(app: &App, scope: &Scope, period: Period) -> AppResult<Vec<(String, Counts)>> {
    registrations_at(app, scope, period, time::now_unix())
}

/// `registrations` as seen at `now` (tests, reports).
pub fn registrations_at(app: &App, scope: &Scope, period: Period, now: i64) -> AppResult<Vec<(String, Counts)>> {
    let (start, step, prefix) = match period {
        Period::Day => (now - 24 * 3600, 3600, 13),
        Period::Week => (now - 7 * 86_400, 86_400, 10),
        Period::Month => (time::months_ago(now, 1), 86_400, 10),
    };
    let rows = app
        .db
        .read(|c| db::accounts::creation_buckets(c, &time::format_sql(start), prefix as i64, scope.domain_filter()))?;
    let mut out: Vec<(String, Counts)> = Vec::new();
    let mut t = start;
    while t <= now {
        let key = time::format_sql(t)[..prefix].to_string();
        if out.last().map(|(k, _)| k != &key).unwrap_or(true) {
            out.push((key, Counts::default()));
        }
        t += step;
    }
    for (bucket, all, phone, activated, activated_phone) in rows {
        if let Some((_, c)) = out.iter_mut().find(|(k, _)| *k == bucket) {
            *c = Counts {
                all,
                phone,
                email: all - phone,
                activated_phone,
                activated_email: activated - activated_phone,
            };
        }
    }
    Ok(out)
}
