//! Faults of the external peers (issue 7): SMTP down or silent, OVH API down
//! or slow, Redis down or silent. Each time the endpoint needing the peer
//! answers a clear error within a bounded time (the 10 s peer timeout, 2 s
//! for Redis, plus a loose 5 s margin: a correctness bound, not a
//! benchmark), the account data is unchanged, and `/api/ping` answers while
//! the call waits. The linphone-daemon faults are in tests/api_flows.rs
//! (`messages_when_the_daemon_hangs_dies_or_is_missing`).

mod common;
#[path = "support/ovh_server.rs"]
mod ovh_server;

use common::*;
use ovh_server::{OvhMode, OvhServer};
use serde_json::{json, Value};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The peer timeout of SMTP and OVH calls (src/services/notifications.rs).
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
const MARGIN: Duration = Duration::from_secs(5);

/// A TCP peer that accepts connections and never says a word (a hung
/// SMTP server or Redis). Connections are held until drop.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (stop.clone(), held.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => h.lock().unwrap().push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Silent { port, stop, held }
    }
    fn accepted(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn headers(key: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("Accept".to_string(), "application/json".to_string()),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    if !key.is_empty() {
        h.push(("x-api-key".to_string(), key.to_string()));
    }
    h
}

/// Runs a request in a thread while checking `/api/ping` answers promptly;
/// returns the response and how long it took.
fn call_while_pinging(server: &Server, method: &str, path: &str, key: &str, body: Option<Value>) -> (Resp, Duration) {
    let port = server.port;
    let (method, path, headers) = (method.to_string(), path.to_string(), headers(key));
    let body = body.map(|b| b.to_string());
    let started = Instant::now();
    let call = std::thread::spawn(move || {
        let resp = http_request(port, &method, &path, &headers, body.as_deref().map(str::as_bytes)).unwrap();
        (resp, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    if !call.is_finished() {
        let ping = Instant::now();
        let resp = server.get("/api/ping").send();
        assert_eq!(resp.status, 200, "ping while a peer is down: {}", resp.text());
        assert!(ping.elapsed() < Duration::from_secs(2), "ping took {:?} while a peer call waits", ping.elapsed());
    }
    call.join().unwrap()
}

#[track_caller]
fn assert_bounded(took: Duration, bound: Duration, what: &str) {
    assert!(took < bound + MARGIN, "{what}: answered after {took:?} (bound {bound:?} + {MARGIN:?})");
}

/// The account rows (every column but `updated_at`, which a compensated
/// attempt may bump), their passwords, and the pending requests and tokens.
fn snapshot(server: &Server, admin: &str) -> String {
    server.get("/api/accounts").key(admin).send().expect(200);
    let db = server.db();
    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('accounts') WHERE name != 'updated_at' ORDER BY cid")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
        .unwrap();
    let sql = format!(
        "SELECT {} FROM accounts ORDER BY id",
        columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ")
    );
    let mut accounts: Vec<String> =
        db.prepare(&sql).and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect()).unwrap();
    let passwords: Vec<String> = db
        .prepare("SELECT account_id || ':' || algorithm || ':' || password FROM passwords ORDER BY 1")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
        .unwrap();
    accounts.extend(passwords);
    let accounts = accounts.join("\n");
    let pending: Vec<String> = db
        .prepare("SELECT 'email:' || account_id || ':' || new_email || ':' || hash FROM email_changed UNION ALL SELECT 'phone:' || account_id || ':' || phone || ':' || code FROM phone_change_codes UNION ALL SELECT 'token:' || token || ':' || used || ':' || ifnull(account_id, '') FROM account_creation_tokens ORDER BY 1")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
        .unwrap_or_else(|e| panic!("snapshot query: {e}"));
    format!("{accounts}\n{}", pending.join("\n"))
}

fn mail_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("MAIL_DRIVER", "smtp".into()),
        ("MAIL_HOST", "127.0.0.1".into()),
        ("MAIL_PORT", port.to_string()),
        ("MAIL_ENCRYPTION", "".into()),
        ("MAIL_FROM_ADDRESS", "no-reply@sip.example.org".into()),
        ("APP_DANGEROUS_ENDPOINTS", "true".into()),
    ]
}

fn start_with(env: Vec<(&'static str, String)>) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(&env)
}

/// SMTP refused (nobody listening) and SMTP silent (accepts, never greets).
#[test]
fn smtp_down_or_silent() {
    for silent in [false, true] {
        let hung = silent.then(Silent::start);
        let port = hung.as_ref().map(|h| h.port).unwrap_or_else(free_port);
        let server = start_with(mail_env(port));
        let what = if silent { "silent SMTP" } else { "SMTP down" };
        let bound = if silent { PEER_TIMEOUT } else { Duration::ZERO };
        let (_, _, admin) = server.admin("administrator");
        let (id, key) = account_with_key(&server, &admin, "mailfault", "secret123");
        server.db().execute("UPDATE accounts SET email = 'old@example.net' WHERE id = ?1", [id]).unwrap();
        let before = snapshot(&server, &admin);

        // Email change: 503, nothing pending, the email unchanged.
        let (resp, took) = call_while_pinging(
            &server,
            "POST",
            "/api/accounts/me/email/request",
            &key,
            Some(json!({"email": "new@example.net"})),
        );
        assert_eq!(resp.status, 503, "{what}: email change: {}", resp.text());
        assert!(resp.text().contains("email could not be sent"), "{}", resp.text());
        assert_bounded(took, bound, what);
        assert_eq!(snapshot(&server, &admin), before, "{what}: email change left data changed");

        // Recovery by email (admin): 503, the key and provisioning token
        // already given out still stand.
        let (resp, took) =
            call_while_pinging(&server, "POST", &format!("/api/accounts/{id}/recover-by-email"), &admin, None);
        assert_eq!(resp.status, 503, "{what}: recover-by-email: {}", resp.text());
        assert_bounded(took, bound, what);
        assert_eq!(snapshot(&server, &admin), before, "{what}: recover-by-email left data changed");

        // Public sign-up: the mail is a side effect, the account is made
        // (as the reference) and the failure logged; still bounded.
        let token = server.post("/api/account_creation_tokens").key(&admin).json(json!({})).send().json()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let body = json!({"username": "signup1", "password": "secret123", "algorithm": "SHA-256", "email": "s@example.net", "account_creation_token": token});
        let (resp, took) = call_while_pinging(&server, "POST", "/api/accounts/public", "", Some(body));
        assert_eq!(resp.status, 200, "{what}: sign-up: {}", resp.text());
        assert_bounded(took, bound, what);
        assert!(server.log().contains("register_confirmation not sent"), "{what}: {}", server.log());
        if let Some(h) = &hung {
            assert!(h.accepted() >= 3, "the silent server was really contacted");
        }
        assert!(!server.log().contains(" 500 "), "{}", server.log());
    }
}

/// OVH API refused, answering 500, and slower than the timeout.
#[test]
fn ovh_down_failing_or_slow() {
    let ovh = OvhServer::start("appkey", "appsecret", "consumer");
    let closed = format!("http://127.0.0.1:{}/1.0", free_port());
    for (what, endpoint, mode, bound) in [
        ("OVH down", closed.as_str(), OvhMode::Normal, Duration::ZERO),
        ("OVH 500", ovh.base_url().as_str(), OvhMode::Fail500, Duration::ZERO),
        ("OVH slow", ovh.base_url().as_str(), OvhMode::Slow(PEER_TIMEOUT + Duration::from_secs(3)), PEER_TIMEOUT),
    ] {
        ovh.set_mode(mode);
        let server = start_with(vec![
            ("PHONE_AUTHENTICATION", "true".into()),
            ("APP_DANGEROUS_ENDPOINTS", "true".into()),
            ("OVH_APP_KEY", "appkey".into()),
            ("OVH_APP_SECRET", "appsecret".into()),
            ("OVH_APP_CONSUMER_KEY", "consumer".into()),
            ("OVH_APP_ENDPOINT", endpoint.to_string()),
        ]);
        let (_, _, admin) = server.admin("administrator");
        let (id, key) = account_with_key(&server, &admin, "smsfault", "secret123");
        server.db().execute("UPDATE accounts SET phone = '+33611111111' WHERE id = ?1", [id]).unwrap();
        let token = server.post("/api/account_creation_tokens").key(&admin).json(json!({})).send().json()["token"]
            .as_str()
            .unwrap()
            .to_string();
        let before = snapshot(&server, &admin);

        let (resp, took) = call_while_pinging(
            &server,
            "POST",
            "/api/accounts/me/phone/request",
            &key,
            Some(json!({"phone": "+33622222222"})),
        );
        assert_eq!(resp.status, 503, "{what}: phone change: {}", resp.text());
        assert!(resp.text().contains("SMS could not be sent"), "{}", resp.text());
        assert_bounded(took, bound, what);
        assert_eq!(snapshot(&server, &admin), before, "{what}: phone change left data changed");

        let body = json!({"phone": "+33611111111", "account_creation_token": token});
        let (resp, took) = call_while_pinging(&server, "POST", "/api/accounts/recover-by-phone", "", Some(body));
        assert_eq!(resp.status, 503, "{what}: recover-by-phone: {}", resp.text());
        assert_bounded(took, bound, what);
        assert_eq!(snapshot(&server, &admin), before, "{what}: recover-by-phone left data changed");
        assert!(server.log().contains("sms: not sent"), "{}", server.log());
        assert!(!server.log().contains(" 500 "), "{}", server.log());
    }
    assert!(ovh.jobs().is_empty(), "no SMS job was accepted");
}

/// Redis refused and Redis silent (DEVICES_MANAGEMENT on).
#[test]
fn redis_down_or_silent() {
    const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
    for silent in [false, true] {
        let hung = silent.then(Silent::start);
        let port = hung.as_ref().map(|h| h.port).unwrap_or_else(free_port);
        let what = if silent { "silent Redis" } else { "Redis down" };
        let server = start_with(vec![("DEVICES_MANAGEMENT", "true".into()), ("REDIS_PORT", port.to_string())]);
        let (_, _, admin) = server.admin("administrator");
        let (_, key) = account_with_key(&server, &admin, "redisfault", "secret123");
        let before = snapshot(&server, &admin);
        // The list degrades to empty (Flexisip may simply not run), bounded.
        let (resp, took) = call_while_pinging(&server, "GET", "/api/accounts/me/devices", &key, None);
        assert_eq!(resp.status, 200, "{what}: {}", resp.text());
        assert_eq!(resp.json(), json!([]));
        assert_bounded(took, REDIS_TIMEOUT, what);
        // A removal cannot be done: 503, bounded.
        let (resp, took) = call_while_pinging(&server, "DELETE", "/api/accounts/me/devices/urn:uuid:x", &key, None);
        assert_eq!(resp.status, 503, "{what}: {}", resp.text());
        assert_bounded(took, REDIS_TIMEOUT, what);
        assert_eq!(snapshot(&server, &admin), before, "{what}: data changed");
        if let Some(h) = &hung {
            assert!(h.accepted() >= 1, "the silent Redis was really contacted");
        }
        assert!(!server.log().contains(" 500 "), "{}", server.log());
    }
}

/// The guard itself: a missing peer fails the test with an install hint,
/// unless FLEXIAPI_TESTS_ALLOW_MISSING_PEERS=1 (then `None`, test skipped).
#[test]
fn a_missing_peer_fails_loudly_unless_allowed() {
    let found = require_tool("sh");
    assert!(found.is_some_and(|p| p.is_file()));
    let outcome = std::panic::catch_unwind(|| require_tool("flexiapi-no-such-peer"));
    if missing_peers_allowed() {
        assert!(matches!(outcome, Ok(None)));
    } else {
        let message = outcome.expect_err("a missing peer must fail the test");
        let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("flexiapi-no-such-peer") && text.contains("apt-get install"), "{text}");
        assert!(text.contains(ALLOW_MISSING_PEERS), "{text}");
    }
}
