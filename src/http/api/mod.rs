//! The REST API under `/api` (and the vCard routes at the root): JSON
//! handlers that parse, call a service, and render.

pub mod accounts;
pub mod dictionary;
pub mod me;
pub mod messages;
pub mod public;
pub mod render;
pub mod statistics;
pub mod tokens;
pub mod vcard;

use super::router::{route, Route};
use super::Ctx;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["api", "ping"]) => route("/api/ping", || Ok(super::context::plain("pong"))),
        _ => None,
    }
    .or_else(|| accounts::routes(ctx, method, segments))
    .or_else(|| tokens::routes(ctx, method, segments))
    .or_else(|| public::routes(ctx, method, segments))
    .or_else(|| public::admin_routes(ctx, method, segments))
    .or_else(|| me::routes(ctx, method, segments))
    .or_else(|| dictionary::routes(ctx, method, segments))
    .or_else(|| messages::routes(ctx, method, segments))
    .or_else(|| statistics::routes(ctx, method, segments))
    .or_else(|| vcard::routes(ctx, method, segments))
}
