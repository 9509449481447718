//! REST API foundation: JSON rules, DIGEST and API-key authentication,
//! roles, the admin account API, and connection limits.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn accounts_count(server: &Server) -> i64 {
    server.count("accounts")
}

#[test]
fn ping_answers_pong() {
    let server = Server::start(&[]);
    let resp = server.get("/api/ping").send().expect(200);
    assert_eq!(resp.text(), "pong");
}

#[test]
fn unknown_routes_and_methods_answer_json() {
    let server = Server::start(&[]);
    let resp = server.get("/api/nowhere").send().expect(404);
    assert_eq!(resp.json(), json!({"message": ""}));
    let resp = server.put("/api/ping").send().expect(405);
    assert!(resp.json()["message"].as_str().unwrap().contains("Supported methods: GET, HEAD."));
    assert_eq!(resp.header("Allow").as_deref(), Some("GET, HEAD"));
    // HEAD is GET without a body, on every GET route.
    let raw = common::http_request(server.port, "HEAD", "/api/ping", &[], None).unwrap();
    assert_eq!(raw.status, 200);
    assert!(raw.body.is_empty());
    let raw = common::http_request(server.port, "HEAD", "/provisioning", &[], None).unwrap();
    assert_eq!(raw.status, 200);
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let server = Server::start(&[("APP_MAX_BODY_BYTES", "2048")]);
    let (_, _, key) = server.admin("administrator");
    let big = json!({"username": "x".repeat(5000), "password": "secret123", "algorithm": "MD5"});
    let resp = server.post("/api/accounts").key(&key).json(big).send().expect(413);
    assert!(resp.json()["message"].as_str().unwrap().contains("too large"));
    assert_eq!(accounts_count(&server), 1);
}

#[test]
fn bodies_not_declared_as_json_are_not_read() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    let body = serde_json::to_vec(&json!({"username": "bobby1", "password": "secret123", "algorithm": "MD5"})).unwrap();
    server
        .post("/api/accounts")
        .key(&key)
        .header("Content-Type", "text/plain")
        .body(body)
        .send()
        .expect_invalid("username");
    // Malformed JSON is treated as no fields.
    server
        .post("/api/accounts")
        .key(&key)
        .header("Content-Type", "application/json")
        .body(b"{not json".to_vec())
        .send()
        .expect_invalid("password");
    assert_eq!(accounts_count(&server), 1);
}

// --- DIGEST ---

fn user_with_password(server: &Server, key: &str, username: &str, algorithm: &str) -> i64 {
    let account = create_account(
        server,
        key,
        json!({"username": username, "password": "secret123", "algorithm": algorithm, "activated": true}),
    );
    account["id"].as_i64().unwrap()
}

fn challenges_for(server: &Server, username: &str) -> Vec<Challenge> {
    let resp = server.get("/api/accounts/me").header("From", &format!("sip:{username}@{DOMAIN}")).send().expect(401);
    assert_eq!(resp.header("Content-Type").as_deref(), Some("application/json; charset=utf-8"));
    resp.headers_all("WWW-Authenticate").iter().map(|h| Challenge::parse(h)).collect()
}

#[test]
fn digest_md5_and_sha256_succeed() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    user_with_password(&server, &key, "md5user", "MD5");
    user_with_password(&server, &key, "shauser", "SHA-256");

    let me = server.get("/api/accounts/me").digest("md5user", DOMAIN, "secret123", Some("MD5")).expect(200);
    assert_eq!(me.json()["username"], "md5user");
    let me = server.get("/api/accounts/me").digest("shauser", DOMAIN, "secret123", Some("SHA-256")).expect(200);
    assert_eq!(me.json()["username"], "shauser");
    assert_eq!(me.json()["passwords"], json!([{"algorithm": "SHA-256"}]));
    // The success repeats the challenge so the client may go on.
    assert!(me.header("WWW-Authenticate").unwrap().contains("algorithm=SHA-256"));
}

#[test]
fn challenge_format_and_order() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    user_with_password(&server, &key, "shauser", "SHA-256");
    let resp = server.get("/api/accounts/me").header("From", &format!("sip:shauser@{DOMAIN}")).send().expect(401);
    let header = resp.header("WWW-Authenticate").unwrap();
    assert!(
        header.starts_with(&format!("Digest realm=\"{DOMAIN}\",qop=\"auth\",algorithm=SHA-256,nonce=\"")),
        "{header}"
    );
    assert_eq!(resp.json()["message"], "Unauthenticated request");

    // Unknown account: the same two challenges, SHA-256 first, no 404.
    let before = server.count("nonces");
    let unknown = challenges_for(&server, "nobody-here");
    assert_eq!(unknown.iter().map(|c| c.algorithm.as_str()).collect::<Vec<_>>(), ["SHA-256", "MD5"]);
    assert_eq!(unknown[0].realm, DOMAIN);
    assert_eq!(server.count("nonces"), before + 1, "an unknown address costs the same write");
}

#[test]
fn digest_failures() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    user_with_password(&server, &key, "shauser", "SHA-256");
    let from = format!("sip:shauser@{DOMAIN}");

    // Missing From → 422
    server.get("/api/accounts/me").send().expect_invalid("from");
    // Garbage From → 422
    server.get("/api/accounts/me").header("From", "not-a-sip-address").send().expect_invalid("from");

    // Wrong password
    server.get("/api/accounts/me").digest("shauser", DOMAIN, "wrong-password", None).expect(401);

    // MD5 answer for a SHA-256-only account
    let c = &challenges_for(&server, "shauser")[0];
    let md5 = Challenge { algorithm: "MD5".into(), ..c.clone() };
    let auth = md5.authorization("GET", "/api/accounts/me", "shauser", "secret123", 1, "abc");
    server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth).send().expect(401);

    // Malformed Authorization → 401 with a fresh challenge, never 500
    let resp =
        server.get("/api/accounts/me").header("From", &from).header("Authorization", "Digest nonce=\"open").send();
    assert_eq!(resp.status, 401);
    assert!(resp.header("WWW-Authenticate").is_some());
    let resp = server
        .get("/api/accounts/me")
        .header("From", &from)
        .header("Authorization", "Digest username=\"shauser\"")
        .send();
    assert_eq!(resp.status, 401);
}

#[test]
fn digest_parameters_are_validated_after_the_nonce() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    user_with_password(&server, &key, "shauser", "SHA-256");
    let from = format!("sip:shauser@{DOMAIN}");
    // Each case: how the client's header is spoiled, and the field named.
    let cases: [(&str, fn(String) -> String); 6] = [
        ("qop", |a| a.replace("qop=auth", "qop=auth-int")),
        ("realm", |a| a.replacen(&format!("realm=\"{DOMAIN}\""), "realm=\"elsewhere.org\"", 1)),
        ("username", |a| a.replacen("username=\"shauser\"", "username=\"otheruser\"", 1)),
        ("cnonce", |a| a.replacen("cnonce=\"c0ffee\", ", "", 1)),
        ("algorithm", |a| a.replacen("algorithm=SHA-256", "algorithm=SHA-512", 1)),
        ("opaque", |a| a.replacen("opaque=\"", "opaque=\"X", 1)),
    ];
    for (field, spoil) in cases {
        let c = challenges_for(&server, "shauser").remove(0);
        let auth = spoil(c.authorization("GET", "/api/accounts/me", "shauser", "secret123", 1, "c0ffee"));
        let resp = server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth).send();
        let json = resp.expect_invalid(field).json();
        assert_eq!(json["errors"].as_object().unwrap().len(), 1, "{field}: {json}");
        // The count was recorded first: the same nonce and count now replay.
        let honest = c.authorization("GET", "/api/accounts/me", "shauser", "secret123", 1, "c0ffee");
        let again = server.get("/api/accounts/me").header("From", &from).header("Authorization", &honest).send();
        assert_eq!(again.status, 401, "{field}");
        assert!(again.text().contains("Nonce replayed"), "{field}: {}", again.text());
    }
}

#[test]
fn digest_nonce_counts_must_grow() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    user_with_password(&server, &key, "shauser", "SHA-256");
    let from = format!("sip:shauser@{DOMAIN}");
    let c = challenges_for(&server, "shauser").remove(0);
    let auth = |nc: u32| c.authorization("GET", "/api/accounts/me", "shauser", "secret123", nc, "cn0nce");

    server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth(1)).send().expect(200);
    server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth(2)).send().expect(200);
    let replay =
        server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth(2)).send().expect(401);
    assert!(replay.text().contains("Nonce replayed"));
    // The replayed nonce is gone: even a higher count fails now.
    let gone =
        server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth(3)).send().expect(401);
    assert!(gone.text().contains("Nonce invalid"));
}

#[test]
fn digest_nonce_bound_to_its_opaque_and_account() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    user_with_password(&server, &key, "shauser", "SHA-256");
    user_with_password(&server, &key, "otheruser", "SHA-256");
    let from = format!("sip:shauser@{DOMAIN}");
    let c = challenges_for(&server, "shauser").remove(0);
    let other = challenges_for(&server, "otheruser").remove(0);

    // The nonce of one challenge with the opaque of another: the nonce is
    // found (and its count recorded), then the parameters fail (api.md §2.2).
    let mixed = Challenge { opaque: other.opaque.clone(), ..c.clone() };
    let auth = mixed.authorization("GET", "/api/accounts/me", "shauser", "secret123", 1, "x");
    server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth).send().expect_invalid("opaque");

    // Another account's nonce
    let auth = other.authorization("GET", "/api/accounts/me", "shauser", "secret123", 1, "x");
    server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth).send().expect(401);

    // A nonce deleted server-side
    let c = challenges_for(&server, "shauser").remove(0);
    server.db().execute("DELETE FROM nonces WHERE nonce = ?1", [&c.nonce]).unwrap();
    let auth = c.authorization("GET", "/api/accounts/me", "shauser", "secret123", 1, "x");
    let resp = server.get("/api/accounts/me").header("From", &from).header("Authorization", &auth).send().expect(401);
    assert!(resp.text().contains("Nonce invalid"));
    assert!(resp.header("WWW-Authenticate").is_some());
}

#[test]
fn concurrent_requests_with_the_same_nc_let_exactly_one_through() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    user_with_password(&server, &key, "shauser", "SHA-256");
    let from = format!("sip:shauser@{DOMAIN}");
    for round in 0..5 {
        let c = challenges_for(&server, "shauser").remove(0);
        let auth = c.authorization("GET", "/api/accounts/me", "shauser", "secret123", 1, &format!("c{round}"));
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        server
                            .get("/api/accounts/me")
                            .header("From", &from)
                            .header("Authorization", &auth)
                            .send()
                            .status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
    }
}

#[test]
fn clear_text_passwords_offer_both_algorithms_and_honour_the_realm() {
    let server = Server::start(&[("ACCOUNT_REALM", "realm.example.org")]);
    let seed = server.dir.path().join("seed.json");
    std::fs::write(
        &seed,
        r#"[{"type":"account","id":50,"username":"cleartext","domain":"sip.example.org","passwords":[{"hash":"secretpw","algorithm":"CLRTXT"}]}]"#,
    )
    .unwrap();
    assert!(server.cli(&["accounts:seed", seed.to_str().unwrap()]).status.success());
    let challenges = challenges_for(&server, "cleartext");
    assert_eq!(challenges.iter().map(|c| c.algorithm.as_str()).collect::<Vec<_>>(), ["SHA-256", "MD5"]);
    assert_eq!(challenges[0].realm, "realm.example.org");
    let resp = server.get("/api/accounts/me").digest("cleartext", DOMAIN, "secretpw", Some("SHA-256")).expect(200);
    assert_eq!(resp.headers_all("WWW-Authenticate").len(), 2);
    server.get("/api/accounts/me").digest("cleartext", DOMAIN, "secretpw", Some("MD5")).expect(200);
}

#[test]
fn not_yet_activated_accounts_still_authenticate() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    create_account(&server, &key, json!({"username": "inactive1", "password": "secret123", "algorithm": "MD5"}));
    let me = server.get("/api/accounts/me").digest("inactive1", DOMAIN, "secret123", None).expect(200).json();
    assert_eq!(me["activated"], false);
}

// --- API keys ---

#[test]
fn api_keys_by_header_and_cookie() {
    let server = Server::start(&[]);
    let (_, _, admin_key) = server.admin("administrator");
    let (id, key) = account_with_key(&server, &admin_key, "keyuser1", "secret123");

    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["id"], id);
    // The header wins, whatever From says.
    let me = server
        .get("/api/accounts/me")
        .key(&key)
        .header("From", "sip:administrator@sip.example.org")
        .send()
        .expect(200)
        .json();
    assert_eq!(me["id"], id);
    let me = server.get("/api/accounts/me").header("Cookie", &format!("x-api-key={key}")).send().expect(200).json();
    assert_eq!(me["id"], id);
    // Unknown key: 401 without a challenge
    let resp = server.get("/api/accounts/me").key("nope").send().expect(401);
    assert!(resp.header("WWW-Authenticate").is_none());
    assert_eq!(resp.json()["message"], "Unauthenticated request");
}

#[test]
fn api_key_endpoint_sets_the_cookie_and_replaces_the_key() {
    let server = Server::start(&[]);
    let (_, _, admin_key) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin_key, "keyuser1", "secret123");
    let resp = server.get("/api/accounts/me/api_key").key(&key).send().expect(200);
    let new_key = resp.text();
    assert_eq!(new_key.len(), 40);
    assert_ne!(new_key, key);
    let cookie = resp.header("Set-Cookie").unwrap();
    assert!(cookie.starts_with(&format!("x-api-key={new_key};")) && cookie.contains("HttpOnly"), "{cookie}");
    server.get("/api/accounts/me").key(&key).send().expect(401);
    server.get("/api/accounts/me").key(&new_key).send().expect(200);
}

#[test]
fn api_keys_expire_after_disuse_and_refresh_on_use() {
    let server = Server::start(&[("APP_API_KEY_EXPIRATION_MINUTES", "60")]);
    let (_, _, admin_key) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin_key, "keyuser1", "secret123");
    let set_last_used = |minutes_ago: i64| {
        server
            .db()
            .execute(
                "UPDATE api_keys SET last_used_at = datetime('now', ?1) WHERE \"key\" = ?2",
                rusqlite::params![format!("-{minutes_ago} minutes"), key],
            )
            .unwrap();
    };
    let last_used = || -> String {
        server.db().query_row("SELECT last_used_at FROM api_keys WHERE \"key\" = ?1", [&key], |r| r.get(0)).unwrap()
    };
    set_last_used(30);
    let before = last_used();
    server.get("/api/accounts/me").key(&key).send().expect(200);
    assert!(last_used() > before, "last_used_at refreshed");
    set_last_used(61);
    server.get("/api/accounts/me").key(&key).send().expect(401);
}

#[test]
fn admin_endpoints_need_the_admin_role() {
    let server = Server::start(&[]);
    let (_, _, admin_key) = server.admin("administrator");
    let (id, key) = account_with_key(&server, &admin_key, "plainuser", "secret123");
    for (method, path) in [
        ("GET", "/api/accounts".to_string()),
        ("POST", "/api/accounts".to_string()),
        ("GET", format!("/api/accounts/{id}")),
        ("PUT", format!("/api/accounts/{id}")),
        ("DELETE", format!("/api/accounts/{id}")),
        ("GET", format!("/api/accounts/{id}/activate")),
        ("GET", format!("/api/accounts/{id}/deactivate")),
        ("GET", format!("/api/accounts/{id}/provision")),
        ("GET", "/api/accounts/plainuser@sip.example.org/search".to_string()),
        ("GET", "/api/accounts/a@b.c/search-by-email".to_string()),
    ] {
        let resp = Req_(&server, method, &path).key(&key).send();
        assert_eq!(resp.status, 403, "{method} {path}: {}", resp.text());
        assert_eq!(resp.json()["message"], "Unauthorized area");
        // Anonymous: 422 (no From) before any role check.
        assert_eq!(Req_(&server, method, &path).send().status, 422, "{method} {path}");
    }
}

#[allow(non_snake_case)]
fn Req_<'a>(server: &'a Server, method: &str, path: &str) -> Req<'a> {
    match method {
        "GET" => server.get(path),
        "POST" => server.post(path),
        "PUT" => server.put(path),
        _ => server.delete(path),
    }
}

// --- admin account API ---

#[test]
fn account_creation_validation_rules() {
    let server = Server::start(&[("ACCOUNT_BLACKLISTED_USERNAMES", "foobar,blacklisted,username-.*")]);
    let (_, _, key) = server.admin("administrator");
    let base = json!({"username": "valid-user", "password": "secret123", "algorithm": "SHA-256"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (with("username", json!("+33612121212")), "username"),
        (with("username", json!("blabla🔥")), "username"),
        (with("username", json!("blabla hop")), "username"),
        (with("username", json!("")), "username"),
        (with("username", json!("UpperCase")), "username"),
        (with("username", json!("short")), "username"),
        (with("username", json!("blacklisted")), "username"),
        (with("username", json!("username-gnap")), "username"),
        (with("username", json!("0612345678")), "username"),
        (with("username", json!(["array"])), "username"),
        (with("password", json!("12345")), "password"),
        (with("password", Value::Null), "password"),
        (with("algorithm", json!("SHA-1")), "algorithm"),
        (with("algorithm", Value::Null), "algorithm"),
        (with("email", json!("gnap")), "email"),
        (with("dtmf_protocol", json!("morse")), "dtmf_protocol"),
        (with("phone", json!("0612")), "phone"),
        (with("activated", json!("true")), "activated"),
        (with("admin", json!("yes")), "admin"),
        (with("confirmation_key_expires", json!("abc")), "confirmation_key_expires"),
        (with("confirmation_key_expires", json!("2024-02-30 10:00:00")), "confirmation_key_expires"),
    ];
    for (body, field) in cases {
        let resp = server.post("/api/accounts").key(&key).json(body.clone()).send();
        assert_eq!(resp.status, 422, "{body}: {}", resp.text());
        let json = resp.json();
        assert_eq!(json["message"], "The given data was invalid.");
        assert!(json["errors"][field].is_array(), "{body} → {json}");
        assert_eq!(accounts_count(&server), 1, "nothing written for {body}");
    }
    assert_eq!(server.count("passwords"), 1);
    // `valid-username` passes the blacklist; emoji passes once the regex allows it.
    create_account(&server, &key, with("username", json!("valid-username")));
}

#[test]
fn custom_username_regex() {
    let server = Server::start(&[("ACCOUNT_USERNAME_REGEX", "^[a-z0-9🔥]*$")]);
    let (_, _, key) = server.admin("administrator");
    create_account(&server, &key, json!({"username": "blabla🔥", "password": "secret123", "algorithm": "MD5"}));
}

#[test]
fn usernames_are_unique_per_domain_and_emails_optionally_unique() {
    let server = Server::start(&[("ACCOUNT_EMAIL_UNIQUE", "true")]);
    let (_, _, key) = server.admin("administrator");
    create_account(
        &server,
        &key,
        json!({"username": "taken1", "password": "secret123", "algorithm": "MD5", "email": "a@example.org", "phone": "+33612345678"}),
    );
    server
        .post("/api/accounts")
        .key(&key)
        .json(json!({"username": "taken1", "password": "secret123", "algorithm": "MD5"}))
        .send()
        .expect_invalid("username");
    server
        .post("/api/accounts")
        .key(&key)
        .json(json!({"username": "other1", "password": "secret123", "algorithm": "MD5", "email": "a@example.org"}))
        .send()
        .expect_invalid("email");
    server
        .post("/api/accounts")
        .key(&key)
        .json(json!({"username": "other1", "password": "secret123", "algorithm": "MD5", "phone": "+33612345678"}))
        .send()
        .expect_invalid("phone");
    assert_eq!(accounts_count(&server), 2);
}

#[test]
fn domain_is_chosen_only_with_multi_domain_admins() {
    let single = Server::start(&[]);
    let (_, _, key) = single.admin("administrator");
    let a = create_account(
        &single,
        &key,
        json!({"username": "bobby1", "password": "secret123", "algorithm": "MD5", "domain": "other.org"}),
    );
    assert_eq!(a["domain"], DOMAIN);

    let multi = Server::start(&[("APP_ADMINS_MANAGE_MULTI_DOMAINS", "true")]);
    let (_, _, key) = multi.admin("administrator");
    let a = create_account(
        &multi,
        &key,
        json!({"username": "bobby1", "password": "secret123", "algorithm": "MD5", "domain": "other.org"}),
    );
    assert_eq!(a["domain"], "other.org");
    let b = create_account(&multi, &key, json!({"username": "bobby1", "password": "secret123", "algorithm": "MD5"}));
    assert_eq!(b["domain"], DOMAIN);
    let list = multi.get("/api/accounts").key(&key).send().expect(200).json();
    assert_eq!(list["total"], 3);
}

#[test]
fn creation_outputs_keys_admin_and_expiry() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    let a = create_account(
        &server,
        &key,
        json!({"username": "pending1", "password": "secret123", "algorithm": "MD5", "confirmation_key_expires": "2040-01-01 10:00:00", "dtmf_protocol": "rfc2833", "display_name": "Pen Ding"}),
    );
    assert_eq!(a["activated"], false);
    assert_eq!(a["confirmation_key"].as_str().unwrap().len(), 13);
    assert_eq!(a["provisioning_token"].as_str().unwrap().len(), 13);
    assert_eq!(a["confirmation_key_expires"], "2040-01-01 10:00:00");
    assert_eq!(a["dtmf_protocol"], "rfc2833");
    assert_eq!(a["admin"], false);
    assert_eq!(a["user_agent"].as_str().unwrap().len() > 0, true);

    let b = create_account(
        &server,
        &key,
        json!({"username": "active01", "password": "secret123", "algorithm": "MD5", "activated": true, "admin": true, "confirmation_key_expires": "2040-01-01 10:00:00"}),
    );
    assert_eq!(b["activated"], true);
    assert_eq!(b["confirmation_key"], Value::Null);
    assert_eq!(b["provisioning_token"], Value::Null);
    assert_eq!(b["confirmation_key_expires"], Value::Null);
    assert_eq!(b["admin"], true);

    // Stored password: HA1 of username:realm:password, one row.
    let (hash, algorithm): (String, String) = server
        .db()
        .query_row(
            "SELECT password, algorithm FROM passwords WHERE account_id = ?1",
            [b["id"].as_i64().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(algorithm, "MD5");
    assert_eq!(hash, common::hash("MD5", &format!("active01:{DOMAIN}:secret123")));
}

#[test]
fn update_replaces_the_account() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    let a = create_account(
        &server,
        &key,
        json!({"username": "changeme", "password": "secret123", "algorithm": "MD5", "email": "c@example.org", "display_name": "Old", "phone": "+33600000001"}),
    );
    let id = a["id"].as_i64().unwrap();
    // Validation comes first, even for an unknown id.
    server.put("/api/accounts/999999").key(&key).json(json!({})).send().expect_invalid("username");
    server
        .put(&format!("/api/accounts/{id}"))
        .key(&key)
        .json(json!({"username": "changed"}))
        .send()
        .expect_invalid("password");
    server
        .put("/api/accounts/999999")
        .key(&key)
        .json(json!({"username": "changed1", "password": "secret123", "algorithm": "SHA-256"}))
        .send()
        .expect(404);
    let updated = server
        .put(&format!("/api/accounts/{id}"))
        .key(&key)
        .json(json!({"username": "changed1", "password": "newsecret", "algorithm": "SHA-256"}))
        .send()
        .expect(200)
        .json();
    assert_eq!(updated["username"], "changed1");
    assert_eq!(updated["email"], Value::Null, "absent optional fields are cleared");
    assert_eq!(updated["phone"], Value::Null);
    assert_eq!(updated["display_name"], Value::Null);
    let algorithm: String =
        server.db().query_row("SELECT algorithm FROM passwords WHERE account_id = ?1", [id], |r| r.get(0)).unwrap();
    assert_eq!(algorithm, "SHA-256");
    server.get("/api/accounts/me").digest("changed1", DOMAIN, "newsecret", None).expect(200);
}

#[test]
fn listing_is_paginated_like_laravel() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    for i in 0..24 {
        create_account(
            &server,
            &key,
            json!({"username": format!("user{i:03}"), "password": "secret123", "algorithm": "MD5"}),
        );
    }
    let page1 = server.get("/api/accounts").key(&key).send().expect(200).json();
    assert_eq!(page1["total"], 25);
    assert_eq!(page1["per_page"], 20);
    assert_eq!(page1["current_page"], 1);
    assert_eq!(page1["last_page"], 2);
    assert_eq!(page1["from"], 1);
    assert_eq!(page1["to"], 20);
    assert_eq!(page1["data"].as_array().unwrap().len(), 20);
    assert_eq!(page1["next_page_url"], server.url("/api/accounts?page=2"));
    assert_eq!(page1["prev_page_url"], Value::Null);
    let labels: Vec<&str> = page1["links"].as_array().unwrap().iter().map(|l| l["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["&laquo; Previous", "1", "2", "Next &raquo;"]);
    let page2 = server.get("/api/accounts?page=2").key(&key).send().expect(200).json();
    assert_eq!(page2["data"].as_array().unwrap().len(), 5);
    assert_eq!(page2["from"], 21);
    let ids: Vec<i64> = page2["data"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id");
    let empty = server.get("/api/accounts?page=9").key(&key).send().expect(200).json();
    assert_eq!(empty["from"], Value::Null);
}

#[test]
fn show_search_activate_provision_delete() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    let a = create_account(
        &server,
        &key,
        json!({"username": "findme1", "password": "secret123", "algorithm": "MD5", "email": "find@example.org"}),
    );
    let id = a["id"].as_i64().unwrap();

    let shown = server.get(&format!("/api/accounts/{id}")).key(&key).send().expect(200).json();
    assert_eq!(shown["phone"], Value::Null);
    assert!(shown["provisioning_token"].is_string());
    server.get("/api/accounts/424242").key(&key).send().expect(404);
    assert_eq!(
        server.get("/api/accounts/424242").key(&key).send().json()["message"],
        "Missing elements to perform the request"
    );

    assert_eq!(
        server.get("/api/accounts/findme1@sip.example.org/search").key(&key).send().expect(200).json()["id"],
        id
    );
    server.get("/api/accounts/findme1@other.org/search").key(&key).send().expect(404);
    server.get("/api/accounts/findme1/search").key(&key).send().expect(404);
    assert_eq!(
        server.get("/api/accounts/find@example.org/search-by-email").key(&key).send().expect(200).json()["id"],
        id
    );
    server.get("/api/accounts/nobody@example.org/search-by-email").key(&key).send().expect(404);

    assert_eq!(
        server.get(&format!("/api/accounts/{id}/activate")).key(&key).send().expect(200).json()["activated"],
        true
    );
    assert_eq!(
        server.get(&format!("/api/accounts/{id}/deactivate")).key(&key).send().expect(200).json()["activated"],
        false
    );
    let old_token = shown["provisioning_token"].as_str().unwrap().to_string();
    let provisioned = server.get(&format!("/api/accounts/{id}/provision")).key(&key).send().expect(200).json();
    let new_token = provisioned["provisioning_token"].as_str().unwrap();
    assert_eq!(new_token.len(), 13);
    assert_ne!(new_token, old_token);

    server.delete(&format!("/api/accounts/{id}")).key(&key).send().expect(200);
    assert_eq!(server.count("accounts_tombstones"), 1);
    assert_eq!(server.count("passwords"), 1, "dependants cascade");
    server.get(&format!("/api/accounts/{id}")).key(&key).send().expect(404);
    server.delete(&format!("/api/accounts/{id}")).key(&key).send().expect(404);
}

#[test]
fn account_objects_show_what_each_endpoint_shows() {
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let has = |v: &Value, key: &str| v.get(key).is_some();
    // Creation: everything, keys included (api.md §4.4).
    let created =
        create_account(&server, &admin, json!({"username": "shape01", "password": "secret123", "algorithm": "MD5"}));
    assert!(has(&created, "confirmation_key") && has(&created, "provisioning_token") && has(&created, "passwords"));
    let id = created["id"].as_i64().unwrap();
    // One account: keys, no passwords (§3.1 variants).
    let shown = server.get(&format!("/api/accounts/{id}")).key(&admin).send().expect(200).json();
    assert!(has(&shown, "confirmation_key") && has(&shown, "provisioning_token"), "{shown}");
    assert!(!has(&shown, "passwords"), "{shown}");
    // Default serialisation elsewhere: password algorithms, no keys.
    for path in [
        format!("/api/accounts/{id}/activate"),
        format!("/api/accounts/{id}/deactivate"),
        format!("/api/accounts/shape01@{DOMAIN}/search"),
    ] {
        let v = server.get(&path).key(&admin).send().expect(200).json();
        assert_eq!(v["passwords"], json!([{"algorithm": "MD5"}]), "{path}: {v}");
        assert!(!has(&v, "confirmation_key") && !has(&v, "provisioning_token"), "{path}: {v}");
    }
    // Provisioning: the new token only.
    let v = server.get(&format!("/api/accounts/{id}/provision")).key(&admin).send().expect(200).json();
    assert_eq!(v["provisioning_token"].as_str().map(str::len), Some(13), "{v}");
    assert!(!has(&v, "confirmation_key"), "{v}");
    // The list: no passwords.
    let list = server.get("/api/accounts").key(&admin).send().expect(200).json();
    assert!(list["data"].as_array().unwrap().iter().all(|a| !has(a, "passwords") && !has(a, "confirmation_key")));
}

#[test]
fn users_read_provision_and_delete_themselves() {
    let server = Server::start(&[]);
    let (_, _, admin_key) = server.admin("administrator");
    let (id, key) = account_with_key(&server, &admin_key, "selfuser", "secret123");
    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["id"], id);
    assert!(me.get("confirmation_key").is_none(), "keys stay hidden");
    let provisioned = server.get("/api/accounts/me/provision").key(&key).send().expect(200).json();
    assert_eq!(provisioned["provisioning_token"].as_str().unwrap().len(), 13);

    // An account still waiting for its confirmation does not learn the key
    // that would activate it.
    create_account(&server, &admin_key, json!({"username": "waiting1", "password": "secret123", "algorithm": "MD5"}));
    let waiting_key =
        server.get("/api/accounts/me/api_key").digest("waiting1", DOMAIN, "secret123", None).expect(200).text();
    let stored: Option<String> = server
        .db()
        .query_row("SELECT confirmation_key FROM accounts WHERE username = 'waiting1'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.as_deref().map(str::len), Some(13));
    let provisioned = server.get("/api/accounts/me/provision").key(&waiting_key).send().expect(200).json();
    assert_eq!(provisioned["provisioning_token"].as_str().unwrap().len(), 13);
    assert!(provisioned.get("confirmation_key").is_none(), "{provisioned}");
    let resp = server.delete("/api/accounts/me").key(&key).send().expect(200);
    assert_eq!(resp.text(), "1");
    let tomb: (String, String) = server
        .db()
        .query_row("SELECT username, domain FROM accounts_tombstones", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!(tomb, ("selfuser".to_string(), DOMAIN.to_string()));
    assert_eq!(server.count("api_keys"), 2, "only the admin's and waiting1's keys are left");
    server.get("/api/accounts/me").key(&key).send().expect(401);
}

#[test]
fn idle_connections_do_not_starve_the_workers() {
    let server = Server::start(&[("APP_HTTP_WORKERS", "4")]);
    let mut idle = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        // A partial request that never completes.
        s.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n").unwrap();
        idle.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let resp = server.get("/api/ping").send().expect(200);
    assert_eq!(resp.text(), "pong");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(idle);
}

#[test]
fn the_access_log_has_one_line_per_request_without_secrets() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    server.get("/api/accounts/me").key(&key).send().expect(200);
    server.get("/api/accounts/me/api_key").key(&key).send().expect(200);
    let log = server.log();
    assert!(log.lines().any(|l| l.starts_with("GET /api/accounts/me 200 ")), "{log}");
    assert!(!log.contains(&key), "the API key must not be logged");
}

#[test]
fn api_requests_are_rate_limited_per_client_when_configured() {
    let server = Server::start(&[("APP_API_RATE_LIMIT_PER_MINUTE", "5")]);
    // The harness's start-up ping already used at least one of the five.
    let statuses: Vec<u16> = (0..8).map(|_| server.get("/api/ping").send().status).collect();
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=4).contains(&passed), "{statuses:?}");
    assert!(statuses[passed..].iter().all(|s| *s == 429), "{statuses:?}");
    // Outside /api nothing is counted.
    assert_ne!(server.get("/nowhere").send().status, 429);
}
