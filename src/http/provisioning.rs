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

fn public(ctx: &Ctx) -> HttpResult {
    Ok(xml(service::public_document(ctx.app, &request(ctx)), false))
}

fn by_token(ctx: &Ctx, token: &str) -> HttpResult {
    Ok(xml(service::by_provisioning_token(ctx.app, token, &request(ctx))?, true))
}

fn by_auth_token(ctx: &Ctx, token: &str) -> HttpResult {
    Ok(xml(service::by_auth_token(ctx.app, token, &request(ctx))?, true))
}

fn me(ctx: &Ctx) -> HttpResult {
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
    let base = config.url("/provisioning");
    let vcard = config.url("/contacts/vcard");
    let api = config.url("/api");
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (config.app_name) " – Provisioning" }
                style { "body{font-family:sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
                         code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:1rem;overflow:auto}\
                         .badge{font-size:.75rem;padding:.1rem .4rem;border-radius:.3rem;color:#fff}\
                         .public{background:#28a745}.user{background:#17a2b8}" }
            }
            body {
                h1 { "Provisioning" }
                p { "Provisioning is a core concept of the FlexiAPI – Linphone clients flow." }
                h2 { "About" }
                h3 { "Provisioning XML" }
                pre { code { "<config>\n  <section name=\"misc\">\n    <entry name=\"contacts-vcard-list\" overwrite=\"true\">"
                    (vcard) "</entry>\n  </section>\n  ...\n</config>" } }
                p { "A provisioning content example" }
                p { "The general idea is to allow the clients to access a unique URL returning a custom XML file containing the following elements:" }
                ul {
                    li { span.badge.public { "Public" } " Expose the linphonerc INI file configuration" }
                    li { span.badge.user { "User" } " Inject the authentication information to allow the application to authenticate on the server directly if a valid account is detected using the " code { "provisioning" } " token" }
                    li { "A similar information is also injected if an external account is linked to the main one, the application will then be able to authenticate on both accounts at the same time" }
                    li { span.badge.public { "Public" } " " span.badge.user { "User" } " Using " strong { "Custom Hooks" } " an admin is also able to have access to the authenticated User internal object and inject custom XML during the provisioning. See the hooks section of the documentation to learn more about that feature." }
                }
                h3 { "Features" }
                p { "When scanning a provisioning URL with a valid token the server is also:" }
                ul {
                    li { span.badge.user { "User" } " Activating the account" }
                    li { span.badge.user { "User" } " Reseting the password, generating the new authentication information and returning them (if the " code { "reset_password" } " parameter is present)" }
                }
                h2 { "Endpoints" }
                p { "When an account is having an available " code { "provisioning_token" } " it can be provisioned using the following URLs." }
                h3 { code { "GET " (base) } }
                p { span.badge.public { "Public" } }
                p { "Return the provisioning information available in the liblinphone configuration file (if correctly configured)." }
                h3 { code { "GET " (base) "/auth_token/{auth_token}" } }
                p { span.badge.public { "Public" } }
                p { "Return the provisioning information available linked to the account that was attached to the " code { "auth_token" } "." }
                h3 { code { "GET " (base) "/{provisioning_token}?reset_password" } }
                p { span.badge.public { "Public" } }
                p { "Return the provisioning information available linked to the account related to the " code { "provisioning_token" } ". Return " code { "404" } " if the " code { "provisioning_token" } " provided is not valid or expired otherwise." }
                p { "If the account is not activated the account will be activated. The account is then considered as \"provisioned\"." }
                p { "URL parameters:" }
                ul { li { code { "reset_password" } " optional, reset the password while doing the provisioning" } }
                h3 { code { "GET " (base) "/qrcode/{provisioning_token}?reset_password" } }
                p { span.badge.public { "Public" } }
                p { "Return a QRCode that points to the provisioning URL." }
                p { "URL parameters:" }
                ul { li { code { "reset_password" } " optional, reset the password while doing the provisioning" } }
                h3 { code { "GET " (base) "/me" } }
                p { span.badge.user { "User" } }
                p { "Authenticated endpoint, see " a href=(format!("{api}#about--auth")) { "API About & Auth" } }
                p { "Return the same base content as the previous URL and the account related information, similar to the " code { "provisioning_token" } " endpoint. However this endpoint will always return those information." }
            }
        }
    };
    Ok(Response::html(page.into_string()))
}
