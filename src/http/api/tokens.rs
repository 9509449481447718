//! Creation tokens, request tokens and auth tokens (api.md §4.1, §5.1-5.3).

use crate::domain::time;
use crate::http::auth;
use crate::http::context::{empty, json, json_status};
use crate::http::router::{route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::tokens as service;
use serde_json::json;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("POST", ["api", "account_creation_request_tokens"]) => {
            route("/api/account_creation_request_tokens", move || create_request_token(ctx))
        }
        ("POST", ["api", "account_creation_tokens"]) => {
            route("/api/account_creation_tokens", move || create_token(ctx))
        }
        ("POST", ["api", "account_creation_tokens", "send-by-push"]) => {
            route("/api/account_creation_tokens/send-by-push", move || send_by_push(ctx))
        }
        ("POST", ["api", "account_creation_tokens", "using-account-creation-request-token"]) => {
            route("/api/account_creation_tokens/using-account-creation-request-token", move || {
                exchange_request_token(ctx)
            })
        }
        ("POST", ["api", "accounts", "auth_token"]) => {
            route("/api/accounts/auth_token", move || create_auth_token(ctx))
        }
        ("GET", ["api", "accounts", "auth_token", token, "attach"]) => {
            route("/api/accounts/auth_token/{auth_token}/attach", move || attach(ctx, token))
        }
        ("GET", ["api", "accounts", "me", "api_key", token]) => {
            route("/api/accounts/me/api_key/{auth_token}", move || api_key(ctx, token))
        }
        _ => None,
    }
}

fn create_request_token(ctx: &Ctx) -> HttpResult {
    let token = service::create_request_token(ctx.app)?;
    let url = service::validation_url(ctx.app, &token.token);
    Ok(json_status(201, &json!({"token": token.token, "validation_url": url})))
}

fn create_token(ctx: &Ctx) -> HttpResult {
    auth::admin(ctx)?;
    let token = service::create_creation_token(ctx.app)?;
    Ok(json_status(201, &json!({"token": token.token})))
}

fn send_by_push(ctx: &Ctx) -> HttpResult {
    service::send_by_push(ctx.app, &ctx.json_input(), &ctx.client_ip())?;
    Ok(empty())
}

fn exchange_request_token(ctx: &Ctx) -> HttpResult {
    let token = service::exchange_request_token(ctx.app, &ctx.json_input())?;
    Ok(json_status(201, &json!({"token": token.token})))
}

fn create_auth_token(ctx: &Ctx) -> HttpResult {
    let t = service::create_auth_token(ctx.app)?;
    let (created, updated) = (time::sql_to_iso(&t.created_at), time::sql_to_iso(&t.updated_at));
    Ok(json_status(201, &json!({"token": t.token, "updated_at": updated, "created_at": created, "id": t.id})))
}

fn attach(ctx: &Ctx, token: &str) -> HttpResult {
    let account = auth::user(ctx)?;
    service::attach_auth_token(ctx.app, token, &account)?;
    Ok(empty())
}

fn api_key(ctx: &Ctx, token: &str) -> HttpResult {
    let key = service::api_key_from_auth_token(ctx.app, token)?;
    super::accounts::set_api_key_cookie(ctx, &key);
    Ok(json(&json!({"api_key": key})))
}
