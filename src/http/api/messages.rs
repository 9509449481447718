//! Admin: `POST /api/messages` through linphone-daemon (api.md §5.6).

use crate::error::AppError;
use crate::http::auth;
use crate::http::context::json;
use crate::http::router::{route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::messages as service;
use serde_json::json;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        // The route exists only when a daemon socket is configured.
        ("POST", ["api", "messages"]) if ctx.app.config.linphone_daemon_unix_path.is_some() => {
            route("/api/messages", move || send(ctx))
        }
        _ => None,
    }
}

fn send(ctx: &Ctx) -> HttpResult {
    auth::admin(ctx)?;
    if ctx.app.config.linphone_daemon_unix_path.is_none() {
        return Err(AppError::NotFound(String::new()));
    }
    let id = service::send(ctx.app, &ctx.json_input())?;
    Ok(json(&json!({"id": id})))
}
