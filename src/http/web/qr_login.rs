//! Code-based (QR) login. A guest page shows a token's QR code and polls
//! (assets/js/qr_login.js) until a logged-in device scanned it; or a
//! logged-in device shows a code (panel) a new device opens.

use super::{page, redirect, Web, WebResult};
use crate::error::AppError;
use crate::http::router::Route;
use crate::http::Ctx;
use crate::services::{tokens, web_login};
use crate::views;
use rouille::Response;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["authenticate", "qrcode"]) => page(ctx, "/authenticate/qrcode", method, fresh),
        ("GET", ["authenticate", "qrcode", token]) => {
            page(ctx, "/authenticate/qrcode/{token}", method, move |w| waiting(w, token))
        }
        ("GET", ["auth_tokens", "qrcode", token]) => {
            page(ctx, "/auth_tokens/qrcode/{token}", method, move |w| png(w, token))
        }
        ("GET", ["auth_tokens", "auth", token]) => {
            page(ctx, "/auth_tokens/auth/{token}", method, move |w| login(w, token))
        }
        _ => None,
    }
}

fn fresh(w: &Web) -> WebResult {
    if w.account().is_some() {
        return Ok(w.render("QR code", 200, views::auth::already_authenticated)?);
    }
    let token = tokens::create_auth_token(w.ctx.app)?;
    redirect(&format!("/authenticate/qrcode/{}", token.token))
}

fn waiting(w: &Web, token: &str) -> WebResult {
    if w.account().is_some() {
        return Ok(w.render("QR code", 200, views::auth::already_authenticated)?);
    }
    match web_login::poll_auth_token(w.ctx.app, &w.ctx.public_scope(), token) {
        Ok(None) => Ok(w.render("QR code", 200, |p| views::auth::qr_waiting(p, token))?),
        Ok(Some(account)) => {
            w.login(&account, Default::default())?;
            w.flash("success", "Successfully authenticated.")?;
            redirect("/panel")
        }
        Err(AppError::NotFound(_)) => redirect("/authenticate/qrcode"),
        Err(e) => Err(e.into()),
    }
}

fn png(w: &Web, token: &str) -> WebResult {
    let data = web_login::auth_token_qr(w.ctx.app, token)?;
    Ok(Response::from_data("image/png", data))
}

fn login(w: &Web, token: &str) -> WebResult {
    let account = web_login::login_with_auth_token(w.ctx.app, &w.ctx.public_scope(), token)?;
    w.login(&account, Default::default())?;
    w.flash("success", "Successfully authenticated.")?;
    redirect("/panel")
}
