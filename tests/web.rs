//! The web portal, over HTTP: sessions, CSRF, every form's success and
//! validation errors, access levels, flags, headers, assets.

mod common;

use common::{Resp, Server, DOMAIN};

/// A cookie-keeping client.
struct Browser<'a> {
    server: &'a Server,
    cookie: Option<String>,
    lang: Option<&'static str>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a Server) -> Browser<'a> {
        Browser { server, cookie: None, lang: None }
    }

    fn keep(&mut self, resp: &Resp) {
        for c in resp.headers_all("Set-Cookie") {
            let pair = c.split(';').next().unwrap_or("").to_string();
            if pair.starts_with("flexiapi_session=") {
                self.cookie = if pair == "flexiapi_session=" { None } else { Some(pair) };
            }
        }
    }

    /// Sends with the browser's cookie and language; keeps the new cookie.
    fn send(&mut self, req: common::Req<'_>) -> Resp {
        let mut req = req.no_accept().header("Accept", "text/html").header("User-Agent", "TestBrowser/1.0");
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        if let Some(l) = self.lang {
            req = req.header("Accept-Language", l);
        }
        let resp = req.send();
        self.keep(&resp);
        resp
    }

    fn get(&mut self, path: &str) -> Resp {
        self.send(self.server.get(path))
    }

    fn post_raw(&mut self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.send(self.server.post(path).form(pairs))
    }

    /// Opens `form_page`, then posts `pairs` with its CSRF token.
    fn submit(&mut self, form_page: &str, action: &str, pairs: &[(&str, &str)]) -> Resp {
        let page = self.get(form_page).text();
        let token = csrf(&page);
        let mut all: Vec<(&str, &str)> = vec![("_token", &token)];
        all.extend_from_slice(pairs);
        self.post_raw(action, &all)
    }

    /// Posts a form that must be refused: the portal goes back to the form
    /// (302, web.md 1.4), whose page then shows the errors and what was
    /// typed. Returns that page.
    #[track_caller]
    fn rejected(&mut self, form_page: &str, action: &str, pairs: &[(&str, &str)]) -> Resp {
        let resp = self.submit(form_page, action, pairs);
        assert_eq!(resp.status, 302, "expected a redirect back to {form_page}; body: {}", resp.text());
        let back = resp.header("Location").expect("Location");
        assert_eq!(back, form_page);
        self.get(&back).expect(200)
    }

    fn login(&mut self, username: &str, password: &str) {
        let resp = self.submit("/login", "/authenticate", &[("username", username), ("password", password)]);
        assert_eq!(resp.status, 302, "login failed: {}", resp.text());
        assert_eq!(resp.header("Location").as_deref(), Some("/panel"));
    }
}

fn csrf(page: &str) -> String {
    let marker = "name=\"_token\" value=\"";
    let start = page.find(marker).unwrap_or_else(|| panic!("no CSRF field in {page}")) + marker.len();
    page[start..].split('"').next().unwrap_or("").to_string()
}

fn user(server: &Server, key: &str, username: &str, password: &str) -> i64 {
    let account = common::create_account(
        server,
        key,
        serde_json::json!({"username": username, "password": password, "algorithm": "MD5", "activated": true, "email": format!("{username}@example.net")}),
    );
    account["id"].as_i64().unwrap()
}

fn count_where(server: &Server, sql: &str) -> i64 {
    server.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn home_login_logout_and_session() {
    let server = Server::start(&[(
        "INSTANCE_INTRO_REGISTRATION",
        "Welcome to **Acme SIP**.\n\nRead [the guide](https://acme.example/guide) <b>first</b>",
    )]);
    let (_, _, key) = server.admin("adminuser");
    user(&server, &key, "alice01", "secret123");
    let mut b = Browser::new(&server);

    let home = b.get("/").expect(200);
    let cookie = home.headers_all("Set-Cookie").join(";");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
    // The session outlives the browser for SESSION_LIFETIME minutes (120),
    // and its CSRF token is also in Laravel's readable XSRF-TOKEN cookie.
    assert!(cookie.contains("Max-Age=7200"), "{cookie}");
    let xsrf = home
        .headers_all("Set-Cookie")
        .into_iter()
        .find_map(|c| c.split(';').next().and_then(|p| p.strip_prefix("XSRF-TOKEN=")).map(str::to_string))
        .expect("an XSRF-TOKEN cookie");
    assert_eq!(xsrf, csrf(&b.get("/login").text()));
    assert!(!home.headers_all("Set-Cookie").iter().any(|c| c.starts_with("XSRF-TOKEN") && c.contains("HttpOnly")));
    assert!(home.text().contains("Manage your account"));
    // The operator's intro is Markdown (web.md §3); its HTML stays text.
    assert!(home.text().contains("<p>Welcome to <strong>Acme SIP</strong>.</p>"), "{}", home.text());
    assert!(home.text().contains("<a href=\"https://acme.example/guide\">the guide</a> &lt;b&gt;first&lt;/b&gt;"));
    for header in ["Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "X-Content-Type-Options"] {
        assert!(home.header(header).is_some(), "{header}");
    }
    assert!(!home.header("Content-Security-Policy").unwrap().contains("unsafe-inline"));

    b.get("/login").expect(200);
    let guest_cookie = b.cookie.clone();

    // Wrong password: the form again, the username kept, never the password.
    let resp = b.rejected("/login", "/authenticate", &[("username", "alice01"), ("password", "nope-nope")]);
    assert!(resp.text().contains("Wrong username or password."));
    assert!(resp.text().contains("value=\"alice01\""));
    assert!(!resp.text().contains("nope-nope"));
    // The errors are shown once: a reload is a clean form.
    let again = b.get("/login").expect(200);
    assert!(!again.text().contains("Wrong username or password.") && !again.text().contains("value=\"alice01\""));
    // Back is the page the form was on, when the browser names one of this site.
    let page = b.get("/login").text();
    let with_referer = |referer: &str| {
        b.server
            .post("/authenticate")
            .no_accept()
            .header("Accept", "text/html")
            .header("Cookie", b.cookie.as_deref().unwrap_or_default())
            .header("Referer", referer)
            .form(&[("_token", csrf(&page).as_str()), ("username", "alice01"), ("password", "nope")])
            .send()
    };
    let here = b.server.url("/login?from=home");
    assert_eq!(with_referer(&here).expect(302).header("Location").as_deref(), Some("/login?from=home"));
    let protocol_relative = b.server.url("//evil.example/login");
    let backslash = b.server.url("/\\evil.example/login");
    for elsewhere in
        ["https://evil.example/login", "http://127.0.0.1:1/login", protocol_relative.as_str(), backslash.as_str()]
    {
        assert_eq!(with_referer(elsewhere).expect(302).header("Location").as_deref(), Some("/login"), "{elsewhere}");
    }
    // A script may send the token as X-XSRF-TOKEN instead of `_token`.
    let by_header = b.send(
        b.server
            .post("/authenticate")
            .header("X-XSRF-TOKEN", &xsrf)
            .form(&[("username", "alice01"), ("password", "nope")]),
    );
    assert_eq!(by_header.status, 302, "{}", by_header.text());
    let by_nothing = b.send(b.server.post("/authenticate").form(&[("username", "alice01"), ("password", "nope")]));
    assert_eq!(by_nothing.status, 403);
    // A script asking for JSON gets the 422 and the errors, not a redirect.
    let scripted = b
        .server
        .post("/authenticate")
        .header("Accept", "application/json")
        .header("Cookie", b.cookie.as_deref().unwrap_or_default())
        .header("X-XSRF-TOKEN", &xsrf)
        .form(&[("username", "alice01"), ("password", "nope")])
        .send()
        .expect(422);
    assert!(scripted.json()["errors"].as_object().is_some_and(|e| !e.is_empty()), "{}", scripted.text());
    // Unknown account: same message.
    let resp = b.rejected("/login", "/authenticate", &[("username", "nobody1"), ("password", "x")]);
    assert!(resp.text().contains("Wrong username or password."));
    // Required fields.
    let resp = b.rejected("/login", "/authenticate", &[]);
    assert!(resp.text().contains("The username field is required."));

    b.login("alice01", "secret123");
    assert_ne!(b.cookie, guest_cookie, "a new session id at login");
    let panel = b.get("/panel").expect(200);
    assert!(panel.text().contains("sip:alice01@sip.example.org"));
    assert!(!panel.text().contains("Admin area"));
    assert_eq!(b.get("/login").status, 302);
    assert_eq!(b.get("/").header("Location").as_deref(), Some("/panel"));

    // Logout ends the session server-side: the old cookie is worthless.
    let old = b.cookie.clone().unwrap();
    let out = b.get("/logout").expect(302);
    assert_eq!(out.header("Location").as_deref(), Some("/login"));
    let replay = server.get("/panel").no_accept().header("Cookie", &old).send();
    assert_eq!(replay.status, 302);
    assert_eq!(replay.header("Location").as_deref(), Some("/"));
    // A client asking for JSON gets a 401 instead (web.md 1.1).
    let json = server.get("/panel").header("Cookie", &old).send();
    assert_eq!(json.status, 401);
    assert_eq!(json.json()["message"], "Unauthenticated.");
}

#[test]
fn login_by_phone_and_sha256_and_rate_limit() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("adminuser");
    common::create_account(
        &server,
        &key,
        serde_json::json!({"username": "bobbyuser", "password": "secret123", "algorithm": "SHA-256", "phone": "+33612345678"}),
    );
    let mut b = Browser::new(&server);
    b.login("+33612345678", "secret123");

    let mut c = Browser::new(&server);
    let mut limited = false;
    for _ in 0..25 {
        let r = c.submit("/login", "/authenticate", &[("username", "bobbyuser"), ("password", "wrong-one")]);
        if r.status == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status, 302);
    }
    assert!(limited, "login must be rate-limited");
}

#[test]
fn csrf_and_access_levels() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("adminuser");
    let id = user(&server, &key, "carol01", "secret123");
    let mut b = Browser::new(&server);
    b.get("/login");
    // No token, wrong token: 403, nothing done.
    assert_eq!(b.post_raw("/authenticate", &[("username", "carol01"), ("password", "secret123")]).status, 403);
    assert_eq!(
        b.post_raw("/authenticate", &[("_token", "forged"), ("username", "carol01"), ("password", "secret123")]).status,
        403
    );
    assert!(b.get("/panel").status == 302);

    // Not logged in: user pages send home, admin pages to /login (web.md 1.1).
    let mut guest = Browser::new(&server);
    for (path, to) in [
        ("/panel", "/"),
        ("/password", "/"),
        ("/email", "/"),
        ("/delete", "/"),
        ("/admin/accounts", "/login"),
        ("/admin/statistics/day", "/login"),
    ] {
        let r = guest.get(path);
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(r.header("Location").as_deref(), Some(to), "{path}");
    }

    // Logged in, not admin: 403 pages.
    b.login("carol01", "secret123");
    for path in [
        "/admin/accounts",
        "/admin/accounts/create",
        &format!("/admin/accounts/{id}/show"),
        "/admin/accounts/types",
        "/admin/statistics/week",
    ] {
        let r = b.get(path);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.text().contains("Unauthorized area"));
    }
    // A POST without the token from a logged-in user: 403, unchanged.
    let before = count_where(&server, "SELECT count(*) FROM api_keys");
    assert_eq!(b.post_raw("/api_key", &[]).status, 403);
    assert_eq!(count_where(&server, "SELECT count(*) FROM api_keys"), before);
    let r = b.post_raw(&format!("/admin/accounts/{id}/admin"), &[]);
    assert_eq!(r.status, 403);
    assert_eq!(count_where(&server, &format!("SELECT admin FROM accounts WHERE id = {id}")), 0);
}

#[test]
fn panel_password_email_api_key_delete() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("adminuser");
    let id = user(&server, &key, "dave0001", "secret123");
    let mut b = Browser::new(&server);
    b.login("dave0001", "secret123");
    let hash = |s: &Server| -> String {
        s.db().query_row(&format!("SELECT password FROM passwords WHERE account_id = {id}"), [], |r| r.get(0)).unwrap()
    };
    let original = hash(&server);

    // Password: wrong current password, mismatch, too short: nothing changes.
    let r = b.rejected(
        "/password",
        "/password",
        &[("old_password", "bad"), ("password", "newsecret1"), ("password_confirmation", "newsecret1")],
    );
    assert!(r.text().contains("Incorrect old password"));
    let r = b.rejected(
        "/password",
        "/password",
        &[("old_password", "secret123"), ("password", "newsecret1"), ("password_confirmation", "other")],
    );
    assert!(r.text().contains("confirmation does not match"));
    let r = b.rejected(
        "/password",
        "/password",
        &[("old_password", "secret123"), ("password", "abc"), ("password_confirmation", "abc")],
    );
    assert!(r.text().contains("at least 6 characters"));
    assert_eq!(hash(&server), original);
    // Success with SHA-256.
    let r = b.submit(
        "/password",
        "/password",
        &[
            ("old_password", "secret123"),
            ("password", "newsecret1"),
            ("password_confirmation", "newsecret1"),
            ("password_sha256", "1"),
        ],
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let algo: String = server
        .db()
        .query_row(&format!("SELECT algorithm FROM passwords WHERE account_id = {id}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(algo, "SHA-256");
    assert!(b.get("/panel").text().contains("Password updated."));

    // API key.
    let r = b.submit("/panel", "/api_key", &[]).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/panel"));
    assert_eq!(count_where(&server, &format!("SELECT count(*) FROM api_keys WHERE account_id = {id}")), 1);

    // Email change needs the current password and a matching confirmation.
    let r = b.rejected(
        "/email",
        "/email/request",
        &[("email", "new@example.net"), ("email_confirmation", "new@example.net"), ("current_password", "wrong")],
    );
    assert!(r.text().contains("The current password is incorrect."));
    assert!(r.text().contains("value=\"new@example.net\""));
    let r = b.rejected(
        "/email",
        "/email/request",
        &[("email", "new@example.net"), ("email_confirmation", "x@example.net"), ("current_password", "newsecret1")],
    );
    assert!(r.text().contains("confirmation does not match"));
    let r = b.rejected(
        "/email",
        "/email/request",
        &[("email", "bad"), ("email_confirmation", "bad"), ("current_password", "newsecret1")],
    );
    assert!(r.text().contains("valid email"));
    assert_eq!(count_where(&server, "SELECT count(*) FROM email_changed"), 0);
    // MAIL_DRIVER is empty: the mail is logged, the request stored.
    let r = b.submit(
        "/email",
        "/email/request",
        &[("email", "new@example.net"), ("email_confirmation", "new@example.net"), ("current_password", "newsecret1")],
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let hash_link: String = server.db().query_row("SELECT hash FROM email_changed", [], |r| r.get(0)).unwrap();
    assert_eq!(b.get("/email/wronghashwronghash").status, 404);
    b.get(&format!("/email/{hash_link}")).expect(302);
    let email: String =
        server.db().query_row(&format!("SELECT email FROM accounts WHERE id = {id}"), [], |r| r.get(0)).unwrap();
    assert_eq!(email, "new@example.net");

    // Deletion: the identifier must be the session's account.
    let r = b.rejected("/delete", "/delete", &[("_method", "DELETE"), ("identifier", "someone@else")]);
    assert!(r.text().contains("does not match"));
    let r = b.rejected("/delete", "/delete", &[("_method", "DELETE")]);
    assert!(r.text().contains("The identifier field is required."));
    assert_eq!(count_where(&server, &format!("SELECT count(*) FROM accounts WHERE id = {id}")), 1);
    let sip = format!("dave0001@{DOMAIN}");
    let r = b.submit("/delete", "/delete", &[("_method", "DELETE"), ("identifier", &sip)]).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/login"));
    assert_eq!(count_where(&server, &format!("SELECT count(*) FROM accounts WHERE id = {id}")), 0);
    assert_eq!(b.get("/panel").status, 302);
}

#[test]
fn admin_accounts_crud_and_provisioning() {
    let server = Server::start(&[]);
    server.admin("adminuser");
    let mut b = Browser::new(&server);
    b.login("adminuser", "adminpassword");
    assert!(b.get("/panel").text().contains("Admin area"));

    // Create: each validation error, data unchanged.
    let before = server.count("accounts");
    let r = b.rejected(
        "/admin/accounts/create",
        "/admin/accounts",
        &[("username", "Bad Name"), ("password", "abc"), ("email", "nope"), ("phone", "12"), ("dtmf_protocol", "zzz")],
    );
    let text = r.text();
    for m in [
        "No uppercase letters are allowed.",
        "at least 6 characters",
        "valid email",
        "phone number starting with +",
        "The selected dtmf protocol is invalid.",
    ] {
        assert!(text.contains(m), "{m}");
    }
    assert!(text.contains("value=\"Bad Name\""));
    assert_eq!(server.count("accounts"), before);
    let r = b.rejected(
        "/admin/accounts/create",
        "/admin/accounts",
        &[("username", "adminuser"), ("password", "secret123")],
    );
    assert!(r.text().contains("has already been taken"));

    let r = b
        .submit(
            "/admin/accounts/create",
            "/admin/accounts",
            &[
                ("username", "erin0001"),
                ("password", "secret123"),
                ("password_sha256", "1"),
                ("email", "erin@example.net"),
                ("display_name", "Erin"),
                ("phone", "+33611111111"),
                ("dtmf_protocol", "rfc2833"),
            ],
        )
        .expect(302);
    let show = r.header("Location").unwrap();
    let id: i64 = show.trim_start_matches("/admin/accounts/").trim_end_matches("/show").parse().unwrap();
    let page = b.get(&show).expect(200).text();
    assert!(page.contains("erin0001@sip.example.org") && page.contains("RFC2833") && page.contains("Account created."));
    let agent: String =
        server.db().query_row("SELECT user_agent FROM accounts WHERE id = ?1", [id], |r| r.get(0)).unwrap();
    assert_eq!(agent, "FlexiAPI", "made by the application, not by the admin's browser");

    // The list: search, filters, sort.
    let list = b.get("/admin/accounts?search=erin").expect(200).text();
    assert!(list.contains("erin0001@") && list.matches("adminuser@").count() == 1, "only the top bar names the admin");
    let list = b.get("/admin/accounts?admin=1").expect(200).text();
    assert!(list.matches("adminuser@").count() == 2 && !list.contains("erin0001@"));
    let list = b.get("/admin/accounts?sort=username&order=asc").expect(200).text();
    assert!(list.rfind("adminuser@").unwrap() < list.find("erin0001@").unwrap());
    let r = b.submit("/panel", "/admin/accounts/search", &[("search", "erin")]).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/admin/accounts/erin"));
    assert!(b.get("/admin/accounts/erin").expect(200).text().contains("erin0001@"));

    // Edit: errors keep the typed values; the password is optional unless
    // the username changes (the stored HA1 depends on it); success.
    let edit = format!("/admin/accounts/{id}/edit");
    let update = format!("/admin/accounts/{id}");
    let stored = |s: &Server| -> (String, String) {
        s.db()
            .query_row(&format!("SELECT password, algorithm FROM passwords WHERE account_id = {id}"), [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
    };
    let before_edit = stored(&server);
    let form = b.get(&edit).expect(200).text();
    assert!(
        form.contains("value=\"erin@example.net\"") && !form.contains("name=\"password\" required"),
        "no required password on edit"
    );
    let r =
        b.rejected(&edit, &update, &[("_method", "PUT"), ("username", "erin0001"), ("password", ""), ("email", "x")]);
    assert!(
        r.text().contains("valid email")
            && r.text().contains("value=\"x\"")
            && !r.text().contains("The password field is required.")
    );
    let r = b.rejected(
        &edit,
        &update,
        &[("_method", "PUT"), ("username", "erin0009"), ("password", ""), ("email", "erin@example.net")],
    );
    assert!(r.text().contains("A new password is required when the username or domain changes"));
    let r = b.rejected(
        &edit,
        &update,
        &[("_method", "PUT"), ("username", "erin0001"), ("password", "abc"), ("email", "erin@example.net")],
    );
    assert!(r.text().contains("at least 6 characters") && !r.text().contains("value=\"abc\""));
    let r = b.submit(
        &edit,
        &update,
        &[
            ("_method", "PUT"),
            ("username", "erin0001"),
            ("password", ""),
            ("email", "erin@example.net"),
            ("display_name", "Erin B"),
            ("phone", "+33611111111"),
            ("dtmf_protocol", "rfc2833"),
        ],
    );
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(stored(&server), before_edit, "an empty password keeps the stored one");
    let shown: String =
        server.db().query_row(&format!("SELECT display_name FROM accounts WHERE id = {id}"), [], |r| r.get(0)).unwrap();
    assert_eq!(shown, "Erin B");
    // No CSRF token: 403, nothing changed.
    b.get(&edit);
    assert_eq!(
        b.post_raw(&update, &[("_method", "PUT"), ("username", "erin0001"), ("display_name", "Forged")]).status,
        403
    );
    assert_eq!(count_where(&server, &format!("SELECT count(*) FROM accounts WHERE display_name = 'Forged'")), 0);
    let r = b.submit(
        &format!("/admin/accounts/{id}/edit"),
        &format!("/admin/accounts/{id}"),
        &[
            ("_method", "PUT"),
            ("username", "erin0002"),
            ("password", "secret456"),
            ("email", "erin2@example.net"),
            ("dtmf_protocol", "rfc2833"),
        ],
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let name: String =
        server.db().query_row(&format!("SELECT username FROM accounts WHERE id = {id}"), [], |r| r.get(0)).unwrap();
    assert_eq!(name, "erin0002");

    // Toggles are POST forms.
    let show = format!("/admin/accounts/{id}/show");
    b.submit(&show, &format!("/admin/accounts/{id}/activate"), &[]).expect(302);
    assert_eq!(count_where(&server, &format!("SELECT activated FROM accounts WHERE id = {id}")), 1);
    b.submit(&show, &format!("/admin/accounts/{id}/admin"), &[]).expect(302);
    assert_eq!(count_where(&server, &format!("SELECT admin FROM accounts WHERE id = {id}")), 1);
    b.submit(&show, &format!("/admin/accounts/{id}/unadmin"), &[]).expect(302);
    assert_eq!(count_where(&server, &format!("SELECT admin FROM accounts WHERE id = {id}")), 0);
    let me: i64 =
        server.db().query_row("SELECT id FROM accounts WHERE username = 'adminuser'", [], |r| r.get(0)).unwrap();
    assert_eq!(b.submit(&show, &format!("/admin/accounts/{me}/unadmin"), &[]).status, 403);
    // An action's GET URL is a page confirming it; only its form acts.
    let deactivate = format!("/admin/accounts/{id}/deactivate");
    let page = b.get(&deactivate).expect(200).text();
    assert!(page.contains(&format!("action=\"{deactivate}\"")), "{page}");
    assert_eq!(count_where(&server, &format!("SELECT activated FROM accounts WHERE id = {id}")), 1);
    b.submit(&deactivate, &deactivate, &[]).expect(302);
    assert_eq!(count_where(&server, &format!("SELECT activated FROM accounts WHERE id = {id}")), 0);
    b.submit(&show, &format!("/admin/accounts/{id}/activate"), &[]).expect(302);

    // Provisioning: QR image, link, renewal invalidates the old token.
    b.submit(&show, &format!("/admin/accounts/{id}/provision"), &[]).expect(302);
    let old: String = server
        .db()
        .query_row(&format!("SELECT provisioning_token FROM accounts WHERE id = {id}"), [], |r| r.get(0))
        .unwrap();
    let page = b.get(&show).text();
    assert!(page.contains(&format!("/provisioning/qrcode/{old}")) && page.contains(&format!("/provisioning/{old}")));
    b.submit(&show, &format!("/admin/accounts/{id}/provision"), &[]).expect(302);
    let new: String = server
        .db()
        .query_row(&format!("SELECT provisioning_token FROM accounts WHERE id = {id}"), [], |r| r.get(0))
        .unwrap();
    assert_ne!(old, new);
    assert_eq!(server.get(&format!("/provisioning/{old}")).send().status, 404);

    // Contacts, types, actions.
    let r = b.rejected(
        &format!("/admin/accounts/{id}/contacts/create"),
        &format!("/admin/accounts/{id}/contacts"),
        &[("sip", "ghost@nowhere")],
    );
    assert!(r.text().contains("doesn't exist"));
    b.submit(
        &format!("/admin/accounts/{id}/contacts/create"),
        &format!("/admin/accounts/{id}/contacts"),
        &[("sip", &format!("adminuser@{DOMAIN}"))],
    )
    .expect(302);
    assert_eq!(server.count("contacts"), 1);
    let page = b.get(&format!("/admin/accounts/{id}/contacts/{me}/delete")).expect(200).text();
    assert!(page.contains(&format!("name=\"contact_id\" value=\"{me}\"")), "{page}");
    assert!(page.contains("name=\"_method\" value=\"DELETE\""));
    assert_eq!(server.count("contacts"), 1);
    let r = b.rejected("/admin/accounts/types/create", "/admin/accounts/types", &[("key", "Bad Key")]);
    assert!(r.text().contains("No uppercase letters are allowed."));
    b.submit("/admin/accounts/types/create", "/admin/accounts/types", &[("key", "device_door")]).expect(302);
    let type_id: i64 =
        server.db().query_row("SELECT id FROM account_types WHERE key = 'device_door'", [], |r| r.get(0)).unwrap();
    b.submit(
        &format!("/admin/accounts/{id}/types/create"),
        &format!("/admin/accounts/{id}/types"),
        &[("account_type_id", &type_id.to_string())],
    )
    .expect(302);
    assert!(b.get(&show).text().contains("device_door"));
    let r = b.rejected(
        &format!("/admin/accounts/{id}/actions/create"),
        &format!("/admin/accounts/{id}/actions"),
        &[("key", "open"), ("code", "12 ab")],
    );
    assert!(r.text().contains("only contain letters and numbers"));
    b.submit(
        &format!("/admin/accounts/{id}/actions/create"),
        &format!("/admin/accounts/{id}/actions"),
        &[("key", "open_door"), ("code", "12ab")],
    )
    .expect(302);
    assert_eq!(server.count("account_actions"), 1);
    b.submit(
        &format!("/admin/accounts/types/{type_id}/edit"),
        &format!("/admin/accounts/types/{type_id}"),
        &[("_method", "PUT"), ("key", "device_gate")],
    )
    .expect(302);
    b.submit(
        &format!("/admin/accounts/types/{type_id}/delete"),
        &format!("/admin/accounts/types/{type_id}"),
        &[("_method", "DELETE")],
    )
    .expect(302);
    assert_eq!(count_where(&server, "SELECT count(*) FROM account_types WHERE key = 'device_gate'"), 0);

    // Statistics: inline SVG, no script.
    let stats = b.get("/admin/statistics/month").expect(200).text();
    assert!(stats.contains("<svg") && !stats.contains("<script"));
    b.get("/admin/statistics/day").expect(200);
    b.get("/admin/statistics/week").expect(200);
    assert_eq!(b.get("/admin/statistics/year").status, 404);

    // Delete with confirmation.
    b.get(&format!("/admin/accounts/{id}/delete")).expect(200);
    b.submit(
        &format!("/admin/accounts/{id}/delete"),
        "/admin/accounts",
        &[("_method", "DELETE"), ("account_id", &id.to_string())],
    )
    .expect(302);
    assert_eq!(count_where(&server, &format!("SELECT count(*) FROM accounts WHERE id = {id}")), 0);
    assert_eq!(b.get(&show).status, 404);
}

#[test]
fn email_registration_and_recovery() {
    let server = Server::start(&[("TERMS_OF_USE_URL", "https://example.org/terms")]);
    let mut b = Browser::new(&server);
    let form = [("username", "frank001"), ("email", "frank@example.net"), ("email_confirmation", "frank@example.net")];
    // Terms not ticked: the form again (200, web.md 4.1), nothing created.
    let r = b.submit("/register/email", "/register/email", &form).expect(200);
    assert!(r.text().contains("The terms must be accepted."));
    assert!(r.text().contains("value=\"frank001\""));
    let r = b
        .submit(
            "/register/email",
            "/register/email",
            &[("username", "+3312345678"), ("email", "x"), ("email_confirmation", "x"), ("terms", "1")],
        )
        .expect(200);
    assert!(r.text().contains("cannot be a phone number"));
    assert_eq!(server.count("accounts"), 0);

    let mut with_terms = form.to_vec();
    with_terms.push(("terms", "1"));
    let r = b.submit("/register/email", "/register/email", &with_terms).expect(302);
    assert!(r.header("Location").unwrap().starts_with("/authenticate/email/check/"));
    assert!(
        !b.get(&r.header("Location").unwrap()).text().contains("frank@example.net"),
        "the check page must not leak the address"
    );
    let key: String = server
        .db()
        .query_row("SELECT confirmation_key FROM accounts WHERE username = 'frank001'", [], |r| r.get(0))
        .unwrap();
    // An unknown or spent link sends back to the form asking for a new one.
    let r = b.get("/authenticate/email/AAAAAAAAAAAAA").expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/login/email"));
    assert!(b.get("/login/email").text().contains("ask for a new one"));
    // No password yet (seed 000): the link logs in and asks for one; the
    // account is activated once it is set.
    let r = b.get(&format!("/authenticate/email/{key}")).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/password"));
    assert_eq!(count_where(&server, "SELECT activated FROM accounts WHERE username = 'frank001'"), 0);
    assert!(b.get("/password").expect(200).text().contains("Set my account password"));
    b.submit("/password", "/password", &[("password", "secret123"), ("password_confirmation", "secret123")])
        .expect(302);
    assert!(b.get("/panel").text().contains("frank001@"));
    assert_eq!(count_where(&server, "SELECT activated FROM accounts WHERE username = 'frank001'"), 1);
    b.get("/logout");

    // Recovery: same answer for known and unknown accounts.
    let mut g = Browser::new(&server);
    let known = g
        .submit("/login/email", "/authenticate/email", &[("email", "frank@example.net"), ("username", "frank001")])
        .expect(200)
        .text();
    let unknown = g
        .submit("/login/email", "/authenticate/email", &[("email", "ghost@example.net"), ("username", "ghost01")])
        .expect(200)
        .text();
    let strip = |s: &str| s.split("_token").next().unwrap_or("").to_string();
    assert_eq!(strip(&known), strip(&unknown));
    let r = g.rejected("/login/email", "/authenticate/email", &[("email", "bad")]);
    assert!(r.text().contains("valid email") && r.text().contains("The username field is required."));
    // The recovery link logs in; the forgotten password can be replaced.
    let key: String = server
        .db()
        .query_row("SELECT confirmation_key FROM accounts WHERE username = 'frank001'", [], |r| r.get(0))
        .unwrap();
    g.get(&format!("/authenticate/email/{key}")).expect(302);
    let page = g.get("/password").text();
    assert!(!page.contains("old_password"));
    g.submit("/password", "/password", &[("password", "brandnew1"), ("password_confirmation", "brandnew1")])
        .expect(302);
    let mut h = Browser::new(&server);
    h.login("frank001", "brandnew1");
}

#[test]
fn qr_login_both_directions() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("adminuser");
    user(&server, &key, "gina0001", "secret123");
    let mut phone = Browser::new(&server);
    phone.login("gina0001", "secret123");

    // A guest shows a code; the logged-in device opens its link.
    let mut guest = Browser::new(&server);
    let r = guest.get("/authenticate/qrcode").expect(302);
    let waiting = r.header("Location").unwrap();
    let token = waiting.rsplit('/').next().unwrap().to_string();
    let page = guest.get(&waiting).expect(200).text();
    assert!(page.contains("/js/qr_login.js") && page.contains("data-poll"));
    let png = guest.get(&format!("/auth_tokens/qrcode/{token}")).expect(200);
    assert_eq!(png.header("Content-Type").as_deref(), Some("image/png"));
    phone.get(&format!("/auth_tokens/auth/external/{token}")).expect(302);
    let r = guest.get(&waiting).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/panel"));
    assert!(guest.get("/panel").text().contains("gina0001@"));
    // Used: a fresh token is issued instead.
    let mut other = Browser::new(&server);
    assert_eq!(other.get(&waiting).header("Location").as_deref(), Some("/authenticate/qrcode"));

    // The logged-in device shows a code; a new device opens it.
    phone.submit("/panel", "/auth_tokens", &[]).expect(302);
    let panel = phone.get("/panel").text();
    let start = panel.find("/auth_tokens/qrcode/").unwrap() + "/auth_tokens/qrcode/".len();
    let token: String = panel[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let mut fresh = Browser::new(&server);
    fresh.get(&format!("/auth_tokens/auth/{token}")).expect(302);
    assert!(fresh.get("/panel").text().contains("gina0001@"));
    assert_eq!(Browser::new(&server).get(&format!("/auth_tokens/auth/{token}")).status, 404);
}

#[test]
fn flags_docs_assets_and_french() {
    let server = Server::start(&[]);
    let mut b = Browser::new(&server);
    let doc = b.get("/documentation").expect(200).text();
    assert!(doc.contains("Phone Registration") && doc.contains("The feature is not enabled on this instance."));
    assert!(doc.contains("href=\"/register/email\""));
    let api = b.get("/api").expect(200).text();
    assert!(api.contains("GET /ping"));
    assert_eq!(b.get("/login/phone").status, 404);
    assert_eq!(b.get("/register/phone").status, 404);
    assert_eq!(b.post_raw("/authenticate/phone/confirm", &[("code", "1234")]).status, 404);
    assert_eq!(b.get("/devices").status, 404);

    let css = b.get("/css/style.css").expect(200);
    assert!(css.header("Content-Type").unwrap().starts_with("text/css"));
    assert!(css.header("Cache-Control").unwrap().contains("max-age"));
    b.get("/js/qr_login.js").expect(200);
    b.get("/img/logo.svg").expect(200);
    assert_eq!(b.get("/css/..%2FCargo.toml").status, 404);
    assert_eq!(b.get("/css/../../Cargo.toml").status, 404);

    b.lang = Some("fr-FR,fr;q=0.9");
    let fr = b.get("/login").text();
    assert!(fr.contains("lang=\"fr\"") && fr.contains("Mot de passe"));
    // The rules' messages follow the page's language.
    let form = [("username", "fr"), ("email", "a@b.c"), ("email_confirmation", "x@b.c"), ("password", "secret123")];
    let page = b.submit("/register/email", "/register/email", &form).expect(200).text();
    assert!(page.contains("La confirmation du champ adresse e-mail ne correspond pas."), "{page}");
    assert!(page.contains("La confirmation du champ mot de passe ne correspond pas."), "{page}");
    let form = [
        ("username", "fr"),
        ("email", "not-an-email"),
        ("email_confirmation", "not-an-email"),
        ("password", "secret123"),
        ("password_confirmation", "secret123"),
    ];
    let page = b.submit("/register/email", "/register/email", &form).expect(200).text();
    assert!(page.contains("Le champ adresse e-mail doit être une adresse e-mail valide."), "{page}");
    assert!(page.contains("Le champ nom d'utilisateur doit contenir au moins "), "{page}");
    assert!(!page.contains("The email must be a valid email address."));

    let off = Server::start(&[("WEB_PANEL", "false")]);
    let mut o = Browser::new(&off);
    for path in ["/login", "/panel", "/admin/accounts", "/register/email", "/login/email", "/authenticate/qrcode"] {
        assert_eq!(o.get(path).status, 404, "{path}");
    }
    o.get("/").expect(200);
    o.get("/documentation").expect(200);
    assert_eq!(off.get("/api/ping").send().status, 200);
}

#[test]
fn phone_registration_and_recovery_pages() {
    let server = Server::start(&[("PHONE_AUTHENTICATION", "true")]);
    let mut b = Browser::new(&server);
    let choice = b.get("/register").expect(200).text();
    assert!(choice.contains("/register/phone"));
    let r = b.submit("/register/phone", "/register/phone", &[("phone", "0612")]).expect(200);
    assert!(r.text().contains("phone number starting with +"));
    assert_eq!(server.count("accounts"), 0);
    // OVH is not configured: the SMS fails (logged), the PIN page shows.
    let r = b.submit("/register/phone", "/register/phone", &[("phone", "+33622222222")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("/authenticate/phone/confirm"));
    let pin: String = server
        .db()
        .query_row("SELECT confirmation_key FROM accounts WHERE phone = '+33622222222'", [], |r| r.get(0))
        .unwrap();
    let r = b.submit("/login/phone", "/authenticate/phone/confirm", &[("code", "0000")]);
    assert_eq!(r.status, 422);
    // The PIN logs in; no password yet, so the account waits for one (web.md 4.4).
    let r = b.submit("/login/phone", "/authenticate/phone/confirm", &[("code", &pin)]).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some("/password"));
    assert_eq!(count_where(&server, "SELECT activated FROM accounts WHERE phone = '+33622222222'"), 0);
    b.submit("/password", "/password", &[("password", "secret123"), ("password_confirmation", "secret123")])
        .expect(302);
    assert_eq!(count_where(&server, "SELECT activated FROM accounts WHERE phone = '+33622222222'"), 1);
    assert!(b.get("/panel").text().contains("+33622222222@"));
    // Recovery by phone: the same page for unknown numbers; no session binding.
    let mut g = Browser::new(&server);
    let r = g.submit("/login/phone", "/authenticate/phone", &[("phone", "+33699999999")]).expect(200);
    assert!(r.text().contains("/authenticate/phone/confirm"));
    assert_eq!(g.submit("/login/phone", "/authenticate/phone/confirm", &[("code", "1234")]).status, 422);
}

/// The external account row of an account: (username, domain, realm,
/// registrar, outbound_proxy, protocol, password, algorithm).
type ExternalRow = (String, String, Option<String>, Option<String>, Option<String>, Option<String>, String, String);

fn external_row(server: &Server, account_id: i64) -> Option<ExternalRow> {
    server
        .db()
        .query_row(
            "SELECT username, domain, realm, registrar, outbound_proxy, protocol, password, algorithm FROM external_accounts WHERE account_id = ?1",
            [account_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .ok()
}

#[test]
fn admin_external_account_form() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("adminuser");
    let id = user(&server, &key, "ivan0001", "secret123");
    let other = user(&server, &key, "ivan0002", "secret123");
    let form = format!("/admin/accounts/{id}/external_account");
    let show = format!("/admin/accounts/{id}/show");
    let valid = [
        ("username", "ivan.ext"),
        ("domain", "voip.example.net"),
        ("realm", "auth.example.net"),
        ("registrar", "registrar.example.net:5070"),
        ("outbound_proxy", "proxy.example.net"),
        ("protocol", "TCP"),
        ("password", "extsecret"),
    ];

    // Not logged in: to /login, nothing stored.
    let mut guest = Browser::new(&server);
    assert_eq!(guest.get(&form).header("Location").as_deref(), Some("/login"));
    assert_eq!(guest.submit("/login", &form, &valid).header("Location").as_deref(), Some("/login"));
    // Logged in, not admin: 403.
    let mut plain = Browser::new(&server);
    plain.login("ivan0002", "secret123");
    assert_eq!(plain.get(&form).status, 403);
    assert_eq!(plain.submit("/panel", &form, &valid).status, 403);
    assert_eq!(server.count("external_accounts"), 0);

    let mut b = Browser::new(&server);
    b.login("adminuser", "adminpassword");
    let page = b.get(&show).expect(200).text();
    assert!(page.contains("No External Account attached.") && page.contains(&format!("href=\"{form}\"")));
    // The imported pool is off on this instance: said with the seed's words.
    assert!(page.contains("The feature is not enabled on this instance."));
    let page = b.get(&form).expect(200).text();
    for field in
        ["username", "domain", "realm", "registrar", "outbound_proxy", "protocol", "password", "password_sha256"]
    {
        assert!(page.contains(&format!("name=\"{field}\"")), "{field}");
    }
    // CSRF token missing: 403, nothing stored.
    assert_eq!(b.post_raw(&form, &valid).status, 403);
    assert_eq!(server.count("external_accounts"), 0);

    // Each validation error: the form again with the message and the
    // typed values, never the password.
    let with = |field: &str, value: &'static str| -> Vec<(String, String)> {
        valid
            .iter()
            .map(|(k, v)| (k.to_string(), if *k == field { value.to_string() } else { v.to_string() }))
            .collect()
    };
    let cases: [(&str, &str, &str); 9] = [
        ("username", "", "The username field is required."),
        ("username", "ivan ext", "The username may not contain spaces"),
        ("domain", "", "The domain field is required."),
        ("domain", "not a host", "The domain must be a valid host name."),
        ("realm", "a realm", "The realm may not contain spaces"),
        ("registrar", "sip:registrar.example.net", "The registrar must be a host name, optionally followed by :port."),
        (
            "outbound_proxy",
            "proxy.example.net:99999",
            "The outbound proxy must be a host name, optionally followed by :port.",
        ),
        ("protocol", "SCTP", "The selected protocol is invalid."),
        ("password", "", "The password field is required."),
    ];
    for (field, value, message) in cases {
        let pairs = with(field, value);
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = b.rejected(&form, &form, &refs);
        let text = r.text();
        assert!(text.contains(message), "{field}: {message}");
        assert!(text.contains("class=\"field invalid\""), "{field}: the field is marked");
        if field != "username" {
            assert!(text.contains("value=\"ivan.ext\""), "{field}: typed values kept");
        }
        assert!(!text.contains("extsecret"), "{field}: the password is never echoed");
    }
    assert_eq!(server.count("external_accounts"), 0);

    // Success: stored with the HA1 of its own realm, shown, provisioned.
    let r = b.submit(&form, &form, &valid).expect(302);
    assert_eq!(r.header("Location").as_deref(), Some(show.as_str()));
    let row = external_row(&server, id).expect("attached");
    let ha1 = common::hash("MD5", "ivan.ext:auth.example.net:extsecret");
    assert_eq!(
        row,
        (
            "ivan.ext".into(),
            "voip.example.net".into(),
            Some("auth.example.net".into()),
            Some("registrar.example.net:5070".into()),
            Some("proxy.example.net".into()),
            Some("TCP".into()),
            ha1.clone(),
            "MD5".into()
        )
    );
    let page = b.get(&show).expect(200).text();
    assert!(
        page.contains("External Account saved.")
            && page.contains("ivan.ext@voip.example.net")
            && page.contains("registrar.example.net:5070")
    );
    b.submit(&show, &format!("/admin/accounts/{id}/provision"), &[]).expect(302);
    let token: String = server
        .db()
        .query_row(&format!("SELECT provisioning_token FROM accounts WHERE id = {id}"), [], |r| r.get(0))
        .unwrap();
    let xml = server.get(&format!("/provisioning/{token}")).no_accept().send().expect(200).text();
    for needle in [
        "sip:registrar.example.net:5070;transport=tcp",
        "sip:proxy.example.net;transport=tcp",
        "auth.example.net",
        &ha1,
        "external_account",
    ] {
        assert!(xml.contains(needle), "{needle} in {xml}");
    }

    // Edit: the stored values shown; an empty password keeps the hash
    // while the identity stays; a new identity needs a new password.
    let page = b.get(&form).expect(200).text();
    assert!(page.contains("value=\"registrar.example.net:5070\"") && !page.contains(&ha1));
    let mut edit = with("registrar", "");
    edit.retain(|(k, _)| k != "password");
    edit.push(("_method".into(), "PUT".into()));
    let refs: Vec<(&str, &str)> = edit.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.submit(&form, &form, &refs).expect(302);
    let row = external_row(&server, id).unwrap();
    assert_eq!((row.3.as_deref(), row.6.as_str()), (None, ha1.as_str()));
    let r = b.rejected(
        &form,
        &form,
        &[("_method", "PUT"), ("username", "ivan.new"), ("domain", "voip.example.net"), ("protocol", "UDP")],
    );
    assert!(r.text().contains("A new password is required when the username, domain or realm changes"));
    b.submit(
        &form,
        &form,
        &[
            ("_method", "PUT"),
            ("username", "ivan.new"),
            ("domain", "voip.example.net"),
            ("protocol", "TLS"),
            ("password", "other-secret"),
            ("password_sha256", "1"),
        ],
    )
    .expect(302);
    let row = external_row(&server, id).unwrap();
    assert_eq!(row.6, common::hash("SHA-256", "ivan.new:voip.example.net:other-secret"));
    assert_eq!((row.2.as_deref(), row.5.as_deref(), row.7.as_str()), (None, Some("TLS"), "SHA-256"));
    assert_eq!(server.count("external_accounts"), 1, "edited in place");

    // The same external account cannot serve two accounts.
    let other_form = format!("/admin/accounts/{other}/external_account");
    let r = b.rejected(
        &other_form,
        &other_form,
        &[("username", "ivan.new"), ("domain", "voip.example.net"), ("protocol", "UDP"), ("password", "x")],
    );
    assert!(r.text().contains("already attached to another account"));

    // Delete; a second time there is nothing left: 404.
    b.submit(&show, &form, &[("_method", "DELETE")]).expect(302);
    assert!(external_row(&server, id).is_none());
    assert_eq!(b.submit(&show, &form, &[("_method", "DELETE")]).status, 404);
    // The pool is off: its attach action does not exist.
    assert_eq!(b.submit(&show, &format!("/admin/accounts/{id}/external_account/attach"), &[]).status, 404);

    // French.
    b.lang = Some("fr");
    let page = b.get(&form).expect(200).text();
    assert!(
        page.contains("Associer un compte externe") && page.contains("Proxy sortant") && page.contains("Protocole")
    );
    let r = b.rejected(&form, &form, &[("username", "x"), ("domain", "voip.example.net"), ("protocol", "UDP")]);
    assert!(r.text().contains("Veuillez corriger les erreurs ci-dessous."));
}

#[test]
fn admin_external_account_pool() {
    let server = Server::start(&[("ACCOUNT_CONSUME_EXTERNAL_ACCOUNT_ON_CREATE", "true")]);
    let (_, _, key) = server.admin("adminuser");
    server
        .db()
        .execute_batch(
            "INSERT INTO external_accounts (username, domain, password, algorithm, used, created_at, updated_at) VALUES \
             ('pool1', 'pool.example.net', 'h1', 'MD5', 0, datetime('now'), datetime('now')), \
             ('pool2', 'pool.example.net', 'h2', 'MD5', 0, datetime('now'), datetime('now'))",
        )
        .unwrap();
    // Creating an account consumes one; the admin deletes it, then takes
    // the next one from the pool on the account page.
    let id = user(&server, &key, "jane0001", "secret123");
    assert_eq!(external_row(&server, id).map(|r| r.0).as_deref(), Some("pool1"));
    let mut b = Browser::new(&server);
    b.login("adminuser", "adminpassword");
    let show = format!("/admin/accounts/{id}/show");
    b.submit(&show, &format!("/admin/accounts/{id}/external_account"), &[("_method", "DELETE")]).expect(302);
    let page = b.get(&show).expect(200).text();
    assert!(
        page.contains("Attach an imported External Account (1 left)") && !page.contains("The feature is not enabled")
    );
    let attach = format!("/admin/accounts/{id}/external_account/attach");
    b.submit(&show, &attach, &[]).expect(302);
    assert_eq!(external_row(&server, id).map(|r| r.0).as_deref(), Some("pool2"));
    let r = b.submit(&show, &attach, &[]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("already attached"));

    // The list marks the account with an external account (EA), and only it.
    let page = b.get("/admin/accounts").expect(200).text();
    let list = &page[page.find("<tbody>").expect("a table of accounts")..];
    let row_of = |name: &str| -> String {
        let start = list.find(&format!(">{name}@")).unwrap_or_else(|| panic!("{name} not listed"));
        let end = list[start..].find("</tr>").map(|e| start + e).unwrap();
        list[start..end].to_string()
    };
    assert!(row_of("jane0001").contains("title=\"External account attached\""), "{}", row_of("jane0001"));
    assert!(row_of("adminuser").contains("title=\"Admin\""));
    assert!(!row_of("adminuser").contains("External account attached"), "{}", row_of("adminuser"));
}

#[test]
fn statistics_graphs_by_type_and_activation() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("adminuser");
    for (name, phone, activated) in [
        ("stat0001", None, true),
        ("stat0002", None, false),
        ("stat0003", Some("+33633333333"), true),
        ("stat0004", Some("+33644444444"), false),
        ("stat0005", Some("+33655555555"), false),
    ] {
        let mut body =
            serde_json::json!({"username": name, "password": "secret123", "algorithm": "MD5", "activated": activated});
        if let Some(p) = phone {
            body["phone"] = serde_json::json!(p);
        }
        common::create_account(&server, &key, body);
    }
    let mut b = Browser::new(&server);
    b.login("adminuser", "adminpassword");
    for period in ["day", "week", "month"] {
        let page = b.get(&format!("/admin/statistics/{period}")).expect(200).text();
        assert!(page.contains("<svg") && !page.contains("<script"), "{period}");
        // The five accounts above (the console's admin is dated years back).
        for segment in ["Activated email: 1", "Unactivated email: 1", "Activated phone: 1", "Unactivated phone: 2"] {
            assert!(page.contains(segment), "{period}: {segment}");
        }
        assert!(page.contains("5 registrations in this period."), "{period}");
        assert!(page.contains("aria-current=\"page\""), "{period}: the current tab");
    }
    b.lang = Some("fr-FR");
    let page = b.get("/admin/statistics/week").expect(200).text();
    assert!(page.contains("Téléphones activés") && page.contains("E-mail activé: 1") && page.contains("Semaine"));
    let mut plain = Browser::new(&server);
    plain.login("stat0001", "secret123");
    assert_eq!(plain.get("/admin/statistics/day").status, 403);
}

#[test]
fn creation_token_page_and_api_anchors_without_the_panel() {
    let server = Server::start(&[("WEB_PANEL", "false")]);
    let token = server.post("/api/account_creation_request_tokens").send().expect(201).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut b = Browser::new(&server);
    let page = b.get(&format!("/creation_token/check/{token}")).expect(200).text();
    assert!(page.contains("I'm not a robot"));
    // CSRF missing: 403, not validated.
    assert_eq!(b.post_raw("/creation_token/validate", &[("account_creation_request_token", &token)]).status, 403);
    assert_eq!(
        count_where(&server, "SELECT count(*) FROM account_creation_request_tokens WHERE validated_at IS NOT NULL"),
        0
    );
    let r = b
        .submit(
            &format!("/creation_token/check/{token}"),
            "/creation_token/validate",
            &[("account_creation_request_token", &token)],
        )
        .expect(200);
    assert!(r.text().contains("The request is validated"));
    assert_eq!(
        count_where(&server, "SELECT count(*) FROM account_creation_request_tokens WHERE validated_at IS NOT NULL"),
        1
    );
    assert_eq!(b.get("/creation_token/check/unknowntoken1").status, 404);
    b.lang = Some("fr");
    assert!(b.get(&format!("/creation_token/check/{token}")).text().contains("Je ne suis pas un robot"));

    // The API page carries the anchors other pages link to.
    let api = b.get("/api").expect(200).text();
    for anchor in ["about--auth", "ping", "accounts", "account-types", "statistics"] {
        assert!(api.contains(&format!("id=\"{anchor}\"")), "{anchor}");
    }
    // ... and the provisioning page links to one of them.
    let provisioning_doc = b.get("/provisioning/documentation").text();
    assert!(provisioning_doc.contains("/api#about--auth"));
}
