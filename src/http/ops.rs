//! Operator endpoints: `GET /health` for load balancers and monitors, and
//! `GET /metrics` in the Prometheus text format (0.0.4).
//!
//! `/metrics` is served to a loopback client (a Prometheus or node agent on
//! the box) without credentials, to anyone else only with an admin API key.
//! A request relayed by a local reverse proxy with `X-Forwarded-For` counts
//! as coming from the forwarded address, so nginx does not make the metrics
//! public. `APP_METRICS_REQUIRE_KEY=true` asks for the key from loopback too.

use super::router::{route, Route};
use super::{Ctx, HttpResult};
use crate::db::health;
use crate::error::AppError;
use crate::metrics::BUCKETS;
use rouille::Response;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["health"]) => route("/health", move || health(ctx)),
        ("GET", ["metrics"]) => route("/metrics", move || metrics(ctx)),
        _ => None,
    }
}

fn health(ctx: &Ctx) -> HttpResult {
    let response = match ctx.app.db.read(health::ping) {
        Ok(()) => Response::json(&serde_json::json!({"status": "ok", "database": "ok"})),
        Err(e) => {
            crate::log_line!("health: database: {e}");
            Response::json(&serde_json::json!({"status": "error", "database": "error"})).with_status_code(503)
        }
    };
    Ok(response.with_no_cache())
}

fn is_local(ctx: &Ctx) -> bool {
    ctx.client_ip().parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn metrics(ctx: &Ctx) -> HttpResult {
    if ctx.app.config.metrics_require_key || !is_local(ctx) {
        let has_credentials = super::auth::api_key(ctx).is_some() || ctx.header("Authorization").is_some();
        if !has_credentials {
            return Err(AppError::Forbidden("Metrics are served to loopback clients or with an admin API key".into()));
        }
        super::auth::admin(ctx)?;
    }
    let accounts = ctx.app.db.read(health::accounts_by_state);
    let body = render(ctx.app, accounts.ok());
    Ok(Response::from_data("text/plain; version=0.0.4; charset=utf-8", body).with_no_cache())
}

/// A label value, escaped as the text format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn float(value: f64) -> String {
    if value.is_infinite() {
        "+Inf".into()
    } else {
        format!("{value}")
    }
}

/// The exposition text. `accounts` is `None` when the database did not answer
/// (the gauge is then left out rather than reported as zero).
pub fn render(app: &crate::app::App, accounts: Option<(i64, i64)>) -> String {
    let m = &app.metrics;
    let mut out = String::with_capacity(4096);
    let _ = writeln!(out, "# HELP flexiapi_build_info flexiapi version, always 1.");
    let _ = writeln!(out, "# TYPE flexiapi_build_info gauge");
    let _ = writeln!(
        out,
        "flexiapi_build_info{{version=\"{}\",schema=\"{}\"}} 1",
        label(env!("CARGO_PKG_VERSION")),
        crate::db::SCHEMA_VERSION
    );

    let _ = writeln!(out, "# HELP flexiapi_http_requests_total HTTP requests answered, by route pattern and status.");
    let _ = writeln!(out, "# TYPE flexiapi_http_requests_total counter");
    for ((route, status), count) in m.requests() {
        let _ = writeln!(out, "flexiapi_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}", label(route));
    }

    let (buckets, count, sum) = m.latency();
    let _ = writeln!(
        out,
        "# HELP flexiapi_http_request_duration_seconds Time to answer a request, body read to response sent."
    );
    let _ = writeln!(out, "# TYPE flexiapi_http_request_duration_seconds histogram");
    for (bound, n) in BUCKETS.iter().zip(buckets.iter()) {
        let _ = writeln!(out, "flexiapi_http_request_duration_seconds_bucket{{le=\"{}\"}} {n}", float(*bound));
    }
    let _ = writeln!(out, "flexiapi_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "flexiapi_http_request_duration_seconds_sum {}", float(sum));
    let _ = writeln!(out, "flexiapi_http_request_duration_seconds_count {count}");

    if let Some((activated, unactivated)) = accounts {
        let _ = writeln!(out, "# HELP flexiapi_accounts Accounts in the database, by state.");
        let _ = writeln!(out, "# TYPE flexiapi_accounts gauge");
        let _ = writeln!(out, "flexiapi_accounts{{state=\"activated\"}} {activated}");
        let _ = writeln!(out, "flexiapi_accounts{{state=\"unactivated\"}} {unactivated}");
    }

    let counters = [
        ("flexiapi_emails_sent_total", "E-mails handed to the mail server.", m.emails_sent.load(Ordering::Relaxed)),
        ("flexiapi_emails_failed_total", "E-mails that could not be sent.", m.emails_failed.load(Ordering::Relaxed)),
        ("flexiapi_sms_sent_total", "SMS accepted by the OVH API.", m.sms_sent.load(Ordering::Relaxed)),
        ("flexiapi_sms_failed_total", "SMS that could not be sent.", m.sms_failed.load(Ordering::Relaxed)),
        ("flexiapi_errors_total", "Requests answered with a 5xx status.", m.errors.load(Ordering::Relaxed)),
        ("flexiapi_db_writes_total", "Database write jobs run.", app.db.write_counts().0),
        (
            "flexiapi_db_commits_total",
            "Database transactions committed (queued writes share one).",
            app.db.write_counts().1,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}
