//! Operations: the Flexisip requests of docs/operations.md, `doctor`,
//! `backup` under load, `/health`, `/metrics`, graceful SIGTERM, and the
//! packaged configuration file.

mod common;
#[path = "support/ovh_server.rs"]
mod ovh_server;
#[path = "support/smtp_server.rs"]
mod smtp_server;

use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------
// Flexisip's SOCI requests, as docs/operations.md gives them

/// The `soci-*-request` lines of the first fenced block starting with

#[test]
fn flexisip_requests_of_the_operations_guide_read_what_the_server_wrote() {
    let requests = soci_requests(&repo_file("docs/operations.md"));
    assert_eq!(requests.len(), 3, "three requests in the guide: {requests:?}");
    let get = |name: &str| requests.get(name).cloned().unwrap_or_else(|| panic!("{name} in docs/operations.md"));
    // The guide, doctor and the README say the same thing.
    assert_eq!(get("soci-password-request"), flexiapi::db::health::FLEXISIP_PASSWORD_REQUEST);
    assert_eq!(get("soci-user-with-phone-request"), flexiapi::db::health::FLEXISIP_USER_WITH_PHONE_REQUEST);
    assert_eq!(get("soci-users-with-phones-request"), flexiapi::db::health::FLEXISIP_USERS_WITH_PHONES_REQUEST);
    let readme = soci_requests(&repo_file("README.md"));
    for (name, sql) in &readme {
        assert_eq!(Some(sql), requests.get(name), "README and docs/operations.md differ on {name}");
    }
    let guide = repo_file("docs/operations.md");
    for line in [
        "db-implementation=soci",
        "soci-backend=sqlite3",
        "soci-connection-string=db=/var/lib/flexiapi/flexiapi.sqlite timeout=5",
        "available-algorithms=MD5 SHA-256",
        "[presence-server]",
        "cache-expire",
    ] {
        assert!(guide.contains(line), "docs/operations.md mentions {line}");
    }

    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    create_account(
        &server,
        &key,
        json!({"username": "md5user", "password": "secret123", "algorithm": "MD5", "activated": true, "phone": "+33612345678"}),
    );
    create_account(
        &server,
        &key,
        json!({"username": "shauser", "password": "secret123", "algorithm": "SHA-256", "activated": true}),
    );
    create_account(
        &server,
        &key,
        json!({"username": "pending", "password": "secret123", "algorithm": "SHA-256", "phone": "+33699999999"}),
    );

    // SOCI binds named parameters (`:id`, `:domain`, `:phone`); so does rusqlite.
    let conn =
        rusqlite::Connection::open_with_flags(server.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let password_request = get("soci-password-request");
    let rows = |username: &str| -> Vec<(String, String)> {
        let mut stmt = conn.prepare(&password_request).unwrap();
        stmt.query_map(rusqlite::named_params! {":id": username, ":domain": DOMAIN}, |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(rows("md5user"), vec![(hash("MD5", &format!("md5user:{DOMAIN}:secret123")), "MD5".to_string())]);
    assert_eq!(rows("shauser"), vec![(hash("SHA-256", &format!("shauser:{DOMAIN}:secret123")), "SHA-256".to_string())]);
    assert!(rows("pending").is_empty(), "not activated: no credentials for SIP");
    assert!(rows("nobody").is_empty());

    let user_with_phone = get("soci-user-with-phone-request");
    let one = |phone: &str| -> Vec<String> {
        let mut stmt = conn.prepare(&user_with_phone).unwrap();
        stmt.query_map(rusqlite::named_params! {":phone": phone}, |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(one("+33612345678"), vec!["md5user".to_string()]);
    assert!(one("+33699999999").is_empty(), "not activated");

    // `:phones` is replaced textually by Flexisip.
    let users_with_phones =
        get("soci-users-with-phones-request").replace(":phones", "'+33612345678','+33699999999','+1999'");
    let mut stmt = conn.prepare(&users_with_phones).unwrap();
    let found: Vec<(String, String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(found, vec![("md5user".to_string(), DOMAIN.to_string(), "+33612345678".to_string())]);

    // doctor runs the same requests on real data.
    let out = server.cli(&["doctor"]);
    assert!(
        stdout(&out).contains(&format!("OK   flexisip user-with-phone request: +33612345678 -> md5user")),
        "{}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------------------
// doctor

fn lines_with(text: &str, prefix: &str) -> Vec<String> {
    text.lines().filter(|l| l.starts_with(prefix)).map(str::to_string).collect()
}

#[test]
fn doctor_passes_on_a_good_installation() {
    let smtp = smtp_server::SmtpServer::start();
    let ovh = ovh_server::OvhServer::start("ak", "as", "ck");
    let smtp_port = smtp.port().to_string();
    let ovh_url = ovh.base_url();
    let server = Server::start(&[
        ("MAIL_DRIVER", "smtp"),
        ("MAIL_HOST", "127.0.0.1"),
        ("MAIL_PORT", &smtp_port),
        ("OVH_APP_KEY", "ak"),
        ("OVH_APP_SECRET", "as"),
        ("OVH_APP_CONSUMER_KEY", "ck"),
        ("OVH_APP_ENDPOINT", &ovh_url),
    ]);
    let (_, _, key) = server.admin("administrator");
    create_account(
        &server,
        &key,
        json!({"username": "alice01", "password": "secret123", "algorithm": "MD5", "activated": true, "phone": "+33611111111"}),
    );
    // The group-sharing layout the package sets up.
    use std::os::unix::fs::PermissionsExt;
    let dir = server.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2770)).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", server.db_path().display());
        if std::path::Path::new(&file).exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o660)).unwrap();
        }
    }

    let out = server.cli(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    for line in text.lines() {
        assert!(line.starts_with("OK   ") || line.starts_with("WARN "), "one verdict per line: {line}");
    }
    for name in [
        "configuration",
        "database",
        "schema",
        "journal mode",
        "permissions",
        "flexisip password request",
        "flexisip user-with-phone request",
        "flexisip users-with-phones request",
        "mail (smtp)",
        "ovh",
    ] {
        assert!(text.contains(&format!("OK   {name}: ")), "OK {name}:\n{text}");
    }
    assert!(text.contains("administrator@sip.example.org -> 1 row(s) (SHA-256)"), "{text}");
    assert!(text.contains("SMS service sms-ab12345-1"), "{text}");
    assert!(ovh.requests().iter().any(|r| r.path.ends_with("/sms")), "signed GET /sms reached the OVH stand-in");
}

#[test]
fn doctor_fails_on_broken_installations() {
    // 1. A bad configuration value: FAIL on the first line, exit 1.
    let mut s = Server::configure(TempDir::new(), &[("MAIL_DRIVER", "pigeon")]);
    let out = s.cli(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let first = stdout(&out).lines().next().unwrap_or("").to_string();
    assert!(first.starts_with("FAIL configuration: ") && first.contains("MAIL_DRIVER"), "{first}");
    s.env.retain(|(k, _)| k != "MAIL_DRIVER");

    // 2. No database yet: doctor says so and does not create it.
    let out = s.cli(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL database: ") && stdout(&out).contains("flexiapi migrate"), "{}", stdout(&out));
    assert!(!s.db_path().exists(), "doctor never creates the database");

    // 3. A database from a newer flexiapi, not in WAL mode, with unreachable
    //    SMTP, OVH and Redis peers.
    assert!(s.cli(&["migrate"]).status.success());
    s.db().execute_batch("PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;").unwrap();
    let closed = free_port().to_string();
    for (k, v) in [
        ("MAIL_DRIVER", "smtp"),
        ("MAIL_PORT", closed.as_str()),
        ("OVH_APP_KEY", "ak"),
        ("OVH_APP_SECRET", "as"),
        ("OVH_APP_CONSUMER_KEY", "ck"),
        ("OVH_APP_ENDPOINT", "http://127.0.0.1:1/1.0"),
        ("DEVICES_MANAGEMENT", "true"),
        ("REDIS_PORT", closed.as_str()),
    ] {
        s.env.push((k.into(), v.into()));
    }
    let out = s.cli(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for name in ["schema", "journal mode", "mail (smtp)", "ovh", "redis"] {
        assert!(!lines_with(&text, &format!("FAIL {name}: ")).is_empty(), "FAIL {name}:\n{text}");
    }
    assert!(text.contains("OK   database: "), "{text}");
    assert!(stderr(&out).contains("check(s) failed"), "{}", stderr(&out));

    // 4. Wrong OVH credentials are told apart from an unreachable API.
    let ovh = ovh_server::OvhServer::start("ak", "the-right-secret", "ck");
    s.db()
        .execute_batch(&format!("PRAGMA user_version = {}; PRAGMA journal_mode = WAL;", flexiapi::db::SCHEMA_VERSION))
        .unwrap();
    s.env.retain(|(k, _)| !["OVH_APP_ENDPOINT", "MAIL_DRIVER", "DEVICES_MANAGEMENT"].contains(&k.as_str()));
    s.env.push(("OVH_APP_ENDPOINT".into(), ovh.base_url()));
    let out = s.cli(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let ovh_line = lines_with(&text, "FAIL ovh: ");
    assert!(ovh_line.len() == 1 && ovh_line[0].contains("403"), "{text}");
    assert!(text.contains("OK   schema: ") && text.contains("OK   journal mode: wal"), "{text}");
}

// ---------------------------------------------------------------------------
// backup

#[test]
fn backup_under_write_load_holds_every_committed_account() {
    let server = Arc::new(Server::start(&[]));
    let (_, _, key) = server.admin("administrator");
    let stop = Arc::new(AtomicBool::new(false));
    // (username, when its creation returned 200)
    let committed: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (server, key, stop, committed) = (server.clone(), key.clone(), stop.clone(), committed.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let username = format!("load{t}x{i}");
                    i += 1;
                    let resp = server
                        .post("/api/accounts")
                        .key(&key)
                        .json(json!({"username": username, "password": "secret123", "algorithm": "MD5", "activated": true}))
                        .send();
                    if resp.status == 200 {
                        committed.lock().unwrap().push((username, Instant::now()));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let target = server.dir.path().join("backup.sqlite");
    let started = Instant::now();
    let out = server.cli(&["backup", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let size = std::fs::metadata(&target).unwrap().len();
    assert_eq!(stdout(&out).trim(), format!("{}: {size} bytes", target.display()));

    let committed = committed.lock().unwrap().clone();
    let before: Vec<&String> = committed.iter().filter(|(_, at)| *at < started).map(|(u, _)| u).collect();
    let after = committed.len() - before.len();
    assert!(before.len() >= 5 && after >= 1, "the load ran across the backup ({} before, {after} after)", before.len());

    let copy = rusqlite::Connection::open(&target).unwrap();
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let mut stmt = copy.prepare("SELECT username FROM accounts").unwrap();
    let present: std::collections::HashSet<String> =
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
    for username in &before {
        assert!(present.contains(*username), "{username} was committed before the backup started");
    }
    // A consistent snapshot: the trigger-kept counter matches the rows.
    let (rows, counted): (i64, i64) = copy
        .query_row(
            "SELECT (SELECT count(*) FROM accounts WHERE domain = ?1), (SELECT n FROM account_counts WHERE domain = ?1)",
            [DOMAIN],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(rows, counted);
    assert_eq!(rows as usize, present.len());

    // An existing file is refused unless --force.
    let again = server.cli(&["backup", target.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = server.cli(&["backup", target.to_str().unwrap(), "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let leftovers: Vec<_> = std::fs::read_dir(server.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left behind");
    let usage = server.cli(&["backup"]);
    assert_eq!(usage.status.code(), Some(2));
}

// ---------------------------------------------------------------------------
// /health and /metrics

#[test]
fn health_answers_with_the_database_state() {
    let server = Server::start(&[]);
    let resp = server.get("/health").send().expect(200);
    assert_eq!(resp.json(), json!({"status": "ok", "database": "ok"}));
    server.post("/health").send().expect(405);
}

/// One sample of the text format.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A line-grammar parser of the Prometheus text format 0.0.4: `# HELP`,
/// `# TYPE` (once per family, before its samples), samples
/// `name{label="value",...} value [timestamp]` with escaped label values.
fn parse_prometheus(text: &str) -> Result<(Vec<Sample>, BTreeMap<String, String>), String> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    fn number(s: &str) -> Option<f64> {
        match s {
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            "NaN" => Some(f64::NAN),
            _ => s.parse().ok(),
        }
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let mut seen_samples_of: std::collections::HashSet<String> = Default::default();
    if !text.ends_with('\n') {
        return Err("the text must end with a line feed".into());
    }
    for (n, line) in text.lines().enumerate() {
        let err = |m: &str| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.trim_start().splitn(3, ' ');
            match parts.next() {
                Some("HELP") => {
                    let name = parts.next().ok_or_else(|| err("HELP without a name"))?;
                    if !is_name(name, true) {
                        return Err(err("bad metric name"));
                    }
                }
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| err("TYPE without a name"))?;
                    let kind = parts.next().ok_or_else(|| err("TYPE without a type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err("unknown type"));
                    }
                    if types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(err("second TYPE for a family"));
                    }
                    if seen_samples_of.contains(name) {
                        return Err(err("TYPE after samples"));
                    }
                }
                _ => {}
            }
            continue;
        }
        // name
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(err("bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let consumed: usize;
            loop {
                // label name
                let start = chars.peek().map(|(i, _)| *i).ok_or_else(|| err("unterminated labels"))?;
                if body[start..].starts_with('}') {
                    consumed = start + 1;
                    break;
                }
                let eq = body[start..].find('=').ok_or_else(|| err("label without ="))? + start;
                let label = &body[start..eq];
                if !is_name(label, false) {
                    return Err(err("bad label name"));
                }
                while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                    chars.next();
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(err("label value not quoted"));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            _ => return Err(err("bad escape")),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => return Err(err("unterminated label value")),
                    }
                }
                if labels.insert(label.to_string(), value).is_some() {
                    return Err(err("repeated label"));
                }
                match chars.next() {
                    Some((_, ',')) => continue,
                    Some((i, '}')) => {
                        consumed = i + 1;
                        break;
                    }
                    _ => return Err(err("expected , or }")),
                }
            }
            rest = &body[consumed..];
        }
        let mut fields = rest.split(' ').filter(|f| !f.is_empty());
        let value = fields.next().and_then(number).ok_or_else(|| err("bad value"))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| err("bad timestamp"))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields"));
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram" || t == "summary"))
            })
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(err("sample without a TYPE"));
        }
        if types[family] == "histogram" && name.ends_with("_bucket") && !labels.contains_key("le") {
            return Err(err("bucket without le"));
        }
        seen_samples_of.insert(family.to_string());
        samples.push(Sample { name: name.to_string(), labels, value });
    }
    Ok((samples, types))
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}

fn scrape(server: &Server) -> Vec<Sample> {
    let resp = server.get("/metrics").no_accept().send().expect(200);
    assert!(resp.header("Content-Type").unwrap_or_default().starts_with("text/plain; version=0.0.4"));
    let (samples, _) = parse_prometheus(&resp.text()).unwrap_or_else(|e| panic!("{e}\n{}", resp.text()));
    samples
}

#[test]
fn the_parser_rejects_malformed_text() {
    assert!(parse_prometheus("# TYPE a counter\na 1\n").is_ok());
    assert!(parse_prometheus("# TYPE a counter\na{x=\"a\\\"b\",y=\"\"} 1 1700000000\n").is_ok());
    for bad in [
        "a 1\n",
        "# TYPE a counter\na{x=1} 1\n",
        "# TYPE a counter\na{x=\"1\" 1\n",
        "# TYPE a counter\na one\n",
        "# TYPE a counter\n# TYPE a gauge\na 1\n",
        "# TYPE a counter\na 1",
        "# TYPE a counter\na{x=\"1\",x=\"2\"} 1\n",
    ] {
        assert!(parse_prometheus(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn metrics_count_what_the_test_did() {
    let server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    create_account(
        &server,
        &key,
        json!({"username": "active01", "password": "secret123", "algorithm": "MD5", "activated": true}),
    );
    create_account(&server, &key, json!({"username": "pending01", "password": "secret123", "algorithm": "MD5"}));
    create_account(&server, &key, json!({"username": "pending02", "password": "secret123", "algorithm": "MD5"}));

    let pings = |s: &[Sample]| {
        value(s, "flexiapi_http_requests_total", &[("route", "/api/ping"), ("status", "200")]).unwrap_or(0.0)
    };
    let not_found = |s: &[Sample]| {
        value(s, "flexiapi_http_requests_total", &[("route", "(not found)"), ("status", "404")]).unwrap_or(0.0)
    };
    let count = |s: &[Sample]| value(s, "flexiapi_http_request_duration_seconds_count", &[]).unwrap();
    // A request is counted just after its answer is sent: scrape until the
    // requests before are all in (two scrapes apart by the scrape alone).
    let settled_scrape = || {
        let mut last = scrape(&server);
        for _ in 0..50 {
            let next = scrape(&server);
            let settled = count(&next) - count(&last) == 1.0;
            last = next;
            if settled {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        last
    };
    let first = settled_scrape();
    for _ in 0..5 {
        server.get("/api/ping").send().expect(200);
    }
    for _ in 0..2 {
        server.get("/no/such/page").send().expect(404);
    }
    let second = settled_scrape();
    let scrapes = |s: &[Sample]| {
        value(s, "flexiapi_http_requests_total", &[("route", "/metrics"), ("status", "200")]).unwrap_or(0.0)
    };
    assert_eq!(pings(&second) - pings(&first), 5.0);
    assert_eq!(not_found(&second) - not_found(&first), 2.0);
    // 5 pings, 2 misses, and the scrapes in between.
    assert_eq!(count(&second) - count(&first), 7.0 + scrapes(&second) - scrapes(&first));
    assert!(scrapes(&second) - scrapes(&first) >= 2.0);
    assert_eq!(
        value(&second, "flexiapi_http_requests_total", &[("route", "/api/accounts"), ("status", "200")]),
        Some(3.0)
    );

    // The histogram is cumulative and ends with +Inf = count.
    let buckets: Vec<(f64, f64)> = second
        .iter()
        .filter(|s| s.name == "flexiapi_http_request_duration_seconds_bucket")
        .map(|s| (s.labels["le"].replace("+Inf", "inf").parse::<f64>().unwrap(), s.value))
        .collect();
    assert!(buckets.len() >= 5);
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count(&second)));
    assert!(value(&second, "flexiapi_http_request_duration_seconds_sum", &[]).unwrap() > 0.0);

    // Accounts by state come from the database (the admin is activated).
    assert_eq!(value(&second, "flexiapi_accounts", &[("state", "activated")]), Some(2.0));
    assert_eq!(value(&second, "flexiapi_accounts", &[("state", "unactivated")]), Some(2.0));
    for name in ["flexiapi_emails_sent_total", "flexiapi_sms_sent_total", "flexiapi_errors_total"] {
        assert_eq!(value(&second, name, &[]), Some(0.0), "{name}");
    }
    assert_eq!(value(&second, "flexiapi_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), Some(1.0));

    // Three creations through the API are (at least) three write jobs, and
    // queued writes share commits, so commits never outnumber jobs.
    let writes = value(&second, "flexiapi_db_writes_total", &[]).unwrap();
    let commits = value(&second, "flexiapi_db_commits_total", &[]).unwrap();
    assert!(writes >= 3.0, "{writes} writes");
    assert!(commits >= 1.0 && commits <= writes, "{commits} commits for {writes} writes");
}

#[test]
fn metrics_need_loopback_or_an_admin_key() {
    let server = Server::start(&[]);
    let (_, _, admin_key) = server.admin("administrator");
    let (_, user_key) = account_with_key(&server, &admin_key, "someuser", "secret123");
    // Relayed by a local reverse proxy for a remote client: not loopback.
    let relayed = || server.get("/metrics").header("X-Forwarded-For", "203.0.113.7");
    relayed().send().expect(403);
    relayed().key(&user_key).send().expect(403);
    relayed().key(&admin_key).send().expect(200);
    // A proxy relaying a local client is still local.
    server.get("/metrics").header("X-Forwarded-For", "127.0.0.1").send().expect(200);

    let strict = Server::start(&[("APP_METRICS_REQUIRE_KEY", "true")]);
    let (_, _, key) = strict.admin("administrator");
    strict.get("/metrics").send().expect(403);
    strict.get("/metrics").key("wrong-key").send().expect(401);
    let resp = strict.get("/metrics").key(&key).send().expect(200);
    assert!(resp.text().contains("flexiapi_http_requests_total"));
    // /health stays open: monitors have no key.
    strict.get("/health").send().expect(200);
}

// ---------------------------------------------------------------------------
// graceful stop

#[test]
fn sigterm_lets_the_request_in_flight_finish_and_closes_the_database() {
    let mut server = Server::start(&[]);
    let pid = server.pid().unwrap();
    // A request whose body is still on its way when SIGTERM arrives: the
    // server is reading it.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(
            format!(
                "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n",
                server.port
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(&[b'x'; 1000]).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "still running while a request is in flight");
    stream.write_all(&[b'x'; 3000]).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let resp = parse_response(&raw).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let status = server.terminate().expect("exit status");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(server.log().contains("stopped"), "{}", server.log());
    // The last connection checkpointed and removed the WAL: closed cleanly.
    let wal = format!("{}-wal", server.db_path().display());
    assert!(!std::path::Path::new(&wal).exists(), "the -wal file is gone after a clean close");
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

// ---------------------------------------------------------------------------
// packaging files

#[test]
fn the_packaged_configuration_lists_every_key_and_its_defaults_are_valid() {
    let env_file = repo_file("debian/flexiapi.env");
    let source = repo_file("src/config.rs");
    let source = source.split("#[cfg(test)]").next().unwrap();
    let mut keys = std::collections::BTreeSet::new();
    for piece in source.split('"').skip(1).step_by(2) {
        if piece.len() > 3
            && piece.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && piece.contains('_')
        {
            keys.insert(piece.to_string());
        }
    }
    assert!(keys.len() > 40, "{keys:?}");
    for key in &keys {
        assert!(
            env_file.lines().any(|l| l.trim_start_matches('#').starts_with(&format!("{key}="))),
            "debian/flexiapi.env lists {key}"
        );
    }
    // Uncommenting every line gives a valid configuration.
    let dir = TempDir::new();
    let uncommented: String = env_file
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.split('=').next().is_some_and(|k| keys.contains(k)) => rest,
            _ => l,
        })
        .map(|l| {
            if l.starts_with("DB_DATABASE=") {
                format!("DB_DATABASE={}", dir.path().join("f.sqlite").display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = dir.path().join("flexiapi.env");
    std::fs::write(&file, uncommented).unwrap();
    let out = std::process::Command::new(BIN).env_clear().arg("--config").arg(&file).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_unit_and_the_man_page_name_every_command() {
    let unit = repo_file("systemd/flexiapi.service");
    for line in [
        "User=flexiapi",
        "StateDirectory=flexiapi",
        "StateDirectoryMode=2770",
        "UMask=0007",
        "ExecStart=/usr/bin/flexiapi --config /etc/flexiapi/flexiapi.env serve",
        "ProtectSystem=strict",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit has {line}");
    }
    let man = repo_file("debian/flexiapi.1");
    let usage = stdout(&std::process::Command::new(BIN).arg("--help").output().unwrap());
    for command in usage.lines().filter_map(|l| l.strip_prefix("  ")).filter_map(|l| l.split_whitespace().next()) {
        if command.starts_with('-') {
            continue;
        }
        assert!(man.contains(&command.replace('-', "\\-")), "the man page documents {command}");
    }
}

// ---------------------------------------------------------------------------
// importing a FlexiAPI 1.3 database

/// FlexiAPI 1.3.10's final SQLite schema (the spec's schema.md, section 3).
const FLEXIAPI_1_3_SCHEMA: &str = r#"
CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, username VARCHAR(64) NOT NULL,
  domain VARCHAR(64) NOT NULL, email VARCHAR(64), activated TINYINT(1) NOT NULL DEFAULT 0,
  confirmation_key VARCHAR(14), ip_address VARCHAR(39) NOT NULL, user_agent VARCHAR(256) NOT NULL,
  creation_time DATETIME NOT NULL, expire_time DATETIME, display_name VARCHAR(255), dtmf_protocol VARCHAR(255),
  provisioning_token VARCHAR(255), "group" VARCHAR(64));
CREATE UNIQUE INDEX accounts_username_domain_unique ON accounts(username, domain);
CREATE INDEX accounts_email_index ON accounts(email);
CREATE INDEX accounts_group_index ON accounts("group");
CREATE TABLE passwords (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  password VARCHAR(255) NOT NULL, algorithm VARCHAR(10) NOT NULL DEFAULT 'MD5');
CREATE UNIQUE INDEX passwords_account_id_algorithm_unique ON passwords(account_id, algorithm);
CREATE TABLE aliases (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  alias VARCHAR(64) NOT NULL, domain VARCHAR(64) NOT NULL);
CREATE UNIQUE INDEX aliases_alias_domain_unique ON aliases(alias, domain);
CREATE TABLE nonces (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, nonce VARCHAR(255) NOT NULL,
  nc INTEGER NOT NULL DEFAULT 0, created_at DATETIME, updated_at DATETIME);
CREATE TABLE api_keys (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
  "key" VARCHAR(160) NOT NULL UNIQUE, created_at DATETIME, updated_at DATETIME, last_used_at DATETIME NOT NULL);
CREATE TABLE auth_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE, token VARCHAR(32) NOT NULL,
  created_at DATETIME, updated_at DATETIME);
CREATE TABLE account_creation_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, token VARCHAR(255) NOT NULL,
  pn_provider VARCHAR(255), pn_param VARCHAR(255), pn_prid VARCHAR(255), used TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME, updated_at DATETIME, account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE);
CREATE INDEX account_creation_tokens_token_index ON account_creation_tokens(token);
CREATE INDEX account_creation_tokens_pn_index ON account_creation_tokens(pn_provider, pn_param, pn_prid);
CREATE TABLE account_creation_request_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  token VARCHAR(16) NOT NULL, used TINYINT(1) NOT NULL DEFAULT 0, validated_at DATETIME,
  acc_creation_token_id INTEGER REFERENCES account_creation_tokens(id) ON DELETE CASCADE,
  created_at DATETIME, updated_at DATETIME);
CREATE INDEX account_creation_request_tokens_token_index ON account_creation_request_tokens(token);
CREATE TABLE email_changed (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
  new_email VARCHAR(255) NOT NULL, hash VARCHAR(255) NOT NULL, created_at DATETIME, updated_at DATETIME);
CREATE TABLE phone_change_codes (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, code VARCHAR(255) NOT NULL,
  phone VARCHAR(255) NOT NULL, created_at DATETIME, updated_at DATETIME);
CREATE TABLE activation_expirations (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, expires DATETIME NOT NULL,
  created_at DATETIME, updated_at DATETIME);
CREATE TABLE accounts_tombstones (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, username VARCHAR(64) NOT NULL,
  domain VARCHAR(64) NOT NULL, created_at DATETIME, updated_at DATETIME);
CREATE UNIQUE INDEX accounts_tombstones_username_domain_unique ON accounts_tombstones(username, domain);
CREATE TABLE admins (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, created_at DATETIME, updated_at DATETIME);
CREATE TABLE contacts (account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  contact_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, created_at DATETIME, updated_at DATETIME);
CREATE UNIQUE INDEX contacts_account_id_contact_id_unique ON contacts(account_id, contact_id);
CREATE TABLE account_types (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "key" VARCHAR(64) NOT NULL UNIQUE,
  created_at DATETIME, updated_at DATETIME);
CREATE TABLE account_account_type (account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  account_type_id INTEGER NOT NULL REFERENCES account_types(id) ON DELETE CASCADE,
  created_at DATETIME, updated_at DATETIME);
CREATE UNIQUE INDEX account_account_type_unique ON account_account_type(account_id, account_type_id);
CREATE TABLE account_actions (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE, "key" VARCHAR(255) NOT NULL,
  code VARCHAR(255) NOT NULL, created_at DATETIME, updated_at DATETIME);
CREATE TABLE external_accounts (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, username VARCHAR(64) NOT NULL,
  domain VARCHAR(64) NOT NULL, "group" VARCHAR(16) NOT NULL, password VARCHAR(255) NOT NULL,
  algorithm VARCHAR(10) NOT NULL DEFAULT 'MD5', used TINYINT(1) NOT NULL DEFAULT 0,
  account_id INTEGER REFERENCES accounts(id) ON DELETE SET NULL, created_at DATETIME, updated_at DATETIME);
"#;

#[test]
fn a_flexiapi_1_3_database_imports_and_its_users_authenticate() {
    let dir = TempDir::new();
    let old_path = dir.path().join("flexiapi-1.3.sqlite");
    let old = rusqlite::Connection::open(&old_path).unwrap();
    old.execute_batch(FLEXIAPI_1_3_SCHEMA).unwrap();
    let ha1 = hash("MD5", &format!("olduser:{DOMAIN}:oldsecret"));
    old.execute_batch(&format!(
        "INSERT INTO accounts (id, username, domain, email, activated, ip_address, user_agent, creation_time)
           VALUES (7, 'olduser', '{DOMAIN}', 'old@example.org', 1, '192.0.2.1', 'Linphone', '2022-01-02 03:04:05'),
                  (9, 'oldadmin', '{DOMAIN}', NULL, 1, '', '', '2021-01-01 00:00:00'),
                  (11, 'inactive', '{DOMAIN}', NULL, 0, '', '', '2023-01-01 00:00:00');
         INSERT INTO passwords (account_id, password, algorithm) VALUES (7, '{ha1}', 'MD5'), (9, 'x', 'SHA-256'), (11, 'y', 'MD5');
         INSERT INTO aliases (account_id, alias, domain) VALUES (7, '+33600000007', '{DOMAIN}');
         INSERT INTO admins (account_id) VALUES (9);
         INSERT INTO api_keys (account_id, \"key\", last_used_at) VALUES (9, 'k9', datetime('now'));
         INSERT INTO account_types (id, \"key\") VALUES (1, 'phone');
         INSERT INTO account_account_type (account_id, account_type_id) VALUES (7, 1);
         INSERT INTO contacts (account_id, contact_id) VALUES (7, 9);
         INSERT INTO accounts_tombstones (username, domain, created_at) VALUES ('gone', '{DOMAIN}', '2020-01-01 00:00:00');"
    ))
    .unwrap();
    drop(old);

    let mut server = Server::configure(dir, &[]);
    let out = server.cli(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    {
        let new = server.db();
        new.execute("ATTACH ?1 AS old", [old_path.to_str().unwrap()]).unwrap();
        new.execute_batch(&repo_file("docs/import-flexiapi-1.3.sql")).unwrap();
        let (phone, created, activated): (String, String, bool) = new
            .query_row("SELECT phone, created_at, activated FROM accounts WHERE id = 7", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((phone.as_str(), created.as_str(), activated), ("+33600000007", "2022-01-02 03:04:05", true));
        let admin: bool = new.query_row("SELECT admin FROM accounts WHERE id = 9", [], |r| r.get(0)).unwrap();
        assert!(admin);
        let n: i64 = new.query_row("SELECT n FROM account_counts WHERE domain = ?1", [DOMAIN], |r| r.get(0)).unwrap();
        assert_eq!(n, 3);
        for (table, count) in [
            ("passwords", 3),
            ("api_keys", 1),
            ("account_account_type", 1),
            ("contacts", 1),
            ("accounts_tombstones", 1),
        ] {
            let found: i64 = new.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap();
            assert_eq!(found, count, "{table}");
        }
    }
    server.spawn();
    // The imported HA1 authenticates, through the API and through Flexisip's request.
    server.get("/api/accounts/me").digest("olduser", DOMAIN, "oldsecret", Some("MD5")).expect(200);
    server.get("/api/accounts/me").key("k9").send().expect(200);
    let out = server.cli(&["doctor"]);
    assert!(
        stdout(&out).contains("OK   flexisip user-with-phone request: +33600000007 -> olduser"),
        "{}",
        stdout(&out)
    );
}
