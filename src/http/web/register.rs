//! Public registration: by email (then the mailed link), by phone (then the
//! SMS PIN), and the human check of an account creation request token.

use super::{form_errors, page, redirect, Web, WebResult};
use crate::domain::rules::Input;
use crate::error::{AppError, FieldErrors};
use crate::http::router::Route;
use crate::http::Ctx;
use crate::notify::mail::MailKind;
use crate::services::{notifications, registration, tokens, web_login};
use crate::views::{self, form::State};
use serde_json::Value;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    let open = super::public_registration(ctx);
    let phone = ctx.app.config.phone_authentication;
    match (method, segments) {
        ("GET", ["register"]) if open => page(ctx, "/register", method, choose),
        ("GET", ["register", "email"]) if open => {
            page(ctx, "/register/email", method, |w| email_form(w, &State::default(), 200))
        }
        ("POST", ["register", "email"]) if open => page(ctx, "/register/email", method, email_submit),
        ("GET", ["register", "phone"]) if open && phone => {
            page(ctx, "/register/phone", method, |w| phone_form(w, &State::default(), 200))
        }
        ("POST", ["register", "phone"]) if open && phone => page(ctx, "/register/phone", method, phone_submit),
        ("GET", ["authenticate", "email", "check", sip]) => {
            page(ctx, "/authenticate/email/check/{sip}", method, move |w| check(w, sip))
        }
        ("GET", ["authenticate", "email", code]) => {
            page(ctx, "/authenticate/email/{code}", method, move |w| email_link(w, code))
        }
        _ => None,
    }
}

/// The human check of an account creation request token: served even when
/// the panel is off (the apps rely on it, web.md 1.2).
pub fn public_routes<'a>(ctx: &'a Ctx<'a>, method: &'a str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["creation_token", "check", token]) => {
            page(ctx, "/creation_token/check/{token}", method, move |w| token_check(w, token))
        }
        ("POST", ["creation_token", "validate"]) => page(ctx, "/creation_token/validate", method, token_validate),
        _ => None,
    }
}

fn choose(w: &Web) -> WebResult {
    if !w.config().phone_authentication {
        return redirect("/register/email");
    }
    Ok(w.render(w.t("Register"), 200, views::auth::register_choice)?)
}

fn options(w: &Web) -> views::auth::RegisterOptions {
    let c = w.config();
    views::auth::RegisterOptions {
        domain: w.ctx.space_domain().to_string(),
        terms: c.terms_of_use_url.clone(),
        privacy: c.privacy_policy_url.clone(),
        newsletter: !c.newsletter_registration_address.trim().is_empty(),
    }
}

fn email_form(w: &Web, state: &State, status: u16) -> WebResult {
    if w.account().is_some() {
        return redirect("/panel");
    }
    let o = options(w);
    Ok(w.render_with_captcha(w.t("Create an account"), status, |p| views::auth::register_email(p, &o, state))?)
}

fn phone_form(w: &Web, state: &State, status: u16) -> WebResult {
    if w.account().is_some() {
        return redirect("/panel");
    }
    let o = options(w);
    Ok(w.render_with_captcha(w.t("Create an account"), status, |p| views::auth::register_phone(p, &o, state))?)
}

/// The portal's own checks (terms, confirmations, captcha), then the shared
/// service: any of them failing, nothing is written nor sent.
fn register(w: &Web, input: &Input, confirm_email: bool) -> crate::error::AppResult<crate::db::accounts::Account> {
    let mut errors = FieldErrors::default();
    if !w.config().terms_of_use_url.is_empty() {
        web_login::check_accepted(input, "terms", &mut errors);
    }
    if !w.config().privacy_policy_url.is_empty() {
        web_login::check_accepted(input, "privacy", &mut errors);
    }
    // A password is chosen after activation (seed 000); one sent anyway is
    // still checked against its confirmation.
    let mut confirmed = if confirm_email { vec!["email"] } else { vec![] };
    if input.filled("password") {
        confirmed.push("password");
    }
    for field in confirmed {
        if let Err(AppError::Validation(e)) = web_login::check_confirmation(input, field) {
            for (f, messages) in e.0 {
                for m in messages {
                    errors.add(&f, m);
                }
            }
        }
    }
    if let Err(e) = w.check_captcha() {
        for (f, messages) in e.0 {
            for m in messages {
                errors.add(&f, m);
            }
        }
    }
    // Report the service's messages along with the portal's.
    let result = if errors.is_empty() {
        registration::register(w.ctx.app, w.ctx.space_domain(), input, registration::Origin::Web, &w.ctx.client())
    } else {
        Err(AppError::Validation(errors))
    };
    result
}

fn with_algorithm(w: &Web) -> Input {
    let mut input = w.form_with_algorithm();
    input.set("domain", Value::Null);
    input
}

fn email_submit(w: &Web) -> WebResult {
    let mut input = with_algorithm(w);
    input.set("phone", Value::Null);
    match form_errors(register(w, &input, true))? {
        Ok(account) => {
            // web.md 4.1 step 3: the newsletter address learns of the subscriber.
            let list = w.config().newsletter_registration_address.trim().to_string();
            let ticked = matches!(input.text("newsletter").as_deref(), Some("1" | "true" | "on" | "yes"));
            if let (false, true, Some(email)) = (list.is_empty(), ticked, &account.email) {
                notifications::send_mail_logged(
                    w.ctx.app,
                    &list,
                    MailKind::NewsletterRegistration { email: email.clone() },
                );
            }
            redirect(&format!("/authenticate/email/check/{}", account.sip()))
        }
        // The form again, status 200 (web.md 4.1).
        Err(errors) => email_form(w, &State::new(w.lang, &input, &errors), 200),
    }
}

fn phone_submit(w: &Web) -> WebResult {
    let mut input = with_algorithm(w);
    input.set("email", Value::Null);
    match form_errors(register(w, &input, false))? {
        Ok(account) => {
            w.set("pending_account", Value::from(account.id))?;
            super::recovery::pin_page(w, &State::default(), 200, true)
        }
        Err(errors) => phone_form(w, &State::new(w.lang, &input, &errors), 200),
    }
}

/// "Check your mailbox": the address is masked, and the page reloads while
/// the account waits for its activation.
fn check(w: &Web, sip: &str) -> WebResult {
    if w.config().web_panel && w.account().is_some() {
        return redirect("/panel");
    }
    let _ = sip;
    // Reloads every 5 s: once the link was opened in this browser, the
    // reload lands on the panel (web.md 4.1).
    Ok(w.render(w.t("Check your mailbox"), 200, views::auth::check_mailbox)?.with_additional_header("Refresh", "5"))
}

/// The link of the registration and recovery mails: activates and logs in.
fn email_link(w: &Web, code: &str) -> WebResult {
    let account = match registration::activate_by_mailed_key(w.ctx.app, w.ctx.space_domain(), code) {
        Ok(account) => account,
        // An unknown or spent link: back to the form that sends a new one.
        Err(AppError::NotFound(_)) => {
            w.flash("error", w.t("This link is not valid anymore: ask for a new one."))?;
            return redirect("/login/email");
        }
        Err(e) => return Err(e.into()),
    };
    let mut data = serde_json::Map::new();
    data.insert("recovered".into(), Value::Bool(true));
    w.login(&account, data)?;
    let has_password = !w.ctx.app.db.read(|c| crate::db::accounts::passwords(c, account.id))?.is_empty();
    redirect(if has_password { "/panel" } else { "/password" })
}

fn token_check(w: &Web, token: &str) -> WebResult {
    let found = tokens::request_token_for_check(w.ctx.app, token)?;
    let old = w.old();
    Ok(w.render_with_captcha(w.t("Account creation"), 200, |p| {
        views::auth::token_check(p, &found.token, &old.state(w.lang))
    })?)
}

/// Unknown or used token → 404; then the captcha (a failure shows the page
/// again, the token still unvalidated); then the validation.
fn token_validate(w: &Web) -> WebResult {
    let token = w.form().text("account_creation_request_token").unwrap_or_default();
    let found = tokens::request_token_for_check(w.ctx.app, &token)?;
    if let Err(errors) = w.check_captcha() {
        return w.back(&format!("/creation_token/check/{}", found.token), w.form(), &errors);
    }
    tokens::validate_request_token(w.ctx.app, &token)?;
    Ok(w.render(w.t("Account creation"), 200, views::auth::token_validated)?)
}
