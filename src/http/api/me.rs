//! `/api/accounts/me/...`: email, phone and password changes, devices,
//! contacts (api.md §4.3).

use super::render::{self, Show};
use crate::http::auth;
use crate::http::context::{empty, json};
use crate::http::router::{route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::accounts::Details;
use crate::services::{accounts as accounts_service, devices, dictionary, profile};
use serde::Serialize;
use serde_json::{json, Map, Value};

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("POST", ["api", "accounts", "me", "email", "request"]) => {
            route("/api/accounts/me/email/request", move || email_request(ctx))
        }
        ("POST", ["api", "accounts", "me", "password"]) => route("/api/accounts/me/password", move || password(ctx)),
        ("POST", ["api", "accounts", "me", "phone", "request"]) => {
            route("/api/accounts/me/phone/request", move || phone_request(ctx))
        }
        ("POST", ["api", "accounts", "me", "phone"]) => route("/api/accounts/me/phone", move || phone(ctx)),
        ("GET", ["api", "accounts", "me", "devices"]) => route("/api/accounts/me/devices", move || device_list(ctx)),
        ("DELETE", ["api", "accounts", "me", "devices", uuid]) => {
            route("/api/accounts/me/devices/{uuid}", move || device_remove(ctx, uuid))
        }
        ("GET", ["api", "accounts", "me", "contacts"]) => route("/api/accounts/me/contacts", move || contacts(ctx)),
        ("GET", ["api", "accounts", "me", "contacts", sip]) => {
            route("/api/accounts/me/contacts/{sip}", move || contact(ctx, sip))
        }
        _ => None,
    }
}

fn email_request(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    profile::request_email_change(ctx.app, &account, &ctx.json_input(), &ctx.client_ip())?;
    Ok(empty())
}

fn password(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let first = profile::change_password(ctx.app, &account, &ctx.json_input())?;
    // FlexiAPI answers a first password with nothing and a change with `[]`.
    Ok(if first { empty() } else { json(&serde_json::json!([])) })
}

fn phone_request(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    profile::request_phone_change(ctx.app, &account, &ctx.json_input(), &ctx.client_ip())?;
    Ok(empty())
}

fn phone(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let account = profile::confirm_phone_change(ctx.app, &account, &ctx.json_input())?;
    let details = accounts_service::load_details(ctx.app, account)?;
    Ok(json(&render::account(&ctx.app.config, &details, Show::ME)))
}

fn device_list(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let list = devices::list(ctx.app, &account)?;
    if list.is_empty() {
        return Ok(json(&json!([])));
    }
    let mut map = Map::new();
    for d in list {
        map.insert(d.uuid.clone(), json!({"uuid": d.uuid, "update_time": d.update_time, "user_agent": d.user_agent}));
    }
    Ok(json(&Value::Object(map)))
}

fn device_remove(ctx: &Ctx, uuid: &str) -> HttpResult {
    let account = auth::user(ctx)?;
    devices::remove(ctx.app, &account, uuid)?;
    Ok(empty())
}

/// A contact as its owner sees it: FlexiAPI selects only these columns, so
/// a user never learns other accounts' email or phone.
/// Fields in alphabetical order, as the sorted `Value` map had them.
#[derive(Serialize)]
struct ContactJson<'a> {
    actions: Vec<render::ActionJson<'a>>,
    activated: bool,
    display_name: Option<&'a str>,
    domain: &'a str,
    dtmf_protocol: Option<&'a str>,
    id: i64,
    realm: Option<&'a str>,
    types: Vec<render::TypeJson<'a>>,
    username: &'a str,
}

fn contact_json<'a>(ctx: &'a Ctx, d: &'a Details) -> ContactJson<'a> {
    let a = &d.account;
    ContactJson {
        actions: d.actions.iter().map(render::ActionJson::of).collect(),
        activated: a.activated,
        display_name: a.display_name.as_deref(),
        domain: &a.domain,
        dtmf_protocol: a.dtmf_protocol.as_deref(),
        id: a.id,
        realm: ctx.app.config.account_realm.as_deref(),
        types: d.types.iter().map(render::TypeJson::of).collect(),
        username: &a.username,
    }
}

fn contacts(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let list = dictionary::contacts(ctx.app, account.id)?;
    Ok(json(&list.iter().map(|d| contact_json(ctx, d)).collect::<Vec<_>>()))
}

fn contact(ctx: &Ctx, sip: &str) -> HttpResult {
    let account = auth::user(ctx)?;
    let d = dictionary::contact_by_sip(ctx.app, account.id, sip)?;
    Ok(json(&contact_json(ctx, &d)))
}
