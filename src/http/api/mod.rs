//! The REST API under `/api` (and the vCard routes at the root): JSON
//! handlers that parse, call a service, and render.

pub mod accounts;
pub mod render;

use super::router::{route, Route};
use super::Ctx;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["api", "ping"]) => route("/api/ping", || Ok(super::context::plain("pong"))),
        _ => None,
    }
    .or_else(|| accounts::routes(ctx, method, segments))
}
