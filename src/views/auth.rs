//! Guest pages: home, login, recovery, registration, QR login.

use super::form::{self, Field, State};
use super::Page;
use maud::{html, Markup};

pub struct HomeInfo<'a> {
    pub activated: i64,
    pub intro: &'a str,
    pub web_panel: bool,
    pub public_registration: bool,
    pub phone: bool,
    pub email_unique: bool,
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn recovery_paragraph(p: &Page, phone: bool, email_unique: bool) -> Markup {
    let what = if email_unique { "account" } else { "password" };
    html! {
        p {
            @if p.lang == super::Lang::Fr {
                "Vous pouvez définir ou récupérer votre " (if email_unique { "compte" } else { "mot de passe" }) " avec votre "
                a href="/login/email" { "adresse e-mail" }
                @if phone { " ou votre " a href="/login/phone" { "numéro de téléphone" } }
                ", ou vous connecter depuis un appareil déjà authentifié en "
                a href="/authenticate/qrcode" { "flashant un QR code" } "."
            } @else {
                "You can set or recover your " (what) " using your "
                a href="/login/email" { "Email address" }
                @if phone { " or your " a href="/login/phone" { "Phone number" } }
                ", or login from an already authenticated device by "
                a href="/authenticate/qrcode" { "flashing a QR code" } "."
            }
        }
    }
}

pub fn home(p: &Page, info: &HomeInfo) -> Markup {
    html! {
        section.home {
            h1 { (p.app_name) }
            p { span.counter { (thousands(info.activated)) } " " (p.t("accounts")) }
            // web.md §3: the operator's intro is Markdown.
            (super::markdown::to_html(info.intro))
            @if info.web_panel {
                div.actions {
                    @if info.public_registration {
                        a.button href="/register" { (p.t("Create an account")) }
                    }
                    a.button.secondary href="/login" { (p.t("Manage your account")) }
                }
                (recovery_paragraph(p, info.phone, info.email_unique))
            }
        }
    }
}

pub struct LoginOptions {
    pub phone: bool,
    pub public_registration: bool,
    pub email_unique: bool,
}

pub fn login(p: &Page, o: &LoginOptions, state: &State) -> Markup {
    let label = if o.phone { p.t("Username or phone number") } else { p.t("Username") };
    html! {
        h1 { (p.t("Login")) }
        (form::errors_box(p, state))
        form.stack method="POST" action="/authenticate" {
            (form::csrf(p))
            (Field::new("username", label).required().autocomplete("username").render(state))
            (Field::new("password", p.t("Password")).kind("password").required().autocomplete("current-password").render(state))
            div.actions { button type="submit" { (p.t("Login")) } }
        }
        (recovery_paragraph(p, o.phone, o.email_unique))
        @if o.public_registration {
            p { (p.t("No account yet?")) " " a.button.secondary href="/register" { (p.t("Register")) } }
        }
    }
}

/// Shown instead of a guest form to a logged-in visitor.
pub fn already_authenticated(p: &Page) -> Markup {
    html! {
        div.alert.success {
            p { "You are already authenticated." }
            p { a href="/panel" { "Go to your panel" } " · " a href="/logout" { (p.t("Logout")) } }
        }
    }
}

pub fn register_choice(p: &Page) -> Markup {
    html! {
        h1 { (p.t("Create an account")) }
        p { "Already have an account? " a href="/login" { (p.t("Login")) } }
        ul.menu {
            li { a href="/register/email" { "Using your email address" } }
            li { a href="/register/phone" { "With your phone number" } }
        }
    }
}

pub struct RegisterOptions {
    pub domain: String,
    pub terms: String,
    pub privacy: String,
    /// `NEWSLETTER_REGISTRATION_ADDRESS` is set: offer the newsletter (email form).
    pub newsletter: bool,
}

fn consent(p: &Page, o: &RegisterOptions, state: &State) -> Markup {
    let _ = p;
    html! {
        @if !o.terms.is_empty() {
            (form::checkbox(state, "terms", html! { "I accept the " a href=(o.terms) { "terms of use" } }, false))
        }
        @if !o.privacy.is_empty() {
            (form::checkbox(state, "privacy", html! { "I accept the " a href=(o.privacy) { "privacy policy" } }, false))
        }
    }
}

pub fn register_email(p: &Page, o: &RegisterOptions, state: &State) -> Markup {
    let suffix = format!("@{}", o.domain);
    html! {
        h1 { (p.t("Create an account")) }
        (form::errors_box(p, state))
        form.stack method="POST" action="/register/email" {
            (form::csrf(p))
            (Field::new("username", p.t("Username")).required().suffix(&suffix).autocomplete("username")
                .hint(p.t("Not a phone number, no capital letters.")).render(state))
            (Field::new("email", p.t("Email address")).kind("email").required().autocomplete("email").render(state))
            (Field::new("email_confirmation", p.t("Email confirmation")).kind("email").required().render(state))
            @if o.newsletter {
                (form::checkbox(state, "newsletter", html! { (p.t("Subscribe to the newsletter")) }, false))
            }
            (consent(p, o, state))
            (form::captcha(p, state))
            div.actions { button type="submit" { (p.t("Register")) } }
        }
    }
}

pub fn register_phone(p: &Page, o: &RegisterOptions, state: &State) -> Markup {
    let suffix = format!("@{}", o.domain);
    html! {
        h1 { (p.t("Create an account")) }
        (form::errors_box(p, state))
        form.stack method="POST" action="/register/phone" {
            (form::csrf(p))
            (Field::new("phone", p.t("Phone number")).kind("tel").placeholder("+123456789").required().autocomplete("tel").render(state))
            (Field::new("username", p.t("Username")).suffix(&suffix).hint(p.t("Optional: your phone number is used otherwise. Not a phone number, no capital letters.")).render(state))
            (consent(p, o, state))
            (form::captcha(p, state))
            div.actions { button type="submit" { (p.t("Register")) } }
        }
    }
}

/// Shown after registration and recovery requests alike (the address is
/// never shown: the page must not reveal accounts).
pub fn check_mailbox(p: &Page) -> Markup {
    html! {
        h1 { (p.t("Check your mailbox")) }
        p { "If an account matches, an email with a unique link was sent. Follow it to finish: the link logs you in on this browser." }
        p { a href="/login" { (p.t("Login")) } }
    }
}

pub fn recover_email(p: &Page, email_unique: bool, domain: &str, logged: bool, state: &State) -> Markup {
    let suffix = format!("@{domain}");
    html! {
        h1 { (p.t("Recover your account")) }
        @if logged { (already_authenticated(p)) } @else {
            (form::errors_box(p, state))
            form.stack method="POST" action="/authenticate/email" {
                (form::csrf(p))
                (Field::new("email", p.t("Email address")).kind("email").required().autocomplete("email").render(state))
                @if !email_unique {
                    (Field::new("username", p.t("Username")).required().suffix(&suffix).render(state))
                }
                (form::captcha(p, state))
                div.actions { button type="submit" { (p.t("Send the authentication link")) } }
            }
        }
    }
}

pub fn recover_phone(p: &Page, logged: bool, state: &State) -> Markup {
    html! {
        h1 { (p.t("Recover your account")) }
        @if logged { (already_authenticated(p)) } @else {
            (form::errors_box(p, state))
            form.stack method="POST" action="/authenticate/phone" {
                (form::csrf(p))
                (Field::new("phone", p.t("Phone number")).kind("tel").placeholder("+123456789").required().render(state))
                (form::captcha(p, state))
                div.actions { button type="submit" { "Send the authentication code by SMS" } }
            }
        }
    }
}

pub fn pin(p: &Page, registration: bool, state: &State) -> Markup {
    html! {
        h1 { "Enter the code" }
        p { @if registration { "Enter the PIN received by SMS to finish your registration." }
            @else { "If the number matches an account, a PIN was sent by SMS. Enter it to finish the authentication." } }
        (form::errors_box(p, state))
        form.stack method="POST" action="/authenticate/phone/confirm" {
            (form::csrf(p))
            (Field::new("code", "PIN").placeholder("1234").required().autocomplete("one-time-code").render(state))
            div.actions { button type="submit" { (p.t("Login")) } }
        }
    }
}

pub fn token_check(p: &Page, token: &str, state: &State) -> Markup {
    html! {
        h1 { (p.t("Account creation")) }
        p { (p.t("Confirm you are a human to continue the account creation in your app.")) }
        (form::errors_box(p, state))
        form method="POST" action="/creation_token/validate" {
            (form::csrf(p))
            input type="hidden" name="account_creation_request_token" value=(token);
            (form::captcha(p, state))
            div.actions { button type="submit" { (p.t("I'm not a robot")) } }
        }
    }
}

pub fn token_validated(p: &Page) -> Markup {
    html! {
        h1 { (p.t("Thank you")) }
        p { (p.t("The request is validated: you can go back to your app to continue.")) }
    }
}

pub fn qr_waiting(p: &Page, token: &str) -> Markup {
    html! {
        h1 { "Log in with a QR code" }
        p { "Scan this code with a device where you are already logged in, then wait: this page continues by itself." }
        div.qr data-poll="3" { img src=(format!("/auth_tokens/qrcode/{token}")) alt="QR code" width="300" height="300"; }
        p.hint { "The code is valid for 5 minutes." }
        p { a href=(format!("/authenticate/qrcode/{token}")) { "Check now" } " · " a href="/login" { (p.t("Login")) } }
        script src="/js/qr_login.js" defer {}
    }
}
