//! Console commands, and the Flexisip SOCI requests of the README run
//! against a database the server filled.

mod common;
use common::*;
use serde_json::json;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A configured (not started) server: the CLI shares its configuration.
fn offline() -> Server {
    Server::configure(TempDir::new(), &[])
}

#[test]
fn help_and_version() {
    let s = offline();
    let out = s.cli(&["--help"]);
    assert!(out.status.success());
    for command in [
        "serve",
        "migrate",
        "spaces:create-update",
        "accounts:create-admin-account",
        "accounts:set-admin",
        "accounts:clear-unconfirmed",
        "accounts:clear-accounts-tombstones",
        "accounts:seed",
        "digest:clear-api-keys",
        "digest:clear-nonces",
    ] {
        assert!(stdout(&out).contains(command), "usage lists {command}");
        let help = s.cli(&[command, "--help"]);
        assert!(help.status.success(), "{command} --help");
        assert!(stdout(&help).contains(command), "{command} --help: {}", stdout(&help));
    }
    let out = s.cli(&["--version"]);
    assert_eq!(stdout(&out).trim(), format!("flexiapi {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let s = offline();
    for args in [
        vec!["no-such-command"],
        vec!["migrate", "--bogus"],
        vec!["accounts:set-admin"],
        vec!["accounts:set-admin", "abc"],
        vec!["accounts:clear-unconfirmed", "-3"],
        vec!["digest:clear-nonces"],
        vec!["accounts:create-admin-account", "--what"],
    ] {
        let out = s.cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).lines().next().unwrap().starts_with("flexiapi: "), "{args:?}");
    }
}

#[test]
fn listen_may_come_before_serve() {
    let s = offline();
    let port = common::free_port();
    let mut child = s
        .command()
        .args(["--listen", &format!("127.0.0.1:{port}"), "serve"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(resp) = common::http_request(port, "GET", "/api/ping", &[], None) {
            answered = Some(resp.status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answered, Some(200));
    // It means nothing to other commands: a usage error.
    let out = s.cli(&["--listen", "127.0.0.1:1", "migrate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn bad_configuration_stops_with_the_key() {
    let mut s = offline();
    s.env.push(("MAIL_DRIVER".into(), "pigeon".into()));
    let out = s.cli(&["migrate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("MAIL_DRIVER"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn migrate_creates_then_refuses_newer_databases() {
    let s = offline();
    let out = s.cli(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("schema created"));
    let out = s.cli(&["migrate"]);
    assert!(stdout(&out).contains("up to date"));
    let mode: String = s.db().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    // The default Space is a row (APP_SIP_DOMAIN on APP_URL's host), once.
    let spaces: Vec<(String, String)> = {
        let db = s.db();
        let mut stmt = db.prepare("SELECT domain, host FROM spaces").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(spaces, [("sip.example.org".to_string(), "127.0.0.1".to_string())]);
    s.db().execute_batch("PRAGMA user_version = 99").unwrap();
    let out = s.cli(&["migrate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("newer than this flexiapi"), "{}", stderr(&out));
}

#[test]
fn create_admin_account_prints_the_api_key() {
    let s = offline();
    let out = s.cli(&["accounts:create-admin-account"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let key = text.lines().find_map(|l| l.strip_prefix("API key: ")).expect("API key line");
    assert_eq!(key.len(), 40);
    assert!(text.contains("Password: "), "a generated password is printed");
    assert!(text.contains(&format!("@{DOMAIN}")));

    let out = s.cli(&["accounts:create-admin-account", "-u", "boss01", "-p", "bosspassword", "-d", "other.org"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("sip:boss01@other.org"));
    assert!(!stdout(&out).contains("Password: "), "a given password is not echoed");
    let (admin, activated): (bool, bool) = s
        .db()
        .query_row("SELECT admin, activated FROM accounts WHERE username = 'boss01'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(admin && activated);
    // Running it again replaces the account.
    let out = s.cli(&["accounts:create-admin-account", "-u", "boss01", "-p", "bosspassword", "-d", "other.org"]);
    assert!(out.status.success());
    let n: i64 = s.db().query_row("SELECT count(*) FROM accounts WHERE username = 'boss01'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
    // Bad input: one line, exit 2, nothing written.
    let before = s.count("accounts");
    let out = s.cli(&["accounts:create-admin-account", "-u", "BAD USER"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(s.count("accounts"), before);
}

#[test]
fn set_admin() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    let a = create_account(&server, &key, json!({"username": "promote1", "password": "secret123", "algorithm": "MD5"}));
    let id = a["id"].as_i64().unwrap().to_string();
    let out = server.cli(&["accounts:set-admin", &id]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), format!("Account promote1@{DOMAIN} is now admin"));
    let out = server.cli(&["accounts:set-admin", &id]);
    assert_eq!(out.status.code(), Some(1));
    let out = server.cli(&["accounts:set-admin", "9999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"));
}

#[test]
fn clear_unconfirmed_and_tombstones() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    for name in ["oldpending", "oldactive", "newpending"] {
        create_account(
            &server,
            &key,
            json!({"username": name, "password": "secret123", "algorithm": "MD5", "activated": name == "oldactive"}),
        );
    }
    let db = server.db();
    db.execute(
        "UPDATE accounts SET created_at = '2001-01-01 00:00:00' WHERE username IN ('oldpending', 'oldactive')",
        [],
    )
    .unwrap();

    let dry = server.cli(&["accounts:clear-unconfirmed", "30"]);
    assert!(stdout(&dry).contains("oldpending@sip.example.org"));
    assert_eq!(stdout(&dry).lines().last(), Some("1 accounts to delete"), "{}", stdout(&dry));
    assert!(stderr(&dry).contains("--apply"));
    assert_eq!(server.count("accounts"), 4, "dry run deletes nothing");

    let apply = server.cli(&["accounts:clear-unconfirmed", "30", "--apply"]);
    assert!(stdout(&apply).ends_with("1 accounts in deletion…\n1 accounts deleted\n"), "{}", stdout(&apply));
    assert_eq!(server.count("accounts"), 3);

    // The admin account is three years old and activated: --and-confirmed takes it too.
    let all = server.cli(&["accounts:clear-unconfirmed", "30", "--and-confirmed"]);
    assert!(stdout(&all).contains("2 accounts to delete"), "{}", stdout(&all));

    let id = db.query_row("SELECT id FROM accounts WHERE username = 'newpending'", [], |r| r.get::<_, i64>(0)).unwrap();
    server.delete(&format!("/api/accounts/{id}")).key(&key).send().expect(200);
    db.execute("UPDATE accounts_tombstones SET created_at = '2001-01-01 00:00:00'", []).unwrap();
    let dry = server.cli(&["accounts:clear-accounts-tombstones", "7"]);
    assert_eq!(stdout(&dry).lines().last(), Some("1 tombstones to delete"));
    assert_eq!(server.count("accounts_tombstones"), 1);
    let apply = server.cli(&["accounts:clear-accounts-tombstones", "7", "--apply"]);
    assert_eq!(stdout(&apply).lines().last(), Some("1 tombstones deleted"));
    assert_eq!(server.count("accounts_tombstones"), 0);
}

#[test]
fn clear_api_keys_and_nonces() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    create_account(&server, &key, json!({"username": "nonceuser", "password": "secret123", "algorithm": "MD5"}));
    server.get("/api/accounts/me").header("From", "sip:nonceuser@sip.example.org").send().expect(401);
    assert_eq!(server.count("nonces"), 1);
    let db = server.db();
    db.execute("UPDATE nonces SET created_at = '2001-01-01 00:00:00'", []).unwrap();
    let out = server.cli(&["digest:clear-nonces", "60"]);
    assert_eq!(stdout(&out).trim(), "1 expired nonces deleted");
    assert_eq!(server.count("nonces"), 0);

    let out = server.cli(&["digest:clear-api-keys", "60"]);
    assert_eq!(stdout(&out), "deleting API keys unused for 60 minutes\n0 api keys deleted\n");
    db.execute("UPDATE api_keys SET last_used_at = '2001-01-01 00:00:00'", []).unwrap();
    let out = server.cli(&["accounts:clear-api-keys", "60"]);
    assert!(stdout(&out).ends_with("\n1 api keys deleted\n"), "{}", stdout(&out));
    assert_eq!(server.count("api_keys"), 0);
}

#[test]
fn seed_tester_accounts() {
    let s = offline();
    let file = s.dir.path().join("seed.json");
    std::fs::write(
        &file,
        r#"[{"type":"account","id":1,"username":"alice","domain":"sip.example.org","passwords":[{"hash":"secret","algorithm":"CLRTXT"}]},
            {"type":"range","id":"%id%","username":"user_%usernamePostfix%","domain":"sip.example.org","iteration":10,"idStart":100,"usernameStart":1}]"#,
    )
    .unwrap();
    let out = s.cli(&["accounts:seed", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.count("accounts"), 11);
    let (id, email): (i64, String) = s
        .db()
        .query_row("SELECT id, email FROM accounts WHERE username = 'user_10'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((id, email.as_str()), (109, "user_10@sip.example.org"));

    let missing = s.cli(&["accounts:seed", "/nonexistent.json"]);
    assert_eq!(missing.status.code(), Some(1));
    std::fs::write(&file, "{oops").unwrap();
    let malformed = s.cli(&["accounts:seed", file.to_str().unwrap()]);
    assert_eq!(malformed.status.code(), Some(1));
    assert!(stderr(&malformed).contains("malformed JSON"), "{}", stderr(&malformed));
    assert_eq!(s.count("accounts"), 11, "a bad file writes nothing");
}

#[test]
fn spaces_route_hosts_to_domains() {
    let server = Server::start(&[]);
    let out = server.cli(&["spaces:create-update", "other.org", "other.localhost", "Other"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created"));
    let out = server.cli(&["spaces:create-update", "third.org", "other.localhost"]);
    assert_eq!(out.status.code(), Some(1), "a host belongs to one domain: {}", stderr(&out));
    assert!(stderr(&out).contains("A Space with this host and another sip_domain exists."));

    // An admin of the default Space does not see accounts of the other one.
    let (_, _, key) = server.admin("administrator");
    let out = server.cli(&["accounts:create-admin-account", "-u", "otheradmin", "-p", "secret123", "-d", "other.org"]);
    let other_key = stdout(&out).lines().find_map(|l| l.strip_prefix("API key: ")).unwrap().to_string();
    let created = server
        .post("/api/accounts")
        .key(&other_key)
        .header("Host", "other.localhost")
        .json(json!({"username": "spaceuser", "password": "secret123", "algorithm": "MD5"}))
        .send()
        .expect(200)
        .json();
    assert_eq!(created["domain"], "other.org");
    let id = created["id"].as_i64().unwrap();
    server.get(&format!("/api/accounts/{id}")).key(&key).send().expect(404);
    server.get(&format!("/api/accounts/{id}")).key(&other_key).header("Host", "other.localhost").send().expect(200);
    let list =
        server.get("/api/accounts").key(&other_key).header("Host", "other.localhost:8080").send().expect(200).json();
    assert_eq!(list["total"], 2);
}
