//! Public account endpoints (api.md §4.2): sign-up, information,
//! activation and recovery. The "unsecure" ones of seed 003 answer 404
//! unless `APP_DANGEROUS_ENDPOINTS` allows them.

use super::render::{self, Show};
use crate::db::accounts::Account;
use crate::error::{AppError, AppResult};
use crate::http::context::{empty, json};
use crate::http::router::{route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::accounts as accounts_service;
use crate::services::registration::{self as service, CodeKind, Origin};
use serde_json::json;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("POST", ["api", "accounts", "public"]) => route("/api/accounts/public", move || public(ctx)),
        ("POST", ["api", "accounts", "with-account-creation-token"]) => {
            route("/api/accounts/with-account-creation-token", move || with_token(ctx))
        }
        ("POST", ["api", "accounts", "recover-by-phone"]) => {
            route("/api/accounts/recover-by-phone", move || recover_by_phone(ctx))
        }
        ("GET", ["api", "accounts", sip, "info"]) => route("/api/accounts/{sip}/info", move || info(ctx, sip)),
        ("GET", ["api", "accounts", phone, "info-by-phone"]) => {
            route("/api/accounts/{phone}/info-by-phone", move || info_by_phone(ctx, phone))
        }
        ("GET", ["api", "accounts", sip, "recover", key]) => {
            route("/api/accounts/{sip}/recover/{recover_key}", move || recover(ctx, sip, key))
        }
        ("POST", ["api", "accounts", sip, "activate", "email"]) => {
            route("/api/accounts/{sip}/activate/email", move || activate(ctx, sip, CodeKind::Email))
        }
        ("POST", ["api", "accounts", sip, "activate", "phone"]) => {
            route("/api/accounts/{sip}/activate/phone", move || activate(ctx, sip, CodeKind::Phone))
        }
        _ => None,
    }
}

/// The four "unsecure" endpoints exist only with `APP_DANGEROUS_ENDPOINTS`.
fn dangerous(ctx: &Ctx) -> AppResult<()> {
    if !ctx.app.config.dangerous_endpoints {
        return Err(AppError::NotFound(String::new()));
    }
    Ok(())
}

fn render(ctx: &Ctx, account: Account, show: Show) -> HttpResult {
    let details = accounts_service::load_details(ctx.app, account)?;
    Ok(json(&render::account(&ctx.app.config, &details, show)))
}

fn public(ctx: &Ctx) -> HttpResult {
    dangerous(ctx)?;
    if !ctx.app.config.public_registration {
        return Err(AppError::NotFound(String::new()));
    }
    let account = service::register(ctx.app, ctx.space_domain(), &ctx.json_input(), Origin::Api, &ctx.client())?;
    render(ctx, account, Show::ME)
}

fn with_token(ctx: &Ctx) -> HttpResult {
    let account = service::register_with_token(ctx.app, ctx.space_domain(), &ctx.json_input())?;
    render(ctx, account, Show::ME)
}

fn info(ctx: &Ctx, sip: &str) -> HttpResult {
    let account = service::info(ctx.app, &ctx.public_scope(), sip)?;
    Ok(json(&json!({"activated": account.activated, "realm": ctx.app.config.account_realm})))
}

fn info_by_phone(ctx: &Ctx, phone: &str) -> HttpResult {
    dangerous(ctx)?;
    let (account, by_phone) = service::info_by_phone(ctx.app, &ctx.public_scope(), phone)?;
    Ok(json(&json!({"activated": account.activated, "realm": ctx.app.config.account_realm, "phone": by_phone})))
}

fn recover_by_phone(ctx: &Ctx) -> HttpResult {
    dangerous(ctx)?;
    service::recover_by_phone(ctx.app, &ctx.public_scope(), &ctx.json_input(), &ctx.client_ip())?;
    Ok(empty())
}

fn recover(ctx: &Ctx, sip: &str, key: &str) -> HttpResult {
    dangerous(ctx)?;
    let account = service::recover_by_key(ctx.app, &ctx.public_scope(), sip, key)?;
    render(ctx, account, Show { password_hashes: true, ..Show::PLAIN })
}

fn activate(ctx: &Ctx, sip: &str, kind: CodeKind) -> HttpResult {
    let account = service::activate(ctx.app, &ctx.public_scope(), sip, &ctx.json_input(), kind)?;
    render(ctx, account, Show::ME)
}

// --- admin recovery (same flow family, admin caller) ---

pub fn admin_routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("POST", ["api", "accounts", n, "recover-by-email"]) if crate::http::router::id(n).is_some() => {
            route("/api/accounts/{id}/recover-by-email", move || recover_by_email(ctx, n))
        }
        _ => None,
    }
}

fn recover_by_email(ctx: &Ctx, n: &str) -> HttpResult {
    crate::http::auth::admin(ctx)?;
    let id = crate::http::router::id(n).ok_or_else(AppError::not_found)?;
    let account = accounts_service::find(ctx.app, &ctx.scope(true), id)?;
    let account = service::send_recovery_email(ctx.app, &account, &ctx.client_ip())?;
    render(ctx, account, Show::ADMIN)
}
