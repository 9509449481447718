//! Recovery by email (a login link) and by phone (an SMS PIN). Both forms
//! answer the same whether or not the account exists, and are rate-limited.

use super::{form_errors, page, redirect, Web, WebResult};
use crate::error::{invalid, AppError, FieldErrors};
use crate::http::router::Route;
use crate::http::Ctx;
use crate::services::{notifications, registration, web_login};
use crate::views::{self, form::State};
use serde_json::Value;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    let phone = ctx.app.config.phone_authentication;
    match (method, segments) {
        ("GET", ["login", "email"]) => page(ctx, "/login/email", method, |w| email_form(w, &w.old().state(w.lang))),
        ("POST", ["authenticate", "email"]) => page(ctx, "/authenticate/email", method, email_submit),
        ("GET", ["login", "phone"]) if phone => {
            page(ctx, "/login/phone", method, |w| phone_form(w, &w.old().state(w.lang)))
        }
        ("POST", ["authenticate", "phone"]) if phone => page(ctx, "/authenticate/phone", method, phone_submit),
        // Gated like the other phone pages (interface.md: PHONE_AUTHENTICATION).
        ("POST", ["authenticate", "phone", "confirm"]) if phone => {
            page(ctx, "/authenticate/phone/confirm", method, phone_confirm)
        }
        _ => None,
    }
}

fn email_form(w: &Web, state: &State) -> WebResult {
    let unique = w.config().account_email_unique;
    let domain = w.ctx.space_domain().to_string();
    let logged = w.account().is_some();
    Ok(w.render_with_captcha(w.t("Recover your account"), 200, |p| {
        views::auth::recover_email(p, unique, &domain, logged, state)
    })?)
}

fn email_submit(w: &Web) -> WebResult {
    let input = w.form();
    let client_ip = w.ctx.client_ip();
    // The captcha first: a failed check costs nothing, not even a hit
    // (the fields' own messages come along; checking them writes nothing).
    if let Err(mut errors) = w.check_captcha() {
        if let Err(AppError::Validation(fields)) =
            web_login::recovery_account_by_email(w.ctx.app, &w.ctx.public_scope(), input)
        {
            errors = merged(fields, errors);
        }
        return w.back("/login/email", input, &errors);
    }
    web_login::recovery_throttle(w.ctx.app, &client_ip)?;
    match form_errors(web_login::recovery_account_by_email(w.ctx.app, &w.ctx.public_scope(), input))? {
        Err(errors) => w.back("/login/email", input, &errors),
        Ok(account) => {
            if let Some(account) = account {
                match registration::send_recovery_email(w.ctx.app, &account, &client_ip) {
                    Ok(_) | Err(AppError::Validation(_)) => {}
                    Err(e @ AppError::TooManyRequests(_)) => return Err(e.into()),
                    Err(e) => crate::log_line!("recovery: mail not sent: {e}"),
                }
            }
            Ok(w.render(w.t("Check your mailbox"), 200, views::auth::check_mailbox)?)
        }
    }
}

fn phone_form(w: &Web, state: &State) -> WebResult {
    let logged = w.account().is_some();
    Ok(w.render_with_captcha(w.t("Recover your account"), 200, |p| views::auth::recover_phone(p, logged, state))?)
}

fn phone_submit(w: &Web) -> WebResult {
    let input = w.form();
    let client_ip = w.ctx.client_ip();
    let phone = input.text("phone").unwrap_or_default();
    let mut errors = FieldErrors::default();
    if !crate::domain::rules::is_valid_phone(&phone) {
        errors.add("phone", "The phone must be a phone number starting with + followed by digits.");
    }
    if let Err(captcha) = w.check_captcha() {
        errors = merged(errors, captcha);
    }
    if !errors.is_empty() {
        return w.back("/login/phone", input, &errors);
    }
    web_login::recovery_throttle(w.ctx.app, &client_ip)?;
    match registration::info_by_phone(w.ctx.app, &w.ctx.public_scope(), &phone) {
        Ok((account, _)) => {
            match registration::send_recovery_sms(w.ctx.app, &account, &client_ip) {
                Ok(()) | Err(AppError::Validation(_)) => {}
                Err(e @ AppError::TooManyRequests(_)) => return Err(e.into()),
                Err(e) => crate::log_line!("recovery: SMS not sent: {e}"),
            }
            w.set("pending_account", Value::from(account.id))?;
        }
        // Unknown numbers get the same page (and no session binding).
        Err(AppError::NotFound(_)) => {
            w.take("pending_account");
        }
        Err(e) => return Err(e.into()),
    }
    pin_page(w, &State::default(), 200, false)
}

/// `first`'s messages, then `then`'s.
fn merged(mut first: FieldErrors, then: FieldErrors) -> FieldErrors {
    for (field, messages) in then.0 {
        for m in messages {
            first.add(&field, m);
        }
    }
    first
}

/// The PIN form; the pending account is bound to the session, never taken
/// from the form.
pub fn pin_page(w: &Web, state: &State, status: u16, registration: bool) -> WebResult {
    Ok(w.render("PIN", status, |p| views::auth::pin(p, registration, state))?)
}

fn phone_confirm(w: &Web) -> WebResult {
    let input = w.form();
    let code = input.text("code").unwrap_or_default();
    let wrong = || match invalid("code", "Wrong code.") {
        AppError::Validation(e) => e,
        _ => Default::default(),
    };
    let Some(id) = w.get("pending_account").and_then(|v| v.as_i64()) else {
        return pin_page(w, &State::new(w.lang, input, &wrong()), 422, false);
    };
    notifications::throttle_code_attempts(w.ctx.app, "web-pin", &id.to_string())?;
    let account = match crate::services::accounts::find(w.ctx.app, &w.ctx.public_scope(), id) {
        Ok(a) => a,
        Err(_) => return pin_page(w, &State::new(w.lang, input, &wrong()), 422, false),
    };
    if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return pin_page(w, &State::new(w.lang, input, &wrong()), 422, false);
    }
    match form_errors(registration::activate_account_with_key(w.ctx.app, &account, &code).map_err(|e| match e {
        AppError::NotFound(_) | AppError::Forbidden(_) => invalid("code", "Wrong or expired code."),
        other => other,
    }))? {
        Ok(account) => {
            let mut data = serde_json::Map::new();
            data.insert("recovered".into(), Value::Bool(true));
            w.login(&account, data)?;
            // A sign-up without password goes on to choose one.
            let has_password = !w.ctx.app.db.read(|c| crate::db::accounts::passwords(c, account.id))?.is_empty();
            redirect(if has_password { "/panel" } else { "/password" })
        }
        Err(errors) => pin_page(w, &State::new(w.lang, input, &errors), 422, false),
    }
}
