//! Admin: registration statistics, `/api/statistics/{day,week,month}`
//! (seed 003) and FlexiAPI's `/api/statistic/...` spelling.

use crate::http::auth;
use crate::http::context::json;
use crate::http::router::{route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::statistics::{self as service, Period};
use serde_json::{Map, Value};

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["api", "statistics" | "statistic", p]) => {
            let period = Period::parse(p)?;
            route("/api/statistics/{period}", move || statistics(ctx, period))
        }
        _ => None,
    }
}

fn statistics(ctx: &Ctx, period: Period) -> HttpResult {
    auth::admin(ctx)?;
    let buckets = service::registrations(ctx.app, &ctx.scope(true), period)?;
    let mut map = Map::new();
    for (key, counts) in buckets {
        map.insert(key, serde_json::to_value(counts).unwrap_or(Value::Null));
    }
    Ok(json(&Value::Object(map)))
}
