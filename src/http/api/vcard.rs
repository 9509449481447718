//! `GET /contacts/vcard` and `/contacts/vcard/{sip}`: the caller's
//! contacts as vCard 4.0 (root paths, same authentication as the API).

use crate::http::auth;
use crate::http::router::{route, Route};
use crate::http::{Ctx, HttpResult};
use crate::services::{dictionary, vcard};
use rouille::Response;

pub fn routes<'a>(ctx: &'a Ctx<'a>, method: &str, segments: &'a [&'a str]) -> Option<Route<'a>> {
    match (method, segments) {
        ("GET", ["contacts", "vcard"]) => route("/contacts/vcard", move || all(ctx)),
        ("GET", ["contacts", "vcard", sip]) => route("/contacts/vcard/{sip}", move || one(ctx, sip)),
        _ => None,
    }
}

fn vcard_response(body: String) -> Response {
    Response::from_data("text/vcard; charset=utf-8", body.into_bytes())
}

fn all(ctx: &Ctx) -> HttpResult {
    let account = auth::user(ctx)?;
    let contacts = dictionary::contacts(ctx.app, account.id)?;
    Ok(vcard_response(vcard::cards(&contacts)))
}

fn one(ctx: &Ctx, sip: &str) -> HttpResult {
    let account = auth::user(ctx)?;
    let contact = dictionary::contact_by_sip(ctx.app, account.id, sip)?;
    Ok(vcard_response(vcard::card(&contact)))
}
