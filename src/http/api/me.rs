//! `/api/accounts/me/...`: email, phone and password changes, devices,
//! contacts (api.md §4.3).

use super::render::{self, Show};
use crate::http::auth;
use crate::http::context::{empty, json};
use crate::http::router::{route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::accounts::Details;
use crate::services::{accounts as accounts_service, devices, dictionary, profile};
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
    profile::change_password(ctx.app, &account, &ctx.json_input())?;
    Ok(empty())
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
fn contact_json(ctx: &Ctx, d: &Details) -> Value {
    let a = &d.account;
    json!({
        "id": a.id, "username": a.username, "domain": a.domain, "activated": a.activated,
        "dtmf_protocol": a.dtmf_protocol, "display_name": a.display_name,
        "realm": ctx.app.config.account_realm,
        "types": d.types.iter().map(|t| json!({"id": t.id, "key": t.key})).collect::<Vec<_>>(),
        "actions": d.actions.iter().map(|x| json!({"id": x.id, "key": x.key, "code": x.code})).collect::<Vec<_>>(),
    })
}

fn contacts(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let list = dictionary::contacts(ctx.app, account.id)?;
    Ok(json(&Value::Array(list.iter().map(|d| contact_json(ctx, d)).collect())))
}

fn contact(ctx: &Ctx, sip: &str) -> HttpResult {
    let account = auth::user(ctx)?;
    let d = dictionary::contact_by_sip(ctx.app, account.id, sip)?;
    Ok(json(&contact_json(ctx, &d)))
}
