//! The rest of the REST API, end to end against the real binary: tokens,
//! public sign-up and activation (mail through a loopback SMTP server, SMS
//! through a loopback OVH API), recovery, email/phone/password changes,
//! contacts, types, actions, vCards, statistics, devices (a real
//! redis-server), messages (a real linphone-daemon; a UDP SIP agent receives
//! the MESSAGE; replies the real daemon cannot produce - chunked, garbage,
//! Ok without Id - are unit-tested with fake sockets in src/notify/daemon.rs),
//! push tokens (a recording pusher script), rate limits and feature gates.
//! Real peers are required unless FLEXIAPI_TESTS_ALLOW_MISSING_PEERS=1.

mod common;
#[path = "support/ovh_server.rs"]
mod ovh_server;
#[path = "support/smtp_server.rs"]
mod smtp_server;

use common::*;
use ovh_server::OvhServer;
use serde_json::{json, Value};
use smtp_server::SmtpServer;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn smtp_env(smtp: &SmtpServer) -> Vec<(String, String)> {
    vec![
        ("MAIL_DRIVER".into(), "smtp".into()),
        ("MAIL_HOST".into(), "127.0.0.1".into()),
        ("MAIL_PORT".into(), smtp.port().to_string()),
        ("MAIL_ENCRYPTION".into(), "".into()),
        ("MAIL_FROM_ADDRESS".into(), "no-reply@sip.example.org".into()),
    ]
}

fn ovh_env(ovh: &OvhServer) -> Vec<(String, String)> {
    vec![
        ("OVH_APP_KEY".into(), "appkey".into()),
        ("OVH_APP_SECRET".into(), "appsecret".into()),
        ("OVH_APP_CONSUMER_KEY".into(), "consumer".into()),
        ("OVH_APP_SENDER".into(), "FlexiAPI".into()),
        ("OVH_APP_ENDPOINT".into(), ovh.base_url()),
    ]
}

fn start(base: &[(&str, &str)], extra: Vec<(String, String)>) -> Server {
    let mut all: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    all.extend(extra);
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(&refs)
}

fn creation_token(server: &Server, admin_key: &str) -> String {
    let resp = server.post("/api/account_creation_tokens").key(admin_key).send().expect(201);
    resp.json()["token"].as_str().expect("token").to_string()
}

fn count_where(server: &Server, sql: &str) -> i64 {
    server.db().query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Builds the library's App on the server's database, to call services the
/// portal will expose over HTTP (e.g. the `/email/{hash}` confirmation).
fn library_app(server: &Server) -> flexiapi::app::App {
    let empty = server.dir.path().join("lib.env");
    std::fs::write(&empty, "").unwrap();
    let overrides: Vec<(&str, String)> = server.env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let config = flexiapi::config::Config::load(Some(&empty), &overrides).expect("config");
    flexiapi::app::App::new(config).expect("app")
}

// --- tokens ---

#[test]
fn request_tokens_are_exchanged_once_after_validation() {
    let server = Server::start(&[]);
    let resp = server.post("/api/account_creation_request_tokens").send().expect(201);
    let body = resp.json();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 13);
    assert_eq!(body["validation_url"], json!(server.url(&format!("/creation_token/check/{token}"))));

    let exchange = |t: &str| {
        server
            .post("/api/account_creation_tokens/using-account-creation-request-token")
            .json(json!({"account_creation_request_token": t}))
            .send()
    };
    server
        .post("/api/account_creation_tokens/using-account-creation-request-token")
        .json(json!({}))
        .send()
        .expect_invalid("account_creation_request_token");
    exchange("tooshort").expect_invalid("account_creation_request_token");
    exchange("abcdefghijklm").expect_invalid("account_creation_request_token");
    // Not validated yet.
    assert_eq!(exchange(&token).expect(404).json(), json!({"message": ""}));
    assert_eq!(server.count("account_creation_tokens"), 0);

    server.db().execute("UPDATE account_creation_request_tokens SET validated_at = '2024-01-01 00:00:00'", []).unwrap();
    let created = exchange(&token).expect(201).json()["token"].as_str().unwrap().to_string();
    assert_eq!(created.len(), 13);
    let (used, linked): (bool, i64) = server
        .db()
        .query_row("SELECT used, acc_creation_token_id FROM account_creation_request_tokens", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(used);
    assert_eq!(
        linked,
        count_where(&server, &format!("SELECT id FROM account_creation_tokens WHERE token = '{created}'"))
    );
    exchange(&token).expect_invalid("account_creation_request_token");
    assert_eq!(server.count("account_creation_tokens"), 1);
}

#[test]
fn request_token_validation_service() {
    let server = Server::start(&[]);
    let token = server.post("/api/account_creation_request_tokens").send().expect(201).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let app = library_app(&server);
    assert!(flexiapi::services::tokens::validate_request_token(&app, "unknown").is_err());
    let validated = flexiapi::services::tokens::validate_request_token(&app, &token).unwrap();
    assert!(validated.validated_at.is_some());
    server
        .post("/api/account_creation_tokens/using-account-creation-request-token")
        .json(json!({"account_creation_request_token": token}))
        .send()
        .expect(201);
}

#[test]
fn admin_creation_tokens() {
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let (_, user) = account_with_key(&server, &admin, "someuser", "secret123");
    server.post("/api/account_creation_tokens").key(&user).send().expect(403);
    server.post("/api/account_creation_tokens").send().expect(422);
    let token = creation_token(&server, &admin);
    assert_eq!(
        count_where(
            &server,
            &format!("SELECT count(*) FROM account_creation_tokens WHERE token = '{token}' AND used = 0")
        ),
        1
    );
}

fn pusher_script(dir: &std::path::Path, exit: i32) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let record = dir.join("pusher-args.txt");
    let script = dir.join(format!("pusher-{exit}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\necho done\nexit {exit}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, record)
}

#[test]
fn send_by_push_runs_the_pusher_once_per_device() {
    // No pusher configured: 503 and nothing stored.
    let bare = Server::start(&[]);
    let fields = json!({"pn_provider": "fcm", "pn_param": "project-1", "pn_prid": "device-token-1"});
    let resp = bare.post("/api/account_creation_tokens/send-by-push").json(fields.clone()).send().expect(503);
    assert_eq!(resp.json()["message"], "Token not sent");
    assert_eq!(bare.count("account_creation_tokens"), 0);
    drop(bare);

    let dir = TempDir::new();
    let (script, record) = pusher_script(dir.path(), 0);
    let server = Server::start(&[
        ("APP_FLEXISIP_PUSHER_PATH", script.to_str().unwrap()),
        ("APP_FLEXISIP_PUSHER_FIREBASE_KEY", "firebase-key"),
    ]);
    for missing in ["pn_provider", "pn_param", "pn_prid"] {
        let mut body = fields.clone();
        body[missing] = Value::Null;
        server.post("/api/account_creation_tokens/send-by-push").json(body).send().expect_invalid(missing);
    }
    server.post("/api/account_creation_tokens/send-by-push").json(fields.clone()).send().expect(200);
    let token: String = server.db().query_row("SELECT token FROM account_creation_tokens", [], |r| r.get(0)).unwrap();
    let args: Vec<String> = std::fs::read_to_string(&record).unwrap().lines().map(str::to_string).collect();
    assert_eq!(
        args,
        vec![
            "--pn-provider",
            "fcm",
            "--pn-param",
            "project-1",
            "--pn-prid",
            "device-token-1",
            "--customPayload",
            &format!("{{\"token\":\"{token}\"}}"),
            "--key",
            "firebase-key"
        ]
    );
    // A second token for the same device too soon: 403 (seed 003), nothing sent.
    server.post("/api/account_creation_tokens/send-by-push").json(fields.clone()).send().expect(403);
    assert_eq!(server.count("account_creation_tokens"), 1);
    assert_eq!(std::fs::read_to_string(&record).unwrap().lines().count(), 10);

    // apns: background push type, no key.
    std::fs::remove_file(&record).unwrap();
    let apns = json!({"pn_provider": "apns", "pn_param": "ABCD.org.linphone.phone.voip", "pn_prid": "prid-2"});
    server.post("/api/account_creation_tokens/send-by-push").json(apns).send().expect(200);
    let args = std::fs::read_to_string(&record).unwrap();
    assert!(args.ends_with("--apple-push-type\nBackground\n"), "{args}");

    // The token received by push creates an account.
    let resp = server
        .post("/api/accounts/with-account-creation-token")
        .json(json!({"username": "pushed1", "password": "secret123", "algorithm": "SHA-256", "account_creation_token": token}))
        .send()
        .expect(200);
    assert_eq!(resp.json()["activated"], false);
}

#[test]
fn a_failing_pusher_answers_503_and_stores_nothing() {
    let dir = TempDir::new();
    let (script, _) = pusher_script(dir.path(), 3);
    let server = Server::start(&[("APP_FLEXISIP_PUSHER_PATH", script.to_str().unwrap())]);
    let fields = json!({"pn_provider": "fcm", "pn_param": "p", "pn_prid": "d"});
    server.post("/api/account_creation_tokens/send-by-push").json(fields.clone()).send().expect(503);
    // Not throttled: nothing was sent.
    server.post("/api/account_creation_tokens/send-by-push").json(fields).send().expect(503);
    assert_eq!(server.count("account_creation_tokens"), 0);
}

#[test]
fn auth_tokens_become_api_keys() {
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let (id, user_key) = account_with_key(&server, &admin, "attacher", "secret123");
    let resp = server.post("/api/accounts/auth_token").send().expect(201);
    let body = resp.json();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32);
    assert!(body["id"].is_i64() && body["created_at"].as_str().unwrap().ends_with(".000000Z"));

    server.get(&format!("/api/accounts/me/api_key/{token}")).send().expect(404);
    server.get(&format!("/api/accounts/auth_token/{token}/attach")).send().expect(422);
    server.get(&format!("/api/accounts/auth_token/{token}/attach")).key(&user_key).send().expect(200);
    server.get(&format!("/api/accounts/auth_token/{token}/attach")).key(&user_key).send().expect(404);
    server.get("/api/accounts/auth_token/wrong_token/attach").key(&user_key).send().expect(404);
    let resp = server.get(&format!("/api/accounts/me/api_key/{token}")).send().expect(200);
    let key = resp.json()["api_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 40);
    assert!(resp.header("Set-Cookie").unwrap().starts_with(&format!("x-api-key={key};")));
    server.get(&format!("/api/accounts/me/api_key/{token}")).send().expect(404);
    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["id"], json!(id));
    // The previous key of that account stopped working.
    server.get("/api/accounts/me").key(&user_key).send().expect(401);

    // Expired tokens (older than 5 minutes) are refused.
    let old = server.post("/api/accounts/auth_token").send().expect(201).json()["token"].as_str().unwrap().to_string();
    server.db().execute("UPDATE auth_tokens SET created_at = '2020-01-01 00:00:00' WHERE token = ?1", [&old]).unwrap();
    server.get(&format!("/api/accounts/auth_token/{old}/attach")).key(&key).send().expect(404);
}

// --- public sign-up by email ---

#[test]
fn dangerous_and_registration_switches_hide_public_endpoints() {
    let server = Server::start(&[]);
    let body = json!({"username": "someone", "password": "secret123", "algorithm": "SHA-256", "email": "a@b.org", "account_creation_token": "x"});
    assert_eq!(
        server.post("/api/accounts/public").json(body.clone()).send().expect(404).json(),
        json!({"message": ""})
    );
    server.get("/api/accounts/+3312345678/info-by-phone").send().expect(404);
    server.post("/api/accounts/recover-by-phone").json(json!({})).send().expect(404);
    server.get("/api/accounts/someone@sip.example.org/recover/abcdefghijklm").send().expect(404);
    drop(server);
    let server = Server::start(&[("APP_DANGEROUS_ENDPOINTS", "true"), ("PUBLIC_REGISTRATION", "false")]);
    server.post("/api/accounts/public").json(body).send().expect(404);
    // PHONE_AUTHENTICATION is off by default: phone paths are gated too.
    server.get("/api/accounts/+3312345678/info-by-phone").send().expect(404);
    server.post("/api/accounts/recover-by-phone").json(json!({})).send().expect(404);
    server
        .post("/api/accounts/someone@sip.example.org/activate/phone")
        .json(json!({"confirmation_key": "1234"}))
        .send()
        .expect(404);
}

#[test]
fn email_registration_from_sign_up_to_digest_login() {
    let smtp = SmtpServer::start();
    let server = start(&[("APP_DANGEROUS_ENDPOINTS", "true")], smtp_env(&smtp));
    let (_, _, admin) = server.admin("administrator");
    let token = creation_token(&server, &admin);
    let accounts_before = server.count("accounts");

    let base = json!({"username": "newuser", "password": "secret123", "algorithm": "SHA-256", "email": "new@example.net", "account_creation_token": token});
    let without = |field: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(field);
        b
    };
    server.post("/api/accounts/public").json(without("email")).send().expect_invalid("email");
    server
        .post("/api/accounts/public")
        .json(without("account_creation_token"))
        .send()
        .expect_invalid("account_creation_token");
    server.post("/api/accounts/public").json(without("algorithm")).send().expect_invalid("algorithm");
    let mut short = base.clone();
    short["password"] = json!("12345");
    server.post("/api/accounts/public").json(short).send().expect_invalid("password");
    let mut upper = base.clone();
    upper["username"] = json!("NewUser");
    server.post("/api/accounts/public").json(upper).send().expect_invalid("username");
    let mut elsewhere = base.clone();
    elsewhere["domain"] = json!("evil.example.com");
    server.post("/api/accounts/public").json(elsewhere).send().expect_invalid("domain");
    let mut bad_token = base.clone();
    bad_token["account_creation_token"] = json!("abcdefghijklm");
    server.post("/api/accounts/public").json(bad_token).send().expect_invalid("account_creation_token");
    assert_eq!(server.count("accounts"), accounts_before);
    assert_eq!(server.count("passwords"), accounts_before);

    let resp = server
        .post("/api/accounts/public")
        .header("User-Agent", "LinphoneTest/1.0")
        .json(base.clone())
        .send()
        .expect(200);
    let account = resp.json();
    assert_eq!(account["activated"], false);
    assert_eq!(account["username"], "newuser");
    assert_eq!(account["domain"], DOMAIN);
    assert_eq!(account["user_agent"], "LinphoneTest/1.0");
    assert!(account.get("confirmation_key").is_none(), "keys are hidden: {account}");
    let (used, account_id): (bool, i64) = server
        .db()
        .query_row("SELECT used, account_id FROM account_creation_tokens WHERE token = ?1", [&token], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(used);
    assert_eq!(json!(account_id), account["id"]);

    // The token works once; the username is taken.
    server.post("/api/accounts/public").json(base.clone()).send().expect_invalid("account_creation_token");
    let mut again = base.clone();
    again["account_creation_token"] = json!(creation_token(&server, &admin));
    server.post("/api/accounts/public").json(again).send().expect_invalid("username");

    let mails = smtp.wait_for(1, WAIT);
    assert_eq!(mails[0].rcpt_to, vec!["new@example.net".to_string()]);
    let link = mails[0].find_link(&server.url("/authenticate/email/")).expect("activation link");
    let key = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(key.len(), 13);

    let activate = |k: &str| {
        server.post("/api/accounts/newuser@sip.example.org/activate/email").json(json!({"confirmation_key": k}))
    };
    activate("short").send().expect_invalid("confirmation_key");
    activate("abcdefghijklm").send().expect(404);
    server
        .post("/api/accounts/nobody@sip.example.org/activate/email")
        .json(json!({"confirmation_key": key}))
        .send()
        .expect(404);
    assert_eq!(server.get("/api/accounts/newuser@sip.example.org/info").send().expect(200).json()["activated"], false);
    let activated = activate(&key).send().expect(200).json();
    assert_eq!(activated["activated"], true);
    // The key works once.
    activate(&key).send().expect(404);
    assert_eq!(
        server.get("/api/accounts/newuser@sip.example.org/info").send().expect(200).json(),
        json!({"activated": true, "realm": null})
    );
    let me = server.get("/api/accounts/me").digest("newuser", DOMAIN, "secret123", None).expect(200).json();
    assert_eq!(me["email"], "new@example.net");
}

#[test]
fn registration_mail_failure_is_not_fatal() {
    // MAIL_DRIVER=smtp pointing at a closed port.
    let port = free_port().to_string();
    let server = Server::start(&[
        ("APP_DANGEROUS_ENDPOINTS", "true"),
        ("MAIL_DRIVER", "smtp"),
        ("MAIL_HOST", "127.0.0.1"),
        ("MAIL_PORT", &port),
    ]);
    let (_, _, admin) = server.admin("administrator");
    let token = creation_token(&server, &admin);
    server
        .post("/api/accounts/public")
        .json(json!({"username": "lonely", "password": "secret123", "algorithm": "MD5", "email": "l@example.net", "account_creation_token": token}))
        .send()
        .expect(200);
    assert!(server.log().contains("not sent"), "{}", server.log());
}

#[test]
fn with_account_creation_token_rules() {
    let server = Server::start(&[("ACCOUNT_BLACKLISTED_USERNAMES", "foobar,blacklisted,username-.*")]);
    let (_, _, admin) = server.admin("administrator");
    let create = |username: &str, token: &str| {
        server
            .post("/api/accounts/with-account-creation-token")
            .json(json!({"username": username, "password": "secret123", "algorithm": "SHA-256", "account_creation_token": token, "dtmf_protocol": "rfc2833"}))
            .send()
    };
    create("valid-username", "unknowntoken1").expect_invalid("account_creation_token");
    let token = creation_token(&server, &admin);
    create("blacklisted", &token).expect_invalid("username");
    create("username-gnap", &token).expect_invalid("username");
    create("0612345678", &token).expect_invalid("username");
    let before = server.count("accounts");
    let account = create("valid-username", &token).expect(200).json();
    assert_eq!(account["dtmf_protocol"], "rfc2833");
    assert_eq!(server.count("accounts"), before + 1);
    create("other-username", &token).expect_invalid("account_creation_token");
    // Tombstoned usernames cannot come back through public paths.
    let id = account["id"].as_i64().unwrap();
    server.delete(&format!("/api/accounts/{id}")).key(&admin).send().expect(200);
    create("valid-username", &creation_token(&server, &admin)).expect_invalid("username");
}

#[test]
fn activation_expiry_answers_403() {
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let account = create_account(
        &server,
        &admin,
        json!({"username": "expiring", "password": "secret123", "algorithm": "MD5", "confirmation_key_expires": "2020-01-01 00:00:00"}),
    );
    let key = account["confirmation_key"].as_str().unwrap();
    let resp = server
        .post("/api/accounts/expiring@sip.example.org/activate/email")
        .json(json!({"code": key}))
        .send()
        .expect(403);
    assert_eq!(resp.json()["message"], "Activation expired");
    server.db().execute("DELETE FROM activation_expirations", []).unwrap();
    server.post("/api/accounts/expiring@sip.example.org/activate/email").json(json!({"code": key})).send().expect(200);
}

// --- phone: sign-up, recovery, change ---

fn phone_server(ovh: &OvhServer, extra: &[(&str, &str)]) -> Server {
    let mut base = vec![("APP_DANGEROUS_ENDPOINTS", "true"), ("PHONE_AUTHENTICATION", "true"), ("APP_NAME", "Linhome")];
    base.extend_from_slice(extra);
    start(&base, ovh_env(ovh))
}

fn pin_of(job: &ovh_server::SmsJob) -> String {
    job.message.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 4).expect("a PIN").to_string()
}

#[test]
fn phone_registration_and_recovery() {
    let ovh = OvhServer::start("appkey", "appsecret", "consumer");
    let server = phone_server(&ovh, &[]);
    let (_, _, admin) = server.admin("administrator");
    let token = creation_token(&server, &admin);
    let sign_up = |phone: &str, token: &str| {
        server
            .post("/api/accounts/public")
            .json(json!({"phone": phone, "password": "secret123", "algorithm": "SHA-256", "account_creation_token": token}))
            .send()
    };
    sign_up("username", &token).expect_invalid("phone");
    assert!(ovh.jobs().is_empty());
    let account = sign_up("+33612345678", &token).expect(200).json();
    assert_eq!(account["username"], "+33612345678");
    assert_eq!(account["phone"], "+33612345678");
    sign_up("+33612345678", &creation_token(&server, &admin)).expect_invalid("phone");

    let jobs = ovh.wait_for(1, WAIT);
    assert_eq!(jobs[0].receivers, vec!["+33612345678".to_string()]);
    assert!(jobs[0].message.starts_with("Your Linhome creation code is "), "{}", jobs[0].message);
    let pin = pin_of(&jobs[0]);
    let wrong = if pin == "1234" { "4321" } else { "1234" };
    let activate = |k: &str| {
        server.post("/api/accounts/+33612345678@sip.example.org/activate/phone").json(json!({"confirmation_key": k}))
    };
    activate("12a4").send().expect_invalid("confirmation_key");
    activate(wrong).send().expect(404);
    assert_eq!(count_where(&server, "SELECT activated FROM accounts WHERE username = '+33612345678'"), 0);
    activate(&pin).send().expect(200);

    // info-by-phone
    let info = server.get("/api/accounts/+33612345678/info-by-phone").send().expect(200).json();
    assert_eq!(info, json!({"activated": true, "realm": null, "phone": true}));
    server.get("/api/accounts/+1234/info-by-phone").send().expect(404);
    server.get("/api/accounts/user@sip.example.org/info-by-phone").send().expect_invalid("phone");

    // recovery by phone
    server
        .post("/api/accounts/recover-by-phone")
        .json(json!({"phone": "+33612345678"}))
        .send()
        .expect_invalid("account_creation_token");
    server
        .post("/api/accounts/recover-by-phone")
        .json(json!({"phone": "+33612345678", "account_creation_token": "abcdefghijklm"}))
        .send()
        .expect_invalid("account_creation_token");
    let token = creation_token(&server, &admin);
    server
        .post("/api/accounts/recover-by-phone")
        .json(json!({"phone": "+33699999999", "account_creation_token": token}))
        .send()
        .expect(404);
    server
        .post("/api/accounts/recover-by-phone")
        .json(json!({"phone": "+33612345678", "account_creation_token": token}))
        .send()
        .expect(200);
    server
        .post("/api/accounts/recover-by-phone")
        .json(json!({"phone": "+33612345678", "account_creation_token": token}))
        .send()
        .expect_invalid("account_creation_token");
    let jobs = ovh.wait_for(2, WAIT);
    assert!(jobs[1].message.starts_with("Your Linhome recovery code is "));
    let pin = pin_of(&jobs[1]);
    let path = format!("/api/accounts/+33612345678@sip.example.org/recover/{pin}");
    let recovered = server.get(&path).send().expect(200).json();
    assert_eq!(recovered["passwords"][0]["algorithm"], "SHA-256");
    assert_eq!(recovered["passwords"][0]["password"].as_str().unwrap().len(), 64);
    server.get(&path).send().expect(404);
}

#[test]
fn phone_change_with_sms_code() {
    let ovh = OvhServer::start("appkey", "appsecret", "consumer");
    let server = phone_server(&ovh, &[]);
    let (_, _, admin) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin, "phoneuser", "secret123");
    create_account(
        &server,
        &admin,
        json!({"username": "otheruser", "password": "secret123", "algorithm": "MD5", "phone": "+33700000000"}),
    );

    server
        .post("/api/accounts/me/phone/request")
        .key(&key)
        .json(json!({"phone": "blabla"}))
        .send()
        .expect_invalid("phone");
    server
        .post("/api/accounts/me/phone/request")
        .key(&key)
        .json(json!({"phone": "+33700000000"}))
        .send()
        .expect_invalid("phone");
    server.post("/api/accounts/me/phone").key(&key).json(json!({"code": "1234"})).send().expect(404);
    server.post("/api/accounts/me/phone/request").key(&key).json(json!({"phone": "+33611111111"})).send().expect(200);
    let jobs = ovh.wait_for(1, WAIT);
    assert!(jobs[0].message.starts_with("Your Linhome validation code is "));
    let pin = pin_of(&jobs[0]);
    server.post("/api/accounts/me/phone").key(&key).json(json!({"code": "wrong"})).send().expect_invalid("code");
    let wrong = if pin == "1234" { "4321" } else { "1234" };
    // A wrong code spends the request.
    server.post("/api/accounts/me/phone").key(&key).json(json!({"code": wrong})).send().expect(403);
    server.post("/api/accounts/me/phone").key(&key).json(json!({"code": pin})).send().expect(404);
    assert_eq!(server.get("/api/accounts/me").key(&key).send().expect(200).json()["phone"], Value::Null);

    server.post("/api/accounts/me/phone/request").key(&key).json(json!({"phone": "+33611111111"})).send().expect(200);
    let pin = pin_of(&ovh.wait_for(2, WAIT)[1]);
    let account = server.post("/api/accounts/me/phone").key(&key).json(json!({"code": pin})).send().expect(200).json();
    assert_eq!(account["phone"], "+33611111111");
    assert_eq!(server.get("/api/accounts/me").key(&key).send().expect(200).json()["phone"], "+33611111111");
    assert_eq!(server.count("phone_change_codes"), 0);
}

#[test]
fn sms_burst_sends_no_more_than_the_limit() {
    let ovh = OvhServer::start("appkey", "appsecret", "consumer");
    let server = phone_server(&ovh, &[]);
    let (_, _, admin) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin, "burster", "secret123");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let port = server.port;
            let key = key.clone();
            std::thread::spawn(move || {
                let headers = vec![
                    ("Accept".to_string(), "application/json".to_string()),
                    ("Content-Type".to_string(), "application/json".to_string()),
                    ("x-api-key".to_string(), key),
                ];
                http_request(
                    port,
                    "POST",
                    "/api/accounts/me/phone/request",
                    &headers,
                    Some(br#"{"phone":"+33622222222"}"#),
                )
                .unwrap()
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ovh.jobs().len(), 3);
}

#[test]
fn sms_failure_answers_503_for_sending_endpoints() {
    // PHONE_AUTHENTICATION on but no OVH credentials.
    let server = Server::start(&[("PHONE_AUTHENTICATION", "true")]);
    let (_, _, admin) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin, "nosmsuser", "secret123");
    server.post("/api/accounts/me/phone/request").key(&key).json(json!({"phone": "+33633333333"})).send().expect(503);
}

// --- email change, password, recovery by email ---

#[test]
fn email_change_is_confirmed_by_the_mailed_link() {
    let smtp = SmtpServer::start();
    let server = start(&[("ACCOUNT_EMAIL_UNIQUE", "true")], smtp_env(&smtp));
    let (_, _, admin) = server.admin("administrator");
    let (id, key) = account_with_key(&server, &admin, "mailuser", "secret123");
    create_account(
        &server,
        &admin,
        json!({"username": "taken1", "password": "secret123", "algorithm": "MD5", "email": "taken@example.net"}),
    );
    server.db().execute("UPDATE accounts SET email = 'old@example.net' WHERE id = ?1", [id]).unwrap();

    let request =
        |email: &str| server.post("/api/accounts/me/email/request").key(&key).json(json!({"email": email})).send();
    request("gnap").expect_invalid("email");
    request("old@example.net").expect_invalid("email");
    request("taken@example.net").expect_invalid("email");
    assert_eq!(server.count("email_changed"), 0);
    request("new@example.net").expect(200);
    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["email_changed"]["new_email"], "new@example.net");
    assert_eq!(me["email"], "old@example.net");

    let mails = smtp.wait_for(1, WAIT);
    assert_eq!(mails[0].rcpt_to, vec!["new@example.net".to_string()]);
    let link = mails[0].find_link(&server.url("/email/")).expect("link");
    let hash = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(hash.len(), 16);

    let app = library_app(&server);
    let account = flexiapi::services::accounts::reload(&app, id).unwrap();
    assert!(flexiapi::services::profile::confirm_email_change(&app, &account, "wronghash1234567").is_err());
    let updated = flexiapi::services::profile::confirm_email_change(&app, &account, &hash).unwrap();
    assert_eq!(updated.email.as_deref(), Some("new@example.net"));
    assert!(flexiapi::services::profile::confirm_email_change(&app, &updated, &hash).is_err());
    let mails = smtp.wait_for(2, WAIT);
    assert_eq!(mails[1].rcpt_to, vec!["new@example.net".to_string()]);
    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["email"], "new@example.net");
    assert_eq!(me["email_changed"], Value::Null);
}

#[test]
fn sending_limits_count_remote_clients_not_this_machine() {
    let smtp = SmtpServer::start();
    let server = start(&[], smtp_env(&smtp));
    let (_, _, admin) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin, "mailuser", "secret123");
    let request = |email: String, relayed_for: Option<&str>| {
        let mut req = server.post("/api/accounts/me/email/request").key(&key).json(json!({ "email": email }));
        if let Some(ip) = relayed_for {
            req = req.header("X-Forwarded-For", ip);
        }
        req.send().status
    };
    // One remote client (named by the local proxy): 20 mails an hour.
    let remote: Vec<u16> = (0..24).map(|i| request(format!("r{i}@example.net"), Some("203.0.113.5"))).collect();
    assert_eq!(remote.iter().filter(|s| **s == 200).count(), 20, "{remote:?}");
    assert!(remote[20..].iter().all(|s| *s == 429), "{remote:?}");
    // Another remote client is counted apart.
    assert_eq!(request("other@example.net".into(), Some("203.0.113.6")), 200);
    // This machine itself (an operator's script): no address to count, only
    // the per-address limit applies.
    let local: Vec<u16> = (0..24).map(|i| request(format!("l{i}@example.net"), None)).collect();
    assert!(local.iter().all(|s| *s == 200), "{local:?}");
    let same: Vec<u16> = (0..7).map(|_| request("same@example.net".into(), None)).collect();
    assert_eq!(same.iter().filter(|s| **s == 429).count(), 2, "{same:?}");
}

#[test]
fn password_algorithm_switch() {
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let (id, key) = account_with_key(&server, &admin, "pwduser", "secret123");
    let change = |body: Value| server.post("/api/accounts/me/password").key(&key).json(body).send();
    change(json!({"algorithm": "BLA", "password": "newsecret1"})).expect_invalid("algorithm");
    change(json!({"algorithm": "MD5", "password": "newsecret1"})).expect_invalid("old_password");
    let resp = change(json!({"algorithm": "MD5", "password": "newsecret1", "old_password": "wrong-one"}))
        .expect_invalid("old_password");
    assert_eq!(resp.json()["errors"]["old_password"][0], "Incorrect old password");
    change(json!({"algorithm": "MD5", "password": "short", "old_password": "secret123"})).expect_invalid("password");
    let resp = change(json!({"algorithm": "MD5", "password": "newsecret1", "old_password": "secret123"})).expect(200);
    assert_eq!(resp.json(), json!([]));
    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["passwords"], json!([{"algorithm": "MD5"}]));
    assert_eq!(count_where(&server, &format!("SELECT count(*) FROM passwords WHERE account_id = {id}")), 1);

    // Old credentials fail, new ones work (an MD5 challenge only now).
    let first = server.get("/api/accounts/me").header("From", "sip:pwduser@sip.example.org").send().expect(401);
    let challenges = first.headers_all("WWW-Authenticate");
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    let challenge = Challenge::parse(&challenges[0]);
    assert_eq!(challenge.algorithm, "MD5");
    let auth = challenge.authorization("GET", "/api/accounts/me", "pwduser", "secret123", 1, "abcdef01");
    server
        .get("/api/accounts/me")
        .header("From", "sip:pwduser@sip.example.org")
        .header("Authorization", &auth)
        .send()
        .expect(401);
    server.get("/api/accounts/me").digest("pwduser", DOMAIN, "newsecret1", Some("MD5")).expect(200);

    // A first password (no stored row) needs no old one.
    server.db().execute("DELETE FROM passwords WHERE account_id = ?1", [id]).unwrap();
    change(json!({"algorithm": "SHA-256", "password": "thirdsecret"})).expect(200);
    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["passwords"], json!([{"algorithm": "SHA-256"}]));
}

#[test]
fn admin_recovery_by_email() {
    let smtp = SmtpServer::start();
    let server = start(&[], smtp_env(&smtp));
    let (_, _, admin) = server.admin("administrator");
    let (_, user) = account_with_key(&server, &admin, "recoverme", "secret123");
    let with_mail = create_account(
        &server,
        &admin,
        json!({"username": "hasmail", "password": "secret123", "algorithm": "MD5", "email": "has@example.net", "activated": true}),
    );
    let no_mail =
        create_account(&server, &admin, json!({"username": "nomail", "password": "secret123", "algorithm": "MD5"}));
    let path = |a: &Value| format!("/api/accounts/{}/recover-by-email", a["id"]);
    server.post(&path(&with_mail)).key(&user).send().expect(403);
    server.post(&path(&no_mail)).key(&admin).send().expect_invalid("email");
    server.post("/api/accounts/999999/recover-by-email").key(&admin).send().expect(404);
    let account = server.post(&path(&with_mail)).key(&admin).send().expect(200).json();
    let key = account["confirmation_key"].as_str().unwrap();
    let token = account["provisioning_token"].as_str().unwrap();
    let mails = smtp.wait_for(1, WAIT);
    let text = mails[0].body_text();
    assert!(text.contains(&server.url(&format!("/authenticate/email/{key}"))), "{text}");
    assert!(text.contains(&format!("/provisioning/qrcode/{token}?reset_password=1")), "{text}");
}

// --- contacts, types, actions, vCards ---

#[test]
fn contacts_types_actions_and_vcards() {
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let (owner_id, owner_key) = account_with_key(&server, &admin, "owner1", "secret123");
    let alice = create_account(
        &server,
        &admin,
        json!({"username": "alice1", "password": "secret123", "algorithm": "MD5", "dtmf_protocol": "sipinfo", "display_name": "Alice, \"A\"; Team\\1", "email": "alice@example.net"}),
    );
    let bob =
        create_account(&server, &admin, json!({"username": "bobby1", "password": "secret123", "algorithm": "MD5"}));
    let (alice_id, bob_id) = (alice["id"].as_i64().unwrap(), bob["id"].as_i64().unwrap());

    // Types
    server.post("/api/account_types").key(&owner_key).json(json!({"key": "phone"})).send().expect(403);
    server.post("/api/account_types").key(&admin).json(json!({})).send().expect_invalid("key");
    server.post("/api/account_types").key(&admin).json(json!({"key": "Phone"})).send().expect_invalid("key");
    let t = server.post("/api/account_types").key(&admin).json(json!({"key": "phone"})).send().expect(201).json();
    let type_id = t["id"].as_i64().unwrap();
    assert_eq!(t, json!({"id": type_id, "key": "phone"}));
    server.post("/api/account_types").key(&admin).json(json!({"key": "phone"})).send().expect_invalid("key");
    let other = server.post("/api/account_types").key(&admin).json(json!({"key": "door"})).send().expect(201).json();
    server
        .put(&format!("/api/account_types/{}", other["id"]))
        .key(&admin)
        .json(json!({"key": "gate"}))
        .send()
        .expect(200);
    assert_eq!(
        server.get(&format!("/api/account_types/{}", other["id"])).key(&admin).send().expect(200).json()["key"],
        "gate"
    );
    server.put("/api/account_types/9999").key(&admin).json(json!({"key": "gate"})).send().expect(404);
    assert_eq!(
        server.delete(&format!("/api/account_types/{}", other["id"])).key(&admin).send().expect(200).text(),
        "1"
    );
    assert_eq!(
        server.get("/api/account_types").key(&admin).send().expect(200).json(),
        json!([{"id": type_id, "key": "phone"}])
    );
    let attach = format!("/api/accounts/{alice_id}/types/{type_id}");
    server.post(&attach).key(&admin).send().expect(200);
    server.post(&attach).key(&admin).send().expect(403);
    server.post(&format!("/api/accounts/{alice_id}/types/9999")).key(&admin).send().expect(404);
    assert_eq!(
        server.get(&format!("/api/accounts/{alice_id}")).key(&admin).send().expect(200).json()["types"],
        json!([{"id": type_id, "key": "phone"}])
    );

    // Actions
    let actions = format!("/api/accounts/{alice_id}/actions");
    server.get(&format!("/api/accounts/{bob_id}/actions")).key(&admin).send().expect(403);
    server
        .post(&format!("/api/accounts/{bob_id}/actions"))
        .key(&admin)
        .json(json!({"key": "open", "code": "12"}))
        .send()
        .expect(403);
    server.get("/api/accounts/9999/actions").key(&admin).send().expect(404);
    server.post(&actions).key(&admin).json(json!({"code": "123"})).send().expect_invalid("key");
    server.post(&actions).key(&admin).json(json!({"key": "open", "code": "Abc1234"})).send().expect_invalid("code");
    let action =
        server.post(&actions).key(&admin).json(json!({"key": "action_key", "code": "123"})).send().expect(201).json();
    let action_id = action["id"].as_i64().unwrap();
    let temp = server.post(&actions).key(&admin).json(json!({"key": "temp", "code": "9"})).send().expect(201).json();
    server
        .put(&format!("{actions}/{}", temp["id"]))
        .key(&admin)
        .json(json!({"key": "temp2", "code": "8"}))
        .send()
        .expect(200);
    assert_eq!(server.get(&format!("{actions}/{}", temp["id"])).key(&admin).send().expect(200).json()["key"], "temp2");
    // On update the fields are not required: an absent one keeps its value; a bad one is still refused.
    let updated = server
        .put(&format!("{actions}/{}", temp["id"]))
        .key(&admin)
        .json(json!({"code": "77"}))
        .send()
        .expect(200)
        .json();
    assert_eq!((updated["key"].as_str(), updated["code"].as_str()), (Some("temp2"), Some("77")));
    server
        .put(&format!("{actions}/{}", temp["id"]))
        .key(&admin)
        .json(json!({"key": "Bad Key"}))
        .send()
        .expect_invalid("key");
    assert_eq!(server.get(&format!("{actions}/{}", temp["id"])).key(&admin).send().expect(200).json()["code"], "77");
    assert_eq!(server.delete(&format!("{actions}/{}", temp["id"])).key(&admin).send().expect(200).text(), "1");
    server.get(&format!("{actions}/{}", temp["id"])).key(&admin).send().expect(404);
    assert_eq!(
        server.get(&actions).key(&admin).send().expect(200).json(),
        json!([{"id": action_id, "key": "action_key", "code": "123"}])
    );

    // Contacts
    let add = |c: i64| server.post(&format!("/api/accounts/{owner_id}/contacts/{c}")).key(&admin).send();
    add(alice_id).expect(200);
    add(alice_id).expect(403);
    add(bob_id).expect(200);
    add(9999).expect(404);
    let list = server.get(&format!("/api/accounts/{owner_id}/contacts")).key(&admin).send().expect(200).json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let mine = server.get("/api/accounts/me/contacts").key(&owner_key).send().expect(200).json();
    assert_eq!(mine[0]["username"], "alice1");
    assert_eq!(mine[0]["activated"], false);
    assert!(mine[0].get("email").is_none(), "a user does not see contacts' emails: {mine}");
    server.get("/api/accounts/me/contacts/alice1@sip.example.org").key(&owner_key).send().expect(200);
    server.get("/api/accounts/me/contacts/administrator@sip.example.org").key(&owner_key).send().expect(404);

    let vcards = server.get("/contacts/vcard").key(&owner_key).send().expect(200);
    assert_eq!(vcards.header("Content-Type").as_deref(), Some("text/vcard; charset=utf-8"));
    let alice_card = "BEGIN:VCARD\r\nVERSION:4.0\r\nKIND:individual\r\nIMPP:sip:alice1@sip.example.org\r\n\
FN:Alice\\, \"A\"\\; Team\\\\1\r\nX-LINPHONE-ACCOUNT-DTMF-PROTOCOL:sipinfo\r\nX-LINPHONE-ACCOUNT-TYPE:phone\r\n\
X-LINPHONE-ACCOUNT-ACTION:action_key;123\r\nEND:VCARD\r\n";
    let bob_card = "BEGIN:VCARD\r\nVERSION:4.0\r\nKIND:individual\r\nIMPP:sip:bobby1@sip.example.org\r\nFN:bobby1@sip.example.org\r\nEND:VCARD\r\n";
    assert_eq!(vcards.text(), format!("{alice_card}{bob_card}"));
    let one = server.get("/contacts/vcard/bobby1@sip.example.org").key(&owner_key).send().expect(200);
    assert_eq!(one.text(), bob_card);
    server.get("/contacts/vcard/nobody1@sip.example.org").key(&owner_key).send().expect(404);
    server.get("/contacts/vcard").send().expect(422);

    assert_eq!(
        server.delete(&format!("/api/accounts/{owner_id}/contacts/{bob_id}")).key(&admin).send().expect(200).text(),
        "1"
    );
    server.delete(&format!("/api/accounts/{owner_id}/contacts/{bob_id}")).key(&admin).send().expect(403);
    assert_eq!(
        server.delete(&format!("/api/accounts/{alice_id}/types/{type_id}")).key(&admin).send().expect(200).text(),
        "1"
    );
    server.delete(&format!("/api/accounts/{alice_id}/types/{type_id}")).key(&admin).send().expect(403);
    let (_, empty_key) = account_with_key(&server, &admin, "lonely1", "secret123");
    let empty = server.get("/contacts/vcard").key(&empty_key).send().expect(200);
    assert_eq!(empty.text(), "");
}

// --- statistics ---

#[test]
fn statistics_count_known_registrations() {
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let (_, user) = account_with_key(&server, &admin, "statuser", "secret123");
    server.get("/api/statistics/day").key(&user).send().expect(403);
    server.get("/api/statistics/year").key(&admin).send().expect(404);

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let fmt = |t: i64| flexiapi::domain::time::format_sql(t);
    let hour_ago = fmt(now - 3600);
    let three_days = fmt(now - 3 * 86_400);
    let db = server.db();
    // Move the two existing accounts out of every window.
    db.execute("UPDATE accounts SET created_at = '2000-01-01 00:00:00'", []).unwrap();
    let insert = |u: &str, phone: Option<&str>, activated: bool, at: &str| {
        db.execute(
            "INSERT INTO accounts (username, domain, phone, activated, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            rusqlite::params![u, DOMAIN, phone, activated, at],
        )
        .unwrap();
    };
    insert("stat1", None, true, &hour_ago);
    insert("stat2", Some("+3301"), true, &hour_ago);
    insert("stat3", Some("+3302"), false, &hour_ago);
    insert("stat4", None, false, &three_days);
    insert("stat5", None, true, "2000-01-02 00:00:00");
    insert("elsewhere", None, true, &hour_ago);
    db.execute("UPDATE accounts SET domain = 'other.example.org' WHERE username = 'elsewhere'", []).unwrap();

    let day = server.get("/api/statistics/day").key(&admin).send().expect(200).json();
    let day = day.as_object().unwrap();
    assert_eq!(day.len(), 25);
    let key = &hour_ago[..13];
    assert_eq!(day[key], json!({"all": 3, "phone": 2, "email": 1, "activated_phone": 1, "activated_email": 1}));
    let total: i64 = day.values().map(|v| v["all"].as_i64().unwrap()).sum();
    assert_eq!(total, 3);

    let week = server.get("/api/statistic/week").key(&admin).send().expect(200).json();
    let week = week.as_object().unwrap();
    assert_eq!(week.len(), 8);
    assert_eq!(week[&three_days[..10]]["all"].as_i64().unwrap() >= 1, true);
    let total: i64 = week.values().map(|v| v["all"].as_i64().unwrap()).sum();
    assert_eq!(total, 4);
    let month = server.get("/api/statistics/month").key(&admin).send().expect(200).json();
    let n = month.as_object().unwrap().len();
    assert!((29..=32).contains(&n), "{n}");
    let keys: Vec<&String> = month.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

// --- devices (Redis) ---

struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start() -> Option<Redis> {
        let binary = require_tool("redis-server")?;
        let port = free_port();
        let child = std::process::Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Redis { child, port };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    /// One command over RESP; returns the raw first reply line.
    fn command(&self, args: &[&str]) -> String {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(out.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn devices_come_from_flexisip_redis() {
    // Switched off: 404.
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin, "deviceuser", "secret123");
    server.get("/api/accounts/me/devices").key(&key).send().expect(404);
    server.delete("/api/accounts/me/devices/urn:uuid:x").key(&key).send().expect(404);
    drop(server);

    // Redis down: an empty list, quickly.
    let dead = free_port().to_string();
    let server = Server::start(&[("DEVICES_MANAGEMENT", "true"), ("REDIS_PORT", &dead)]);
    let (_, _, admin) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin, "deviceuser", "secret123");
    let started = Instant::now();
    assert_eq!(server.get("/api/accounts/me/devices").key(&key).send().expect(200).json(), json!([]));
    assert!(started.elapsed() < Duration::from_secs(5));
    server.delete("/api/accounts/me/devices/urn:uuid:x").key(&key).send().expect(503);
    drop(server);

    let Some(redis) = Redis::start() else { return };
    let port = redis.port.to_string();
    let server = Server::start(&[("DEVICES_MANAGEMENT", "true"), ("REDIS_PORT", &port)]);
    let (_, _, admin) = server.admin("administrator");
    let (_, key) = account_with_key(&server, &admin, "deviceuser", "secret123");
    assert_eq!(server.get("/api/accounts/me/devices").key(&key).send().expect(200).json(), json!([]));
    let uuid = "urn:uuid:6f1c3a2e-9d1b-4c1e-8a53-0f1e2d3c4b5a";
    let contact = format!(
        "<sip:deviceuser@192.0.2.10:50342;transport=tls;pn-provider=apns;pn-prid=abc;fs-conn-id=1;callid=xyz;expires=3600;cseq=21;updatedAt=1700000000;alias=no;usedAsRoute=no?user-agent=LinphoneiOS%2F5.2.1%20(iPhone)>;+sip.instance=\"<{uuid}>\";+org.linphone.specs=\"groupchat\";expires=3600"
    );
    let field = format!("\"<{uuid}>\"");
    assert_eq!(redis.command(&["HSET", "fs:deviceuser@sip.example.org", &field, &contact]).trim(), ":1");
    let devices = server.get("/api/accounts/me/devices").key(&key).send().expect(200).json();
    assert_eq!(
        devices,
        json!({uuid: {"uuid": uuid, "update_time": "2023-11-14T22:13:20.000000Z", "user_agent": "LinphoneiOS/5.2.1 (iPhone)"}})
    );
    server.delete(&format!("/api/accounts/me/devices/{uuid}")).key(&key).send().expect(200);
    assert_eq!(redis.command(&["HLEN", "fs:deviceuser@sip.example.org"]).trim(), ":0");
    assert_eq!(server.get("/api/accounts/me/devices").key(&key).send().expect(200).json(), json!([]));
}

// --- messages (a real linphone-daemon) ---

const SOCKET_ERROR: &str = "The internal socket cannot be requested properly";

fn post_message(server: &Server, key: &str, to: &str, body: &str) -> Resp {
    server.post("/api/messages").key(key).json(json!({"to": to, "body": body})).send()
}

/// The daemon's stdout once it holds `needle` (delivery events go there).
fn wait_daemon_out(daemon: &LinphoneDaemon, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = daemon.out();
        if out.contains(needle) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn messages_go_through_a_real_linphone_daemon() {
    // No daemon configured: the route does not exist.
    let server = Server::start(&[]);
    let (_, _, admin) = server.admin("administrator");
    server.post("/api/messages").key(&admin).json(json!({"to": "a@b", "body": "hi"})).send().expect(404);
    drop(server);

    let Some(binary) = require_tool("linphone-daemon") else { return };
    let daemon = LinphoneDaemon::start(&binary);
    let ua = SipUa::start();
    let server = Server::start(&[("APP_LINPHONE_DAEMON_UNIX_PATH", daemon.socket.to_str().unwrap())]);
    let (_, _, admin) = server.admin("administrator");
    let (_, user) = account_with_key(&server, &admin, "msguser", "secret123");
    server.post("/api/messages").key(&user).json(json!({"to": "a@b", "body": "hi"})).send().expect(403);
    assert_ne!(
        server.post("/api/messages").json(json!({"to": "a@b", "body": "hi"})).send().status,
        200,
        "anonymous refused"
    );
    server.post("/api/messages").key(&admin).json(json!({"body": "hi"})).send().expect_invalid("to");
    server.post("/api/messages").key(&admin).json(json!({"to": "bob@sip.example.org"})).send().expect_invalid("body");

    // A sip: address: the daemon accepts it, answers an Id, and the SIP
    // MESSAGE really leaves: our UA receives it with that Id as Call-ID.
    let to = format!("sip:someone@{}", ua.host);
    let text = "Hello from FlexiAPI, ça va ? 👋";
    let resp = post_message(&server, &admin, &to, text).expect(200);
    let answer = resp.json();
    let id = answer["id"].as_str().unwrap_or_else(|| panic!("no id: {answer}")).to_string();
    assert_eq!(answer, json!({"id": id}), "exactly {{\"id\": ...}} as FlexiAPI answers");
    assert_eq!(id.len(), 10, "a linphone-daemon message id: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'~'), "{id}");
    let message = ua.receive(WAIT).expect("the SIP MESSAGE reached the UA");
    assert_eq!(message.method, "MESSAGE");
    assert_eq!(message.uri, to);
    assert_eq!(message.header("Call-ID").as_deref(), Some(id.as_str()), "the daemon's Id is the MESSAGE's Call-ID");
    assert!(message.header("Content-Type").unwrap_or_default().starts_with("text/plain"), "{message:?}");
    assert_eq!(String::from_utf8_lossy(&message.body), text);
    // The UA answered 200 OK: the daemon reports the delivery.
    let out = wait_daemon_out(&daemon, "StateDelivered");
    assert!(out.contains(&format!("Id: {id}")) && out.contains("LinphoneChatMessageStateDelivered"), "{out}");

    // `to` without the scheme works the same.
    let resp = post_message(&server, &admin, &format!("other@{}", ua.host), "second").expect(200);
    let message = ua.receive(WAIT).expect("second MESSAGE");
    assert_eq!(message.header("Call-ID"), resp.json()["id"].as_str().map(str::to_string));
    assert_eq!(message.body, b"second");

    // The daemon's own refusal is surfaced as a 422 on `to` with its reason.
    let before = server.count("accounts");
    let resp = post_message(&server, &admin, "+badid", "x").expect_invalid("to");
    assert_eq!(resp.json()["errors"]["to"][0], "Bad sip uri.", "{}", resp.text());
    // A line break would end the daemon command (and run the rest as
    // another one): refused before the daemon is asked.
    post_message(&server, &admin, &to, "hi\nquit").expect(422);
    post_message(&server, &admin, &format!("{to}\nquit"), "hi").expect(422);
    assert!(ua.receive(Duration::from_millis(300)).is_none(), "nothing was sent for refused requests");
    assert_eq!(server.count("accounts"), before);

    // The daemon serves one client at a time: concurrent API calls must
    // all go through (serialised by the server).
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let port = server.port;
            let headers = vec![
                ("Accept".to_string(), "application/json".to_string()),
                ("Content-Type".to_string(), "application/json".to_string()),
                ("x-api-key".to_string(), admin.clone()),
            ];
            let body = json!({"to": to, "body": format!("burst {i}")}).to_string();
            std::thread::spawn(move || {
                http_request(port, "POST", "/api/messages", &headers, Some(body.as_bytes())).unwrap()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let resp = h.join().unwrap();
        assert_eq!(resp.status, 200, "concurrent message: {}", resp.text());
        ids.insert(resp.json()["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 6);
    let mut bodies = std::collections::HashSet::new();
    while bodies.len() < 6 {
        let m = ua.receive(WAIT).expect("every burst MESSAGE arrives");
        if ids.contains(&m.header("Call-ID").unwrap_or_default()) {
            bodies.insert(String::from_utf8_lossy(&m.body).into_owned());
        }
    }
    assert_eq!(bodies, (0..6).map(|i| format!("burst {i}")).collect());
    assert!(!server.log().contains(" 500 "), "{}", server.log());
}

/// Faults of the daemon peer: hung (SIGSTOP), killed with its socket left
/// behind, socket missing. Each gives a clear 422 within a bounded time,
/// changes no data, and /api/ping answers meanwhile.
#[test]
fn messages_when_the_daemon_hangs_dies_or_is_missing() {
    let Some(binary) = require_tool("linphone-daemon") else { return };
    let mut daemon = LinphoneDaemon::start(&binary);
    let ua = SipUa::start();
    let socket = daemon.socket.clone();
    let server = Server::start(&[("APP_LINPHONE_DAEMON_UNIX_PATH", socket.to_str().unwrap())]);
    let (_, _, admin) = server.admin("administrator");
    let to = format!("sip:someone@{}", ua.host);
    post_message(&server, &admin, &to, "warm-up").expect(200);
    let snapshot = || server.get("/api/accounts").key(&admin).send().expect(200).text();
    let before = snapshot();

    // Hung: connect and write succeed (kernel backlog), no reply ever.
    // The 5 s exchange timeout bounds the call; ping answers meanwhile.
    daemon.signal("STOP");
    let port = server.port;
    let admin2 = admin.clone();
    let to2 = to.clone();
    let started = Instant::now();
    let call = std::thread::spawn(move || {
        let headers = vec![
            ("Accept".to_string(), "application/json".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
            ("x-api-key".to_string(), admin2),
        ];
        let body = json!({"to": to2, "body": "while hung"}).to_string();
        let resp = http_request(port, "POST", "/api/messages", &headers, Some(body.as_bytes())).unwrap();
        (resp, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let ping_started = Instant::now();
    assert_eq!(server.get("/api/ping").send().expect(200).text().trim_matches('"'), "pong");
    assert!(ping_started.elapsed() < Duration::from_secs(2), "ping while the daemon hangs");
    let (resp, took) = call.join().unwrap();
    assert_eq!(resp.status, 422, "{}", resp.text());
    assert_eq!(resp.json()["errors"]["to"][0], SOCKET_ERROR);
    assert!(took < Duration::from_secs(5 + 5), "hung daemon: answered after {took:?}");
    assert!(took >= Duration::from_secs(4), "answered before the timeout? {took:?}");
    daemon.signal("CONT");
    // Back to normal (the daemon may first see the abandoned client).
    let deadline = Instant::now() + WAIT;
    loop {
        let resp = post_message(&server, &admin, &to, "after the hang");
        if resp.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "daemon never usable again: {}", resp.text());
        std::thread::sleep(Duration::from_millis(200));
    }

    // Killed, socket file left behind (as after a crash): ECONNREFUSED.
    daemon.kill();
    assert!(socket.exists());
    let started = Instant::now();
    let resp = post_message(&server, &admin, &to, "after the crash").expect(422);
    assert_eq!(resp.json()["errors"]["to"][0], SOCKET_ERROR);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // Socket missing altogether.
    std::fs::remove_file(&socket).unwrap();
    let started = Instant::now();
    let resp = post_message(&server, &admin, &to, "no socket").expect(422);
    assert_eq!(resp.json()["errors"]["to"][0], SOCKET_ERROR);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    server.get("/api/ping").send().expect(200);
    assert_eq!(snapshot(), before, "account data unchanged");
    assert!(server.log().contains("linphone-daemon"), "the connect error is logged: {}", server.log());
    assert!(!server.log().contains(" 500 "), "{}", server.log());
    drop(daemon);
}

#[test]
fn pins_expire_and_guesses_are_limited() {
    let server = Server::start(&[("PHONE_AUTHENTICATION", "true")]);
    let (_, _, admin) = server.admin("administrator");
    create_account(&server, &admin, json!({"username": "pinuser", "password": "secret123", "algorithm": "MD5"}));
    let path = "/api/accounts/pinuser@sip.example.org/activate/phone";
    // A PIN issued long ago no longer works.
    server.db().execute("UPDATE accounts SET confirmation_key = '4321', updated_at = '2020-01-01 00:00:00' WHERE username = 'pinuser'", []).unwrap();
    assert_eq!(
        server.post(path).json(json!({"confirmation_key": "4321"})).send().expect(403).json()["message"],
        "Activation expired"
    );
    // A fresh one does, but only after a bounded number of guesses.
    let now = flexiapi::domain::time::now_sql();
    server.db().execute("UPDATE accounts SET updated_at = ?1 WHERE username = 'pinuser'", [&now]).unwrap();
    let mut statuses = Vec::new();
    for guess in 1000..1012 {
        statuses.push(server.post(path).json(json!({"confirmation_key": guess.to_string()})).send().status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    server.post(path).json(json!({"confirmation_key": "4321"})).send().expect(429);
    assert_eq!(count_where(&server, "SELECT activated FROM accounts WHERE username = 'pinuser'"), 0);
}

// --- nonce cleanup ---

/// The server's hourly cleanup deletes the expired nonces, in chunks, by a
/// range of the (time-ordered) key; `digest:clear-nonces` also reaches
/// nonces of older versions (random keys); fresh nonces stay.
#[test]
fn expired_nonces_are_cleaned_by_key_range_and_by_the_command() {
    use flexiapi::domain::random::time_prefix;
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    create_account(&server, &key, json!({"username": "nonceuser", "password": "secret123", "algorithm": "MD5"}));
    server.get("/api/accounts/me").header("From", "sip:nonceuser@sip.example.org").send().expect(401);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let two_hours_ago = now - 7200;
    let old_prefix = time_prefix(two_hours_ago * 1_000_000);
    let db = server.db();
    let insert = |nonce: &str| {
        db.execute(
            "INSERT INTO nonces (nonce, account_id, opaque, nc, created_at, updated_at) \
             VALUES (?1, NULL, 'o', 0, datetime(?2, 'unixepoch'), datetime(?2, 'unixepoch'))",
            rusqlite::params![nonce, two_hours_ago as i64],
        )
        .unwrap();
    };
    // More expired nonces than one chunk deletes.
    for i in 0..4_500 {
        insert(&format!("{old_prefix}{i:0>23}"));
    }
    // Expired nonces of an older version (random keys): one above tomorrow's
    // prefix, swept by the server too; one between the cutoff's prefix and
    // tomorrow's, which only the command reaches.
    insert("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
    let between = format!("{}{}", time_prefix(now * 1_000_000), "0".repeat(23));
    insert(&between);
    assert_eq!(server.count("nonces"), 4_503);

    let app = library_app(&server);
    assert_eq!(flexiapi::services::maintenance::clear_expired_nonces(&app).unwrap(), 4_501);
    let left: Vec<String> = db
        .prepare("SELECT nonce FROM nonces ORDER BY nonce")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&between));

    let out = server.cli(&["digest:clear-nonces", "60"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 expired nonces deleted"));
    // The fresh nonce of the challenge stays.
    assert_eq!(server.count("nonces"), 1);
}
