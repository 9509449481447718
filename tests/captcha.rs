//! The portal's captcha (web.md 4.6) against a loopback stand-in for
//! Google's siteverify: the five forms that ask for it, each refused when
//! the answer is missing, refused by the verifier or the verifier is down
//! (and then nothing changed), accepted when the verifier says yes; the
//! widget and the CSP only on those pages, and nothing from Google at all
//! when the captcha is off.

mod common;

use common::{Resp, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SITE_KEY: &str = "6Lc-test-site-key";
const SECRET: &str = "6Lc-test-secret";
const MISSING: &str = "Please verify that you are not a robot.";
const FAILED: &str = "Captcha error! Try again later or contact the site admin.";
const WIDGET: &str = "class=\"g-recaptcha\" data-sitekey=\"6Lc-test-site-key\"";
const SCRIPT: &str = "https://www.google.com/recaptcha/api.js";
const CLIENT_IP: &str = "203.0.113.7";

/// How the stand-in answers.
#[derive(Clone, Copy)]
enum Mode {
    Yes = 0,
    No = 1,
    /// Accepts and closes without a word.
    Drop = 2,
    /// Accepts and never answers.
    Hang = 3,
}

/// A loopback siteverify: records each posted form, answers per its mode.
struct Fake {
    port: u16,
    mode: Arc<AtomicU8>,
    posts: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

impl Fake {
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(Mode::Yes as u8));
        let posts = Arc::new(Mutex::new(Vec::new()));
        let (m, p) = (mode.clone(), posts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (m, p) = (m.clone(), p.clone());
                std::thread::spawn(move || {
                    let mode = m.load(Ordering::SeqCst);
                    if mode == Mode::Drop as u8 {
                        return;
                    }
                    if mode == Mode::Hang as u8 {
                        std::thread::sleep(Duration::from_secs(20));
                        return;
                    }
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 4096];
                    let body = loop {
                        let Ok(n) = stream.read(&mut buf) else { return };
                        if n == 0 {
                            return;
                        }
                        raw.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&raw).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if raw.len() >= end + 4 + length {
                                break String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).to_string();
                            }
                        }
                    };
                    let form: HashMap<String, String> = body
                        .split('&')
                        .filter_map(|pair| pair.split_once('='))
                        .map(|(k, v)| (decode(k), decode(v)))
                        .collect();
                    p.lock().unwrap().push(form);
                    let json = if mode == Mode::Yes as u8 {
                        r#"{"success": true, "challenge_ts": "2026-01-01T00:00:00Z", "hostname": "localhost"}"#
                    } else {
                        r#"{"success": false, "error-codes": ["invalid-input-response"]}"#
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                        json.len()
                    );
                });
            }
        });
        Fake { port, mode, posts }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/recaptcha/api/siteverify", self.port)
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn posts(&self) -> usize {
        self.posts.lock().unwrap().len()
    }

    fn last(&self) -> HashMap<String, String> {
        self.posts.lock().unwrap().last().cloned().expect("a verification was posted")
    }
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// A cookie-keeping client, behind a proxy that names the visitor.
struct Browser<'a> {
    server: &'a Server,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a Server) -> Browser<'a> {
        Browser { server, cookie: None }
    }

    fn send(&mut self, req: common::Req<'_>) -> Resp {
        let mut req = req.no_accept().header("Accept", "text/html").header("X-Forwarded-For", CLIENT_IP);
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let resp = req.send();
        for c in resp.headers_all("Set-Cookie") {
            let pair = c.split(';').next().unwrap_or("").to_string();
            if pair.starts_with("flexiapi_session=") {
                self.cookie = if pair == "flexiapi_session=" { None } else { Some(pair) };
            }
        }
        resp
    }

    fn get(&mut self, path: &str) -> Resp {
        self.send(self.server.get(path))
    }

    /// Opens `page`, then posts `pairs` with its CSRF token.
    fn submit(&mut self, page: &str, action: &str, pairs: &[(&str, &str)]) -> Resp {
        let text = self.get(page).text();
        let marker = "name=\"_token\" value=\"";
        let start = text.find(marker).unwrap_or_else(|| panic!("no CSRF field in {text}")) + marker.len();
        let token = text[start..].split('"').next().unwrap_or("").to_string();
        let mut all: Vec<(&str, &str)> = vec![("_token", &token)];
        all.extend_from_slice(pairs);
        self.send(self.server.post(action).form(&all))
    }
}

fn csp(resp: &Resp) -> String {
    resp.header("Content-Security-Policy").expect("a CSP header")
}

fn with_captcha(fake_url: &str) -> Server {
    let server = Server::start(&[
        ("PHONE_AUTHENTICATION", "true"),
        ("NOCAPTCHA_SITEKEY", SITE_KEY),
        ("NOCAPTCHA_SECRET", SECRET),
        ("NOCAPTCHA_VERIFY_URL", fake_url),
    ]);
    let (_, _, key) = server.admin("adminuser");
    for (name, phone) in [("frank001", "+33611111111"), ("grace001", "+33622222222")] {
        common::create_account(
            &server,
            &key,
            serde_json::json!({"username": name, "password": "secret123", "algorithm": "MD5", "activated": true,
                               "email": format!("{name}@example.net"), "phone": phone}),
        );
    }
    server
}

/// What a captcha failure must leave as it was: accounts, their keys,
/// tokens, rate-limit counters.
fn snapshot(server: &Server) -> String {
    let db = server.db();
    let mut out = String::new();
    for sql in [
        "SELECT group_concat(username || ':' || coalesce(confirmation_key, '-') || ':' || activated, ',') FROM accounts",
        "SELECT group_concat(token || ':' || coalesce(validated_at, '-'), ',') FROM account_creation_request_tokens",
        "SELECT count(*) || ':' || coalesce(sum(hits), 0) FROM rate_limits",
        "SELECT count(*) || '' FROM passwords",
    ] {
        let v: Option<String> = db.query_row(sql, [], |r| r.get(0)).unwrap();
        out.push_str(&v.unwrap_or_default());
        out.push('|');
    }
    out
}

/// One of the five forms: its page, its action, a valid filling.
struct Form {
    page: String,
    action: &'static str,
    fields: Vec<(&'static str, String)>,
    /// A typed value the redisplayed form keeps.
    kept: &'static str,
}

fn forms(server: &Server) -> Vec<Form> {
    let token = server.post("/api/account_creation_request_tokens").send().expect(201).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let s = |v: &str| v.to_string();
    vec![
        Form {
            page: s("/register/email"),
            action: "/register/email",
            fields: vec![
                ("username", s("henry001")),
                ("email", s("henry@example.net")),
                ("email_confirmation", s("henry@example.net")),
                ("password", s("Sekrit-pass1")),
                ("password_confirmation", s("Sekrit-pass1")),
            ],
            kept: "value=\"henry001\"",
        },
        Form {
            page: s("/register/phone"),
            action: "/register/phone",
            fields: vec![
                ("phone", s("+33633333333")),
                ("password", s("Sekrit-pass1")),
                ("password_confirmation", s("Sekrit-pass1")),
            ],
            kept: "value=\"+33633333333\"",
        },
        Form {
            page: s("/login/email"),
            action: "/authenticate/email",
            fields: vec![("email", s("frank001@example.net")), ("username", s("frank001"))],
            kept: "value=\"frank001@example.net\"",
        },
        Form {
            page: s("/login/phone"),
            action: "/authenticate/phone",
            fields: vec![("phone", s("+33622222222"))],
            kept: "value=\"+33622222222\"",
        },
        Form {
            page: format!("/creation_token/check/{token}"),
            action: "/creation_token/validate",
            fields: vec![("account_creation_request_token", token.clone())],
            kept: "",
        },
    ]
}

fn post(b: &mut Browser, form: &Form, answer: Option<&str>) -> Resp {
    let mut pairs: Vec<(&str, &str)> = form.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(a) = answer {
        pairs.push(("g-recaptcha-response", a));
    }
    b.submit(&form.page, form.action, &pairs)
}

/// Posts a form that must be refused and returns the page showing why: the
/// sign-up forms answer it at once (200, web.md 4.1), the others go back
/// to their form (302), which shows it.
fn refused(b: &mut Browser, form: &Form, answer: Option<&str>) -> Resp {
    let resp = post(b, form, answer);
    if form.action.starts_with("/register/") {
        return resp;
    }
    assert_eq!(resp.status, 302, "{}: {}", form.action, resp.text());
    assert_eq!(resp.header("Location").as_deref(), Some(form.page.as_str()), "{}", form.action);
    b.get(&form.page)
}

/// A refused form (as `refused` shows it): the
/// captcha error, the typed values (never the password), the widget again,
/// nothing changed.
fn assert_refused(server: &Server, form: &Form, resp: Resp, message: &str, before: &str) {
    let text = resp.text();
    assert_eq!(resp.status, 200, "{}: {text}", form.action);
    assert!(text.contains(message), "{}: {message} in {text}", form.action);
    assert!(text.contains(form.kept), "{}: the typed values are kept", form.action);
    assert!(!text.contains("Sekrit-pass1"), "{}: never the password", form.action);
    assert!(text.contains(WIDGET), "{}: the widget again", form.action);
    assert!(csp(&resp).contains("https://www.google.com/recaptcha/"));
    assert_eq!(snapshot(server), before, "{}: nothing changed", form.action);
}

#[test]
fn the_widget_and_its_csp_on_the_five_forms_only() {
    let fake = Fake::start();
    let server = with_captcha(&fake.url());
    let mut b = Browser::new(&server);
    for form in forms(&server) {
        let page = b.get(&form.page).expect(200);
        let text = page.text();
        assert!(text.contains(WIDGET) && text.contains(SCRIPT), "{}: {text}", form.page);
        let policy = csp(&page);
        for directive in [
            "script-src 'self' https://www.google.com/recaptcha/ https://www.gstatic.com/recaptcha/",
            "frame-src https://www.google.com/recaptcha/ https://recaptcha.google.com/recaptcha/ https://www.gstatic.com/recaptcha/;",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(policy.contains(directive), "{}: {directive} in {policy}", form.page);
        }
        assert!(!policy.contains("unsafe"), "{policy}");
    }
    for path in ["/", "/login", "/register", "/documentation", "/authenticate/qrcode"] {
        let page = b.get(path);
        assert!(!page.text().contains("google"), "{path}");
        assert!(!csp(&page).contains("google"), "{path}: the strict CSP");
    }
    assert_eq!(fake.posts(), 0, "showing a page asks nothing");
}

#[test]
fn a_missing_or_refused_answer_changes_nothing_and_a_good_one_passes() {
    let fake = Fake::start();
    let server = with_captcha(&fake.url());
    for form in forms(&server) {
        let mut b = Browser::new(&server);
        // No answer: refused without asking the verifier.
        let before = snapshot(&server);
        let posts = fake.posts();
        let resp = refused(&mut b, &form, None);
        assert_refused(&server, &form, resp, MISSING, &before);
        let resp = refused(&mut b, &form, Some("  "));
        assert_refused(&server, &form, resp, MISSING, &before);
        assert_eq!(fake.posts(), posts, "{}: no answer, no verification", form.action);

        // The verifier says no.
        fake.set(Mode::No);
        let resp = refused(&mut b, &form, Some("bad-answer"));
        assert_refused(&server, &form, resp, FAILED, &before);
        let asked = fake.last();
        assert_eq!(asked.get("secret").map(String::as_str), Some(SECRET));
        assert_eq!(asked.get("response").map(String::as_str), Some("bad-answer"));
        assert_eq!(asked.get("remoteip").map(String::as_str), Some(CLIENT_IP));

        // The verifier hangs up.
        fake.set(Mode::Drop);
        let resp = refused(&mut b, &form, Some("any-answer"));
        assert_refused(&server, &form, resp, FAILED, &before);

        // The verifier says yes: the form does its work.
        fake.set(Mode::Yes);
        let resp = post(&mut b, &form, Some("good+answer/=="));
        assert_eq!(fake.last().get("response").map(String::as_str), Some("good+answer/=="));
        match form.action {
            "/register/email" => {
                assert_eq!(resp.status, 302, "{}", resp.text());
                assert_eq!(server.count("accounts") as usize, 4);
            }
            "/register/phone" => {
                assert_eq!(resp.status, 200, "{}", resp.text());
                assert!(resp.text().contains("/authenticate/phone/confirm"));
                assert_eq!(server.count("accounts"), 5);
            }
            "/authenticate/email" => {
                assert_eq!(resp.status, 200, "{}", resp.text());
                let key: Option<String> = server
                    .db()
                    .query_row("SELECT confirmation_key FROM accounts WHERE username = 'frank001'", [], |r| r.get(0))
                    .unwrap();
                assert!(key.is_some(), "the recovery mail's key");
            }
            "/authenticate/phone" => {
                assert_eq!(resp.status, 200, "{}", resp.text());
                let key: Option<String> = server
                    .db()
                    .query_row("SELECT confirmation_key FROM accounts WHERE username = 'grace001'", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(key.map(|k| k.len()), Some(4), "the recovery PIN");
            }
            _ => {
                assert_eq!(resp.status, 200, "{}", resp.text());
                assert!(resp.text().contains("The request is validated"));
                let validated: i64 = server
                    .db()
                    .query_row(
                        "SELECT count(*) FROM account_creation_request_tokens WHERE validated_at IS NOT NULL",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(validated, 1);
            }
        }
        assert!(
            !csp(&resp).contains("google") || resp.text().contains(WIDGET),
            "{}: the result page keeps the strict CSP",
            form.action
        );
    }
    // The failures were logged for the operator.
    assert!(server.log().contains("captcha"), "{}", server.log());
}

#[test]
fn an_unknown_token_is_404_before_any_captcha_and_french_messages() {
    let fake = Fake::start();
    let server = with_captcha(&fake.url());
    let mut b = Browser::new(&server);
    let token = server.post("/api/account_creation_request_tokens").send().expect(201).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = b.submit(
        &format!("/creation_token/check/{token}"),
        "/creation_token/validate",
        &[("account_creation_request_token", "unknowntoken1")],
    );
    assert_eq!(r.status, 404);
    assert_eq!(fake.posts(), 0);
    let r = b.send(server.get(&format!("/creation_token/check/{token}")).header("Accept-Language", "fr"));
    assert!(r.text().contains("api.js?hl=fr"));
    let page = r.text();
    let marker = "name=\"_token\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let csrf = page[start..].split('"').next().unwrap().to_string();
    let r = b.send(
        server
            .post("/creation_token/validate")
            .header("Accept-Language", "fr")
            .form(&[("_token", &csrf), ("account_creation_request_token", &token)]),
    );
    let back = format!("/creation_token/check/{token}");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location").as_deref(), Some(back.as_str()));
    let r = b.send(server.get(&back).header("Accept-Language", "fr"));
    assert!(
        r.text().contains("Veuillez confirmer que vous n&#39;êtes pas un robot.")
            || r.text().contains("Veuillez confirmer que vous n'êtes pas un robot."),
        "{}",
        r.text()
    );
}

#[test]
fn a_verifier_down_or_silent_refuses_within_bounded_time() {
    // Nothing listens there.
    let closed = common::free_port();
    let server = with_captcha(&format!("http://127.0.0.1:{closed}/siteverify"));
    let forms = forms(&server);
    for form in &forms {
        let mut b = Browser::new(&server);
        let before = snapshot(&server);
        let started = Instant::now();
        let resp = refused(&mut b, form, Some("an-answer"));
        assert_refused(&server, form, resp, FAILED, &before);
        assert!(started.elapsed() < Duration::from_secs(4), "{}: {:?}", form.action, started.elapsed());
    }
    assert!(server.log().contains("error: captcha"), "{}", server.log());

    // A verifier that accepts and never answers: refused after the 5 s bound.
    let fake = Fake::start();
    fake.set(Mode::Hang);
    let server = with_captcha(&fake.url());
    let form = &forms_for_phone_recovery();
    let mut b = Browser::new(&server);
    let before = snapshot(&server);
    let started = Instant::now();
    let resp = refused(&mut b, form, Some("an-answer"));
    let took = started.elapsed();
    assert_refused(&server, form, resp, FAILED, &before);
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(10), "{took:?}");
}

fn forms_for_phone_recovery() -> Form {
    Form {
        page: "/login/phone".into(),
        action: "/authenticate/phone",
        fields: vec![("phone", "+33622222222".into())],
        kept: "value=\"+33622222222\"",
    }
}

#[test]
fn off_without_real_keys_nothing_from_google() {
    for keys in [vec![], vec![("NOCAPTCHA_SITEKEY", "site-key"), ("NOCAPTCHA_SECRET", "secret-key")]] {
        let mut env = vec![("PHONE_AUTHENTICATION", "true")];
        env.extend(keys.iter().cloned());
        let server = Server::start(&env);
        let (_, _, key) = server.admin("adminuser");
        common::create_account(
            &server,
            &key,
            serde_json::json!({"username": "frank001", "password": "secret123", "algorithm": "MD5", "activated": true,
                               "email": "frank001@example.net", "phone": "+33611111111"}),
        );
        let mut b = Browser::new(&server);
        for form in forms(&server) {
            let page = b.get(&form.page).expect(200);
            assert!(!page.text().contains("google") && !page.text().contains("g-recaptcha"), "{}", form.page);
            assert!(!csp(&page).contains("google"), "{}", form.page);
            // The form works without the field.
            let resp = post(&mut b, &form, None);
            assert!(resp.status == 200 || resp.status == 302, "{}: {} {}", form.action, resp.status, resp.text());
            assert!(!resp.text().contains("robot") || form.action == "/creation_token/validate", "{}", form.action);
            assert!(!csp(&resp).contains("google"));
        }
        assert_eq!(server.count("accounts"), 4, "both registrations went through");
    }
}

#[test]
fn doctor_asks_the_verifier() {
    let fake = Fake::start();
    fake.set(Mode::No);
    let server = with_captcha(&fake.url());
    let out = String::from_utf8_lossy(&server.cli(&["doctor"]).stdout).to_string();
    assert!(out.contains("OK   captcha: "), "{out}");
    assert_eq!(fake.last().get("secret").map(String::as_str), Some(SECRET));
    let closed = common::free_port();
    let server = with_captcha(&format!("http://127.0.0.1:{closed}/siteverify"));
    let out = String::from_utf8_lossy(&server.cli(&["doctor"]).stdout).to_string();
    assert!(out.contains("FAIL captcha: "), "{out}");
    let off = Server::start(&[]);
    let out = String::from_utf8_lossy(&off.cli(&["doctor"]).stdout).to_string();
    assert!(!out.contains("captcha"), "{out}");
}

#[test]
fn the_fields_own_messages_come_with_the_captcha_one() {
    let fake = Fake::start();
    let server = with_captcha(&fake.url());
    let before = snapshot(&server);
    let mut b = Browser::new(&server);
    let r = b.submit("/login/phone", "/authenticate/phone", &[("phone", "0612")]).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/login/phone"));
    let r = b.get("/login/phone").expect(200);
    assert!(r.text().contains("starting with +") && r.text().contains(MISSING), "{}", r.text());
    let r = b.submit("/login/email", "/authenticate/email", &[("email", "bad")]).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/login/email"));
    let r = b.get("/login/email").expect(200);
    assert!(
        r.text().contains("valid email")
            && r.text().contains("The username field is required.")
            && r.text().contains(MISSING)
    );
    let r = b
        .submit(
            "/register/email",
            "/register/email",
            &[("username", "ivan0001"), ("password", "Sekrit-pass1"), ("password_confirmation", "other")],
        )
        .expect(200);
    assert!(r.text().contains("confirmation") && r.text().contains(MISSING), "{}", r.text());
    assert_eq!(snapshot(&server), before);
    assert_eq!(fake.posts(), 0);
}
