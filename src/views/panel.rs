//! The account panel pages.

use super::form::{self, Field, State};
use super::{breadcrumb, Page};
use crate::notify::redis::Device;
use crate::services::accounts::Details;
use maud::{html, Markup};

pub struct Dashboard<'a> {
    pub details: &'a Details,
    pub api_key: Option<&'a str>,
    pub devices: bool,
    pub proxy: &'a str,
    pub transport: &'a str,
    pub auth_token: Option<&'a str>,
}

pub fn dashboard(p: &Page, d: &Dashboard) -> Markup {
    let a = &d.details.account;
    let has_password = !d.details.passwords.is_empty();
    let sha256 = d.details.passwords.iter().any(|p| p.algorithm == "SHA-256");
    html! {
        h1 { (p.t("Manage your account")) }
        ul.menu {
            li { a href="/email" { (p.t("Change my current account email"))
                small { @match &a.email { Some(e) => (e), None => (p.t("No email yet")) } } } }
            @if d.devices {
                li { a href="/devices" { (p.t("Manage my devices")) } }
            }
            li { a href="/password" {
                (if has_password { p.t("Change my password") } else { p.t("Set my password") })
                small { (if sha256 { p.t("SHA-256 password configured") } else { p.t("MD5 password only") }) } } }
            li { a href="/delete" { (p.t("Delete my account")) } }
        }
        @if a.admin {
            h2 { (p.t("Admin area")) }
            ul.menu {
                li { a href="/admin/accounts" { (p.t("Accounts")) } }
                li { a href="/admin/accounts/types" { (p.t("Account types")) } }
                li { a href="/admin/statistics/day" { (p.t("Statistics")) } }
            }
        }
        h2 { (p.t("Account information")) }
        dl.facts {
            dt { (p.t("SIP address")) } dd { "sip:" (a.sip()) }
            dt { (p.t("Username")) } dd { (a.username) }
            dt { (p.t("Domain")) } dd { (a.domain) }
            @if !d.proxy.is_empty() {
                dt { "Proxy/registrar address" } dd { "sip:" (d.proxy) }
            }
            @if !d.transport.is_empty() {
                dt { "Transport" } dd { (d.transport) }
            }
        }
        h2 { (p.t("API Key")) }
        p { "An API key lets you use the " a href="/api" { "API" } " with the API Key authentication mechanism." }
        form.stack method="POST" action="/api_key" {
            (form::csrf(p))
            div.field {
                label for="api-key" { (p.t("API Key")) }
                input.copy id="api-key" type="text" readonly value=[d.api_key] placeholder="no key yet, press Generate";
            }
            div.actions { button type="submit" { (p.t("Generate")) } }
        }
        h2 { "Log in another device" }
        @if let Some(token) = d.auth_token {
            p { "Scan this code with the other device within 5 minutes." }
            div.qr { img src=(format!("/auth_tokens/qrcode/{token}")) alt="QR code to log in another device" width="300" height="300"; }
        }
        form method="POST" action="/auth_tokens" {
            (form::csrf(p))
            button.secondary type="submit" { "Show a login QR code" }
        }
    }
}

pub fn password(p: &Page, title: &str, ask_current: bool, sha256: bool, state: &State) -> Markup {
    html! {
        (breadcrumb(p, &[(title, None)]))
        h1 { (title) }
        (form::errors_box(p, state))
        form.stack method="POST" action="/password" {
            (form::csrf(p))
            @if ask_current {
                (Field::new("old_password", p.t("Current password")).kind("password").required().autocomplete("current-password").render(state))
            }
            (Field::new("password", p.t("Password")).kind("password").required().autocomplete("new-password").render(state))
            (Field::new("password_confirmation", p.t("Password confirmation")).kind("password").required().autocomplete("new-password").render(state))
            (form::checkbox(state, "password_sha256", html! { (p.t("Use a SHA-256 password (some old SIP clients do not support it)")) }, sha256))
            div.actions { button type="submit" { (p.t("Save")) } }
        }
    }
}

pub fn email(p: &Page, current: Option<&str>, state: &State) -> Markup {
    let title = p.t("Change my current account email");
    html! {
        (breadcrumb(p, &[(title, None)]))
        h1 { (title) }
        p { @match current { Some(e) => { "Currently: " strong { (e) } }, None => (p.t("No email yet")) } }
        (form::errors_box(p, state))
        form.stack method="POST" action="/email/request" {
            (form::csrf(p))
            (Field::new("email", p.t("Email address")).kind("email").required().autocomplete("email").render(state))
            (Field::new("email_confirmation", p.t("Email confirmation")).kind("email").required().render(state))
            (Field::new("current_password", p.t("Current password")).kind("password").autocomplete("current-password")
                .hint("Required when your account has a password.").render(state))
            div.actions { button type="submit" { (p.t("Save")) } }
        }
    }
}

pub fn delete(p: &Page, sip: &str, state: &State) -> Markup {
    let title = p.t("Delete my account");
    html! {
        (breadcrumb(p, &[(title, None)]))
        h1 { (title) }
        div.alert.error { "This cannot be undone: the account and everything attached to it will be deleted." }
        p { "Type your full SIP address " strong { (sip) } " to confirm." }
        (form::errors_box(p, state))
        form.stack method="POST" action="/delete" {
            (form::csrf(p))
            (form::method("DELETE"))
            (Field::new("identifier", "SIP address").placeholder("username@domain").required().render(state))
            div.actions { button.danger type="submit" { (p.t("Delete")) } }
        }
    }
}

pub fn devices(p: &Page, list: &[Device]) -> Markup {
    let title = p.t("Manage my devices");
    html! {
        (breadcrumb(p, &[(title, None)]))
        h1 { (title) }
        @if list.is_empty() {
            p { "No device is registered." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "User Agent" } th {} } }
                tbody { @for d in list {
                    tr { td { (d.user_agent) } td { a.button.danger href=(format!("/devices/delete/{}", percent_encoding::utf8_percent_encode(&d.uuid, percent_encoding::NON_ALPHANUMERIC))) { (p.t("Delete")) } } }
                } }
            } }
        }
    }
}

pub fn device_delete(p: &Page, d: &Device) -> Markup {
    html! {
        (breadcrumb(p, &[(p.t("Manage my devices"), Some("/devices".into())), (p.t("Delete"), None)]))
        h1 { "Remove this device?" }
        p { (d.user_agent) }
        (form::delete(p, "/devices", &[("uuid", d.uuid.clone())], Some("/devices")))
    }
}
