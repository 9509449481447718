//! The provisioning server: FlexiAPI's AccountProvisioningTest assertions
//! (provisioning.md §13), escaping, the RC file, hooks, QR codes, password
//! reset, and a real liblinphone client fetching and applying the XML.

mod common;

use common::{account_with_key, create_account, require_tool, Challenge, Resp, Server, TempDir, DOMAIN};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// --- helpers ---

/// One parsed `<entry>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    value: String,
    overwrite: bool,
}

/// The document as (section name, entries), parsed back with quick-xml so
/// escaping is checked the way a client reads it.
#[derive(Debug, Clone)]
struct Doc {
    sections: Vec<(String, Vec<Entry>)>,
}

impl Doc {
    fn parse(xml: &str) -> Doc {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut sections: Vec<(String, Vec<Entry>)> = Vec::new();
        let mut entry: Option<Entry> = None;
        let mut saw_root = false;
        let attr = |e: &quick_xml::events::BytesStart, name: &[u8]| -> Option<String> {
            e.attributes().flatten().find(|a| a.key.as_ref() == name).map(|a| {
                a.unescape_value().map(|v| v.into_owned()).unwrap_or_else(|err| panic!("bad attribute: {err}"))
            })
        };
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("XML does not parse ({e}): {xml}")) {
                Event::Start(e) if e.name().as_ref() == b"config" => {
                    saw_root = true;
                    assert_eq!(attr(&e, b"xmlns").as_deref(), Some("http://www.linphone.org/xsds/lpconfig.xsd"));
                }
                Event::Start(e) if e.name().as_ref() == b"section" => {
                    sections.push((attr(&e, b"name").expect("section name"), Vec::new()));
                }
                Event::Start(e) if e.name().as_ref() == b"entry" => {
                    entry = Some(Entry {
                        name: attr(&e, b"name").expect("entry name"),
                        value: String::new(),
                        overwrite: attr(&e, b"overwrite").as_deref() == Some("true"),
                    });
                }
                Event::Empty(e) if e.name().as_ref() == b"entry" => {
                    let entry = Entry {
                        name: attr(&e, b"name").expect("entry name"),
                        value: String::new(),
                        overwrite: attr(&e, b"overwrite").as_deref() == Some("true"),
                    };
                    sections.last_mut().expect("entry in a section").1.push(entry);
                }
                Event::Text(t) => {
                    if let Some(entry) = entry.as_mut() {
                        entry.value.push_str(&t.decode().expect("text"));
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(entry) = entry.as_mut() {
                        let name = r.decode().expect("ref").into_owned();
                        let resolved = match name.as_str() {
                            "amp" => "&".to_string(),
                            "lt" => "<".to_string(),
                            "gt" => ">".to_string(),
                            "quot" => "\"".to_string(),
                            "apos" => "'".to_string(),
                            n if n.starts_with("#x") => char::from_u32(u32::from_str_radix(&n[2..], 16).expect("hex"))
                                .expect("char")
                                .to_string(),
                            n if n.starts_with('#') => {
                                char::from_u32(n[1..].parse().expect("dec")).expect("char").to_string()
                            }
                            other => panic!("unknown entity {other}"),
                        };
                        entry.value.push_str(&resolved);
                    }
                }
                Event::CData(c) => {
                    if let Some(entry) = entry.as_mut() {
                        entry.value.push_str(&String::from_utf8_lossy(&c.into_inner()));
                    }
                }
                Event::End(e) if e.name().as_ref() == b"entry" => {
                    let done = entry.take().expect("open entry");
                    sections.last_mut().expect("entry in a section").1.push(done);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(saw_root, "no <config> root: {xml}");
        Doc { sections }
    }

    fn section(&self, name: &str) -> Option<&Vec<Entry>> {
        self.sections.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    fn count(&self, name: &str) -> usize {
        self.sections.iter().filter(|(n, _)| n == name).count()
    }

    fn get(&self, section: &str, entry: &str) -> Option<String> {
        self.section(section)?.iter().find(|e| e.name == entry).map(|e| e.value.clone())
    }

    fn entry(&self, section: &str, entry: &str) -> Option<Entry> {
        self.section(section)?.iter().find(|e| e.name == entry).cloned()
    }
}

#[track_caller]
fn xml_doc(resp: &Resp) -> Doc {
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.header("Content-Type").as_deref(), Some("application/xml"));
    Doc::parse(&resp.text())
}

fn admin_server(env: &[(&str, &str)]) -> (Server, String) {
    let server = Server::start(env);
    let (_, _, key) = server.admin("admin1");
    (server, key)
}

/// A not-yet-activated account (so it has a provisioning token); returns (id, token).
fn unactivated(server: &Server, admin_key: &str, username: &str, display_name: &str) -> (i64, String) {
    let account = create_account(
        server,
        admin_key,
        json!({"username": username, "password": "testtest", "algorithm": "MD5", "display_name": display_name}),
    );
    let id = account["id"].as_i64().expect("id");
    (id, token_of(server, id))
}

fn token_of(server: &Server, id: i64) -> String {
    server
        .db()
        .query_row("SELECT provisioning_token FROM accounts WHERE id = ?1", [id], |r| r.get::<_, Option<String>>(0))
        .expect("row")
        .expect("a provisioning token")
}

fn stored_passwords(server: &Server, id: i64) -> Vec<(String, String)> {
    let db = server.db();
    let mut stmt =
        db.prepare("SELECT password, algorithm FROM passwords WHERE account_id = ?1 ORDER BY id").expect("prepare");
    stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").map(|r| r.expect("row")).collect()
}

fn activated(server: &Server, id: i64) -> bool {
    server.db().query_row("SELECT activated FROM accounts WHERE id = ?1", [id], |r| r.get(0)).expect("row")
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks").join(name).display().to_string()
}

// --- §13 AccountProvisioningTest ---

#[test]
fn base_public_document() {
    let server = Server::start(&[]);
    let resp = server.get("/provisioning").no_accept().send();
    let doc = xml_doc(&resp);
    assert!(!resp.text().contains("ha1"));
    assert_eq!(doc.get("misc", "contacts-vcard-list").as_deref(), Some(server.url("/contacts/vcard").as_str()));
    assert!(resp.header("Set-Cookie").is_none(), "no session cookie");
    assert_ne!(resp.header("Cache-Control").as_deref(), Some("no-store"));
    // liblinphone's own generator's root attributes are there too.
    assert!(resp.text().contains("xsi:schemaLocation=\"http://www.linphone.org/xsds/lpconfig.xsd lpconfig.xsd\""));
    // Linphone apps send this header; it changes nothing.
    let again = server.get("/provisioning").header("X-Linphone-Provisioning", "1").send();
    assert_eq!(again.text(), resp.text());
}

#[test]
fn authenticated_me() {
    let (server, admin) = admin_server(&[]);
    let (_, key) = account_with_key(&server, &admin, "bob_user", "testtest");

    // No credentials: a browser is redirected, an API client gets the 422.
    let resp = server.get("/provisioning/me").no_accept().send().expect(302);
    assert_eq!(resp.header("Location").as_deref(), Some("/"));
    server.get("/provisioning/me").send().expect_invalid("from");
    server.get("/provisioning/me").key("not-a-key").send().expect(401);

    for _ in 0..2 {
        let resp = server.get("/provisioning/me").no_accept().key(&key).send();
        let doc = xml_doc(&resp);
        assert!(resp.text().contains("ha1"));
        assert!(resp.text().contains("contacts-vcard-list"));
        assert_eq!(resp.header("Cache-Control").as_deref(), Some("no-store"));
        assert_eq!(doc.get("auth_info_0", "username").as_deref(), Some("bob_user"));
        assert_eq!(doc.get("auth_info_0", "algorithm").as_deref(), Some("SHA-256"));
    }
}

#[test]
fn me_answers_a_digest_challenge_like_liblinphone() {
    let (server, admin) = admin_server(&[]);
    account_with_key(&server, &admin, "carol_u", "testtest");
    // Challenge with From, no Authorization: 401 with Digest challenges.
    let first =
        server.get("/provisioning/me").no_accept().header("From", &format!("sip:carol_u@{DOMAIN}")).send().expect(401);
    assert!(first.headers_all("WWW-Authenticate").iter().all(|c| c.starts_with("Digest ")));
    // Full round trip, uri = the request path.
    let resp = server.get("/provisioning/me").no_accept().digest("carol_u", DOMAIN, "testtest", Some("SHA-256"));
    let doc = xml_doc(&resp);
    assert_eq!(doc.get("auth_info_0", "username").as_deref(), Some("carol_u"));
    let wrong = server.get("/provisioning/me").no_accept().digest("carol_u", DOMAIN, "wrong", Some("SHA-256"));
    assert_eq!(wrong.status, 401);
}

#[test]
fn re_provisioning_with_a_new_token() {
    let (server, admin) = admin_server(&[]);
    let (id, key) = account_with_key(&server, &admin, "dave_u", "testtest");
    server.db().execute("UPDATE accounts SET display_name = 'Dave Display' WHERE id = ?1", [id]).expect("update");
    let old = server
        .db()
        .query_row("SELECT provisioning_token FROM accounts WHERE id = ?1", [id], |r| r.get::<_, Option<String>>(0))
        .expect("row");

    let resp = server.get("/api/accounts/me/provision").key(&key).send().expect(200);
    assert!(resp.text().contains("provisioning_token"));
    if let Some(old) = old {
        assert!(!resp.text().contains(&old));
    }
    let token = resp.json()["provisioning_token"].as_str().expect("token").to_string();
    let resp = server.get(&format!("/provisioning/{token}")).no_accept().send();
    xml_doc(&resp);
    assert!(resp.text().contains("dave_u"));
    assert!(resp.text().contains("Dave Display"));
    assert!(resp.text().contains("ha1"));
    assert_eq!(resp.header("Cache-Control").as_deref(), Some("no-store"));
}

#[test]
fn password_reset_through_the_qrcode_url() {
    let (server, admin) = admin_server(&[]);
    let (id, token) = unactivated(&server, &admin, "erin_u", "Erin Display");
    let before = stored_passwords(&server, id);
    assert_eq!(before[0].1, "MD5");

    let resp = server.get(&format!("/provisioning/qrcode/{token}?reset_password")).no_accept().send().expect(200);
    assert_eq!(resp.header("Content-Type").as_deref(), Some("image/png"));
    let url = format!("{}?reset_password=1", server.url(&format!("/provisioning/{token}")));
    assert_eq!(resp.header("X-Qrcode-URL").as_deref(), Some(url.as_str()));
    assert_eq!(decode_qr(&resp.body), url);
    // Drawing the code does not consume the token.
    assert_eq!(token_of(&server, id), token);

    let path = url.strip_prefix(&server.url("")).expect("same server");
    let resp = server.get(path).no_accept().send();
    let doc = xml_doc(&resp);
    let after = stored_passwords(&server, id);
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].0, before[0].0, "the stored hash changed");
    // One SHA-256 row, whatever the account had (provisioning.md §6).
    assert_eq!(after[0].1, "SHA-256");
    assert_eq!(doc.get("auth_info_0", "algorithm").as_deref(), Some("SHA-256"));
    for needle in ["erin_u", "Erin Display", "ha1", after[0].0.as_str()] {
        assert!(resp.text().contains(needle), "{needle} missing");
    }
    assert_eq!(doc.get("auth_info_0", "ha1"), Some(after[0].0.clone()));
    assert!(activated(&server, id));
}

#[test]
fn reset_password_replaces_the_digest_credentials() {
    let (server, admin) = admin_server(&[]);
    let (id, key) = account_with_key(&server, &admin, "frank_u", "oldpassword");
    server.get("/api/accounts/me").digest("frank_u", DOMAIN, "oldpassword", Some("SHA-256")).expect(200);

    let resp = server.get("/provisioning/me?reset_password").no_accept().key(&key).send();
    let doc = xml_doc(&resp);
    let ha1 = doc.get("auth_info_0", "ha1").expect("ha1");
    assert_eq!(doc.get("auth_info_0", "algorithm").as_deref(), Some("SHA-256"));
    assert_eq!(stored_passwords(&server, id), vec![(ha1.clone(), "SHA-256".to_string())]);
    assert!(doc.section("auth_info_1").is_none());

    // The old password no longer authenticates...
    let old = server.get("/api/accounts/me").digest("frank_u", DOMAIN, "oldpassword", Some("SHA-256"));
    assert_eq!(old.status, 401);
    // ...the HA1 from the XML does, as a client computes it.
    let first = server.get("/api/accounts/me").header("From", &format!("sip:frank_u@{DOMAIN}")).send().expect(401);
    let challenge = first
        .headers_all("WWW-Authenticate")
        .iter()
        .map(|c| Challenge::parse(c))
        .find(|c| c.algorithm == "SHA-256")
        .expect("SHA-256");
    let auth = challenge.authorization_with_ha1("GET", "/api/accounts/me", "frank_u", &ha1, 1, "c0ffee");
    server
        .get("/api/accounts/me")
        .header("From", &format!("sip:frank_u@{DOMAIN}"))
        .header("Authorization", &auth)
        .send()
        .expect(200);

    // Whatever the account had (MD5 here, plus a clear-text row), one
    // SHA-256 row is left (provisioning.md §6).
    let md5 = create_account(
        &server,
        &admin,
        json!({"username": "mona_u5", "password": "oldpassword", "algorithm": "MD5", "activated": true}),
    );
    let md5_id = md5["id"].as_i64().unwrap();
    server
        .db()
        .execute("INSERT INTO passwords (account_id, password, algorithm) VALUES (?1, 'clear', 'CLRTXT')", [md5_id])
        .unwrap();
    let token = server.get(&format!("/api/accounts/{md5_id}/provision")).key(&admin).send().expect(200).json()
        ["provisioning_token"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = xml_doc(&server.get(&format!("/provisioning/{token}?reset_password=0")).no_accept().send());
    let ha1 = doc.get("auth_info_0", "ha1").expect("ha1");
    assert_eq!(doc.get("auth_info_0", "algorithm").as_deref(), Some("SHA-256"));
    assert!(doc.section("auth_info_1").is_none());
    assert_eq!(stored_passwords(&server, md5_id), vec![(ha1, "SHA-256".to_string())]);
}

#[test]
fn the_linphone_header_can_be_required() {
    let (server, admin) = admin_server(&[("ACCOUNT_PROVISIONING_USE_X_LINPHONE_PROVISIONING_HEADER", "true")]);
    let (id, token) = unactivated(&server, &admin, "hank_u", "Hank");
    for path in ["/provisioning".to_string(), format!("/provisioning/{token}"), "/provisioning/me".to_string()] {
        let resp = server.get(&path).send();
        assert_eq!(resp.status, 400, "{path}");
        assert_eq!(resp.json()["message"], "x-linphone-provisioning header is missing");
    }
    // Refused before anything happened: the token still works.
    assert!(!activated(&server, id));
    server.get(&format!("/provisioning/qrcode/{token}")).no_accept().send().expect(200);
    let resp = server.get(&format!("/provisioning/{token}")).no_accept().header("X-Linphone-Provisioning", "1").send();
    xml_doc(&resp);
    assert!(activated(&server, id));
    server.get("/provisioning").no_accept().header("X-Linphone-Provisioning", "1").send().expect(200);
}

#[test]
fn errors_answer_each_client_in_its_own_terms() {
    let (server, _admin) = admin_server(&[]);
    // A 401 is JSON for every client (interface.md), with its challenges.
    let resp = server.get("/provisioning/me").no_accept().header("x-api-key", "not-a-key").send();
    assert_eq!(resp.status, 401);
    assert!(resp.header("Content-Type").unwrap().starts_with("application/json"));
    assert_eq!(resp.json()["message"], "Unauthenticated request");
    let resp = server.get("/provisioning/me").no_accept().header("From", &format!("sip:nobody1@{DOMAIN}")).send();
    assert_eq!(resp.status, 401);
    assert!(resp.header("Content-Type").unwrap().starts_with("application/json"));
    assert_eq!(resp.headers_all("WWW-Authenticate").len(), 2);
    // An unknown token: an HTML page for a browser, JSON for an API client.
    let page = server.get("/provisioning/nosuchtoken12").no_accept().header("Accept", "text/html").send();
    assert_eq!(page.status, 404);
    assert!(page.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(page.text().contains("404"));
    let json = server.get("/provisioning/nosuchtoken12").send();
    assert_eq!(json.status, 404);
    assert_eq!(json.json()["message"], "Missing elements to perform the request");
    // A form a browser cannot send (no credentials): back where it came from.
    let back = server.get("/contacts/vcard").no_accept().header("Referer", &server.url("/panel")).send();
    assert_eq!(back.status, 302);
    assert_eq!(back.header("Location"), Some(server.url("/panel")));
    for elsewhere in ["https://evil.example/", "//evil.example/x", &format!("{}.evil.example/", server.url(""))] {
        let resp = server.get("/contacts/vcard").no_accept().header("Referer", elsewhere).send();
        assert_eq!(resp.header("Location").as_deref(), Some("/"), "{elsewhere}");
    }
}

#[test]
fn provisioning_token_is_used_once_and_activates() {
    let (server, admin) = admin_server(&[]);
    server.get("/provisioning/1234").no_accept().send().expect(404);

    let (id, token) = unactivated(&server, &admin, "gina_u", "Gina");
    assert!(!activated(&server, id));
    let resp = server.get(&format!("/provisioning/{token}")).no_accept().send();
    xml_doc(&resp);
    assert!(resp.text().contains("ha1"));
    assert!(activated(&server, id));
    assert_eq!(
        server
            .db()
            .query_row("SELECT provisioning_token FROM accounts WHERE id = ?1", [id], |r| r.get::<_, Option<String>>(0))
            .expect("row"),
        None
    );
    server.get(&format!("/provisioning/{token}")).no_accept().send().expect(404);
    server.get(&format!("/provisioning/{token}")).send().expect(404);

    let resp = server.get(&format!("/api/accounts/{id}/provision")).key(&admin).send().expect(200);
    assert!(resp.text().contains("provisioning_token"));
    assert!(!resp.text().contains(&token));
    let new = token_of(&server, id);
    assert_ne!(new, token);
    let resp = server.get(&format!("/provisioning/{new}")).no_accept().send();
    xml_doc(&resp);
    assert!(resp.text().contains("ha1"));
}

#[test]
fn concurrent_uses_of_a_token_let_exactly_one_through() {
    let (server, admin) = admin_server(&[]);
    let (_, token) = unactivated(&server, &admin, "race_u", "Race");
    let path = format!("/provisioning/{token}");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| server.get(&path).no_accept().send().status)).collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 404), "{statuses:?}");
}

#[test]
fn activation_expiry_closes_the_token_and_its_qrcode() {
    let (server, admin) = admin_server(&[]);
    let (id, token) = unactivated(&server, &admin, "hank_u", "Hank");
    server
        .db()
        .execute(
            "INSERT INTO activation_expirations (account_id, expires, created_at, updated_at) \
             VALUES (?1, datetime('now', '-1 hour'), datetime('now'), datetime('now'))",
            [id],
        )
        .expect("insert");
    server.get(&format!("/provisioning/qrcode/{token}")).no_accept().send().expect(404);
    server.get(&format!("/provisioning/{token}")).no_accept().send().expect(404);
    assert_eq!(token_of(&server, id), token, "a refused token is not consumed");
    assert!(!activated(&server, id));
    server.get("/provisioning/qrcode/unknowntoken").no_accept().send().expect(404);

    server
        .db()
        .execute("UPDATE activation_expirations SET expires = datetime('now', '+1 hour') WHERE account_id = ?1", [id])
        .expect("update");
    server.get(&format!("/provisioning/qrcode/{token}")).no_accept().send().expect(200);
    xml_doc(&server.get(&format!("/provisioning/{token}")).no_accept().send());
}

#[test]
fn auth_token_provisioning() {
    let (server, admin) = admin_server(&[]);
    let (id, key) = account_with_key(&server, &admin, "ivan_u", "testtest");

    // The public route makes the token, the user's attach route binds it.
    let created = server.post("/api/accounts/auth_token").json(json!({})).send().expect(201).json();
    let token = created["token"].as_str().expect("token").to_string();
    server.get(&format!("/provisioning/auth_token/{token}")).no_accept().send().expect(404);
    server.get(&format!("/api/accounts/auth_token/{token}/attach")).key(&key).send().expect(200);
    assert_eq!(server.count("auth_tokens"), 1);
    let resp = server.get(&format!("/provisioning/auth_token/{token}")).no_accept().send();
    let doc = xml_doc(&resp);
    assert!(resp.text().contains("ha1"));
    assert_eq!(doc.get("auth_info_0", "username").as_deref(), Some("ivan_u"));
    assert_eq!(server.count("auth_tokens"), 0);
    server.get(&format!("/provisioning/auth_token/{token}")).no_accept().send().expect(404);

    // Unattached and stale tokens are refused.
    let db = server.db();
    db.execute("INSERT INTO auth_tokens (account_id, token, created_at, updated_at) VALUES (NULL, 'unattached', datetime('now'), datetime('now'))", []).expect("insert");
    db.execute("INSERT INTO auth_tokens (account_id, token, created_at, updated_at) VALUES (?1, 'stale', datetime('now', '-6 minutes'), datetime('now'))", [id]).expect("insert");
    server.get("/provisioning/auth_token/unattached").no_accept().send().expect(404);
    server.get("/provisioning/auth_token/stale").no_accept().send().expect(404);
    server.get("/provisioning/auth_token/unknown").no_accept().send().expect(404);

    // An account of another domain is not provisioned on this Space's host,
    // and its token is left unused.
    db.execute("UPDATE accounts SET domain = 'other.org' WHERE id = ?1", [id]).expect("update");
    db.execute("INSERT INTO auth_tokens (account_id, token, created_at, updated_at) VALUES (?1, 'elsewhere', datetime('now'), datetime('now'))", [id]).expect("insert");
    server.get("/provisioning/auth_token/elsewhere").no_accept().send().expect(404);
    assert_eq!(
        db.query_row("SELECT count(*) FROM auth_tokens WHERE token = 'elsewhere'", [], |r| r.get::<_, i64>(0)).unwrap(),
        1
    );
}

// --- the document ---

#[test]
fn account_sections_registrar_and_external_account() {
    let (server, admin) = admin_server(&[
        ("ACCOUNT_PROXY_REGISTRAR_ADDRESS", "proxy.example.org"),
        ("ACCOUNT_REALM", "realm.example.org"),
    ]);
    let (id, key) = account_with_key(&server, &admin, "judy_u", "testtest");
    let db = server.db();
    db.execute("UPDATE accounts SET display_name = 'Judy' WHERE id = ?1", [id]).expect("update");
    db.execute("INSERT INTO passwords (account_id, password, algorithm) VALUES (?1, 'clear&text', 'CLRTXT')", [id])
        .expect("insert");
    db.execute(
        "INSERT INTO external_accounts (username, domain, password, algorithm, used, account_id, created_at, updated_at) \
         VALUES ('ext', 'external.example.net', 'abcdef0123456789abcdef0123456789', 'MD5', 1, ?1, datetime('now'), datetime('now'))",
        [id],
    )
    .expect("insert");

    let doc = xml_doc(&server.get("/provisioning/me").no_accept().key(&key).send());
    assert_eq!(doc.get("proxy_0", "reg_identity").as_deref(), Some(format!("\"Judy\" <sip:judy_u@{DOMAIN}>").as_str()));
    assert_eq!(doc.get("proxy_0", "reg_sendregister").as_deref(), Some("1"));
    assert_eq!(doc.get("proxy_0", "refkey").as_deref(), Some("push_notification"));
    assert_eq!(doc.get("proxy_0", "reg_proxy").as_deref(), Some("<sip:proxy.example.org;transport=tls>"));
    assert_eq!(doc.get("proxy_0", "reg_route").as_deref(), Some("<sip:proxy.example.org;transport=tls>"));
    assert_eq!(doc.get("proxy_0", "realm").as_deref(), Some("realm.example.org"));
    assert_eq!(doc.get("proxy_0", "depends_on").as_deref(), Some("external_account"));

    assert_eq!(doc.get("auth_info_0", "algorithm").as_deref(), Some("SHA-256"));
    assert_eq!(doc.get("auth_info_0", "realm").as_deref(), Some("realm.example.org"));
    assert_eq!(doc.get("auth_info_0", "domain").as_deref(), Some(DOMAIN));
    // A clear-text row becomes `passwd`, never `ha1`.
    assert_eq!(doc.get("auth_info_1", "passwd").as_deref(), Some("clear&text"));
    assert_eq!(doc.get("auth_info_1", "ha1"), None);

    assert_eq!(doc.get("proxy_1", "reg_identity").as_deref(), Some("<sip:ext@external.example.net>"));
    assert_eq!(doc.get("proxy_1", "idkey").as_deref(), Some("external_account"));
    assert_eq!(doc.get("auth_info_2", "username").as_deref(), Some("ext"));
    assert_eq!(doc.get("auth_info_2", "ha1").as_deref(), Some("abcdef0123456789abcdef0123456789"));
    // Entries in the order of provisioning.md §3, for the account and the external account.
    for section in ["auth_info_0", "auth_info_2"] {
        let names: Vec<&str> = doc.section(section).expect(section).iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["username", "domain", "ha1", "realm", "algorithm"], "{section}");
    }
    assert_eq!(doc.get("auth_info_2", "realm").as_deref(), Some("external.example.net"));
    assert_eq!(doc.get("auth_info_2", "algorithm").as_deref(), Some("MD5"));
    // Without overwrite-all, no entry forces itself on the client.
    assert!(doc.sections.iter().flat_map(|(_, e)| e).all(|e| !e.overwrite));
}

#[test]
fn markup_in_display_names_and_rc_values_is_escaped() {
    let dir = TempDir::new();
    let rc = dir.path().join("linphonerc");
    std::fs::write(&rc, "[app]\namp=a & b\nlt=1 < 2\nquote=say \"hi\"\ncdata=x ]]> y\n").expect("write rc");
    let (server, admin) = admin_server(&[("ACCOUNT_PROVISIONING_RC_FILE", rc.to_str().expect("utf-8"))]);
    let (id, key) = account_with_key(&server, &admin, "kim_user", "testtest");
    let name = "A & B <C> \"D\" ]]> E";
    server
        .put(&format!("/api/accounts/{id}"))
        .key(&admin)
        .json(json!({"username": "kim_user", "password": "testtest", "algorithm": "SHA-256", "display_name": name}))
        .send()
        .expect(200);

    let resp = server.get("/provisioning/me").no_accept().key(&key).send();
    assert!(!resp.text().contains("]]>"), "`>` is escaped so `]]>` cannot appear");
    let doc = xml_doc(&resp);
    assert_eq!(doc.get("app", "amp").as_deref(), Some("a & b"));
    assert_eq!(doc.get("app", "lt").as_deref(), Some("1 < 2"));
    assert_eq!(doc.get("app", "quote").as_deref(), Some("say \"hi\""));
    assert_eq!(doc.get("app", "cdata").as_deref(), Some("x ]]> y"));
    // The display name is a SIP quoted-string inside the value.
    assert_eq!(
        doc.get("proxy_0", "reg_identity").as_deref(),
        Some(format!("\"A & B <C> \\\"D\\\" ]]> E\" <sip:kim_user@{DOMAIN}>").as_str())
    );
}

#[test]
fn rc_file_sections_merge_and_overwrite_all() {
    let dir = TempDir::new();
    let rc = dir.path().join("linphonerc");
    std::fs::write(
        &rc,
        "# operator settings\n[sip]\nmedia_encryption=srtp\n\n[proxy_0]\nreg_proxy=<sip:rc.example.org;transport=tcp>\nreg_expires=600\n\
         ; the vCard list from the RC wins\n[misc]\ncontacts-vcard-list=https://rc.example.org/vcard\n",
    )
    .expect("write rc");
    let rc_path = rc.to_str().expect("utf-8");

    // Public document: RC sections in file order, no account.
    let server = Server::start(&[("ACCOUNT_PROVISIONING_RC_FILE", rc_path)]);
    let doc = xml_doc(&server.get("/provisioning").no_accept().send());
    let names: Vec<&str> = doc.sections.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sip", "proxy_0", "misc"]);
    assert_eq!(doc.get("sip", "media_encryption").as_deref(), Some("srtp"));
    assert_eq!(doc.get("misc", "contacts-vcard-list").as_deref(), Some("https://rc.example.org/vcard"));
    assert!(doc.sections.iter().flat_map(|(_, e)| e).all(|e| !e.overwrite));
    drop(server);

    // With an account and overwrite-all: one proxy_0, the RC transport kept.
    let (server, admin) =
        admin_server(&[("ACCOUNT_PROVISIONING_RC_FILE", rc_path), ("ACCOUNT_PROVISIONING_OVERWRITE_ALL", "true")]);
    let (_, key) = account_with_key(&server, &admin, "leo_user", "testtest");
    let doc = xml_doc(&server.get("/provisioning/me").no_accept().key(&key).send());
    assert_eq!(doc.count("proxy_0"), 1);
    assert_eq!(doc.count("misc"), 1);
    assert_eq!(doc.get("proxy_0", "reg_proxy").as_deref(), Some("<sip:rc.example.org;transport=tcp>"));
    assert_eq!(doc.get("proxy_0", "reg_route"), None, "the RC file chose the transport");
    assert_eq!(doc.get("proxy_0", "reg_expires").as_deref(), Some("600"));
    assert_eq!(doc.get("proxy_0", "reg_identity").as_deref(), Some(format!("<sip:leo_user@{DOMAIN}>").as_str()));
    assert!(doc.sections.iter().flat_map(|(_, e)| e).all(|e| e.overwrite), "every entry overwrites");
    assert_eq!(doc.entry("auth_info_0", "ha1").map(|e| e.overwrite), Some(true));
}

#[test]
fn malformed_rc_file_stops_start_up_naming_the_line() {
    let dir = TempDir::new();
    let rc = dir.path().join("linphonerc");
    std::fs::write(&rc, "[sip]\nok=1\nthis line is broken\n").expect("write rc");
    let mut server =
        Server::configure(TempDir::new(), &[("ACCOUNT_PROVISIONING_RC_FILE", rc.to_str().expect("utf-8"))]);
    let out = server.cli(&["serve"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("ACCOUNT_PROVISIONING_RC_FILE") && lines[0].contains("line 3"), "{stderr}");
    server.kill();

    // A missing file stops it too.
    let server = Server::configure(TempDir::new(), &[("ACCOUNT_PROVISIONING_RC_FILE", "/nonexistent/linphonerc")]);
    let out = server.cli(&["serve"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ACCOUNT_PROVISIONING_RC_FILE"));
}

#[test]
fn qr_code_is_a_320px_png_of_the_url() {
    let (server, admin) = admin_server(&[]);
    let (_, token) = unactivated(&server, &admin, "mia_user", "Mia");
    let resp = server.get(&format!("/provisioning/qrcode/{token}")).no_accept().send().expect(200);
    let url = server.url(&format!("/provisioning/{token}"));
    assert_eq!(resp.header("X-Qrcode-URL").as_deref(), Some(url.as_str()));
    let image = image::load_from_memory(&resp.body).expect("a PNG");
    assert_eq!((image.width(), image.height()), (320, 320));
    assert_eq!(decode_qr(&resp.body), url);
}

fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("decodes").1
}

#[test]
fn documentation_page_shows_this_instance_urls() {
    let server = Server::start(&[]);
    let resp = server.get("/provisioning/documentation").no_accept().send().expect(200);
    assert!(resp.header("Content-Type").unwrap_or_default().starts_with("text/html"));
    let text = resp.text();
    assert!(text.contains(&server.url("/provisioning/qrcode/{provisioning_token}")), "{text}");
    assert!(text.contains(&server.url("/provisioning/me")));
    assert!(text.contains("reset_password"));
}

// --- hooks ---

#[test]
fn example_provisioning_hook_adds_sections() {
    let hook = example("provisioning.sh");
    let (server, admin) = admin_server(&[("ACCOUNT_PROVISIONING_HOOK", &hook)]);
    let doc = xml_doc(&server.get("/provisioning").no_accept().send());
    assert_eq!(doc.get("nat_policy_0", "stun_server").as_deref(), Some(format!("stun.{DOMAIN}").as_str()));
    assert_eq!(doc.get("net", "nat_policy_ref").as_deref(), Some("flexiapi_nat"));
    assert!(doc.section("proxy_0").is_none());

    let (_, key) = account_with_key(&server, &admin, "nina_u", "testtest");
    let doc = xml_doc(&server.get("/provisioning/me").no_accept().key(&key).send());
    // Merged into the account's proxy section, not a second proxy_0.
    assert_eq!(doc.count("proxy_0"), 1);
    assert_eq!(doc.get("proxy_0", "reg_identity").as_deref(), Some(format!("<sip:nina_u@{DOMAIN}>").as_str()));
    assert_eq!(doc.entry("proxy_0", "push_notification").map(|e| (e.value, e.overwrite)), Some(("1".into(), true)));
    assert_eq!(doc.get("nat_policy_0", "ref").as_deref(), Some("flexiapi_nat"));
}

#[test]
fn hook_receives_the_account_and_the_query() {
    let dir = TempDir::new();
    let seen = dir.path().join("stdin.json");
    let hook =
        write_script(dir.path(), "hook.sh", &format!("cat > '{}'; echo '<section name=\"x\"/>'", seen.display()));
    let (server, admin) = admin_server(&[("ACCOUNT_PROVISIONING_HOOK", hook.to_str().expect("utf-8"))]);
    let (_, key) = account_with_key(&server, &admin, "olga_u", "testtest");
    xml_doc(&server.get("/provisioning/me?app=linphone&v=5.1").no_accept().key(&key).send());
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seen).expect("hook ran")).expect("JSON stdin");
    assert_eq!(input["account"]["username"], "olga_u");
    assert_eq!(input["query"]["app"], "linphone");
    assert_eq!(input["query"]["v"], "5.1");
    assert_eq!(input["proxy_section"], "proxy_0");
    assert_eq!(input["auth_info_sections"], json!(["auth_info_0"]));
    assert!(input["account"].get("password").is_none() && input["account"].get("provisioning_token").is_none());

    xml_doc(&server.get("/provisioning").no_accept().send());
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seen).expect("hook ran")).expect("JSON stdin");
    assert!(input["account"].is_null());
}

#[test]
fn broken_hooks_never_break_the_document() {
    let dir = TempDir::new();
    let cases = [
        ("failing", "echo '<section name=\"bad\"><entry name=\"k\">v</entry></section>'; exit 1"),
        ("slow", "sleep 5; echo '<section name=\"bad\"/>'"),
        ("invalid", "echo '<section name=\"bad\"><entry>unterminated'"),
        ("garbage", "printf '\\377\\376 not xml'"),
    ];
    for (name, body) in cases {
        let hook = write_script(dir.path(), &format!("{name}.sh"), body);
        let (server, admin) =
            admin_server(&[("ACCOUNT_PROVISIONING_HOOK", hook.to_str().expect("utf-8")), ("HOOK_TIMEOUT_MS", "300")]);
        let (_, key) = account_with_key(&server, &admin, "pete_u", "testtest");
        let started = Instant::now();
        let doc = xml_doc(&server.get("/provisioning/me").no_accept().key(&key).send());
        assert!(started.elapsed() < Duration::from_secs(3), "{name}: took {:?}", started.elapsed());
        assert!(doc.section("bad").is_none(), "{name}");
        assert_eq!(doc.get("auth_info_0", "username").as_deref(), Some("pete_u"), "{name}");
        xml_doc(&server.get("/provisioning").no_accept().send());
        let log = server.log();
        assert!(log.contains("ACCOUNT_PROVISIONING_HOOK"), "{name}: the failure is logged: {log}");
        assert!(!log.contains("testtest"), "no secret in the log");
    }
}

#[test]
fn account_service_hook_is_told_of_events() {
    let dir = TempDir::new();
    let events = dir.path().join("events.log");
    let hook = write_script(
        dir.path(),
        "service.sh",
        &format!("printf '%s %s\\n' \"$1\" \"$(cat)\" >> '{}'", events.display()),
    );
    let (server, admin) = admin_server(&[("ACCOUNT_SERVICE_HOOK", hook.to_str().expect("utf-8"))]);
    let account =
        create_account(&server, &admin, json!({"username": "quinn_u", "password": "testtest", "algorithm": "MD5"}));
    let id = account["id"].as_i64().expect("id");
    let token = token_of(&server, id);
    xml_doc(&server.get(&format!("/provisioning/{token}")).no_accept().send());
    server.delete(&format!("/api/accounts/{id}")).key(&admin).send().expect(200);

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&events).unwrap_or_default();
        if text.lines().filter(|l| l.contains("\"username\":\"quinn_u\"")).count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let quinn_u: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"username\":\"quinn_u\""))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(quinn_u, ["created", "activated", "destroyed"], "{text}");
    assert!(!text.contains("testtest") && !text.contains(&token), "no secrets given to the hook");
}

#[test]
fn slow_service_hook_does_not_delay_the_api() {
    let dir = TempDir::new();
    let hook = write_script(dir.path(), "slow.sh", "sleep 5");
    let (server, admin) =
        admin_server(&[("ACCOUNT_SERVICE_HOOK", hook.to_str().expect("utf-8")), ("HOOK_TIMEOUT_MS", "500")]);
    let started = Instant::now();
    create_account(&server, &admin, json!({"username": "rita_u", "password": "testtest", "algorithm": "MD5"}));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("timed out") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.log().contains("ACCOUNT_SERVICE_HOOK created: timed out"), "{}", server.log());
}

// --- a real Linphone client ---

/// Parses a linphonerc as liblinphone saves it.
fn rc_value(rc: &str, section: &str, key: &str) -> Option<String> {
    let mut current = "";
    for line in rc.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name;
        } else if current == section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

/// A headless `linphone-daemon` reading `dir/rc`; killed on drop.
struct Daemon {
    child: std::process::Child,
    pipe: String,
}

impl Daemon {
    fn start(binary: &Path, dir: &Path, tag: &str) -> Daemon {
        // `--pipe NAME` is created as /tmp/NAME: unique per test run.
        let pipe = format!("flexiapi-prov-test-{}-{tag}", std::process::id());
        let child = std::process::Command::new(binary)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .arg("--config")
            .arg(dir.join("rc"))
            .arg("--pipe")
            .arg(&pipe)
            .arg("--log")
            .arg(dir.join(format!("{tag}.log")))
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{tag}.out"))).expect("out file"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start linphone-daemon");
        Daemon { child, pipe }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(format!("/tmp/{}", self.pipe));
    }
}

/// Waits until liblinphone has finished its provisioning step (it opens its
/// SIP listening points right after, success or not) and the rc says so.
fn wait_for(dir: &Path, tag: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rc = std::fs::read_to_string(dir.join("rc")).unwrap_or_default();
        let log = std::fs::read_to_string(dir.join(format!("{tag}.log"))).unwrap_or_default();
        let started = log.contains("Creating listening point") || log.contains("Random TCP port");
        if done(&rc) && started {
            return rc;
        }
        if Instant::now() > deadline {
            panic!(
                "liblinphone did not apply the provisioning in time.\nrc:\n{rc}\nlog tail:\n{}",
                log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client_rc(dir: &Path, config_uri: &str, extra: &str) {
    let d = dir.display();
    std::fs::write(
        dir.join("rc"),
        format!(
            "[misc]\nconfig-uri={config_uri}\n\n[sip]\nsip_port=-1\nsip_tcp_port=-1\nsip_tls_port=-1\n\n\
             [storage]\nuri={d}/linphone.db\ncall_logs_db_uri={d}/calls.db\nzrtp_secrets_db_uri={d}/zrtp.db\n\n{extra}"
        ),
    )
    .expect("write client rc");
}

#[test]
fn a_real_linphone_client_applies_the_provisioning() {
    let Some(binary) = require_tool("linphone-daemon") else { return };
    // Registrations go to loopback, never to the network.
    let (server, admin) = admin_server(&[("ACCOUNT_PROXY_REGISTRAR_ADDRESS", "127.0.0.1;transport=tcp")]);
    let (id, token) = unactivated(&server, &admin, "linus_u", "Linus & Co");
    let db_ha1 = stored_passwords(&server, id)[0].0.clone();

    let dir = TempDir::new();
    client_rc(dir.path(), &server.url(&format!("/provisioning/{token}")), "");
    let daemon = Daemon::start(&binary, dir.path(), "first");
    let rc = wait_for(dir.path(), "first", |rc| rc.contains("[auth_info_0]") && rc.contains("[proxy_0]"));
    drop(daemon);

    assert_eq!(rc_value(&rc, "auth_info_0", "username").as_deref(), Some("linus_u"));
    assert_eq!(rc_value(&rc, "auth_info_0", "domain").as_deref(), Some(DOMAIN));
    assert_eq!(rc_value(&rc, "auth_info_0", "ha1").as_deref(), Some(db_ha1.as_str()));
    assert_eq!(rc_value(&rc, "auth_info_0", "algorithm").as_deref(), Some("MD5"));
    assert_eq!(rc_value(&rc, "auth_info_0", "realm").as_deref(), Some(DOMAIN));
    assert_eq!(
        rc_value(&rc, "proxy_0", "reg_identity").as_deref(),
        Some(format!("\"Linus & Co\" <sip:linus_u@{DOMAIN}>").as_str())
    );
    assert_eq!(rc_value(&rc, "proxy_0", "reg_proxy").as_deref(), Some("<sip:127.0.0.1;transport=tcp>"));
    assert_eq!(rc_value(&rc, "misc", "contacts-vcard-list").as_deref(), Some(server.url("/contacts/vcard").as_str()));
    assert!(activated(&server, id), "the token activated the account");
    assert!(server.log().contains("GET /provisioning/{provisioning_token} 200"), "{}", server.log());

    // Second start: the client now has an account (reg_proxy kept it), so
    // pointed at /provisioning/me it sends From and answers the DIGEST
    // challenge from its stored HA1. overwrite-all is off, so the reset
    // password's HA1 proves the fetch only through the server log and DB.
    let text = rc.replace(
        &format!("config-uri={}", server.url(&format!("/provisioning/{token}"))),
        &format!("config-uri={}", server.url("/provisioning/me")),
    );
    assert!(text.contains("/provisioning/me"));
    std::fs::write(dir.path().join("rc"), text).expect("rewrite rc");
    let daemon = Daemon::start(&binary, dir.path(), "second");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server.log().contains("GET /provisioning/me 200") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(daemon);
    let log = server.log();
    assert!(log.contains("GET /provisioning/me 401"), "challenged first: {log}");
    assert!(log.contains("GET /provisioning/me 200"), "liblinphone authenticated with its provisioned HA1: {log}");
}
