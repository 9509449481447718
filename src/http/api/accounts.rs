//! `/api/accounts/me…` and the admin account endpoints.

use super::render::{self, Show};
use crate::db;
use crate::error::AppError;
use crate::http::auth;
use crate::http::context::{empty, json, plain};
use crate::http::router::{decoded, id, route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::accounts as service;

const PER_PAGE: i64 = 20;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["api", "accounts", "me"]) => route("/api/accounts/me", move || me(ctx)),
        ("DELETE", ["api", "accounts", "me"]) => route("/api/accounts/me", move || delete_me(ctx)),
        ("GET", ["api", "accounts", "me", "api_key"]) => route("/api/accounts/me/api_key", move || me_api_key(ctx)),
        ("GET", ["api", "accounts", "me", "provision"]) => {
            route("/api/accounts/me/provision", move || me_provision(ctx))
        }
        ("GET", ["api", "accounts"]) => route("/api/accounts", move || index(ctx)),
        ("POST", ["api", "accounts"]) => route("/api/accounts", move || create(ctx)),
        ("GET", ["api", "accounts", sip, "search"]) => route("/api/accounts/{sip}/search", move || search(ctx, sip)),
        ("GET", ["api", "accounts", email, "search-by-email"]) => {
            route("/api/accounts/{email}/search-by-email", move || search_by_email(ctx, email))
        }
        ("GET", ["api", "accounts", n]) if id(n).is_some() => route("/api/accounts/{id}", move || show(ctx, n)),
        ("PUT", ["api", "accounts", n]) if id(n).is_some() => route("/api/accounts/{id}", move || update(ctx, n)),
        ("DELETE", ["api", "accounts", n]) if id(n).is_some() => route("/api/accounts/{id}", move || destroy(ctx, n)),
        ("GET", ["api", "accounts", n, "activate"]) if id(n).is_some() => {
            route("/api/accounts/{id}/activate", move || set_activated(ctx, n, true))
        }
        ("GET", ["api", "accounts", n, "deactivate"]) if id(n).is_some() => {
            route("/api/accounts/{id}/deactivate", move || set_activated(ctx, n, false))
        }
        ("GET", ["api", "accounts", n, "provision"]) if id(n).is_some() => {
            route("/api/accounts/{id}/provision", move || provision(ctx, n))
        }
        _ => None,
    }
}

fn account_id(segment: &str) -> Result<i64, AppError> {
    id(segment).ok_or_else(AppError::not_found)
}

fn render(ctx: &Ctx, account: db::accounts::Account, show: Show) -> HttpResult {
    let details = service::load_details(ctx.app, account)?;
    Ok(json(&render::account(&ctx.app.config, &details, show)))
}

fn me(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    render(ctx, account, Show::ME)
}

fn delete_me(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let deleted = service::delete(ctx.app, &account)?;
    Ok(plain(deleted.to_string()))
}

/// Sets the `x-api-key` cookie alongside a key answer.
pub fn set_api_key_cookie(ctx: &Ctx, key: &str) {
    let minutes = ctx.app.config.api_key_expiration_minutes;
    let max_age = if minutes > 0 { format!("; Max-Age={}", minutes * 60) } else { String::new() };
    let secure = if ctx.app.config.is_https() { "; Secure" } else { "" };
    ctx.add_header("Set-Cookie", format!("x-api-key={key}{max_age}; Path=/; HttpOnly; SameSite=Lax{secure}"));
}

fn me_api_key(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let key = service::generate_api_key(ctx.app, account.id)?;
    set_api_key_cookie(ctx, &key);
    Ok(plain(key))
}

fn me_provision(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let account = service::renew_provisioning_token(ctx.app, &account)?;
    // The new provisioning token only (api.md §4.3): the confirmation key
    // would let an unconfirmed account activate itself.
    render(ctx, account, Show { provisioning_token: true, ..Show::ME })
}

fn index(ctx: &Ctx) -> HttpResult {
    auth::admin(ctx)?;
    let scope = ctx.scope(true);
    let page =
        ctx.query("page").and_then(|p| p.parse::<i64>().ok()).filter(|p| *p >= 1 && *p < 1_000_000_000).unwrap_or(1);
    let (accounts, total) = ctx.app.db.read(|c| {
        let domain = scope.domain_filter();
        Ok((db::accounts::page(c, domain, PER_PAGE, (page - 1) * PER_PAGE)?, db::accounts::count(c, domain)?))
    })?;
    let details = service::load_details_many(ctx.app, accounts)?;
    let data: Vec<_> = details.iter().map(|d| render::account(&ctx.app.config, d, Show::PLAIN)).collect();
    Ok(json(&render::page(&ctx.app.config.url("/api/accounts"), data, page, PER_PAGE, total)))
}

fn create(ctx: &Ctx) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::create_by_admin(ctx.app, &ctx.scope(true), &ctx.json_input(), &ctx.client())?;
    render(ctx, account, Show::ADMIN)
}

fn show(ctx: &Ctx, n: &str) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::find(ctx.app, &ctx.scope(true), account_id(n)?)?;
    // Keys visible, passwords not (api.md §3.1 variants).
    render(ctx, account, Show { passwords: false, ..Show::ADMIN })
}

fn update(ctx: &Ctx, n: &str) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::update_by_admin(
        ctx.app,
        &ctx.scope(true),
        account_id(n)?,
        &ctx.json_input(),
        service::PasswordOnUpdate::Required,
    )?;
    render(ctx, account, Show::ADMIN)
}

fn destroy(ctx: &Ctx, n: &str) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::find(ctx.app, &ctx.scope(true), account_id(n)?)?;
    service::delete(ctx.app, &account)?;
    Ok(empty())
}

fn set_activated(ctx: &Ctx, n: &str, activated: bool) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::find(ctx.app, &ctx.scope(true), account_id(n)?)?;
    let account = service::set_activated(ctx.app, &account, activated)?;
    render(ctx, account, Show::ME)
}

fn provision(ctx: &Ctx, n: &str) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::find(ctx.app, &ctx.scope(true), account_id(n)?)?;
    let account = service::renew_provisioning_token(ctx.app, &account)?;
    render(ctx, account, Show { provisioning_token: true, ..Show::ME })
}

fn search(ctx: &Ctx, sip: &str) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::find_by_sip(ctx.app, &ctx.scope(true), &decoded(sip))?;
    render(ctx, account, Show::ME)
}

fn search_by_email(ctx: &Ctx, email: &str) -> HttpResult {
    auth::admin(ctx)?;
    let account = service::find_by_email(ctx.app, &ctx.scope(true), &decoded(email))?;
    render(ctx, account, Show::ME)
}
