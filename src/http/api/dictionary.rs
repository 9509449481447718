//! Admin: an account's contacts, account types and DTMF actions (api.md §4.5).

use super::render::{self, Show};
use crate::db::accounts::Account;
use crate::error::{AppError, AppResult};
use crate::http::auth;
use crate::http::context::{empty, json, json_status, plain};
use crate::http::router::{id, route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::{accounts as accounts_service, dictionary as service};
use serde_json::{json, Value};

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    let num = |s: &str| id(s).is_some();
    match (method, segments) {
        ("GET", ["api", "accounts", n, "contacts"]) if num(n) => {
            route("/api/accounts/{id}/contacts", move || contacts(ctx, n))
        }
        ("GET", ["api", "accounts", n, "contacts", c]) if num(n) => {
            route("/api/accounts/{id}/contacts/{contact_id}", move || contact(ctx, n, c))
        }
        ("POST", ["api", "accounts", n, "contacts", c]) if num(n) => {
            route("/api/accounts/{id}/contacts/{contact_id}", move || add_contact(ctx, n, c))
        }
        ("DELETE", ["api", "accounts", n, "contacts", c]) if num(n) => {
            route("/api/accounts/{id}/contacts/{contact_id}", move || remove_contact(ctx, n, c))
        }
        ("GET", ["api", "account_types"]) => route("/api/account_types", move || types(ctx)),
        ("POST", ["api", "account_types"]) => route("/api/account_types", move || create_type(ctx)),
        ("GET", ["api", "account_types", t]) => route("/api/account_types/{id}", move || show_type(ctx, t)),
        ("PUT", ["api", "account_types", t]) => route("/api/account_types/{id}", move || update_type(ctx, t)),
        ("DELETE", ["api", "account_types", t]) => route("/api/account_types/{id}", move || delete_type(ctx, t)),
        ("POST", ["api", "accounts", n, "types", t]) if num(n) => {
            route("/api/accounts/{id}/types/{type_id}", move || attach_type(ctx, n, t))
        }
        ("DELETE", ["api", "accounts", n, "types", t]) if num(n) => {
            route("/api/accounts/{id}/types/{type_id}", move || detach_type(ctx, n, t))
        }
        ("GET", ["api", "accounts", n, "actions"]) if num(n) => {
            route("/api/accounts/{id}/actions", move || actions(ctx, n))
        }
        ("POST", ["api", "accounts", n, "actions"]) if num(n) => {
            route("/api/accounts/{id}/actions", move || create_action(ctx, n))
        }
        ("GET", ["api", "accounts", n, "actions", a]) if num(n) => {
            route("/api/accounts/{id}/actions/{action_id}", move || action(ctx, n, a))
        }
        ("PUT", ["api", "accounts", n, "actions", a]) if num(n) => {
            route("/api/accounts/{id}/actions/{action_id}", move || update_action(ctx, n, a))
        }
        ("DELETE", ["api", "accounts", n, "actions", a]) if num(n) => {
            route("/api/accounts/{id}/actions/{action_id}", move || delete_action(ctx, n, a))
        }
        _ => None,
    }
}

fn number(segment: &str) -> AppResult<i64> {
    id(segment).ok_or_else(AppError::not_found)
}

/// The admin, then the account of the path within the admin's scope.
fn target(ctx: &Ctx, n: &str) -> AppResult<Account> {
    auth::admin(ctx)?;
    accounts_service::find(ctx.app, &ctx.scope(true), number(n)?)
}

fn contacts(ctx: &Ctx, n: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let list = service::contacts(ctx.app, account.id)?;
    Ok(json(&list.iter().map(|d| render::account(&ctx.app.config, d, Show::PLAIN)).collect::<Vec<_>>()))
}

fn contact(ctx: &Ctx, n: &str, c: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let d = service::contact_by_id(ctx.app, account.id, number(c)?)?;
    Ok(json(&render::account(&ctx.app.config, &d, Show::PLAIN)))
}

fn add_contact(ctx: &Ctx, n: &str, c: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let contact = accounts_service::find(ctx.app, &ctx.scope(true), number(c)?)?;
    service::add_contact(ctx.app, &account, &contact)?;
    Ok(empty())
}

fn remove_contact(ctx: &Ctx, n: &str, c: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let count = service::remove_contact(ctx.app, &account, id(c).unwrap_or(-1))?;
    Ok(plain(count.to_string()))
}

fn type_json(t: &crate::db::dictionary::AccountType) -> Value {
    json!({"id": t.id, "key": t.key})
}

fn types(ctx: &Ctx) -> HttpResult {
    auth::admin(ctx)?;
    Ok(json(&Value::Array(service::types(ctx.app)?.iter().map(type_json).collect())))
}

fn show_type(ctx: &Ctx, t: &str) -> HttpResult {
    auth::admin(ctx)?;
    Ok(json(&type_json(&service::type_by_id(ctx.app, number(t)?)?)))
}

fn create_type(ctx: &Ctx) -> HttpResult {
    auth::admin(ctx)?;
    let t = service::create_type(ctx.app, &ctx.json_input())?;
    Ok(json_status(201, &type_json(&t)))
}

fn update_type(ctx: &Ctx, t: &str) -> HttpResult {
    auth::admin(ctx)?;
    let t = service::update_type(ctx.app, number(t)?, &ctx.json_input())?;
    Ok(json(&type_json(&t)))
}

fn delete_type(ctx: &Ctx, t: &str) -> HttpResult {
    auth::admin(ctx)?;
    let count = service::delete_type(ctx.app, number(t)?)?;
    Ok(plain(count.to_string()))
}

fn attach_type(ctx: &Ctx, n: &str, t: &str) -> HttpResult {
    let account = target(ctx, n)?;
    service::attach_type(ctx.app, &account, number(t)?)?;
    Ok(empty())
}

fn detach_type(ctx: &Ctx, n: &str, t: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let count = service::detach_type(ctx.app, &account, id(t).unwrap_or(-1))?;
    Ok(plain(count.to_string()))
}

fn action_json(a: &crate::db::dictionary::Action) -> Value {
    json!({"id": a.id, "key": a.key, "code": a.code})
}

fn actions(ctx: &Ctx, n: &str) -> HttpResult {
    let account = target(ctx, n)?;
    Ok(json(&Value::Array(service::actions(ctx.app, &account)?.iter().map(action_json).collect())))
}

fn action(ctx: &Ctx, n: &str, a: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let found = service::action(ctx.app, &account, id(a).unwrap_or(-1))?;
    Ok(json(&action_json(&found)))
}

fn create_action(ctx: &Ctx, n: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let created = service::create_action(ctx.app, &account, &ctx.json_input())?;
    Ok(json_status(201, &action_json(&created)))
}

fn update_action(ctx: &Ctx, n: &str, a: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let updated = service::update_action(ctx.app, &account, id(a).unwrap_or(-1), &ctx.json_input())?;
    Ok(json(&action_json(&updated)))
}

fn delete_action(ctx: &Ctx, n: &str, a: &str) -> HttpResult {
    let account = target(ctx, n)?;
    let count = service::delete_action(ctx.app, &account, id(a).unwrap_or(-1))?;
    Ok(plain(count.to_string()))
}
