//! The portal's HTML, written with maud (so every tag is closed and every
//! value escaped). `layout` wraps a page; `form` holds the field helpers;
//! one module per area holds its pages. Texts are English, translated to
//! French through the small catalogue in `i18n` when the browser asks.

pub mod admin;
pub mod auth;
pub mod docs;
pub mod form;
pub mod i18n;
pub mod markdown;
pub mod panel;
pub mod stats;

pub use i18n::Lang;
use maud::{html, Markup, DOCTYPE};

/// What every page needs to know about the request.
pub struct Page<'a> {
    pub lang: Lang,
    pub app_name: &'a str,
    /// The logged-in account: (SIP address, is admin).
    pub user: Option<(String, bool)>,
    /// The form token, empty when the page has no form.
    pub csrf: String,
    pub success: Option<String>,
    pub error: Option<String>,
    pub copyright: &'a str,
    pub public_registration: bool,
    pub wide: bool,
    /// The reCAPTCHA site key, on the pages whose form asks for the human
    /// check while the captcha is on (web.md 4.6); `None` everywhere else.
    pub captcha: Option<&'a str>,
}

impl<'a> Page<'a> {
    /// A page without session, form nor flash (error pages).
    pub fn bare(lang: Lang, config: &'a crate::config::Config, user: Option<(String, bool)>) -> Page<'a> {
        Page {
            lang,
            app_name: &config.app_name,
            user,
            csrf: String::new(),
            success: None,
            error: None,
            copyright: &config.instance_copyright,
            public_registration: false,
            wide: false,
            captcha: None,
        }
    }

    pub fn t(&self, text: &'static str) -> &'static str {
        self.lang.t(text)
    }
}

/// The whole document around `body`.
pub fn layout(p: &Page, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(p.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - " (p.app_name) }
                link rel="stylesheet" href="/css/style.css";
                link rel="icon" href="/img/logo.svg" type="image/svg+xml";
            }
            body {
                header.topbar {
                    a.brand href=(if p.user.is_some() { "/panel" } else { "/" }) {
                        img src="/img/logo.svg" alt="" width="28" height="28";
                        span { (p.app_name) }
                    }
                    nav {
                        @if let Some((sip, _)) = &p.user {
                            span.who { (sip) }
                            a href="/logout" { (p.t("Logout")) }
                        } @else {
                            @if p.public_registration {
                                a href="/register" { (p.t("Register")) }
                            }
                            a href="/login" { (p.t("Login")) }
                        }
                    }
                }
                main class=(if p.wide { "content wide" } else { "content" }) {
                    @if let Some(message) = &p.success {
                        div.alert.success role="status" { (message) }
                    }
                    @if let Some(message) = &p.error {
                        div.alert.error role="alert" { (p.lang.message(message)) }
                    }
                    (body)
                }
                footer {
                    @if !p.copyright.is_empty() {
                        span { (p.copyright) } " | "
                    }
                    a href="/documentation" { (p.t("Documentation")) }
                    " | "
                    a href="/api" { "API" }
                }
            }
        }
    }
}

/// Breadcrumb for the panel and admin pages: Home › ... › last.
pub fn breadcrumb(p: &Page, items: &[(&str, Option<String>)]) -> Markup {
    html! {
        nav.breadcrumb aria-label="breadcrumb" {
            a href="/panel" { (p.t("Home")) }
            @for (label, href) in items {
                " › "
                @match href {
                    Some(href) => a href=(href) { (label) },
                    None => span { (label) },
                }
            }
        }
    }
}

/// An error page: code, title, message, a way back.
pub fn error(p: &Page, status: u16, message: &str) -> Markup {
    let title = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        419 => "Page Expired",
        422 => "Invalid data",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Server Error",
    };
    let title = p.t(title);
    layout(
        p,
        title,
        html! {
            section.error-page {
                p.code { (status) }
                h1 { (title) }
                @if !message.is_empty() {
                    p { (message) }
                }
                a.button href="/" { (p.t("Go to the homepage")) }
            }
        },
    )
}
