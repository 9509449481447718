//! The account panel: dashboard, API key, password, email change, account
//! deletion, devices, QR code for logging another device in.

use super::{form_errors, page, redirect, Web, WebResult};
use crate::domain::rules::Input;
use crate::error::AppError;
use crate::http::router::Route;
use crate::http::Ctx;
use crate::services::{accounts, devices, profile, tokens, web_login};
use crate::views::{self, form::State};

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    let devices_on = ctx.app.config.devices_management;
    match (method, segments) {
        ("GET", ["panel"]) => page(ctx, "/panel", method, dashboard),
        ("POST", ["api_key"]) => page(ctx, "/api_key", method, api_key),
        ("GET", ["password"]) => page(ctx, "/password", method, password_form),
        ("POST", ["password"]) => page(ctx, "/password", method, password_update),
        ("GET", ["email"]) => page(ctx, "/email", method, email_form),
        ("POST", ["email", "request"]) => page(ctx, "/email/request", method, email_request),
        ("GET", ["email", hash]) => page(ctx, "/email/{hash}", method, move |w| email_confirm(w, hash)),
        ("GET", ["delete"]) => page(ctx, "/delete", method, delete_form),
        ("DELETE", ["delete"]) => page(ctx, "/delete", method, delete),
        ("GET", ["devices"]) if devices_on => page(ctx, "/devices", method, devices_list),
        ("GET", ["devices", "delete", uuid]) if devices_on => {
            page(ctx, "/devices/delete/{uuid}", method, move |w| device_confirm(w, uuid))
        }
        ("DELETE", ["devices"]) if devices_on => page(ctx, "/devices", method, device_delete),
        ("POST", ["auth_tokens"]) => page(ctx, "/auth_tokens", method, auth_token_create),
        ("GET", ["auth_tokens", "auth", "external", token]) => {
            page(ctx, "/auth_tokens/auth/external/{token}", method, move |w| auth_token_attach(w, token))
        }
        _ => None,
    }
}

fn dashboard(w: &Web) -> WebResult {
    let account = w.user()?;
    let details = accounts::load_details(w.ctx.app, account.clone())?;
    let key = w.ctx.app.db.read(|c| crate::db::auth::api_key_of(c, account.id))?.map(|k| k.key);
    // The QR code this device shows for logging another one in.
    let qr = w.get("panel_auth_token").and_then(|v| v.as_str().map(str::to_string));
    let info = views::panel::Dashboard {
        details: &details,
        api_key: key.as_deref(),
        devices: w.config().devices_management,
        proxy: &w.config().account_proxy_registrar_address,
        transport: &w.config().account_transport_protocol_text,
        auth_token: qr.as_deref(),
    };
    Ok(w.render(w.t("Manage your account"), 200, |p| views::panel::dashboard(p, &info))?)
}

fn api_key(w: &Web) -> WebResult {
    let account = w.user()?;
    accounts::generate_api_key(w.ctx.app, account.id)?;
    w.flash("success", "A new API key was generated.")?;
    redirect("/panel")
}

/// The session came from a recovery link or code: the password may be set
/// without the forgotten current one (once).
fn recovered(w: &Web) -> bool {
    w.get("recovered").and_then(|v| v.as_bool()).unwrap_or(false)
}

fn password_view(w: &Web, state: &State) -> WebResult {
    let account = w.user()?;
    let details = accounts::load_details(w.ctx.app, account)?;
    let has_password = !details.passwords.is_empty();
    let sha256 = details.passwords.iter().any(|p| p.algorithm == "SHA-256");
    let ask_current = has_password && !recovered(w);
    let title = if has_password { w.t("Change my account password") } else { w.t("Set my account password") };
    Ok(w.render(title, 200, |p| views::panel::password(p, title, ask_current, sha256, state))?)
}

fn password_form(w: &Web) -> WebResult {
    password_view(w, &w.old().state(w.lang))
}

fn password_update(w: &Web) -> WebResult {
    let account = w.user()?;
    let input = w.form_with_algorithm();
    let proof = if recovered(w) { profile::Proof::Recovered } else { profile::Proof::OldPassword };
    let result = web_login::check_confirmation(&input, "password")
        .and_then(|()| profile::set_password(w.ctx.app, &account, &input, proof));
    match form_errors(result)? {
        Ok(first) => {
            w.take("recovered");
            let message = if first { "Password set, your account creation is finished." } else { "Password updated." };
            w.flash("success", message)?;
            redirect("/panel")
        }
        Err(errors) => w.back("/password", &input, &errors),
    }
}

fn email_form(w: &Web) -> WebResult {
    let account = w.user()?;
    let old = w.old();
    Ok(w.render(w.t("Change my current account email"), 200, |p| {
        views::panel::email(p, account.email.as_deref(), &old.state(w.lang))
    })?)
}

fn email_request(w: &Web) -> WebResult {
    let account = w.user()?;
    let input = w.form();
    let result = web_login::check_confirmation(input, "email")
        .and_then(|()| reauthenticate(w, &account, input))
        .and_then(|()| profile::request_email_change(w.ctx.app, &account, input, &w.ctx.client_ip()));
    match form_errors(result)? {
        Ok(()) => {
            w.flash("success", "A confirmation link was emailed to the new address.")?;
            redirect("/panel")
        }
        Err(errors) => w.back("/email", input, &errors),
    }
}

/// Accounts without a password (mid-registration) have nothing to re-type.
fn reauthenticate(w: &Web, account: &crate::db::accounts::Account, input: &Input) -> Result<(), AppError> {
    let has_password = !w.ctx.app.db.read(|c| crate::db::accounts::passwords(c, account.id))?.is_empty();
    if has_password {
        web_login::reauthenticate(w.ctx.app, account, input, "current_password")?;
    }
    Ok(())
}

fn email_confirm(w: &Web, hash: &str) -> WebResult {
    let account = w.user()?;
    profile::confirm_email_change(w.ctx.app, &account, hash)?;
    w.flash("success", "Your email address was updated.")?;
    redirect("/panel")
}

fn delete_form(w: &Web) -> WebResult {
    let account = w.user()?;
    let old = w.old();
    Ok(w.render(w.t("Delete my account"), 200, |p| views::panel::delete(p, &account.sip(), &old.state(w.lang)))?)
}

fn delete(w: &Web) -> WebResult {
    let account = w.user()?;
    let input = w.form();
    // Compared with the session's account, never with a field of the form.
    match form_errors(web_login::check_identifier(&account, input))? {
        Ok(()) => {
            accounts::delete(w.ctx.app, &account)?;
            w.logout()?;
            redirect("/login")
        }
        Err(errors) => w.back("/delete", input, &errors),
    }
}

fn devices_list(w: &Web) -> WebResult {
    let account = w.user()?;
    let list = devices::list(w.ctx.app, &account)?;
    Ok(w.render(w.t("Manage my devices"), 200, |p| views::panel::devices(p, &list))?)
}

fn device_confirm(w: &Web, uuid: &str) -> WebResult {
    let account = w.user()?;
    let list = devices::list(w.ctx.app, &account)?;
    let device = list.into_iter().find(|d| d.uuid == uuid).ok_or_else(AppError::not_found)?;
    Ok(w.render(w.t("Manage my devices"), 200, |p| views::panel::device_delete(p, &device))?)
}

fn device_delete(w: &Web) -> WebResult {
    let account = w.user()?;
    let uuid = w.form().text("uuid").ok_or_else(|| crate::error::invalid("uuid", "The uuid field is required."))?;
    devices::remove(w.ctx.app, &account, &uuid)?;
    w.flash("success", "The device was removed.")?;
    redirect("/devices")
}

/// This (logged-in) device shows a QR code another device scans to log in.
fn auth_token_create(w: &Web) -> WebResult {
    let account = w.user()?;
    let token = tokens::create_auth_token(w.ctx.app)?;
    tokens::attach_auth_token(w.ctx.app, &token.token, &account)?;
    w.set("panel_auth_token", serde_json::Value::String(token.token))?;
    redirect("/panel")
}

/// This (logged-in) device scanned the QR code of a waiting guest device.
fn auth_token_attach(w: &Web, token: &str) -> WebResult {
    let account = w.user()?;
    tokens::attach_auth_token(w.ctx.app, token, &account)?;
    w.flash("success", "The external device is now authenticated.")?;
    redirect("/panel")
}
