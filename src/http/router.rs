//! The route table: each area of the server offers its routes; the first
//! match wins, literal segments before parameters within an area.

use super::{Ctx, HttpResult};

pub struct Route<'a> {
    /// The path pattern, for logs and metrics (never the raw path: paths
    /// carry tokens).
    pub label: &'static str,
    pub run: Box<dyn FnOnce() -> HttpResult + 'a>,
}

/// Builds a route: `route("/api/ping", move || ping(ctx))`.
pub fn route<'a>(label: &'static str, run: impl FnOnce() -> HttpResult + 'a) -> Option<Route<'a>> {
    Some(Route { label, run: Box::new(run) })
}

/// A numeric path parameter.
pub fn id(segment: &str) -> Option<i64> {
    if segment.is_empty() || segment.len() > 18 || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// Percent-decoded path parameter (`%2B` → `+`, `%40` → `@`).
pub fn decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

pub fn find<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    super::ops::routes(ctx, method, segments)
        .or_else(|| super::api::routes(ctx, method, segments))
        .or_else(|| super::provisioning::routes(ctx, method, segments))
        .or_else(|| super::web::routes(ctx, method, segments))
}
