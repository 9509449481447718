//! Issue 7: hostile input and authorization, over HTTP against the real
//! binary.
//!
//! - `route_matrix_lists_every_route`: the matrix below names every
//!   (method, route label) of the router, read from `src/http` — a route
//!   added without a matrix row fails here.
//! - `authorization_matrix`: every route × {anonymous, user, other user,
//!   admin, admin of another Space}, expected status class per api.md /
//!   web.md; a refused request changes nothing in the database; the labels
//!   the server reports in `/metrics` prove each row reached its route.
//! - injection, header splitting, traversal, malformed input, secrets in
//!   logs: one test each.

mod common;

use common::{Resp, Server, DOMAIN};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

const OTHER_DOMAIN: &str = "other.example.org";
const OTHER_HOST: &str = "other.test";
const PASSWORD: &str = "secret123";

/// Who may call a route (api.md legend; web.md for the portal).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    /// API, no authentication.
    Public,
    /// API, any authenticated account.
    User,
    /// API, admins.
    Admin,
    /// `/metrics`: loopback without credentials, else an admin key.
    Metrics,
    /// Portal page anyone may open.
    WebPublic,
    /// Portal page of a logged-in account.
    WebUser,
    /// Portal admin page.
    WebAdmin,
}
use Access::*;

/// One matrix row: the route (as the router labels it), a concrete path
/// (placeholders filled from the fixture), who may call it, and a body for
/// the rightful caller (JSON for the API, form fields for the portal).
struct Row {
    method: &'static str,
    label: &'static str,
    path: &'static str,
    access: Access,
    body: Value,
}

fn row(method: &'static str, label: &'static str, path: &'static str, access: Access) -> Row {
    Row { method, label, path, access, body: Value::Null }
}

fn with(method: &'static str, label: &'static str, path: &'static str, access: Access, body: Value) -> Row {
    Row { method, label, path, access, body }
}

/// Every route of the router. `{…}` in paths are fixture values.
fn matrix() -> Vec<Row> {
    vec![
        // --- ops ---
        row("GET", "/health", "/health", Public),
        row("GET", "/metrics", "/metrics", Metrics),
        // --- API: misc, tokens ---
        row("GET", "/api/ping", "/api/ping", Public),
        row("POST", "/api/account_creation_request_tokens", "/api/account_creation_request_tokens", Public),
        row("POST", "/api/account_creation_tokens", "/api/account_creation_tokens", Admin),
        with(
            "POST",
            "/api/account_creation_tokens/send-by-push",
            "/api/account_creation_tokens/send-by-push",
            Public,
            json!({"pn_provider": "fcm", "pn_param": "p", "pn_prid": "x"}),
        ),
        with(
            "POST",
            "/api/account_creation_tokens/using-account-creation-request-token",
            "/api/account_creation_tokens/using-account-creation-request-token",
            Public,
            json!({"account_creation_request_token": "0123456789abc"}),
        ),
        row("POST", "/api/accounts/auth_token", "/api/accounts/auth_token", Public),
        row(
            "GET",
            "/api/accounts/auth_token/{auth_token}/attach",
            "/api/accounts/auth_token/{auth_token}/attach",
            User,
        ),
        row("GET", "/api/accounts/me/api_key/{auth_token}", "/api/accounts/me/api_key/{auth_token}", Public),
        // --- API: public account endpoints ---
        with("POST", "/api/accounts/public", "/api/accounts/public", Public, json!({"username": "pub{n}"})),
        with(
            "POST",
            "/api/accounts/with-account-creation-token",
            "/api/accounts/with-account-creation-token",
            Public,
            json!({"username": "tok{n}", "password": "x", "algorithm": "SHA-256", "account_creation_token": "nope"}),
        ),
        with(
            "POST",
            "/api/accounts/recover-by-phone",
            "/api/accounts/recover-by-phone",
            Public,
            json!({"phone": "+33612345678"}),
        ),
        row("GET", "/api/accounts/{sip}/info", "/api/accounts/{victim_sip}/info", Public),
        row("GET", "/api/accounts/{phone}/info-by-phone", "/api/accounts/+33612345678/info-by-phone", Public),
        row("GET", "/api/accounts/{sip}/recover/{recover_key}", "/api/accounts/{victim_sip}/recover/abc", Public),
        with(
            "POST",
            "/api/accounts/{sip}/activate/email",
            "/api/accounts/{victim_sip}/activate/email",
            Public,
            json!({"code": "0000"}),
        ),
        with(
            "POST",
            "/api/accounts/{sip}/activate/phone",
            "/api/accounts/{victim_sip}/activate/phone",
            Public,
            json!({"code": "0000"}),
        ),
        // --- API: me ---
        row("GET", "/api/accounts/me", "/api/accounts/me", User),
        row("DELETE", "/api/accounts/me", "/api/accounts/me", User),
        row("GET", "/api/accounts/me/api_key", "/api/accounts/me/api_key", User),
        row("GET", "/api/accounts/me/provision", "/api/accounts/me/provision", User),
        with(
            "POST",
            "/api/accounts/me/email/request",
            "/api/accounts/me/email/request",
            User,
            json!({"email": "new{n}@example.net"}),
        ),
        with(
            "POST",
            "/api/accounts/me/password",
            "/api/accounts/me/password",
            User,
            json!({"algorithm": "SHA-256", "old_password": PASSWORD, "password": "changed123"}),
        ),
        with(
            "POST",
            "/api/accounts/me/phone/request",
            "/api/accounts/me/phone/request",
            User,
            json!({"phone": "+3361234{n}"}),
        ),
        with("POST", "/api/accounts/me/phone", "/api/accounts/me/phone", User, json!({"code": "0000"})),
        row("GET", "/api/accounts/me/devices", "/api/accounts/me/devices", User),
        row("DELETE", "/api/accounts/me/devices/{uuid}", "/api/accounts/me/devices/nouuid", User),
        row("GET", "/api/accounts/me/contacts", "/api/accounts/me/contacts", User),
        row("GET", "/api/accounts/me/contacts/{sip}", "/api/accounts/me/contacts/{buddy_sip}", User),
        row("GET", "/contacts/vcard", "/contacts/vcard", User),
        row("GET", "/contacts/vcard/{sip}", "/contacts/vcard/{buddy_sip}", User),
        // --- API: admin accounts ---
        row("GET", "/api/accounts", "/api/accounts", Admin),
        with(
            "POST",
            "/api/accounts",
            "/api/accounts",
            Admin,
            json!({"username": "new{n}", "password": "x12345", "algorithm": "SHA-256"}),
        ),
        row("GET", "/api/accounts/{sip}/search", "/api/accounts/{victim_sip}/search", Admin),
        row("GET", "/api/accounts/{email}/search-by-email", "/api/accounts/{victim_email}/search-by-email", Admin),
        row("GET", "/api/accounts/{id}", "/api/accounts/{id}", Admin),
        with(
            "PUT",
            "/api/accounts/{id}",
            "/api/accounts/{id}",
            Admin,
            json!({"username": "{victim}", "password": "x12345", "algorithm": "SHA-256", "dtmf_protocol": "sipinfo"}),
        ),
        row("DELETE", "/api/accounts/{id}", "/api/accounts/{id}", Admin),
        row("GET", "/api/accounts/{id}/activate", "/api/accounts/{id}/activate", Admin),
        row("GET", "/api/accounts/{id}/deactivate", "/api/accounts/{id}/deactivate", Admin),
        row("GET", "/api/accounts/{id}/provision", "/api/accounts/{id}/provision", Admin),
        row("POST", "/api/accounts/{id}/recover-by-email", "/api/accounts/{id}/recover-by-email", Admin),
        // --- API: contacts, types, actions ---
        row("GET", "/api/accounts/{id}/contacts", "/api/accounts/{id}/contacts", Admin),
        row("GET", "/api/accounts/{id}/contacts/{contact_id}", "/api/accounts/{id}/contacts/{buddy_id}", Admin),
        row("POST", "/api/accounts/{id}/contacts/{contact_id}", "/api/accounts/{id}/contacts/{other_id}", Admin),
        row("DELETE", "/api/accounts/{id}/contacts/{contact_id}", "/api/accounts/{id}/contacts/{buddy_id}", Admin),
        row("GET", "/api/account_types", "/api/account_types", Admin),
        with("POST", "/api/account_types", "/api/account_types", Admin, json!({"key": "newtype{n}"})),
        row("GET", "/api/account_types/{id}", "/api/account_types/{type_id}", Admin),
        with("PUT", "/api/account_types/{id}", "/api/account_types/{type_id}", Admin, json!({"key": "renamed{n}"})),
        row("DELETE", "/api/account_types/{id}", "/api/account_types/{type_id}", Admin),
        row("POST", "/api/accounts/{id}/types/{type_id}", "/api/accounts/{id}/types/{type2_id}", Admin),
        row("DELETE", "/api/accounts/{id}/types/{type_id}", "/api/accounts/{id}/types/{type_id}", Admin),
        row("GET", "/api/accounts/{id}/actions", "/api/accounts/{id}/actions", Admin),
        with(
            "POST",
            "/api/accounts/{id}/actions",
            "/api/accounts/{id}/actions",
            Admin,
            json!({"key": "newaction{n}", "code": "2"}),
        ),
        row("GET", "/api/accounts/{id}/actions/{action_id}", "/api/accounts/{id}/actions/{action_id}", Admin),
        with(
            "PUT",
            "/api/accounts/{id}/actions/{action_id}",
            "/api/accounts/{id}/actions/{action_id}",
            Admin,
            json!({"key": "changed{n}", "code": "3"}),
        ),
        row("DELETE", "/api/accounts/{id}/actions/{action_id}", "/api/accounts/{id}/actions/{action_id}", Admin),
        with(
            "POST",
            "/api/messages",
            "/api/messages",
            Admin,
            json!({"to": "sip:{victim}@sip.example.org", "body": "hi"}),
        ),
        row("GET", "/api/statistics/{period}", "/api/statistics/day", Admin),
        // --- provisioning ---
        row("GET", "/provisioning", "/provisioning", Public),
        row("GET", "/provisioning/documentation", "/provisioning/documentation", Public),
        row("GET", "/provisioning/me", "/provisioning/me", User),
        row("GET", "/provisioning/auth_token/{auth_token}", "/provisioning/auth_token/{auth_token}", Public),
        row("GET", "/provisioning/qrcode/{provisioning_token}", "/provisioning/qrcode/{provisioning_token}", Public),
        row("GET", "/provisioning/{provisioning_token}", "/provisioning/{provisioning_token}", Public),
        // --- portal: public pages ---
        row("GET", "/{asset}", "/css/style.css", WebPublic),
        row("GET", "/documentation", "/documentation", WebPublic),
        row("GET", "/api", "/api", WebPublic),
        row("GET", "/", "/", WebPublic),
        row("GET", "/login", "/login", WebPublic),
        with("POST", "/authenticate", "/authenticate", WebPublic, json!({"username": "{victim}", "password": "wrong"})),
        row("GET", "/logout", "/logout", WebPublic),
        row("GET", "/login/email", "/login/email", WebPublic),
        with("POST", "/authenticate/email", "/authenticate/email", WebPublic, json!({"email": "nobody@example.net"})),
        row("GET", "/login/phone", "/login/phone", WebPublic),
        with("POST", "/authenticate/phone", "/authenticate/phone", WebPublic, json!({"phone": "+33612345678"})),
        with("POST", "/authenticate/phone/confirm", "/authenticate/phone/confirm", WebPublic, json!({"code": "0000"})),
        row("GET", "/register", "/register", WebPublic),
        row("GET", "/register/email", "/register/email", WebPublic),
        with(
            "POST",
            "/register/email",
            "/register/email",
            WebPublic,
            json!({"username": "reg{n}", "email": "reg{n}@example.net"}),
        ),
        row("GET", "/register/phone", "/register/phone", WebPublic),
        with(
            "POST",
            "/register/phone",
            "/register/phone",
            WebPublic,
            json!({"username": "regp{n}", "phone": "+3361299{n}"}),
        ),
        row("GET", "/authenticate/email/check/{sip}", "/authenticate/email/check/{victim_sip}", WebPublic),
        row("GET", "/authenticate/email/{code}", "/authenticate/email/nocode", WebPublic),
        row("GET", "/creation_token/check/{token}", "/creation_token/check/notoken", WebPublic),
        with(
            "POST",
            "/creation_token/validate",
            "/creation_token/validate",
            WebPublic,
            json!({"account_creation_request_token": "notoken"}),
        ),
        row("GET", "/authenticate/qrcode", "/authenticate/qrcode", WebPublic),
        row("GET", "/authenticate/qrcode/{token}", "/authenticate/qrcode/{auth_token}", WebPublic),
        row("GET", "/auth_tokens/qrcode/{token}", "/auth_tokens/qrcode/{auth_token}", WebPublic),
        row("GET", "/auth_tokens/auth/{token}", "/auth_tokens/auth/{auth_token}", WebPublic),
        // --- portal: the account's pages ---
        row("GET", "/panel", "/panel", WebUser),
        row("POST", "/api_key", "/api_key", WebUser),
        row("GET", "/password", "/password", WebUser),
        with(
            "POST",
            "/password",
            "/password",
            WebUser,
            json!({"old_password": PASSWORD, "password": "changed123", "password_confirmation": "changed123"}),
        ),
        row("GET", "/email", "/email", WebUser),
        with(
            "POST",
            "/email/request",
            "/email/request",
            WebUser,
            json!({"email": "changed{n}@example.net", "email_confirmation": "changed{n}@example.net"}),
        ),
        row("GET", "/email/{hash}", "/email/{email_hash}", WebUser),
        row("GET", "/delete", "/delete", WebUser),
        with("DELETE", "/delete", "/delete", WebUser, json!({"identifier": "{victim}@sip.example.org"})),
        row("GET", "/devices", "/devices", WebUser),
        row("GET", "/devices/delete/{uuid}", "/devices/delete/nouuid", WebUser),
        with("DELETE", "/devices", "/devices", WebUser, json!({"uuid": "nouuid"})),
        row("POST", "/auth_tokens", "/auth_tokens", WebUser),
        row("GET", "/auth_tokens/auth/external/{token}", "/auth_tokens/auth/external/{auth_token}", WebUser),
        // --- portal: admin ---
        row("GET", "/admin/accounts", "/admin/accounts", WebAdmin),
        with("POST", "/admin/accounts/search", "/admin/accounts/search", WebAdmin, json!({"search": "vic"})),
        row("GET", "/admin/accounts/create", "/admin/accounts/create", WebAdmin),
        with(
            "POST",
            "/admin/accounts",
            "/admin/accounts",
            WebAdmin,
            json!({"username": "webnew{n}", "domain": DOMAIN, "password": "x12345", "password_confirmation": "x12345"}),
        ),
        with("DELETE", "/admin/accounts", "/admin/accounts", WebAdmin, json!({"account_id": "{id}"})),
        row("GET", "/admin/accounts/types", "/admin/accounts/types", WebAdmin),
        row("GET", "/admin/accounts/types/create", "/admin/accounts/types/create", WebAdmin),
        with("POST", "/admin/accounts/types", "/admin/accounts/types", WebAdmin, json!({"key": "webtype{n}"})),
        row("GET", "/admin/accounts/types/{id}/edit", "/admin/accounts/types/{type_id}/edit", WebAdmin),
        with(
            "PUT",
            "/admin/accounts/types/{id}",
            "/admin/accounts/types/{type_id}",
            WebAdmin,
            json!({"key": "webrenamed{n}"}),
        ),
        row("GET", "/admin/accounts/types/{id}/delete", "/admin/accounts/types/{type_id}/delete", WebAdmin),
        row("DELETE", "/admin/accounts/types/{id}", "/admin/accounts/types/{type_id}", WebAdmin),
        row("GET", "/admin/accounts/{id}/show", "/admin/accounts/{id}/show", WebAdmin),
        row("GET", "/admin/accounts/{search}", "/admin/accounts/{victim}", WebAdmin),
        row("GET", "/admin/accounts/{id}/edit", "/admin/accounts/{id}/edit", WebAdmin),
        with(
            "PUT",
            "/admin/accounts/{id}",
            "/admin/accounts/{id}",
            WebAdmin,
            json!({"username": "{victim}", "domain": DOMAIN, "display_name": "Edited"}),
        ),
        row("GET", "/admin/accounts/{id}/delete", "/admin/accounts/{id}/delete", WebAdmin),
        row("POST", "/admin/accounts/{id}/{toggle}", "/admin/accounts/{id}/admin", WebAdmin),
        row("GET", "/admin/accounts/{id}/{toggle}", "/admin/accounts/{id}/admin", WebAdmin),
        row(
            "GET",
            "/admin/accounts/{id}/external_account/attach",
            "/admin/accounts/{id}/external_account/attach",
            WebAdmin,
        ),
        row(
            "GET",
            "/admin/accounts/{id}/contacts/{contact_id}/delete",
            "/admin/accounts/{id}/contacts/{buddy_id}/delete",
            WebAdmin,
        ),
        row(
            "GET",
            "/admin/accounts/{id}/actions/{action_id}/delete",
            "/admin/accounts/{id}/actions/{action_id}/delete",
            WebAdmin,
        ),
        row("GET", "/admin/accounts/{id}/external_account", "/admin/accounts/{id}/external_account", WebAdmin),
        with(
            "PUT",
            "/admin/accounts/{id}/external_account",
            "/admin/accounts/{id}/external_account",
            WebAdmin,
            json!({"username": "ext{n}", "domain": "ext.example.net", "protocol": "TCP", "password": "extsecret", "algorithm": "MD5"}),
        ),
        row("DELETE", "/admin/accounts/{id}/external_account", "/admin/accounts/{id}/external_account", WebAdmin),
        row(
            "POST",
            "/admin/accounts/{id}/external_account/attach",
            "/admin/accounts/{id}/external_account/attach",
            WebAdmin,
        ),
        row("GET", "/admin/accounts/{id}/contacts/create", "/admin/accounts/{id}/contacts/create", WebAdmin),
        with(
            "POST",
            "/admin/accounts/{id}/contacts",
            "/admin/accounts/{id}/contacts",
            WebAdmin,
            json!({"sip": "{other}@sip.example.org"}),
        ),
        with(
            "DELETE",
            "/admin/accounts/{id}/contacts",
            "/admin/accounts/{id}/contacts",
            WebAdmin,
            json!({"contact_id": "{buddy_id}"}),
        ),
        row("GET", "/admin/accounts/{id}/types/create", "/admin/accounts/{id}/types/create", WebAdmin),
        with(
            "POST",
            "/admin/accounts/{id}/types",
            "/admin/accounts/{id}/types",
            WebAdmin,
            json!({"account_type_id": "{type2_id}"}),
        ),
        row("DELETE", "/admin/accounts/{id}/types/{type_id}", "/admin/accounts/{id}/types/{type_id}", WebAdmin),
        row("GET", "/admin/accounts/{id}/actions/create", "/admin/accounts/{id}/actions/create", WebAdmin),
        with(
            "POST",
            "/admin/accounts/{id}/actions",
            "/admin/accounts/{id}/actions",
            WebAdmin,
            json!({"key": "webaction{n}", "code": "4"}),
        ),
        row(
            "GET",
            "/admin/accounts/{id}/actions/{action_id}/edit",
            "/admin/accounts/{id}/actions/{action_id}/edit",
            WebAdmin,
        ),
        with(
            "PUT",
            "/admin/accounts/{id}/actions/{action_id}",
            "/admin/accounts/{id}/actions/{action_id}",
            WebAdmin,
            json!({"key": "webchanged{n}", "code": "5"}),
        ),
        row("DELETE", "/admin/accounts/{id}/actions/{action_id}", "/admin/accounts/{id}/actions/{action_id}", WebAdmin),
        row("GET", "/admin/statistics", "/admin/statistics", WebAdmin),
        row("GET", "/admin/statistics/{period}", "/admin/statistics/day", WebAdmin),
    ]
}

// ---------------------------------------------------------------------------
// The route table, read from the router's source.

/// (method, label) of every route the source of `src/http` declares: each
/// `route("…"` / `page(ctx, "…"` with the method of the match arm before it.
fn declared_routes() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/http") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let call = regex::Regex::new(r#"(?:\broute\(|\bpage\(ctx,\s*)"([^"]+)""#).unwrap();
    let arm = regex::Regex::new(r#"\("(GET|POST|PUT|DELETE|PATCH)","#).unwrap();
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        // Doc comments and tests show example calls, not routes.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for m in call.captures_iter(&code) {
            let whole = m.get(0).unwrap();
            let before = &code[..whole.start()];
            // Assets answer GET only, with no method in their arm.
            let method = arm.captures_iter(before).last().map(|c| c[1].to_string()).unwrap_or_else(|| "GET".into());
            out.insert((method, m[1].to_string()));
        }
    }
    out
}

#[test]
fn route_matrix_lists_every_route() {
    let declared = declared_routes();
    assert!(declared.len() > 100, "the source scan found too few routes: {declared:?}");
    let listed: BTreeSet<(String, String)> =
        matrix().iter().map(|r| (r.method.to_string(), r.label.to_string())).collect();
    let missing: Vec<_> = declared.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&declared).collect();
    assert!(missing.is_empty(), "routes without a row in the security matrix: {missing:?}");
    assert!(stale.is_empty(), "matrix rows for routes the router no longer has: {stale:?}");
    assert_eq!(listed.len(), matrix().len(), "duplicate matrix rows");
}

// ---------------------------------------------------------------------------
// Fixture.

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn next() -> usize {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A 40-character alphanumeric secret, unique per call.
fn secret(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut s = format!("{prefix}{}x{nanos}", next());
    s.retain(|c| c.is_ascii_alphanumeric());
    while s.len() < 40 {
        s.push('z');
    }
    s.truncate(40);
    s
}

/// A portal session, inserted straight into the database (no login form,
/// so no login rate limit).
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

fn session(server: &Server, account_id: impl rusqlite::ToSql) -> Session {
    let id = secret("s");
    let csrf = secret("c");
    server
        .db()
        .execute(
            "INSERT INTO sessions (id, account_id, csrf_token, data, created_at, last_activity) \
             VALUES (?1, ?2, ?3, '{}', datetime('now'), datetime('now'))",
            rusqlite::params![id, account_id, csrf],
        )
        .expect("insert session");
    Session { cookie: format!("flexiapi_session={id}"), csrf }
}

fn api_key(server: &Server, account_id: i64) -> String {
    let key = secret("k");
    server
        .db()
        .execute(
            "INSERT OR REPLACE INTO api_keys (account_id, \"key\", created_at, updated_at, last_used_at) \
             VALUES (?1, ?2, datetime('now'), datetime('now'), datetime('now'))",
            rusqlite::params![account_id, key],
        )
        .expect("insert api key");
    key
}

struct Actor {
    id: i64,
    username: String,
    key: String,
    web: Session,
}

/// The accounts every row runs against: `victim` owns the resources,
/// `other` is another plain account, `admin` an admin of the default Space,
/// `foreign` an admin of another Space.
struct Fixture {
    admin: Actor,
    foreign: Actor,
    victim: Actor,
    other: Actor,
    /// A visitor's session (no account): public forms need its CSRF token.
    guest: Session,
    values: BTreeMap<&'static str, String>,
}

fn plain_account(server: &Server, admin_key: &str, prefix: &str) -> Actor {
    let username = format!("{prefix}{}", next());
    let account = common::create_account(
        server,
        admin_key,
        json!({"username": username, "password": PASSWORD, "algorithm": "SHA-256", "activated": true,
               "email": format!("{username}@example.net"), "dtmf_protocol": "sipinfo", "display_name": "Plain"}),
    );
    let id = account["id"].as_i64().expect("id");
    Actor { id, key: api_key(server, id), web: session(server, id), username }
}

impl Fixture {
    fn admins(server: &Server) -> (Actor, Actor) {
        let (_, _, key) = server.admin("rootadmin");
        let id: i64 =
            server.db().query_row("SELECT id FROM accounts WHERE username = 'rootadmin'", [], |r| r.get(0)).unwrap();
        let admin = Actor { id, username: "rootadmin".into(), key, web: session(server, id) };
        let out = server.cli(&["spaces:create-update", OTHER_DOMAIN, OTHER_HOST]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out =
            server.cli(&["accounts:create-admin-account", "-u", "frootadmin", "-p", PASSWORD, "-d", OTHER_DOMAIN]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let id: i64 = server
            .db()
            .query_row("SELECT id FROM accounts WHERE username = 'frootadmin' AND domain = ?1", [OTHER_DOMAIN], |r| {
                r.get(0)
            })
            .unwrap();
        let foreign = Actor { id, username: "frootadmin".into(), key: api_key(server, id), web: session(server, id) };
        (admin, foreign)
    }

    fn new(server: &Server, admin: Actor, foreign: Actor) -> Fixture {
        let key = admin.key.clone();
        let victim = plain_account(server, &key, "victim");
        let other = plain_account(server, &key, "other");
        let buddy = plain_account(server, &key, "buddy");
        server.post(&format!("/api/accounts/{}/contacts/{}", victim.id, buddy.id)).key(&key).send().expect(200);
        let n = next();
        let t1 = server
            .post("/api/account_types")
            .key(&key)
            .json(json!({"key": format!("type{n}")}))
            .send()
            .expect(201)
            .json();
        let t2 = server
            .post("/api/account_types")
            .key(&key)
            .json(json!({"key": format!("typeb{n}")}))
            .send()
            .expect(201)
            .json();
        let t1 = t1["id"].as_i64().unwrap();
        server.post(&format!("/api/accounts/{}/types/{t1}", victim.id)).key(&key).send().expect(200);
        let action = server
            .post(&format!("/api/accounts/{}/actions", victim.id))
            .key(&key)
            .json(json!({"key": format!("action{n}"), "code": "1"}))
            .send()
            .expect(201)
            .json();
        let auth_token =
            server.post("/api/accounts/auth_token").send().expect(201).json()["token"].as_str().unwrap().to_string();
        // A provisioning token, as `/api/accounts/{id}/provision` gives one.
        let provisioned =
            server.get(&format!("/api/accounts/{}/provision", victim.id)).key(&key).send().expect(200).json();
        let hash = secret("h");
        server
            .db()
            .execute(
                "INSERT INTO email_changed (account_id, new_email, hash, created_at, updated_at) \
                 VALUES (?1, 'changed@example.net', ?2, datetime('now'), datetime('now'))",
                rusqlite::params![victim.id, hash],
            )
            .unwrap();
        let mut values = BTreeMap::new();
        values.insert("id", victim.id.to_string());
        values.insert("victim", victim.username.clone());
        values.insert("victim_sip", format!("{}@{DOMAIN}", victim.username));
        values.insert("victim_email", format!("{}@example.net", victim.username));
        values.insert("other", other.username.clone());
        values.insert("other_id", other.id.to_string());
        values.insert("buddy_id", buddy.id.to_string());
        values.insert("buddy_sip", format!("{}@{DOMAIN}", buddy.username));
        values.insert("type_id", t1.to_string());
        values.insert("type2_id", t2["id"].as_i64().unwrap().to_string());
        values.insert("action_id", action["id"].as_i64().unwrap().to_string());
        values.insert("auth_token", auth_token);
        values.insert(
            "provisioning_token",
            provisioned["provisioning_token"].as_str().expect("provisioning_token").to_string(),
        );
        values.insert("email_hash", hash);
        Fixture { admin, foreign, victim, other, guest: session(server, rusqlite::types::Null), values }
    }

    /// Replaces `{name}` placeholders; `{n}` is a fresh number.
    fn fill(&self, text: &str) -> String {
        let mut out = text.replace("{n}", &next().to_string());
        for (k, v) in &self.values {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        assert!(!regex::Regex::new(r"\{[a-z_0-9]+\}").unwrap().is_match(&out), "unfilled placeholder in {out}");
        out
    }

    fn body(&self, body: &Value) -> Value {
        match body {
            Value::Null => Value::Null,
            other => serde_json::from_str(&self.fill(&other.to_string())).unwrap(),
        }
    }
}

// ---------------------------------------------------------------------------
// Requests.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Anonymous,
    User,
    Other,
    Admin,
    /// The other Space's admin, on this Space's host.
    Foreign,
    /// The other Space's admin, on its own Space's host.
    ForeignHome,
}

/// Sends `row` as `caller`. `csrf`: include the session's token in forms.
fn send(server: &Server, f: &Fixture, row: &Row, caller: Caller, csrf: bool) -> Resp {
    let path = f.fill(row.path);
    let body = f.body(&row.body);
    let actor = match caller {
        Caller::Anonymous => None,
        Caller::User => Some(&f.victim),
        Caller::Other => Some(&f.other),
        Caller::Admin => Some(&f.admin),
        Caller::Foreign | Caller::ForeignHome => Some(&f.foreign),
    };
    let web = matches!(row.access, WebPublic | WebUser | WebAdmin);
    if !web {
        let mut req = match row.method {
            "GET" => server.get(&path),
            "POST" => server.post(&path),
            "PUT" => server.put(&path),
            _ => server.delete(&path),
        };
        match actor {
            Some(a) => req = req.key(&a.key),
            // A client naming an account, without credentials: the challenge.
            None => req = req.header("From", &format!("sip:{}@{DOMAIN}", f.victim.username)),
        }
        if caller == Caller::ForeignHome {
            req = req.header("Host", OTHER_HOST);
        }
        if !body.is_null() {
            req = req.json(body);
        }
        return req.send();
    }
    // Portal: forms are POSTs; PUT and DELETE ride on `_method`.
    let mut fields: Vec<(String, String)> = Vec::new();
    // The anonymous caller of a public form is a visitor with a session;
    // of any other page, a client without cookies.
    let visitor = caller == Caller::Anonymous && row.access == WebPublic;
    let web_session = actor.map(|a| &a.web).or(if visitor { Some(&f.guest) } else { None });
    if let Some(s) = web_session.filter(|_| csrf) {
        fields.push(("_token".into(), s.csrf.clone()));
    }
    if row.method == "PUT" || row.method == "DELETE" {
        fields.push(("_method".into(), row.method.into()));
    }
    if let Value::Object(map) = &body {
        for (k, v) in map {
            fields.push((k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
        }
    }
    let mut req = if row.method == "GET" { server.get(&path) } else { server.post(&path) };
    req = req.no_accept().header("Accept", "text/html");
    if let Some(s) = web_session {
        req = req.header("Cookie", &s.cookie);
    }
    if caller == Caller::ForeignHome {
        req = req.header("Host", OTHER_HOST);
    }
    if row.method != "GET" {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        req = req.form(&pairs);
    }
    req.send()
}

/// The database content a refused request must leave alone: every table
/// but the bookkeeping ones (sessions, rate limits, nonces) and key use
/// times.
fn fingerprint(server: &Server) -> String {
    let db = server.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .filter(|t: &String| !matches!(t.as_str(), "sessions" | "rate_limits" | "nonces"))
        .collect();
    let mut out = String::new();
    for table in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid")).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        out.push_str(&table);
        out.push('\n');
        while let Some(r) = rows.next().unwrap() {
            for (i, name) in names.iter().enumerate() {
                if table == "api_keys" && (name == "last_used_at" || name == "updated_at") {
                    continue;
                }
                let v: rusqlite::types::Value = r.get(i).unwrap();
                out.push_str(&format!("{v:?}|"));
            }
            out.push('\n');
        }
    }
    out
}

fn location(r: &Resp) -> String {
    r.header("Location").unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The matrix.

#[test]
fn authorization_matrix() {
    let server = Server::start(&[
        ("APP_LINPHONE_DAEMON_UNIX_PATH", "/nonexistent/flexiapi-test-daemon.sock"),
        ("DEVICES_MANAGEMENT", "true"),
        ("PHONE_AUTHENTICATION", "true"),
    ]);
    let (admin, foreign) = Fixture::admins(&server);
    let mut f = Fixture::new(&server, admin, foreign);
    let mut failures: Vec<String> = Vec::new();
    let mut checks = 0;
    let rows = matrix();

    for row in &rows {
        let what = format!("{} {} ({})", row.method, row.label, row.path);
        macro_rules! check {
            ($ok:expr, $who:expr, $r:expr, $expected:expr $(,)?) => {{
                checks += 1;
                let r: &Resp = $r;
                let who: Caller = $who;
                if !$ok {
                    let body: String = r.text().chars().take(200).collect();
                    failures.push(format!(
                        "{what} as {who:?}: got {} (Location {:?}), expected {}; {body}",
                        r.status,
                        location(r),
                        $expected
                    ));
                }
            }};
        }
        // Refused callers first, each checked to change nothing.
        let refused: Vec<(Caller, bool)> = match row.access {
            User => vec![(Caller::Anonymous, true)],
            Admin => {
                vec![(Caller::Anonymous, true), (Caller::User, true), (Caller::Other, true), (Caller::Foreign, true)]
            }
            WebUser => vec![(Caller::Anonymous, true), (Caller::User, false)],
            WebAdmin => {
                vec![(Caller::Anonymous, true), (Caller::User, true), (Caller::Foreign, true), (Caller::Admin, false)]
            }
            WebPublic => vec![(Caller::Anonymous, false)],
            Public | Metrics => vec![],
        };
        for (caller, csrf) in refused {
            if row.method == "GET" && !csrf {
                continue; // CSRF only guards state changes.
            }
            let before = fingerprint(&server);
            let r = send(&server, &f, row, caller, csrf);
            let web = matches!(row.access, WebPublic | WebUser | WebAdmin);
            match (web, caller, csrf) {
                // Forms without their CSRF token.
                (true, _, false) => check!(r.status == 403, caller, &r, "403 (no CSRF token)"),
                // No session, so no CSRF token: forms are refused first.
                (true, Caller::Anonymous, true) if row.method != "GET" => check!(r.status == 403, caller, &r, "403"),
                // Guests: user pages send them home, admin pages to the
                // login form (web.md 1.1).
                (true, Caller::Anonymous, true) if row.access == WebUser => {
                    check!(r.status == 302 && location(&r) == "/", caller, &r, "302 to /")
                }
                (true, Caller::Anonymous | Caller::Foreign, true) => {
                    check!(r.status == 302 && location(&r) == "/login", caller, &r, "302 to /login")
                }
                (true, _, true) => check!(r.status == 403, caller, &r, "403"),
                (false, Caller::Anonymous, _) => check!(r.status == 401, caller, &r, "401"),
                (false, _, _) => check!(r.status == 403, caller, &r, "403"),
            }
            let after = fingerprint(&server);
            if before != after {
                failures.push(format!("{what} as {caller:?}: refused with {} but the database changed", r.status));
            }
        }

        // A plain user reaching another account's resources through a
        // route of its own: nothing found.
        if row.access == User && row.path.contains("{buddy_sip}") {
            let r = send(&server, &f, row, Caller::Other, true);
            check!(r.status == 404, Caller::Other, &r, "404 (not its contact)");
        }
        if row.access == WebUser && row.label == "/email/{hash}" {
            let before = fingerprint(&server);
            let r = send(&server, &f, row, Caller::Other, true);
            check!(r.status == 404, Caller::Other, &r, "404 (another account's e-mail change)");
            if before != fingerprint(&server) {
                failures.push(format!("{what} as Other: the victim's e-mail change was applied by another account"));
            }
        }

        // The other Space's admin on its own host: this Space's accounts
        // do not exist there.
        let targets_victim =
            row.path.contains("{id}") || row.path.contains("{victim_sip}") || row.path.contains("{victim_email}");
        if matches!(row.access, Admin | WebAdmin) && targets_victim {
            let before = fingerprint(&server);
            let r = send(&server, &f, row, Caller::ForeignHome, true);
            check!(r.status == 404, Caller::ForeignHome, &r, "404 (account of another Space)");
            if before != fingerprint(&server) {
                failures.push(format!("{what} as ForeignHome: the database changed"));
            }
        }

        // The rightful caller.
        let (caller, r) = match row.access {
            Public | WebPublic | Metrics => (Caller::Anonymous, send(&server, &f, row, Caller::Anonymous, true)),
            User | WebUser => (Caller::User, send(&server, &f, row, Caller::User, true)),
            Admin | WebAdmin => (Caller::Admin, send(&server, &f, row, Caller::Admin, true)),
        };
        // Routes whose success ends on the login page (a refused login goes
        // back to its form, the login page), and routes calling
        // a service this test does not run (push, SMS, Redis): 503 there
        // still proves the caller was let through.
        let ends_at_login = matches!(row.label, "/logout" | "/delete") && row.access == WebUser
            || matches!(row.label, "/logout" | "/authenticate");
        let external = matches!(
            row.label,
            "/api/account_creation_tokens/send-by-push"
                | "/api/accounts/me/phone/request"
                | "/api/accounts/me/devices/{uuid}"
                | "/devices"
        );
        let r = if (ends_at_login && location(&r) == "/login") || (external && r.status == 503) {
            Resp { status: 200, headers: Vec::new(), body: Vec::new() }
        } else {
            r
        };
        match row.access {
            // Public endpoints may refuse the input (404 gated, 422), never
            // the caller.
            Public | WebPublic => check!(
                r.status < 500 && r.status != 401 && r.status != 403 && location(&r) != "/login",
                caller,
                &r,
                "an answer that is not an authorization failure nor a 5xx",
            ),
            Metrics => {
                check!(r.status == 200, caller, &r, "200 (loopback)");
                let u = server.get("/metrics").key(&f.victim.key).header("X-Forwarded-For", "203.0.113.9").send();
                check!(u.status == 403, Caller::User, &u, "403 (remote user)");
                let a = server.get("/metrics").key(&f.admin.key).header("X-Forwarded-For", "203.0.113.9").send();
                check!(a.status == 200, Caller::Admin, &a, "200 (remote admin)");
                let n = server.get("/metrics").header("X-Forwarded-For", "203.0.113.9").send();
                check!(n.status == 403, Caller::Anonymous, &n, "403 (remote, no key)");
            }
            // The rightful caller gets through: a success, or a refusal of
            // its input (a bogus code or uuid), never of itself.
            _ => check!(
                r.status < 500 && r.status != 401 && r.status != 403 && location(&r) != "/login",
                caller,
                &r,
                "an authorized answer",
            ),
        }
        // Rows whose success changes the fixture's accounts or keys get a
        // fresh fixture.
        if row.method != "GET"
            || row.label.contains("api_key")
            || row.label.contains("activate")
            || row.label == "/logout"
            || row.label.contains("/auth")
        {
            let (admin, foreign) = (f.admin, f.foreign);
            // The admin's own session may have been used by a destructive
            // row; keep its key, renew the session.
            let admin = Actor { web: session(&server, admin.id), ..admin };
            f = Fixture::new(&server, admin, foreign);
        }
    }

    // Each row reached the route it names (the labels the server counted).
    let metrics = server.get("/metrics").send().expect(200).text();
    let counted: BTreeSet<String> = metrics
        .lines()
        .filter(|l| l.starts_with("flexiapi_http_requests_total{"))
        .filter_map(|l| l.split("route=\"").nth(1).and_then(|s| s.split('"').next()).map(str::to_string))
        .collect();
    for row in &rows {
        if !counted.contains(row.label) {
            failures.push(format!("{} {}: no request reached this route (path {})", row.method, row.label, row.path));
        }
    }
    assert!(checks > 300, "only {checks} checks ran");
    assert!(failures.is_empty(), "{} of {checks} checks failed:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Injection.

/// An admin's portal session on `server` (by the admin's id).
fn admin_session(server: &Server) -> (String, Session) {
    let (_, _, key) = server.admin("rootadmin");
    let id: i64 =
        server.db().query_row("SELECT id FROM accounts WHERE username = 'rootadmin'", [], |r| r.get(0)).unwrap();
    (key, session(server, id))
}

fn web_get(server: &Server, s: &Session, path: &str) -> Resp {
    server.get(path).no_accept().header("Accept", "text/html").header("Cookie", &s.cookie).send()
}

#[test]
fn sql_metacharacters_are_literal_text() {
    let server = Server::start(&[]);
    let (key, web) = admin_session(&server);
    // Display names differing only where a LIKE wildcard would match.
    let names = [("plainxb", "axb"), ("underab", "a_b"), ("percent", "a%b"), ("quoting", "a'q\"b\\s;--")];
    for (username, display) in names {
        common::create_account(
            &server,
            &key,
            json!({"username": username, "password": PASSWORD, "algorithm": "SHA-256", "display_name": display}),
        );
    }
    let listed = |needle: &str| -> BTreeSet<&'static str> {
        let path = format!("/admin/accounts/{}", common::urlencode(needle));
        let r = web_get(&server, &web, &path);
        assert_eq!(r.status, 200, "search {needle:?}: {}", r.text());
        let page = r.text();
        names.iter().map(|(u, _)| *u).filter(|u| page.contains(&format!("{u}@"))).collect()
    };
    assert_eq!(listed("a_b"), BTreeSet::from(["underab"]), "`_` matches only itself");
    assert_eq!(listed("a%b"), BTreeSet::from(["percent"]), "`%` matches only itself");
    assert_eq!(listed("a'q"), BTreeSet::from(["quoting"]));
    assert_eq!(listed("\"b\\s;--"), BTreeSet::from(["quoting"]));
    assert_eq!(listed("%"), BTreeSet::from(["percent"]));
    assert_eq!(listed("_"), BTreeSet::from(["underab"]));
    assert_eq!(listed("a"), names.iter().map(|(u, _)| *u).collect::<BTreeSet<_>>(), "a plain needle still finds all");
    // The search form redirects with the needle encoded.
    let r = server
        .post("/admin/accounts/search")
        .no_accept()
        .header("Cookie", &web.cookie)
        .form(&[("_token", &web.csrf), ("search", "a_b' OR 1=1 --")])
        .send();
    assert_eq!(r.status, 302, "{}", r.text());
    let to = location(&r);
    assert!(!to.contains(' ') && !to.contains('\''), "unencoded redirect {to}");
    assert_eq!(web_get(&server, &web, &to).status, 200);

    // API lookups by address, e-mail and phone: metacharacters find nothing
    // and break nothing.
    for needle in [
        "%",
        "_",
        "'",
        "\"",
        "\\",
        "--",
        ";",
        "' OR '1'='1",
        "%@sip.example.org",
        "_nderab@sip.example.org",
        "underab@%",
    ] {
        let enc = common::urlencode(needle);
        for path in [
            format!("/api/accounts/{enc}/search"),
            format!("/api/accounts/{enc}/search-by-email"),
            format!("/api/accounts/{enc}/info"),
            format!("/contacts/vcard/{enc}"),
            format!("/api/accounts/me/contacts/{enc}"),
        ] {
            let r = server.get(&path).key(&key).send();
            assert!(r.status == 404 || r.status == 422, "{path}: {} {}", r.status, r.text());
        }
    }
    assert_eq!(
        server.get("/api/accounts/underab@sip.example.org/search").key(&key).send().status,
        200,
        "the exact address still works"
    );
    assert_eq!(server.count("accounts"), 5, "nothing created or deleted");
}

/// (section, entry, text) of every entry of a provisioning document,
/// parsed as XML (a parse error fails the test).
fn xml_entries(text: &str) -> Vec<(String, String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let (mut section, mut entry, mut value) = (String::new(), None::<String>, String::new());
    let mut out = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart, name: &[u8]| -> String {
        e.attributes()
            .map(|a| a.expect("attribute"))
            .find(|a| a.key.as_ref() == name)
            .map(|a| a.unescape_value().expect("attribute value").into_owned())
            .unwrap_or_default()
    };
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("invalid XML ({e}): {text}")) {
            Event::Start(e) if e.name().as_ref() == b"section" => section = attr(&e, b"name"),
            Event::Start(e) if e.name().as_ref() == b"entry" => {
                entry = Some(attr(&e, b"name"));
                value.clear();
            }
            Event::Text(t) if entry.is_some() => value.push_str(&t.decode().expect("text")),
            Event::GeneralRef(r) if entry.is_some() => {
                let name = r.decode().expect("ref");
                let c = match name.as_ref() {
                    "amp" => "&".to_string(),
                    "lt" => "<".into(),
                    "gt" => ">".into(),
                    "quot" => "\"".into(),
                    "apos" => "'".into(),
                    other => r
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .map(String::from)
                        .unwrap_or_else(|| panic!("unknown reference &{other};")),
                };
                value.push_str(&c);
            }
            Event::CData(c) if entry.is_some() => value.push_str(&String::from_utf8_lossy(&c)),
            Event::End(e) if e.name().as_ref() == b"entry" => {
                out.push((section.clone(), entry.take().unwrap(), value.clone()))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn provisioning_xml_escapes_markup() {
    let dir = common::TempDir::new();
    let rc = dir.path().join("linphonerc");
    let hostile = "a<b>&c\"d'e ]]> <![CDATA[x]]> </entry></section><section name=\"evil\">";
    std::fs::write(&rc, format!("[misc]\nhostile={hostile}\n[odd\"<&>]\nk\"<>=v\n")).unwrap();
    let server = Server::start(&[("ACCOUNT_PROVISIONING_RC_FILE", rc.to_str().unwrap())]);
    let (_, _, key) = server.admin("rootadmin");
    let name = "Eve </entry><entry name=\"password\">x</entry> ]]> & \"q\" \\";
    let id = common::create_account(
        &server,
        &key,
        json!({"username": "hostile", "password": PASSWORD, "algorithm": "SHA-256", "display_name": name}),
    )["id"]
        .as_i64()
        .unwrap();
    let token = server.get(&format!("/api/accounts/{id}/provision")).key(&key).send().expect(200).json()
        ["provisioning_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server.get(&format!("/provisioning/{token}")).no_accept().send().expect(200);
    let text = r.text();
    assert!(!text.contains("]]>"), "`]]>` must not appear raw: {text}");
    let entries = xml_entries(&text);
    let get = |s: &str, e: &str| entries.iter().find(|(a, b, _)| a == s && b == e).map(|(_, _, v)| v.clone());
    assert_eq!(get("misc", "hostile").as_deref(), Some(hostile), "{text}");
    assert!(entries.iter().all(|(s, _, _)| s != "evil"), "a value opened a section: {text}");
    assert_eq!(get("odd\"<&>", "k\"<>").as_deref(), Some("v"), "names escaped as attributes: {text}");
    let identity = get("proxy_0", "reg_identity").expect("reg_identity");
    assert!(identity.contains("</entry><entry name="), "the display name is text: {identity}");
    let passwords = entries.iter().filter(|(_, e, _)| e == "password").count();
    assert_eq!(passwords, 0, "the display name injected an entry: {text}");
}

/// Sends raw bytes as one request (for what the harness would refuse to
/// build: CR/LF in a path, invalid UTF-8, garbage headers).
fn raw(server: &Server, request: &[u8]) -> Resp {
    try_raw(server, request).unwrap_or_else(|| panic!("no HTTP answer to {:?}", String::from_utf8_lossy(request)))
}

/// The answer to a raw request; `None` when the server closed the
/// connection without one (tiny_http does so for header bytes that are not
/// ASCII, before the request reaches us).
fn try_raw(server: &Server, request: &[u8]) -> Option<Resp> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    if out.is_empty() {
        return None;
    }
    Some(common::parse_response(&out).unwrap_or_else(|e| panic!("not HTTP ({e}): {:?}", String::from_utf8_lossy(&out))))
}

#[test]
fn headers_cannot_be_split() {
    let server = Server::start(&[]);
    let (key, web) = admin_session(&server);
    let injected =
        |r: &Resp| r.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("X-Injected") || v.contains("injected=1"));
    // A redirect built from a search needle.
    for needle in ["x\r\nX-Injected: 1", "x\nSet-Cookie: injected=1", "x%0d%0aX-Injected:%201", "x\r\n\r\n<html>"] {
        let r = server
            .post("/admin/accounts/search")
            .no_accept()
            .header("Cookie", &web.cookie)
            .form(&[("_token", &web.csrf), ("search", needle)])
            .send();
        assert_eq!(r.status, 302);
        assert!(!injected(&r), "{needle:?} split a header: {:?}", r.headers);
        let to = location(&r);
        assert!(!to.contains(['\r', '\n']), "{to:?}");
        assert_eq!(web_get(&server, &web, &to).status, 200);
    }
    // Encoded CR/LF in paths that end in redirects, cookies or headers.
    for path in [
        "/admin/accounts/x%0d%0aX-Injected:%201",
        "/provisioning/x%0d%0aX-Injected:%201",
        "/provisioning/qrcode/x%0d%0aX-Injected:%201",
        "/authenticate/email/check/a%0d%0aX-Injected:%201@sip.example.org",
        "/api/accounts/me/api_key/x%0d%0aSet-Cookie:%20injected=1",
        "/authenticate/qrcode/x%0d%0aX-Injected:%201",
        "/auth_tokens/auth/x%0d%0aX-Injected:%201",
    ] {
        let r = raw(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {}\r\nConnection: close\r\n\r\n", web.cookie)
                .as_bytes(),
        );
        assert!(r.status < 500, "{path}: {}", r.status);
        assert!(!injected(&r), "{path} split a header: {:?}", r.headers);
    }
    // Values stored by one request and put in a header by another: the
    // QR code's URL carries only the server's own URL and token.
    let id = common::create_account(
        &server,
        &key,
        json!({"username": "qrowner", "password": PASSWORD, "algorithm": "SHA-256"}),
    )["id"]
        .as_i64()
        .unwrap();
    let token = server.get(&format!("/api/accounts/{id}/provision")).key(&key).send().expect(200).json()
        ["provisioning_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = server.get(&format!("/provisioning/qrcode/{token}")).no_accept().send().expect(200);
    assert!(!injected(&r));
    assert_eq!(r.header("X-Qrcode-URL"), Some(server.url(&format!("/provisioning/{token}"))));
}

#[test]
fn vcard_values_cannot_inject_properties() {
    let server = Server::start(&[]);
    let (key, _) = admin_session(&server);
    // Line breaks never get in: the display name is one line.
    let r = server
        .post("/api/accounts")
        .key(&key)
        .json(json!({"username": "cardbreak", "password": PASSWORD, "algorithm": "SHA-256", "display_name": "Eve\r\nEMAIL:evil@example.net"}))
        .send();
    r.expect_invalid("display_name");
    let hostile = "Eve, \"x\";TEL:+1\\z:EMAIL";
    let owner = common::account_with_key(&server, &key, "cardowner", PASSWORD);
    let contact = common::create_account(
        &server,
        &key,
        json!({"username": "cardcontact", "password": PASSWORD, "algorithm": "SHA-256", "display_name": hostile, "dtmf_protocol": "sipinfo"}),
    )["id"]
        .as_i64()
        .unwrap();
    server.post(&format!("/api/accounts/{}/contacts/{contact}", owner.0)).key(&key).send().expect(200);
    // An action key with a line break, if the API takes one.
    let action = server
        .post(&format!("/api/accounts/{contact}/actions"))
        .key(&key)
        .json(json!({"key": "k;x,y\nEMAIL:z", "code": "1"}))
        .send();
    assert!(action.status == 201 || action.status == 422, "{}", action.text());
    for path in ["/contacts/vcard", "/contacts/vcard/cardcontact@sip.example.org"] {
        let text = server.get(path).no_accept().key(&owner.1).send().expect(200).text();
        // Unfold, then split into content lines.
        let unfolded = text.replace("\r\n ", "");
        let lines: Vec<&str> = unfolded.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert!(lines.iter().all(|l| !l.contains(['\r', '\n'])), "bare line breaks: {text:?}");
        let names: Vec<&str> = lines.iter().map(|l| l.split([':', ';']).next().unwrap()).collect();
        assert!(!names.contains(&"EMAIL") && !names.contains(&"TEL"), "a value injected a property: {text}");
        let fname = lines.iter().find(|l| l.starts_with("FN:")).expect("FN");
        assert_eq!(*fname, "FN:Eve\\, \"x\"\\;TEL:+1\\\\z:EMAIL", "{text}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("BEGIN:VCARD")).count(), 1);
    }
}

#[test]
fn asset_paths_do_not_traverse() {
    let server = Server::start(&[]);
    assert_eq!(server.get("/css/style.css").no_accept().send().status, 200, "the control: a real asset");
    for path in [
        "/css/../Cargo.toml",
        "/css/%2e%2e/Cargo.toml",
        "/css/%2E%2E/%2E%2E/Cargo.toml",
        "/css/..%2fCargo.toml",
        "/css/..%2f..%2fCargo.toml",
        "/css/%2e%2e%2fsrc%2fmain.rs",
        "/js/..%5c..%5cCargo.toml",
        "/img/....//Cargo.toml",
        "/css/.%2e/Cargo.toml",
        "/css/%252e%252e/Cargo.toml",
        "/css/style.css%00.png",
        "/css//etc/passwd",
        "/css/%2fetc%2fpasswd",
        "/img/%c0%ae%c0%ae/Cargo.toml",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
    ] {
        let r = raw(&server, format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes());
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        let body = r.text();
        assert!(
            !body.contains("[package]") && !body.contains("root:") && !body.contains("fn main"),
            "{path} leaked a file"
        );
    }
}

#[test]
fn malformed_input_is_refused_not_a_crash() {
    let server = Server::start(&[]);
    let (key, web) = admin_session(&server);
    let accounts = server.count("accounts");
    let create = |body: &[u8]| {
        server.post("/api/accounts").key(&key).header("Content-Type", "application/json").body(body.to_vec()).send()
    };
    // Over-long values: the validation's 422, never a 500.
    let long = "a".repeat(100_000);
    for field in ["username", "password", "email", "display_name", "phone", "dtmf_protocol", "algorithm", "domain"] {
        let mut body = json!({"username": "longtest", "password": PASSWORD, "algorithm": "SHA-256"});
        body[field] = json!(long);
        let r = create(body.to_string().as_bytes());
        assert!(
            r.status == 422 || (r.status == 200 && field == "domain"),
            "{field}: {} {}",
            r.status,
            r.text().chars().take(200).collect::<String>()
        );
        if r.status == 200 {
            server.delete(&format!("/api/accounts/{}", r.json()["id"])).key(&key).send().expect(200);
        }
    }
    // Bodies that are not the JSON they claim to be.
    let dup = br#"{"username":"dupone","username":"duptwo","password":"secret123","algorithm":"SHA-256"}"#.to_vec();
    let deep = format!(
        "{{\"username\":\"deeptest\",\"password\":\"secret123\",\"algorithm\":\"SHA-256\",\"x\":{}1{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let huge = br#"{"username":"hugetest","password":"secret123","algorithm":"SHA-256","activated":1e999999}"#.to_vec();
    let bigint = br#"{"username":"biginttest","password":"secret123","algorithm":"SHA-256","activated":123456789012345678901234567890}"#.to_vec();
    let mut not_utf8 = br#"{"username":"utf"#.to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
    not_utf8.extend_from_slice(br#"","password":"secret123","algorithm":"SHA-256"}"#);
    for (what, body) in [
        ("duplicate keys", dup),
        ("deep nesting", deep.into_bytes()),
        ("huge number", huge),
        ("huge integer", bigint),
        ("invalid UTF-8", not_utf8),
        ("truncated", b"{\"username\":".to_vec()),
    ] {
        let r = create(&body);
        assert!((400..500).contains(&r.status), "{what}: {} {}", r.status, r.text());
    }
    assert_eq!(server.count("accounts"), accounts, "nothing was created");
    // Paths, queries and forms: invalid UTF-8 and over-long values.
    for request in [
        b"GET /api/accounts/%ff%fe/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /provisioning/%ff%c0%80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        format!("GET /api/accounts/{}/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(8000)).into_bytes(),
        b"GET /provisioning?x=%ff&reset_password=%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /api/accounts?page=99999999999999999999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /api/accounts/me HTTP/1.1\r\nHost: x\r\nx-api-key: \xff\xfe\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /login HTTP/1.1\r\nHost: x\r\nCookie: flexiapi_session=\xff\xfe; x-api-key=\xc0\r\nAccept-Language: \xff\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\nConnection: close\r\n\r\n".to_vec(),
    ] {
        match try_raw(&server, &request) {
            Some(r) => assert!(r.status < 500, "{:?}: {}", String::from_utf8_lossy(&request), r.status),
            // Non-ASCII header bytes: the connection is closed unanswered.
            None => assert!(!request.is_ascii(), "no answer to {:?}", String::from_utf8_lossy(&request)),
        }
    }
    assert_eq!(server.get("/api/ping").send().status, 200, "still serving");
    let mut form = format!("_token={}&username=", web.csrf).into_bytes();
    form.extend_from_slice(&[0xff, 0xfe]);
    form.extend_from_slice(format!("&domain={}&password=%ff", "d".repeat(50_000)).as_bytes());
    let r = server
        .post("/admin/accounts")
        .no_accept()
        .header("Cookie", &web.cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send();
    assert!(r.status == 422 || r.status == 302 && location(&r).starts_with("/admin"), "{} {}", r.status, location(&r));
    assert_eq!(server.count("accounts"), accounts);
}

#[test]
fn garbage_credentials_are_401_not_500() {
    let server = Server::start(&[]);
    let (key, _) = admin_session(&server);
    common::account_with_key(&server, &key, "digestuser", PASSWORD);
    let from = format!("sip:digestuser@{DOMAIN}");
    let long = "x".repeat(6000);
    let authorizations = [
        "Digest".to_string(),
        "Digest ".into(),
        "Digest username".into(),
        "Digest username=".into(),
        "Digest username=\"".into(),
        "Digest username=\"digestuser\", realm=\"sip.example.org\", nonce=\"\", uri=\"/api/accounts/me\", response=\"\"".into(),
        "Digest username=\"digestuser\", nonce=\"AAAA\", uri=\"/api/accounts/me\", response=\"00\", algorithm=MD5-sess, qop=auth-int, nc=zzzz, cnonce=\"\"".into(),
        "Digest username=\"digestuser\", realm=\"sip.example.org\", nonce=\"a,b\\\"c\", uri=\"/api/accounts/me\", algorithm=SHA-512, response=\"0\", opaque=\"\\\"\"".into(),
        "Digest ,,,,=,=\"\",\"".into(),
        format!("Digest username=\"{long}\", nonce=\"{long}\", response=\"{long}\""),
        "Basic ZGlnZXN0dXNlcjpzZWNyZXQxMjM=".into(),
        "Bearer abc".into(),
        "Digest username=\"digestuser\", realm=\"sip.example.org\", nonce=\"MTIz\", uri=\"/other\", algorithm=MD5, nc=00000001, cnonce=\"x\", qop=auth, response=\"d41d8cd98f00b204e9800998ecf8427e\", opaque=\"x\"".into(),
        "digest USERNAME=digestuser,NONCE=x,RESPONSE=y".into(),
    ];
    for auth in &authorizations {
        let r = server.get("/api/accounts/me").header("From", &from).header("Authorization", auth).send();
        // A header line over the front end's 8 KiB limit never reaches auth.
        let expected = if auth.len() > 8 * 1024 { 431 } else { 401 };
        assert_eq!(r.status, expected, "Authorization {:?}: {}", auth.chars().take(80).collect::<String>(), r.text());
    }
    for from in [
        "sip:",
        "sip:@",
        "<sip:@>",
        "sip:digestuser",
        "digestuser@sip.example.org",
        "\"a\" <sip:digestuser@sip.example.org",
        "sip:digestuser@sip.example.org;tag=\"",
        &format!("sip:{long}@{long}"),
        "sip:a@b@c",
        "%00",
        "<>",
    ] {
        let r = server
            .get("/api/accounts/me")
            .header("From", from)
            .header("Authorization", "Digest username=\"digestuser\"")
            .send();
        let too_large = from.len() > 8 * 1024 && r.status == 431;
        assert!(
            r.status == 401 || r.status == 422 || too_large,
            "From {:?}: {} {}",
            from.chars().take(60).collect::<String>(),
            r.status,
            r.text()
        );
    }
    // Garbage API keys: 401, whatever their shape.
    for key in [" ", "'", "' OR '1'='1", "%", &long] {
        let r = server.get("/api/accounts/me").header("x-api-key", key).send();
        assert!(
            r.status == 401 || (key.trim().is_empty() && r.status == 422),
            "key {:?}: {}",
            key.chars().take(40).collect::<String>(),
            r.status
        );
    }
    let r = try_raw(&server, b"GET /api/accounts/me HTTP/1.1\r\nHost: x\r\nFrom: sip:digestuser@sip.example.org\r\nAuthorization: Digest username=\"\xff\xfe\", response=\"\xc0\"\r\nConnection: close\r\n\r\n");
    assert!(r.is_none_or(|r| r.status == 401 || r.status == 400), "non-UTF-8 Authorization");
    assert_eq!(server.get("/api/ping").send().status, 200, "still serving");
    assert!(!server.log().contains("panicked"), "the server panicked: {}", server.log());
}

// ---------------------------------------------------------------------------
// Secrets in logs.

#[test]
fn secrets_never_reach_the_log() {
    let server = Server::start(&[]);
    let (key, _) = admin_session(&server);
    let mut secrets: Vec<String> = vec![key.clone()];
    let password = "Pw-n0t-in-l0gs-7d1f";
    secrets.push(password.into());

    // Account creation with a password, DIGEST, API key use.
    let id = common::create_account(
        &server,
        &key,
        json!({"username": "secretuser", "password": password, "algorithm": "SHA-256", "activated": true, "email": "secretuser@example.net"}),
    )["id"]
        .as_i64()
        .unwrap();
    let user_key =
        server.get("/api/accounts/me/api_key").digest("secretuser", DOMAIN, password, None).expect(200).text();
    secrets.push(user_key.clone());
    server.get("/api/accounts/me").key(&user_key).send().expect(200);
    server.get("/api/accounts/me").header("Cookie", &format!("x-api-key={user_key}")).send().expect(200);
    // A wrong key, a wrong DIGEST answer.
    let wrong_key = secret("wrong");
    secrets.push(wrong_key.clone());
    server.get("/api/accounts/me").key(&wrong_key).send().expect(401);
    let wrong_password = "Wr0ng-pw-also-secret";
    secrets.push(wrong_password.into());
    let first = server.get("/api/accounts/me").header("From", &format!("sip:secretuser@{DOMAIN}")).send().expect(401);
    let challenge = common::Challenge::parse(&first.headers_all("WWW-Authenticate")[0]);
    let authorization = challenge.authorization("GET", "/api/accounts/me", "secretuser", wrong_password, 1, "c0ffee00");
    let response = authorization.split("response=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    secrets.push(response);
    server
        .get("/api/accounts/me")
        .header("From", &format!("sip:secretuser@{DOMAIN}"))
        .header("Authorization", &authorization)
        .send()
        .expect(401);

    // Password change.
    let new_password = "N3w-pw-not-in-logs";
    secrets.push(new_password.into());
    server
        .post("/api/accounts/me/password")
        .key(&user_key)
        .json(json!({"algorithm": "SHA-256", "old_password": password, "password": new_password}))
        .send()
        .expect(200);

    // Provisioning token, its QR code, reset_password.
    let token = server.get(&format!("/api/accounts/{id}/provision")).key(&key).send().expect(200).json()
        ["provisioning_token"]
        .as_str()
        .unwrap()
        .to_string();
    secrets.push(token.clone());
    server.get(&format!("/provisioning/qrcode/{token}")).no_accept().send().expect(200);
    server.get(&format!("/provisioning/{token}")).no_accept().send().expect(200);

    // Auth token: created, attached, exchanged for a key, provisioning.
    let auth = server.post("/api/accounts/auth_token").send().expect(201).json()["token"].as_str().unwrap().to_string();
    secrets.push(auth.clone());
    server.get(&format!("/api/accounts/auth_token/{auth}/attach")).key(&user_key).send().expect(200);
    server.get(&format!("/provisioning/auth_token/{auth}")).no_accept().send();
    let exchanged = server.get(&format!("/api/accounts/me/api_key/{auth}")).send();
    if exchanged.status == 200 {
        secrets.push(exchanged.json()["api_key"].as_str().unwrap().to_string());
    }

    // Recovery code (mail not configured: the server says so, without it).
    server.post(&format!("/api/accounts/{id}/recover-by-email")).key(&key).send().expect(200);

    // Account creation token.
    let creation = server.post("/api/account_creation_tokens").key(&key).send().expect(201).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    secrets.push(creation.clone());
    let token_password = "T0ken-acct-pw-secret";
    secrets.push(token_password.into());
    server
        .post("/api/accounts/with-account-creation-token")
        .json(json!({"username": "tokenuser", "password": token_password, "algorithm": "SHA-256", "account_creation_token": creation}))
        .send()
        .expect(200);

    // The login form, right and wrong, and a page behind it.
    let login = server.get("/login").no_accept().header("Accept", "text/html").send().expect(200);
    let cookie = login.header("Set-Cookie").unwrap().split(';').next().unwrap().to_string();
    let page = login.text();
    let csrf = page.split("name=\"_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    secrets.push(cookie.split('=').nth(1).unwrap().to_string());
    secrets.push(csrf.clone());
    let r = server
        .post("/authenticate")
        .no_accept()
        .header("Cookie", &cookie)
        .form(&[("_token", &csrf), ("username", "secretuser"), ("password", wrong_password)])
        .send();
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location").as_deref(), Some("/login"));
    let r = server
        .post("/authenticate")
        .no_accept()
        .header("Cookie", &cookie)
        .form(&[("_token", &csrf), ("username", "secretuser"), ("password", new_password)])
        .send();
    assert_eq!(r.status, 302, "{}", r.text());
    let session = r.header("Set-Cookie").unwrap().split(';').next().unwrap().to_string();
    secrets.push(session.split('=').nth(1).unwrap().to_string());
    server.get("/panel").no_accept().header("Accept", "text/html").header("Cookie", &session).send().expect(200);

    // A password reset by provisioning (the new HA1s are collected below).
    let token = server.get(&format!("/api/accounts/{id}/provision")).key(&key).send().expect(200).json()
        ["provisioning_token"]
        .as_str()
        .unwrap()
        .to_string();
    secrets.push(token.clone());
    server.get(&format!("/provisioning/{token}?reset_password")).no_accept().send().expect(200);

    // Unknown routes and errors with a secret in the path.
    server.get(&format!("/api/nothing/{user_key}")).send().expect(404);
    server.get(&format!("/provisioning/{user_key}/x")).send().expect(404);

    // Every secret the database holds, besides those sent.
    let db = server.db();
    for sql in [
        "SELECT \"key\" FROM api_keys",
        "SELECT password FROM passwords",
        "SELECT provisioning_token FROM accounts WHERE provisioning_token IS NOT NULL",
        "SELECT confirmation_key FROM accounts WHERE confirmation_key IS NOT NULL",
        "SELECT token FROM auth_tokens",
        "SELECT token FROM account_creation_tokens",
        "SELECT id FROM sessions",
        "SELECT csrf_token FROM sessions",
    ] {
        let mut stmt = db.prepare(sql).unwrap();
        let values: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        secrets.extend(values);
    }
    assert!(secrets.len() > 20, "too few secrets collected: {}", secrets.len());
    // Let the last log lines land.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log = server.log();
    assert!(log.contains("GET /provisioning/{provisioning_token} 200"), "the log is the server's: {log}");
    for s in &secrets {
        assert!(s.len() >= 8, "{s:?} is too short to search for");
        assert!(!log.contains(s.as_str()), "the secret {s:?} is in the log:\n{log}");
    }
}
