//! End-to-end in a real headless Chromium, driven over WebDriver
//! (chromedriver) by a tiny client written here (std TcpStream +
//! serde_json). Screenshots at 375 px wide go to `target/screenshots/`.
//! Without chromium/chromedriver the test says why and returns.

mod common;
#[path = "support/smtp_server.rs"]
mod smtp_server;

use common::{Server, DOMAIN};
use serde_json::{json, Value};
use smtp_server::SmtpServer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    port: u16,
    child: Child,
    session: String,
    _profile: common::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    // chromedriver keeps the connection open: read by Content-Length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                raw.truncate(end + 4 + length);
                break;
            }
        }
    }
    let resp = common::parse_response(&raw)?;
    Ok(serde_json::from_slice(&resp.body).unwrap_or(Value::Null))
}

impl Driver {
    fn start(chromium: &std::path::Path, chromedriver: &std::path::Path) -> Result<Driver, String> {
        let port = common::free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while http(port, "GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not answer".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = common::TempDir::new();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=375,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args,
                "mobileEmulation": {"deviceMetrics": {"width": 375, "height": 812, "pixelRatio": 1.0}}}}}});
        let mut driver = Driver { port, child, session: String::new(), _profile: profile };
        let answer = driver.call("POST", "/session", Some(caps))?;
        driver.session = answer["sessionId"].as_str().ok_or_else(|| format!("no session: {answer}"))?.to_string();
        Ok(driver)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let answer = http(self.port, method, path, body.as_ref()).map_err(|e| e.to_string())?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if value.get("error").is_some() {
            return Err(format!("{method} {path}: {value}"));
        }
        Ok(value)
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url}))).expect("navigate");
    }

    fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None).expect("url").as_str().unwrap_or("").to_string()
    }

    /// Waits (navigation after a click is asynchronous) for the URL to match.
    fn wait_url(&self, what: &str, ok: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url();
            if ok(&url) {
                return;
            }
            assert!(Instant::now() < deadline, "expected {what}, at {url}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn find(&self, css: &str) -> String {
        let v = self
            .call("POST", &self.s("/element"), Some(json!({"using": "css selector", "value": css})))
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        v.as_object().and_then(|o| o.values().next()).and_then(|v| v.as_str()).expect("element id").to_string()
    }

    fn fill(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.call("POST", &self.s(&format!("/element/{el}/clear")), None).expect("clear");
        self.call("POST", &self.s(&format!("/element/{el}/value")), Some(json!({"text": text}))).expect("type");
    }

    fn click(&self, css: &str) {
        let el = self.find(css);
        self.call("POST", &self.s(&format!("/element/{el}/click")), None).expect("click");
    }

    fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None).expect("source").as_str().unwrap_or("").to_string()
    }

    fn width(&self) -> i64 {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": "return document.documentElement.scrollWidth;", "args": []})),
        )
        .ok()
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
    }

    fn screenshot(&self, name: &str) {
        let data = self.call("GET", &self.s("/screenshot"), None).expect("screenshot");
        let png = smtp_server::decode_base64(data.as_str().unwrap_or(""));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
        // Usable at 375 px: nothing wider than the viewport.
        assert!(self.width() <= 375, "{name}: page is {} px wide", self.width());
    }
}

#[test]
fn portal_in_a_real_browser() {
    // Real peers: missing = failure unless FLEXIAPI_TESTS_ALLOW_MISSING_PEERS=1.
    let Some(chromium) = common::require_tool("chromium") else { return };
    let Some(chromedriver) = common::require_tool("chromedriver") else { return };
    // Installed but unusable is always a failure.
    let driver = Driver::start(&chromium, &chromedriver).unwrap_or_else(|why| panic!("headless chromium: {why}"));
    let smtp = SmtpServer::start();
    let port = smtp.port().to_string();
    let server = Server::start(&[
        ("MAIL_DRIVER", "smtp"),
        ("MAIL_HOST", "127.0.0.1"),
        ("MAIL_PORT", &port),
        ("MAIL_ENCRYPTION", ""),
        ("MAIL_FROM_ADDRESS", "no-reply@sip.example.org"),
    ]);
    server.admin("adminuser");
    let base = server.url("");

    // Home and login as the admin.
    driver.go(&format!("{base}/"));
    driver.screenshot("01-home");
    driver.go(&format!("{base}/login"));
    driver.screenshot("02-login");
    driver.fill("#f-username", "adminuser");
    driver.fill("#f-password", "adminpassword");
    driver.click("button[type=submit]");
    driver.wait_url("/panel", |u| u.ends_with("/panel"));
    driver.screenshot("03-panel-admin");

    // The admin creates an account and opens its provisioning QR code.
    driver.go(&format!("{base}/admin/accounts/create"));
    driver.fill("#f-username", "webuser1");
    driver.fill("#f-password", "secret123");
    driver.fill("#f-email", "webuser1@example.net");
    driver.screenshot("04-admin-create");
    driver.click("form.stack button[type=submit]");
    driver.wait_url("/show", |u| u.contains("/show"));
    driver.click("form[action$='/provision'] button");
    assert!(driver.source().contains("/provisioning/qrcode/"));
    driver.screenshot("05-admin-show-qr");

    // It attaches an external account: an error first (the typed values
    // stay, the password does not), then success on the account page.
    let show = driver.url();
    driver.click("a[href$='/external_account']");
    driver.wait_url("/external_account", |u| u.ends_with("/external_account"));
    driver.fill("#f-username", "ext user");
    driver.fill("#f-domain", "voip.example.net");
    driver.fill("#f-registrar", "registrar.example.net:5070");
    driver.fill("#f-password", "extsecret");
    driver.click("form.stack button[type=submit]");
    // The answer comes back to the same URL: wait for its content.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut page = driver.source();
    while !page.contains("field-error") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        page = driver.source();
    }
    assert!(
        page.contains("The username may not contain spaces")
            && page.contains("registrar.example.net:5070")
            && !page.contains("extsecret")
    );
    driver.screenshot("05b-external-account-error");
    driver.fill("#f-username", "ext.user");
    driver.fill("#f-password", "extsecret");
    driver.click("form.stack button[type=submit]");
    driver.wait_url("the account page", |u| u == show);
    assert!(driver.source().contains("ext.user@voip.example.net"));
    driver.screenshot("05c-external-account-attached");
    driver.go(&format!("{base}/admin/accounts"));
    driver.screenshot("06-admin-list");
    driver.go(&format!("{base}/admin/statistics/week"));
    assert!(driver.source().contains("<svg"));
    driver.screenshot("07-statistics");
    driver.go(&format!("{base}/logout"));

    // The new user logs in and changes the password.
    driver.go(&format!("{base}/login"));
    driver.fill("#f-username", "webuser1");
    driver.fill("#f-password", "secret123");
    driver.click("button[type=submit]");
    driver.wait_url("/panel", |u| u.ends_with("/panel"));
    driver.go(&format!("{base}/password"));
    driver.fill("#f-old_password", "secret123");
    driver.fill("#f-password", "newsecret9");
    driver.fill("#f-password_confirmation", "newsecret9");
    driver.screenshot("08-password");
    driver.click("form.stack button[type=submit]");
    driver.wait_url("/panel", |u| u.ends_with("/panel"));
    assert!(driver.source().contains("Password updated."));
    driver.go(&format!("{base}/logout"));

    // Email registration through the loopback SMTP server.
    driver.go(&format!("{base}/register/email"));
    driver.fill("#f-username", "newcomer");
    driver.fill("#f-email", "newcomer@example.net");
    driver.fill("#f-email_confirmation", "newcomer@example.net");
    driver.screenshot("09-register-email");
    driver.click("form.stack button[type=submit]");
    driver.wait_url("/authenticate/email/check/", |u| u.contains("/authenticate/email/check/"));
    driver.screenshot("10-check-mailbox");
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    let mail = mails.iter().find(|m| m.body_text().contains("/authenticate/email/")).expect("registration mail");
    let link = mail.find_link(&format!("{base}/authenticate/email/")).expect("link in the mail");
    // The link logs in; the password is chosen then (seed 000), which
    // activates the account.
    driver.go(&link);
    driver.wait_url("/password", |u| u.ends_with("/password"));
    assert!(driver.source().contains("Set my account password"), "{}", driver.source());
    driver.fill("#f-password", "secret123");
    driver.fill("#f-password_confirmation", "secret123");
    driver.screenshot("11-set-password");
    driver.click("form.stack button[type=submit]");
    driver.wait_url("/panel", |u| u.ends_with("/panel"));
    assert!(driver.source().contains(&format!("newcomer@{DOMAIN}")));
    driver.screenshot("11-registered-panel");
    let activated: bool =
        server.db().query_row("SELECT activated FROM accounts WHERE username = 'newcomer'", [], |r| r.get(0)).unwrap();
    assert!(activated);

    // Documentation pages.
    driver.go(&format!("{base}/documentation"));
    driver.screenshot("12-documentation");
}
