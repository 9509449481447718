//! Every mail the product sends, through the real binary and a real SMTP
//! conversation with the loopback server (tests/support/smtp_server.rs):
//! plain SMTP, STARTTLS and implicit TLS (self-signed certificate made by
//! `openssl` at test time; refused unless MAIL_VERIFY_PEER=false or
//! MAIL_ALLOW_SELF_SIGNED=true), AUTH over TLS, and `MAIL_DRIVER=sendmail`
//! with a recording sendmail script. Mails (web.md section 10):
//! Register Confirmation (API and portal), Confirmed Registration, Password
//! Authentication (admin API and portal), Changing Email, Changed Email,
//! Newsletter Registration.

mod common;
#[path = "support/smtp_server.rs"]
mod smtp_server;

use common::*;
use serde_json::json;
use smtp_server::{ReceivedMail, SmtpServer, TlsMode};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const FROM: &str = "no-reply@sip.example.org";

fn smtp_env(port: u16, encryption: &str, extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("MAIL_DRIVER".into(), "smtp".into()),
        ("MAIL_HOST".into(), "127.0.0.1".into()),
        ("MAIL_PORT".into(), port.to_string()),
        ("MAIL_ENCRYPTION".into(), encryption.into()),
        ("MAIL_FROM_ADDRESS".into(), FROM.into()),
        ("APP_NAME".into(), "Acme SIP".into()),
        ("APP_DANGEROUS_ENDPOINTS".into(), "true".into()),
        ("NEWSLETTER_REGISTRATION_ADDRESS".into(), "list@example.org".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn start(env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(&env)
}

/// The mail to `to` with `subject`, waiting for it.
#[track_caller]
fn mail_to(smtp: &SmtpServer, to: &str, subject: &str) -> ReceivedMail {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = smtp.messages_to(to).into_iter().find(|m| m.subject().as_deref() == Some(subject));
        if let Some(m) = found {
            return m;
        }
        if Instant::now() > deadline {
            let seen: Vec<_> = smtp.messages().iter().map(|m| (m.rcpt_to.clone(), m.subject())).collect();
            panic!("no mail {subject:?} to {to}; received {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What every mail must be: envelope, headers, multipart HTML + text,
/// UTF-8, signature.
#[track_caller]
fn check_shape(mail: &ReceivedMail, to: &str) {
    assert_eq!(mail.mail_from, FROM);
    assert_eq!(mail.rcpt_to, vec![to.to_string()]);
    assert!(mail.header("From").unwrap_or_default().contains(FROM), "{:?}", mail.header("From"));
    assert!(mail.header("To").unwrap_or_default().contains(to));
    assert!(mail.header("Content-Type").unwrap_or_default().to_ascii_lowercase().starts_with("multipart/alternative"));
    let text = mail.text_part().expect("text part");
    let html = mail.html_part().expect("html part");
    assert!(text.contains("The Linphone Team"), "signature: {text}");
    assert!(html.contains("<html") || html.contains("<p"), "{html}");
}

/// A cookie-keeping portal client.
struct Browser<'a> {
    server: &'a Server,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn keep(&mut self, resp: &Resp) {
        for c in resp.headers_all("Set-Cookie") {
            let pair = c.split(';').next().unwrap_or("").to_string();
            // `<app name>_session` (APP_NAME is "Acme SIP" here)
            if let Some((name, value)) = pair.split_once('=') {
                if name.ends_with("_session") {
                    self.cookie = if value.is_empty() { None } else { Some(pair.clone()) };
                }
            }
        }
    }
    fn get(&mut self, path: &str) -> Resp {
        let mut req = self.server.get(path).no_accept().header("Accept", "text/html");
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send();
        self.keep(&resp);
        resp
    }
    /// Opens `form_page`, posts `pairs` with its CSRF token to `action`.
    fn submit(&mut self, form_page: &str, action: &str, pairs: &[(&str, &str)]) -> Resp {
        let page = self.get(form_page).text();
        let marker = "name=\"_token\" value=\"";
        let start = page.find(marker).unwrap_or_else(|| panic!("no CSRF field in {page}")) + marker.len();
        let token = page[start..].split('"').next().unwrap_or("").to_string();
        let mut all: Vec<(&str, &str)> = vec![("_token", &token)];
        all.extend_from_slice(pairs);
        let mut req = self.server.post(action).no_accept().header("Accept", "text/html").form(&all);
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send();
        self.keep(&resp);
        resp
    }
}

/// Drives every mail through `server`; `smtp` receives them. Returns how
/// many mails were checked.
fn every_mail(server: &Server, smtp: &SmtpServer) -> usize {
    let (_, _, admin) = server.admin("administrator");
    let url = |p: &str| server.url(p);

    // 1. Register Confirmation, API public sign-up.
    let token = server.post("/api/account_creation_tokens").key(&admin).json(json!({})).send().expect(201).json()
        ["token"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .post("/api/accounts/public")
        .json(json!({"username": "apiuser", "password": "secret123", "algorithm": "SHA-256", "email": "api@example.net", "account_creation_token": token}))
        .send()
        .expect(200);
    let m = mail_to(smtp, "api@example.net", "Acme SIP: Confirm your registration");
    check_shape(&m, "api@example.net");
    let link = m.find_link(&url("/authenticate/email/")).expect("activation link");
    let key = link.rsplit('/').next().unwrap().to_string();
    server
        .post("/api/accounts/apiuser@sip.example.org/activate/email")
        .json(json!({"confirmation_key": key}))
        .send()
        .expect(200);

    // 2. Register Confirmation from the portal, with the newsletter ticked:
    //    Newsletter Registration to NEWSLETTER_REGISTRATION_ADDRESS.
    let mut web = Browser { server, cookie: None };
    let resp = web.submit(
        "/register/email",
        "/register/email",
        &[
            ("username", "webuser"),
            ("email", "web@example.net"),
            ("email_confirmation", "web@example.net"),
            ("password", "secret123"),
            ("password_confirmation", "secret123"),
            ("newsletter", "1"),
        ],
    );
    assert_eq!(resp.status, 302, "{}", resp.text());
    let m = mail_to(smtp, "web@example.net", "Acme SIP: Confirm your registration");
    check_shape(&m, "web@example.net");
    let link = m.find_link(&url("/authenticate/email/")).expect("portal activation link");
    let m = mail_to(smtp, "list@example.org", "Acme SIP: Newsletter registration");
    check_shape(&m, "list@example.org");
    assert!(m.text_part().unwrap().contains("web@example.net"), "{}", m.body_text());
    // The mailed link logs the new user in.
    let path = link.strip_prefix(&server.url("")).unwrap().to_string();
    let resp = web.get(&path);
    assert_eq!(resp.status, 302, "{}", resp.text());

    // 3. Changing Email (API), then Changed Email (the portal's /email/{hash}).
    let (id, key) = account_with_key(server, &admin, "changer", "secret123");
    server.db().execute("UPDATE accounts SET email = 'before@example.net' WHERE id = ?1", [id]).unwrap();
    server
        .post("/api/accounts/me/email/request")
        .key(&key)
        .json(json!({"email": "after@example.net"}))
        .send()
        .expect(200);
    let m = mail_to(smtp, "after@example.net", "Acme SIP: Confirm your new email address");
    check_shape(&m, "after@example.net");
    let link = m.find_link(&url("/email/")).expect("confirmation link");
    let mut changer = Browser { server, cookie: None };
    let resp = changer.submit("/login", "/authenticate", &[("username", "changer"), ("password", "secret123")]);
    assert_eq!(resp.status, 302, "login: {}", resp.text());
    let resp = changer.get(link.strip_prefix(&server.url("")).unwrap());
    assert!(resp.status == 200 || resp.status == 302, "{} {}", resp.status, resp.text());
    let m = mail_to(smtp, "after@example.net", "Acme SIP: Your email address was changed");
    check_shape(&m, "after@example.net");
    assert_eq!(server.get("/api/accounts/me").key(&key).send().expect(200).json()["email"], "after@example.net");

    // 4. Password Authentication: admin API, then the portal's recovery form.
    let resp = server.post(&format!("/api/accounts/{id}/recover-by-email")).key(&admin).send().expect(200).json();
    let m = mail_to(smtp, "after@example.net", "Acme SIP: Your authentication link");
    check_shape(&m, "after@example.net");
    let text = m.text_part().unwrap();
    assert!(
        text.contains(&url(&format!("/authenticate/email/{}", resp["confirmation_key"].as_str().unwrap()))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "/provisioning/qrcode/{}?reset_password=1",
            resp["provisioning_token"].as_str().unwrap()
        )),
        "{text}"
    );
    smtp.clear();
    let mut lost = Browser { server, cookie: None };
    let resp =
        lost.submit("/login/email", "/authenticate/email", &[("email", "after@example.net"), ("username", "changer")]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let m = mail_to(smtp, "after@example.net", "Acme SIP: Your authentication link");
    check_shape(&m, "after@example.net");

    // 5. Confirmed Registration: the first password of an account with an email.
    let (id, key) = account_with_key(server, &admin, "firstpwd", "secret123");
    server.db().execute("UPDATE accounts SET email = 'first@example.net' WHERE id = ?1", [id]).unwrap();
    server.db().execute("DELETE FROM passwords WHERE account_id = ?1", [id]).unwrap();
    server
        .post("/api/accounts/me/password")
        .key(&key)
        .json(json!({"algorithm": "SHA-256", "password": "brandnew1"}))
        .send()
        .expect(200);
    let m = mail_to(smtp, "first@example.net", "Acme SIP: Your account is ready");
    check_shape(&m, "first@example.net");
    assert!(m.text_part().unwrap().contains("sip:firstpwd@sip.example.org"), "{}", m.body_text());
    6
}

#[test]
fn every_mail_over_plain_smtp() {
    let smtp = SmtpServer::start();
    let server = start(&smtp_env(smtp.port(), "", &[]));
    assert_eq!(every_mail(&server, &smtp), 6);
    assert!(smtp.messages().iter().all(|m| !m.tls));
}

#[test]
fn every_mail_over_starttls_with_auth() {
    let Some(_) = require_tool("openssl") else { return };
    let dir = TempDir::new();
    let smtp = SmtpServer::start_tls(TlsMode::StartTls, dir.path()).expect("TLS SMTP server");
    let server = start(&smtp_env(
        smtp.port(),
        "tls",
        &[("MAIL_VERIFY_PEER", "false"), ("MAIL_USERNAME", "mailer"), ("MAIL_PASSWORD", "s3cret")],
    ));
    assert_eq!(every_mail(&server, &smtp), 6);
    let all = smtp.messages();
    assert!(all.iter().all(|m| m.tls), "every mail went over STARTTLS");
    assert!(all.iter().all(|m| m.authenticated && m.auth_user.as_deref() == Some("mailer")), "AUTH after STARTTLS");
}

/// The certificate checks: a self-signed certificate is refused by default
/// (clear 503, nothing sent, data unchanged), accepted with
/// MAIL_ALLOW_SELF_SIGNED=true or MAIL_VERIFY_PEER=false; implicit TLS
/// (`ssl`) works; STARTTLS required but not offered fails.
#[test]
fn tls_certificate_checks_and_implicit_tls() {
    let Some(_) = require_tool("openssl") else { return };
    let dir = TempDir::new();
    let request = |server: &Server| {
        let (_, _, admin) = server.admin("administrator");
        let (id, key) = account_with_key(server, &admin, "tlsuser", "secret123");
        server.db().execute("UPDATE accounts SET email = 'tls-old@example.net' WHERE id = ?1", [id]).unwrap();
        (
            key.clone(),
            server.post("/api/accounts/me/email/request").key(&key).json(json!({"email": "tls@example.net"})).send(),
        )
    };

    // Verification on (the default): the self-signed certificate is refused.
    let smtp = SmtpServer::start_tls(TlsMode::StartTls, dir.path()).expect("TLS SMTP server");
    let server = start(&smtp_env(smtp.port(), "tls", &[]));
    let started = Instant::now();
    let (key, resp) = request(&server);
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(resp.text().contains("email could not be sent"), "{}", resp.text());
    let log = server.log();
    assert!(log.to_ascii_lowercase().contains("certificate"), "the log names the certificate problem: {log}");
    assert!(smtp.messages().is_empty());
    let me = server.get("/api/accounts/me").key(&key).send().expect(200).json();
    assert_eq!(me["email"], "tls-old@example.net");
    assert_eq!(me["email_changed"], serde_json::Value::Null, "no pending change left behind");
    drop(server);

    // MAIL_ALLOW_SELF_SIGNED=true accepts it.
    let server = start(&smtp_env(smtp.port(), "starttls", &[("MAIL_ALLOW_SELF_SIGNED", "true")]));
    request(&server).1.expect(200);
    assert!(mail_to(&smtp, "tls@example.net", "Acme SIP: Confirm your new email address").tls);
    drop(server);
    drop(smtp);

    // Implicit TLS (`ssl`), verification off.
    let smtps = SmtpServer::start_tls(TlsMode::Implicit, dir.path()).expect("SMTPS server");
    let server = start(&smtp_env(smtps.port(), "ssl", &[("MAIL_VERIFY_PEER", "false")]));
    request(&server).1.expect(200);
    assert!(mail_to(&smtps, "tls@example.net", "Acme SIP: Confirm your new email address").tls);
    drop(server);

    // STARTTLS required against a server that does not offer it: 503, nothing sent in clear.
    let plain = SmtpServer::start();
    let server = start(&smtp_env(plain.port(), "tls", &[("MAIL_VERIFY_PEER", "false")]));
    request(&server).1.expect(503);
    assert!(plain.messages().is_empty(), "nothing sent in clear when STARTTLS is required");
}

/// MAIL_DRIVER=sendmail: the product runs the sendmail binary with the
/// envelope as arguments and the message on stdin; a failing one is a 503.
#[test]
fn sendmail_driver_with_a_recording_script() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let d = dir.path().display();
    let script = dir.path().join("sendmail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(ls {d}/mail-*.eml 2>/dev/null | wc -l)\nprintf '%s\\n' \"$@\" > {d}/args-$n.txt\ncat > {d}/mail-$n.eml\nexit 0\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let failing = dir.path().join("sendmail-fails");
    std::fs::write(&failing, "#!/bin/sh\ncat >/dev/null\necho 'sendmail: queue unavailable' >&2\nexit 75\n").unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();

    let env = |path: &std::path::Path| {
        vec![
            ("MAIL_DRIVER".to_string(), "sendmail".to_string()),
            ("MAIL_SENDMAIL_PATH".to_string(), path.display().to_string()),
            ("MAIL_FROM_ADDRESS".to_string(), FROM.to_string()),
            ("APP_NAME".to_string(), "Acme SIP".to_string()),
        ]
    };
    let server = start(&env(&script));
    let (_, _, admin) = server.admin("administrator");
    let (id, key) = account_with_key(&server, &admin, "smuser", "secret123");
    server.db().execute("UPDATE accounts SET email = 'sm-old@example.net' WHERE id = ?1", [id]).unwrap();
    server.post("/api/accounts/me/email/request").key(&key).json(json!({"email": "sm@example.net"})).send().expect(200);
    server.post(&format!("/api/accounts/{id}/recover-by-email")).key(&admin).send().expect(200);

    let args = std::fs::read_to_string(dir.path().join("args-0.txt")).expect("sendmail ran");
    assert_eq!(args.lines().collect::<Vec<_>>(), vec!["-i", "-f", FROM, "--", "sm@example.net"]);
    let raw = std::fs::read_to_string(dir.path().join("mail-0.eml")).unwrap();
    let mail = ReceivedMail { data: raw.replace("\r\n", "\n").replace('\n', "\r\n"), ..ReceivedMail::default() };
    assert_eq!(mail.subject().as_deref(), Some("Acme SIP: Confirm your new email address"));
    assert!(mail.find_link(&server.url("/email/")).is_some(), "{}", mail.body_text());
    assert!(mail.html_part().is_some() && mail.text_part().is_some());
    let args = std::fs::read_to_string(dir.path().join("args-1.txt")).expect("second mail");
    assert!(args.lines().any(|l| l == "sm-old@example.net"), "{args}");
    drop(server);

    // A failing sendmail: 503, the stderr line logged, nothing pending.
    let server = start(&env(&failing));
    let (_, _, admin) = server.admin("administrator");
    let (id, key) = account_with_key(&server, &admin, "smuser", "secret123");
    server.db().execute("UPDATE accounts SET email = 'sm-old@example.net' WHERE id = ?1", [id]).unwrap();
    server.post("/api/accounts/me/email/request").key(&key).json(json!({"email": "sm@example.net"})).send().expect(503);
    assert!(server.log().contains("queue unavailable"), "{}", server.log());
    assert_eq!(
        server.get("/api/accounts/me").key(&key).send().expect(200).json()["email_changed"],
        serde_json::Value::Null
    );
}
