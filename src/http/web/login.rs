//! Home, login, logout.

use super::{form_errors, page, redirect, Web, WebResult};
use crate::http::router::Route;
use crate::http::Ctx;
use crate::services::web_login;
use crate::views;

/// Served even when the panel is off.
pub fn public_routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", []) => page(ctx, "/", method, home),
        _ => None,
    }
}

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["login"]) => page(ctx, "/login", method, login_form),
        ("POST", ["authenticate"]) => page(ctx, "/authenticate", method, authenticate),
        ("GET", ["logout"]) => page(ctx, "/logout", method, logout),
        _ => None,
    }
}

fn home(w: &Web) -> WebResult {
    if w.config().web_panel && w.account().is_some() {
        return redirect("/panel");
    }
    let count = w.ctx.app.db.read(|c| crate::db::web::activated_count(c, w.ctx.space_domain()))?;
    let info = views::auth::HomeInfo {
        activated: count,
        intro: &w.config().instance_intro_registration,
        web_panel: w.config().web_panel,
        public_registration: super::public_registration(w.ctx),
        phone: w.config().phone_authentication,
        email_unique: w.config().account_email_unique,
    };
    Ok(w.render(&w.config().app_name, 200, |p| views::auth::home(p, &info))?)
}

fn login_form(w: &Web) -> WebResult {
    if w.account().is_some() {
        return redirect("/panel");
    }
    let old = w.old();
    Ok(w.render(w.t("Login"), 200, |p| views::auth::login(p, &login_options(w), &old.state(w.lang)))?)
}

fn login_options(w: &Web) -> views::auth::LoginOptions {
    views::auth::LoginOptions {
        phone: w.config().phone_authentication,
        public_registration: super::public_registration(w.ctx),
        email_unique: w.config().account_email_unique,
    }
}

fn authenticate(w: &Web) -> WebResult {
    let input = w.form();
    match form_errors(web_login::login(w.ctx.app, &w.ctx.public_scope(), input, &w.ctx.client_ip()))? {
        Ok(account) => {
            w.login(&account, Default::default())?;
            redirect("/panel")
        }
        Err(errors) => w.back("/login", input, &errors),
    }
}

fn logout(w: &Web) -> WebResult {
    w.logout()?;
    redirect("/login")
}
