//! `/provisioning…`: the lpconfig XML Linphone clients download, its QR
//! code, and the documentation page (seed 004). Thin handlers: the rules
//! live in `services::provisioning`.

use super::auth;
use super::context::url_decode_pairs;
use super::router::{route, Route};
use super::{Ctx, HttpResult};
use crate::error::AppError;
use crate::services::provisioning::{self as service, Request};
use rouille::Response;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    // Literal segments first: `documentation`, `me`, `auth_token/…` and
    // `qrcode/…` are never provisioning tokens.
    match (method, segments) {
        ("GET", ["provisioning"]) => route("/provisioning", move || public(ctx)),
        ("GET", ["provisioning", "documentation"]) => route("/provisioning/documentation", move || documentation(ctx)),
        ("GET", ["provisioning", "me"]) => route("/provisioning/me", move || me(ctx)),
        ("GET", ["provisioning", "auth_token", token]) => {
            route("/provisioning/auth_token/{auth_token}", move || by_auth_token(ctx, token))
        }
        ("GET", ["provisioning", "qrcode", token]) => {
            route("/provisioning/qrcode/{provisioning_token}", move || qrcode(ctx, token))
        }
        ("GET", ["provisioning", token]) => route("/provisioning/{provisioning_token}", move || by_token(ctx, token)),
        _ => None,
    }
}

fn request(ctx: &Ctx) -> Request {
    Request {
        // Present counts, whatever the value (`?reset_password`, `=0`, `=1`).
        reset_password: ctx.has_query("reset_password"),
        query: url_decode_pairs(ctx.req.raw_query_string()),
    }
}

/// `application/xml` exactly: FlexiAPI's test compares the whole value.
fn xml(body: String, with_credentials: bool) -> Response {
    let response = Response::from_data("application/xml", body);
    if with_credentials {
        // Account documents carry HA1s: no cache may keep them.
        response.with_additional_header("Cache-Control", "no-store")
    } else {
        response
    }
}

/// With `ACCOUNT_PROVISIONING_USE_X_LINPHONE_PROVISIONING_HEADER`, the XML
/// routes serve Linphone only (the QR code and auth-token routes are exempt).
fn require_linphone(ctx: &Ctx) -> Result<(), AppError> {
    if ctx.app.config.account_provisioning_require_linphone_header && ctx.header("X-Linphone-Provisioning").is_none() {
        return Err(AppError::BadRequest("x-linphone-provisioning header is missing".into()));
    }
    Ok(())
}

fn public(ctx: &Ctx) -> HttpResult {
    require_linphone(ctx)?;
    Ok(xml(service::public_document(ctx.app, &request(ctx)), false))
}

fn by_token(ctx: &Ctx, token: &str) -> HttpResult {
    require_linphone(ctx)?;
    Ok(xml(service::by_provisioning_token(ctx.app, token, &request(ctx))?, true))
}

fn by_auth_token(ctx: &Ctx, token: &str) -> HttpResult {
    Ok(xml(service::by_auth_token(ctx.app, ctx.space_domain(), token, &request(ctx))?, true))
}

fn me(ctx: &Ctx) -> HttpResult {
    require_linphone(ctx)?;
    let account = match auth::user(ctx) {
        Ok(account) => account,
        // A browser without credentials is sent home, as FlexiAPI's
        // validation failure redirects; API clients get the 422 (or 401).
        Err(AppError::Validation(_)) if !ctx.wants_json() => {
            return Ok(Response::redirect_302("/"));
        }
        Err(e) => return Err(e),
    };
    Ok(xml(service::for_account(ctx.app, &account, &request(ctx))?, true))
}

fn qrcode(ctx: &Ctx, token: &str) -> HttpResult {
    let (png, url) = service::qrcode(ctx.app, token, ctx.has_query("reset_password"))?;
    Ok(Response::from_data("image/png", png)
        .with_additional_header("X-Qrcode-URL", url)
        // The image is as good as the token it encodes.
        .with_additional_header("Cache-Control", "no-store"))
}

fn documentation(ctx: &Ctx) -> HttpResult {
    let config = &ctx.app.config;
    let page = crate::views::docs::provisioning(
        &config.app_name,
        &config.url("/provisioning"),
        &config.url("/contacts/vcard"),
        &config.url("/api"),
    );
    Ok(Response::html(page.into_string()))
}
