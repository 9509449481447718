//! Reliability under load and faults: concurrent writers, Flexisip reading
//! the same file, slow and hostile clients, kill -9, a full disk, start-up
//! refusals and graceful stop. Loopback only; each test is bounded in count
//! and time. The figures (p99s, peak threads and RSS) are printed: run with
//! `cargo test --test reliability -- --test-threads=1 --nocapture`.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// --- helpers ---

fn json_headers(key: &str) -> Vec<(String, String)> {
    vec![
        ("Accept".into(), "application/json".into()),
        ("Content-Type".into(), "application/json".into()),
        ("x-api-key".into(), key.into()),
    ]
}

/// POST /api/accounts on a new connection; status 0 for a transport error.
fn create(port: u16, key: &str, body: &Value) -> (u16, Value) {
    let raw = serde_json::to_vec(body).unwrap();
    match http_request(port, "POST", "/api/accounts", &json_headers(key), Some(&raw)) {
        Ok(resp) => {
            let json = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            (resp.status, json)
        }
        Err(_) => (0, Value::Null),
    }
}

fn account_body(username: &str) -> Value {
    json!({"username": username, "password": "secret123", "algorithm": "SHA-256", "activated": true})
}

/// (threads, VmRSS in kB) of a process.
fn proc_status(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn integrity(path: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open db");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check")
}

fn password_request() -> String {
    readme_soci_request("soci-password-request")
}

/// Accounts with a number of password rows other than one (a half-written
/// account, as Flexisip would see it).
const HALF_WRITTEN: &str =
    "select a.username, count(p.id) from accounts a left join passwords p on p.account_id = a.id \
     where a.activated = 1 and a.username like 'storm%' group by a.id having count(p.id) != 1";

#[allow(clippy::too_many_arguments)]
/// Writers creating activated accounts `storm{t}x{i}` until `stop` or
/// `per_thread` each; the acknowledged (200) usernames go to `acked`.
fn write_storm(
    port: u16,
    key: &str,
    threads: usize,
    per_thread: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    statuses: Arc<Mutex<HashMap<u16, usize>>>,
    stop_on_transport_error: bool,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let (key, stop, acked, statuses) = (key.to_string(), stop.clone(), acked.clone(), statuses.clone());
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let username = format!("storm{t}x{i}");
                    let (status, body) = create(port, &key, &account_body(&username));
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                    match status {
                        200 => acked.lock().unwrap().push(username),
                        0 if stop_on_transport_error => break,
                        0 => {}
                        other => eprintln!("storm: {username}: {other} {body}"),
                    }
                }
            })
        })
        .collect()
}

// --- 1. concurrent creations ---

#[test]
fn concurrent_admin_creations_with_colliding_usernames() {
    let server = Server::start(&[("APP_HTTP_WORKERS", "8")]);
    let (_, _, key) = server.admin("administrator");
    // 1,000 unique usernames, and 1,000 requests over 250 shared ones.
    let mut jobs: Vec<String> = (0..1000).map(|i| format!("solo{i:04}")).collect();
    jobs.extend((0..1000).map(|i| format!("dupname{:03}", i % 250)));
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    for i in (1..jobs.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        jobs.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (jobs, next, results, key, port) =
                (jobs.clone(), next.clone(), results.clone(), key.clone(), server.port);
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(username) = jobs.get(i) else { break };
                let (status, body) = create(port, &key, &account_body(username));
                results.lock().unwrap().push((username.clone(), status, body));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 2000);

    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let mut created_dups: HashMap<String, usize> = HashMap::new();
    for (username, status, body) in results.iter() {
        *by_status.entry(*status).or_default() += 1;
        match *status {
            200 => {
                if username.starts_with("dupname") {
                    *created_dups.entry(username.clone()).or_default() += 1;
                }
            }
            422 => {
                assert!(username.starts_with("dupname"), "unique {username} refused: {body}");
                assert!(body["errors"].get("username").is_some(), "422 without errors.username: {body}");
            }
            other => panic!("{username}: unexpected {other}: {body}"),
        }
    }
    println!("2,000 creations from 32 threads in {:.2}s: {by_status:?}", elapsed.as_secs_f64());
    assert_eq!(by_status.get(&200), Some(&1250), "{by_status:?}");
    assert_eq!(by_status.get(&422), Some(&750), "{by_status:?}");
    assert_eq!(created_dups.len(), 250);
    assert!(created_dups.values().all(|n| *n == 1), "a shared username was created twice");

    let db = server.db();
    assert_eq!(server.count("accounts"), 1 + 1000 + 250);
    let duplicated: i64 = db
        .query_row(
            "select count(*) from (select username from accounts group by username, domain having count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(duplicated, 0);
    let solos: i64 =
        db.query_row("select count(*) from accounts where username like 'solo%'", [], |r| r.get(0)).unwrap();
    assert_eq!(solos, 1000);
    // One password per created account.
    assert_eq!(server.count("passwords"), 1 + 1000 + 250);
    let log = server.log();
    assert!(!log.contains("database is locked"), "{log}");
    assert!(!log.lines().any(|l| l.contains(" 500 ") || l.contains(" 503 ")), "a 500/503 was logged");
}

#[test]
fn concurrent_public_creations_with_the_same_email() {
    let server = Server::start(&[("APP_DANGEROUS_ENDPOINTS", "true"), ("ACCOUNT_EMAIL_UNIQUE", "true")]);
    // The route exists (APP_DANGEROUS_ENDPOINTS=true): an empty body is a 422, never a 404.
    server.post("/api/accounts/public").json(json!({})).send().expect(422);
    let (_, _, key) = server.admin("administrator");
    let tokens: Vec<String> = (0..1000)
        .map(|_| {
            let resp = server.post("/api/account_creation_tokens").key(&key).json(json!({})).send();
            assert!(resp.status == 200 || resp.status == 201, "token: {} {}", resp.status, resp.text());
            resp.json()["token"].as_str().expect("token").to_string()
        })
        .collect();
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (tokens, next, results, port) = (tokens.clone(), next.clone(), results.clone(), server.port);
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(token) = tokens.get(i) else { break };
                let body = json!({
                    "username": format!("public{i}"), "password": "secret123", "algorithm": "SHA-256",
                    "email": "same@example.org", "account_creation_token": token,
                });
                let headers = vec![
                    ("Accept".to_string(), "application/json".to_string()),
                    ("Content-Type".to_string(), "application/json".to_string()),
                ];
                let resp = http_request(
                    port,
                    "POST",
                    "/api/accounts/public",
                    &headers,
                    Some(&serde_json::to_vec(&body).unwrap()),
                );
                let (status, json) = match resp {
                    Ok(r) => (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null)),
                    Err(_) => (0, Value::Null),
                };
                results.lock().unwrap().push((status, json));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let results = results.lock().unwrap();
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for (status, body) in results.iter() {
        *by_status.entry(*status).or_default() += 1;
        match status {
            200 | 201 => {}
            422 => assert!(body["errors"].get("email").is_some(), "422 without errors.email: {body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    println!("1,000 public creations with one email: {by_status:?}");
    let created = by_status.get(&200).copied().unwrap_or(0) + by_status.get(&201).copied().unwrap_or(0);
    assert_eq!(created, 1, "{by_status:?}");
    let with_email: i64 = server
        .db()
        .query_row("select count(*) from accounts where email = 'same@example.org'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(with_email, 1);
}

// --- 2. Flexisip reading during a write storm ---

#[test]
fn flexisip_reads_consistent_credentials_during_a_write_storm() {
    let server = Server::start(&[("APP_HTTP_WORKERS", "8")]);
    let (_, _, key) = server.admin("administrator");
    // The file exists and is in WAL mode before Flexisip opens it.
    let request = password_request();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(HashMap::new()));

    // A second process: the sqlite3 shell, as soci opens the file
    // (read-write, busy timeout 5 s), stopping at the first error.
    // The sqlite3 shell is a required peer (unless FLEXIAPI_TESTS_ALLOW_MISSING_PEERS=1,
    // then only the in-process reader runs).
    let sqlite3 = require_tool("sqlite3").map(|bin| {
        Command::new(bin)
            .arg("-bail")
            .arg(server.db_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the sqlite3 shell")
    });
    let mut shell_threads = Vec::new();
    let shell_iterations = Arc::new(AtomicUsize::new(0));
    let shell_bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut child = sqlite3;
    if let Some(child) = child.as_mut() {
        let mut stdin = child.stdin.take().unwrap();
        let (stop, acked, request) = (stop.clone(), acked.clone(), request.clone());
        shell_threads.push(std::thread::spawn(move || {
            let _ = writeln!(stdin, ".timeout 5000");
            while !stop.load(Ordering::SeqCst) {
                let last = acked.lock().unwrap().last().cloned().unwrap_or_else(|| "nobody".into());
                let query = request.replace(":id", &format!("'{last}'")).replace(":domain", &format!("'{DOMAIN}'"));
                let script = format!(
                    "select 'ITER';\nselect 'BAD', * from ({HALF_WRITTEN});\nselect 'ROWS', count(*) from ({query});\n"
                );
                if stdin.write_all(script.as_bytes()).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            // Dropping stdin ends the shell.
        }));
        let stdout = child.stdout.take().unwrap();
        let (iterations, bad) = (shell_iterations.clone(), shell_bad.clone());
        shell_threads.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ITER" {
                    iterations.fetch_add(1, Ordering::SeqCst);
                } else if line.starts_with("BAD") || (line.starts_with("ROWS|") && line != "ROWS|1" && line != "ROWS|0")
                {
                    bad.lock().unwrap().push(line);
                }
            }
        }));
    }

    // In process: a read-only connection running the README request for
    // accounts the server acknowledged; each must have its credentials.
    let reader = {
        let (stop, acked, request, path) = (stop.clone(), acked.clone(), request.clone(), server.db_path());
        std::thread::spawn(move || -> (usize, Vec<String>) {
            let conn =
                rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut queries = 0;
            let mut problems = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let recent: Vec<String> = acked.lock().unwrap().iter().rev().take(4).cloned().collect();
                for username in recent {
                    let rows: rusqlite::Result<Vec<(String, String)>> =
                        conn.prepare_cached(&request).and_then(|mut stmt| {
                            stmt.query_map(rusqlite::named_params! {":id": username, ":domain": DOMAIN}, |r| {
                                Ok((r.get(0)?, r.get(1)?))
                            })?
                            .collect()
                        });
                    queries += 1;
                    match rows {
                        Ok(rows) if rows.len() == 1 && rows[0].1 == "SHA-256" && rows[0].0.len() == 64 => {}
                        Ok(rows) => problems.push(format!("{username}: {rows:?}")),
                        Err(e) => problems.push(format!("{username}: error {e}")),
                    }
                }
                let half: rusqlite::Result<Vec<String>> = conn
                    .prepare_cached(HALF_WRITTEN)
                    .and_then(|mut stmt| stmt.query_map([], |r| r.get::<_, String>(0))?.collect());
                queries += 1;
                match half {
                    Ok(list) if list.is_empty() => {}
                    Ok(list) => problems.push(format!("half-written: {list:?}")),
                    Err(e) => problems.push(format!("half-written query: error {e}")),
                }
            }
            (queries, problems)
        })
    };

    let started = Instant::now();
    let writers = write_storm(
        server.port,
        &key,
        16,
        40,
        Arc::new(AtomicBool::new(false)),
        acked.clone(),
        statuses.clone(),
        false,
    );
    for w in writers {
        w.join().unwrap();
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (queries, problems) = reader.join().unwrap();
    for t in shell_threads {
        t.join().unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    println!(
        "write storm: 16 writers, {:?} in {:.2}s; in-process reader: {queries} queries; sqlite3 shell: {} iterations",
        statuses,
        elapsed.as_secs_f64(),
        shell_iterations.load(Ordering::SeqCst)
    );
    assert_eq!(statuses.get(&200), Some(&640), "{statuses:?}");
    assert!(problems.is_empty(), "the reader saw: {problems:?}");
    assert!(queries > 0);
    if let Some(child) = child {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sqlite3 failed: {stderr}");
        assert!(stderr.trim().is_empty(), "sqlite3 errors: {stderr}");
        assert!(shell_bad.lock().unwrap().is_empty(), "sqlite3 saw: {:?}", shell_bad.lock().unwrap());
        assert!(shell_iterations.load(Ordering::SeqCst) > 0);
    }
    assert_eq!(integrity(&server.db_path()), "ok");
}

// --- 3. reads under a write storm ---

fn timed_gets(port: u16, path: &str, threads: usize, duration: Duration) -> (Vec<Duration>, HashMap<u16, usize>) {
    let until = Instant::now() + duration;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut times = Vec::new();
                let mut statuses: HashMap<u16, usize> = HashMap::new();
                while Instant::now() < until {
                    let started = Instant::now();
                    let status = http_request(port, "GET", &path, &[], None).map(|r| r.status).unwrap_or(0);
                    times.push(started.elapsed());
                    *statuses.entry(status).or_default() += 1;
                }
                (times, statuses)
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for h in handles {
        let (t, s) = h.join().unwrap();
        times.extend(t);
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
    }
    times.sort();
    (times, statuses)
}

#[test]
fn reads_keep_flowing_under_a_write_storm() {
    let server = Server::start(&[("APP_HTTP_WORKERS", "8")]);
    let (_, _, key) = server.admin("administrator");
    let path = if server.get("/provisioning").send().status == 200 { "/provisioning" } else { "/api/ping" };

    let (quiet, quiet_statuses) = timed_gets(server.port, path, 2, Duration::from_secs(2));
    assert_eq!(quiet_statuses.keys().collect::<Vec<_>>(), vec![&200], "{quiet_statuses:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(HashMap::new()));
    let writers = write_storm(server.port, &key, 16, 100_000, stop.clone(), acked.clone(), statuses.clone(), false);
    std::thread::sleep(Duration::from_millis(300));
    let (busy, busy_statuses) = timed_gets(server.port, path, 2, Duration::from_secs(6));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let writes = statuses.lock().unwrap().clone();
    println!(
        "GET {path}: quiet p50 {:.1} ms, p99 {:.1} ms ({} requests); under 16 writers p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} requests); writes {:?}",
        ms(percentile(&quiet, 0.5)),
        ms(percentile(&quiet, 0.99)),
        quiet.len(),
        ms(percentile(&busy, 0.5)),
        ms(percentile(&busy, 0.99)),
        ms(*busy.last().unwrap()),
        busy.len(),
        writes
    );
    assert_eq!(busy_statuses.keys().collect::<Vec<_>>(), vec![&200], "{busy_statuses:?}");
    assert!(writes.keys().all(|s| *s == 200), "{writes:?}");
    assert!(!busy.is_empty());
    // The background checkpoints keep the WAL from growing with the storm
    // (thousands of account creations would leave hundreds of MiB).
    let wal = std::fs::metadata(format!("{}-wal", server.db_path().display())).map(|m| m.len()).unwrap_or(0);
    println!("WAL after the storm: {} kB", wal / 1024);
    assert!(wal <= 64 << 20, "the WAL grew to {wal} bytes");
}

// --- 4. idle, slow and hostile clients ---

/// Reads a response (or EOF) from `stream` within `limit`; the status, 0
/// for a close without a response. Panics on a hang.
fn answer_or_close(stream: &mut TcpStream, limit: Duration, what: &str) -> u16 {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&chunk[..n]);
                if raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                panic!("{what}: no answer and no close after {:?}", started.elapsed())
            }
            // A reset is a close.
            Err(_) => break,
        }
    }
    if raw.is_empty() {
        0
    } else {
        parse_response(&raw).map(|r| r.status).unwrap_or(0)
    }
}

fn ping_ok(port: u16) -> Duration {
    let started = Instant::now();
    let resp = http_request(port, "GET", "/api/ping", &[], None).expect("ping");
    assert_eq!(resp.status, 200);
    started.elapsed()
}

#[test]
fn idle_slow_and_oversized_clients_are_bounded() {
    let server =
        Server::start(&[("APP_HTTP_TIMEOUT_SECONDS", "2"), ("APP_MAX_BODY_BYTES", "65536"), ("APP_HTTP_WORKERS", "8")]);
    let (_, _, key) = server.admin("administrator");
    let pid = server.pid().unwrap();
    let (threads0, rss0) = proc_status(pid);
    let mut peak_threads = threads0;
    let mut peak_rss = rss0;
    let sample = |peak_threads: &mut u64, peak_rss: &mut u64| {
        let (t, r) = proc_status(pid);
        *peak_threads = (*peak_threads).max(t);
        *peak_rss = (*peak_rss).max(r);
    };

    // 300 connections holding partial requests, kept alive by a header
    // line every second (under the 2 s socket timeout).
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            s.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    let mut slowest_ping = Duration::ZERO;
    for _ in 0..5 {
        for s in idle.iter_mut() {
            s.write_all(b"X-Drip: a\r\n").unwrap();
        }
        for _ in 0..4 {
            slowest_ping = slowest_ping.max(ping_ok(server.port));
            sample(&mut peak_threads, &mut peak_rss);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let (threads_open, _) = proc_status(pid);
    println!(
        "300 partial requests held 5 s: threads {threads0} -> {threads_open} (peak {peak_threads}), RSS peak {} kB; slowest ping {:.1} ms",
        peak_rss,
        ms(slowest_ping)
    );
    assert!(peak_threads < 400, "threads: {peak_threads}");
    assert!(slowest_ping < Duration::from_secs(2), "ping took {slowest_ping:?}");
    // Once they stop sending, each gets 408 or a close within the timeout.
    let mut outcomes: HashMap<u16, usize> = HashMap::new();
    for s in idle.iter_mut() {
        *outcomes.entry(answer_or_close(s, Duration::from_secs(8), "stalled headers")).or_default() += 1;
    }
    println!("stalled partial requests ended with: {outcomes:?} (0 = closed)");
    assert!(outcomes.keys().all(|s| *s == 408 || *s == 0), "{outcomes:?}");
    drop(idle);

    // Huge headers: one 64 KB line; 1,000 headers.
    let huge_line =
        format!("GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(64 * 1024));
    let many: String = (0..1000).map(|i| format!("X-H{i}: {}\r\n", "v".repeat(32))).collect();
    let many = format!("GET /api/ping HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    for (what, request) in [("64 KB header line", huge_line), ("1,000 headers", many)] {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let _ = s.write_all(request.as_bytes());
        let status = answer_or_close(&mut s, Duration::from_secs(8), what);
        println!("{what}: answered {status} (0 = closed)");
        assert!([200, 400, 408, 413, 431, 0].contains(&status), "{what}: {status}");
        sample(&mut peak_threads, &mut peak_rss);
        ping_ok(server.port);
    }

    // A body over the limit, announced and chunked.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nContent-Length: 200000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(&[b' '; 1024]);
    assert_eq!(answer_or_close(&mut s, Duration::from_secs(8), "announced large body"), 413);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    for _ in 0..20 {
        if s.write_all(format!("2000\r\n{}\r\n", " ".repeat(0x2000)).as_bytes()).is_err() {
            break;
        }
    }
    let status = answer_or_close(&mut s, Duration::from_secs(8), "chunked large body");
    assert!(status == 413 || status == 0, "chunked large body: {status}");

    // A body announced as 1,000 bytes, 10 sent, then silence: answered
    // (408) or closed within the socket timeout, worker freed.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nContent-Length: 1000\r\n\r\n{{\"username"
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let status = answer_or_close(&mut s, Duration::from_secs(10), "stalled body");
    println!("stalled body: {status} after {:.2}s", started.elapsed().as_secs_f64());
    assert!(status == 408 || status == 0, "stalled body: {status}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Slow loris on bodies (one byte a second, under the socket timeout):
    // each is answered 408 after the overall body deadline (the socket
    // timeout, 2 s here). Bodies are read before a handler slot is taken, so
    // even more drippers than workers leave pings fast; the looser bound
    // for 12 is what a server reading bodies inside its workers would need.
    for (drippers, bound) in [(6usize, Duration::from_secs(2)), (12, Duration::from_secs(12))] {
        let handles: Vec<_> = (0..drippers)
            .map(|_| {
                let key = key.clone();
                let port = server.port;
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let head = format!(
                        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nContent-Length: 4096\r\n\r\n"
                    );
                    s.write_all(head.as_bytes()).unwrap();
                    for _ in 0..6 {
                        if s.write_all(b" ").is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    answer_or_close(&mut s, Duration::from_secs(10), "dripping body")
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let mut slowest = Duration::ZERO;
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            slowest = slowest.max(ping_ok(server.port));
            sample(&mut peak_threads, &mut peak_rss);
            std::thread::sleep(Duration::from_millis(100));
        }
        let dripped: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        println!(
            "{drippers} dripping bodies (8 workers): answered {dripped:?}; slowest ping meanwhile {:.1} ms",
            ms(slowest)
        );
        assert!(dripped.iter().all(|s| *s == 408 || *s == 0), "{dripped:?}");
        assert!(slowest < bound, "ping took {slowest:?} while {drippers} bodies dripped");
    }

    // Back to a few threads once the connections are gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut threads_after = proc_status(pid).0;
    while threads_after >= 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        threads_after = proc_status(pid).0;
    }
    let (_, rss_after) = proc_status(pid);
    println!("peak threads {peak_threads}, peak RSS {peak_rss} kB; after: threads {threads_after}, RSS {rss_after} kB");
    assert!(threads_after < 100, "threads after the connections closed: {threads_after}");
    assert!(peak_rss < 100 * 1024, "peak RSS {peak_rss} kB");
    ping_ok(server.port);
}

/// One client streaming one endless header line: answered 431 (or closed)
/// after 8 KiB, and the server does not grow by what it sends.
#[test]
fn an_endless_header_line_does_not_grow_memory() {
    let server = Server::start(&[("APP_HTTP_TIMEOUT_SECONDS", "2")]);
    let pid = server.pid().unwrap();
    let (_, rss0) = proc_status(pid);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: ").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 * 1024 * 1024 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let (_, rss) = proc_status(pid);
    let status = answer_or_close(&mut s, Duration::from_secs(8), "endless header line");
    println!(
        "sent {} MB of one header line: answered {status} (0 = closed); RSS {rss0} kB -> {rss} kB",
        sent / (1024 * 1024)
    );
    assert!(status == 431 || status == 0, "endless header line: {status}");
    assert!(sent < 64 * 1024 * 1024, "the server read 64 MB of one header line");
    assert!(rss < rss0 + 16 * 1024, "RSS grew from {rss0} kB to {rss} kB");
    ping_ok(server.port);
}

#[test]
fn the_server_keeps_accepting_after_quiet_periods_and_fd_exhaustion() {
    let server = Server::start(&[("APP_HTTP_TIMEOUT_SECONDS", "1")]);
    // Quiet for longer than the socket timeout (which also bounds accept()).
    std::thread::sleep(Duration::from_millis(2500));
    ping_ok(server.port);
    std::thread::sleep(Duration::from_millis(2500));
    ping_ok(server.port);

    // Out of file descriptors: accept() fails with EMFILE for a while.
    let pid = server.pid().unwrap();
    let Some(prlimit) = require_tool("prlimit") else { return };
    let limited = Command::new(&prlimit).arg(format!("--pid={pid}")).arg("--nofile=64:").status();
    assert!(limited.as_ref().is_ok_and(|s| s.success()), "prlimit --pid={pid} --nofile=64: failed: {limited:?}");
    let mut held = Vec::new();
    for _ in 0..120 {
        match TcpStream::connect_timeout(&([127, 0, 0, 1], server.port).into(), Duration::from_secs(1)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    println!("held {} connections against a limit of 64 descriptors", held.len());
    drop(held);
    let _ = Command::new(&prlimit).arg(format!("--pid={pid}")).arg("--nofile=4096:").status();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    loop {
        match http_request(server.port, "GET", "/api/ping", &[], None) {
            Ok(r) if r.status == 200 => break,
            other => {
                assert!(Instant::now() < deadline, "the server stopped accepting: {other:?}\n{}", server.log());
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    println!("accepting again {:.1}s after descriptors were available", started.elapsed().as_secs_f64());
    ping_ok(server.port);
}

// --- 5. kill -9 during a write storm ---

#[test]
fn kill_9_during_a_write_storm_loses_no_acknowledged_write() {
    let mut server = Server::start(&[("APP_HTTP_WORKERS", "8")]);
    let (_, _, key) = server.admin("administrator");
    let mut total_acked = 0;
    for round in 0..2 {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(HashMap::<u16, usize>::new()));
        // Distinct usernames per round.
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let (key, stop, acked, statuses, port) =
                    (key.clone(), stop.clone(), acked.clone(), statuses.clone(), server.port);
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let username = format!("kill{round}t{t}x{i}");
                        let (status, _) = create(port, &key, &account_body(&username));
                        *statuses.lock().unwrap().entry(status).or_default() += 1;
                        match status {
                            200 => acked.lock().unwrap().push(username),
                            0 => break,
                            other => panic!("{username}: {other}"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(integrity(&server.db_path()), "ok");
        server.spawn();
        assert_eq!(integrity(&server.db_path()), "ok");
        let acked = acked.lock().unwrap().clone();
        let db = server.db();
        let mut missing = Vec::new();
        for username in &acked {
            let n: i64 = db
                .query_row(
                    "select count(*) from accounts a join passwords p on p.account_id = a.id where a.username = ?1",
                    [username],
                    |r| r.get(0),
                )
                .unwrap();
            if n != 1 {
                missing.push(username.clone());
            }
        }
        let in_db: i64 = db
            .query_row("select count(*) from accounts where username like ?1", [format!("kill{round}t%")], |r| r.get(0))
            .unwrap();
        println!(
            "kill -9 round {round}: {} acknowledged, {in_db} in the database after restart, statuses {:?}",
            acked.len(),
            statuses.lock().unwrap()
        );
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
        assert!(
            in_db >= acked.len() as i64 && in_db <= acked.len() as i64 + 8,
            "{in_db} rows for {} acks",
            acked.len()
        );
        assert!(!acked.is_empty());
        total_acked += acked.len();
        ping_ok(server.port);
    }
    // The server still writes after the restarts.
    create_account(&server, &key, account_body("afterkill"));
    assert!(total_acked > 0);
}

// --- 6. full disk ---

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_writes_with_503_and_recovers() {
    let fs = TempDir::new();
    let mountpoint = fs.path().join("small");
    std::fs::create_dir_all(&mountpoint).unwrap();
    // Mounting a tmpfs needs root (CAP_SYS_ADMIN): as root it must work.
    let mount = Command::new("mount").args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"]).arg(&mountpoint).output();
    let mounted = mount.as_ref().is_ok_and(|o| o.status.success());
    if !mounted {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let why = match &mount {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        peer_missing(
            &format!("cannot mount a 4 MB tmpfs (uid {uid}): {why}"),
            "run the suite as root (or with CAP_SYS_ADMIN) so the full-disk test can mount its small tmpfs; the 503 mapping of SQLITE_FULL/READONLY is also unit-checked in src/error.rs",
        );
        return;
    }
    let _mount = Mount(mountpoint.clone());
    let db_path = mountpoint.join("flexiapi.sqlite");
    let server = Server::start(&[("DB_DATABASE", db_path.to_str().unwrap()), ("APP_HTTP_WORKERS", "4")]);
    let (_, _, admin_key) = server.admin("administrator");
    let (reader_id, reader_key) = account_with_key(&server, &admin_key, "reader", "secret123");
    // Make both keys due for their `last_used_at` refresh, a write.
    server.db().execute("update api_keys set last_used_at = datetime('now', '-120 seconds')", []).unwrap();

    // Fill the file system.
    let filler_path = mountpoint.join("filler");
    {
        let mut filler = std::fs::File::create(&filler_path).unwrap();
        let block = vec![0u8; 16 * 1024];
        while filler.write_all(&block).is_ok() {}
        let _ = filler.sync_all();
    }
    // Writes: answered, never a 500; some 503 once the free pages are gone.
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut refusal = Value::Null;
    for i in 0..400 {
        let (status, body) = create(server.port, &admin_key, &account_body(&format!("fullness{i:03}")));
        *statuses.entry(status).or_default() += 1;
        assert!(status == 200 || status == 503, "fullness{i:03}: {status} {body}");
        if status == 503 {
            refusal = body;
            if statuses[&503] >= 5 {
                break;
            }
        }
    }
    println!("writes on a full disk: {statuses:?}; refusal: {refusal}");
    assert!(statuses.get(&503).copied().unwrap_or(0) >= 5, "{statuses:?}");
    let message = refusal["message"].as_str().unwrap_or("");
    assert!(message.contains("cannot be written"), "{refusal}");

    // Reads still work, including the API-key path that refreshes last_used_at.
    let me = server.get("/api/accounts/me").key(&reader_key).send();
    assert_eq!(me.status, 200, "GET /api/accounts/me on a full disk: {}", me.text());
    assert_eq!(me.json()["username"], "reader");
    server.get(&format!("/api/accounts/{reader_id}")).key(&admin_key).send().expect(200);
    server.get("/api/accounts").key(&admin_key).send().expect(200);
    ping_ok(server.port);
    assert_eq!(integrity(&db_path), "ok");
    assert!(!server.log().contains(" 500 "), "a 500 on a full disk:\n{}", server.log());

    // Space returns: writes work again.
    std::fs::remove_file(&filler_path).unwrap();
    create_account(&server, &admin_key, account_body("afterfull"));
    server.get("/api/accounts/me").key(&reader_key).send().expect(200);
    assert_eq!(integrity(&db_path), "ok");
    let accounts: i64 = server.count("accounts");
    println!("after the disk emptied: {accounts} accounts, integrity ok");
}

// --- 7. start-up refusals ---

fn serve_briefly(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let config = dir.join("empty.env");
    std::fs::write(&config, "").unwrap();
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    for key in ["PATH", "HOME", "TMPDIR", "LANG"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("APP_LISTEN", format!("127.0.0.1:{port}"))
        .env("APP_URL", format!("http://127.0.0.1:{port}"))
        .env("DB_DATABASE", dir.join("flexiapi.sqlite"))
        .env("APP_SIP_DOMAIN", DOMAIN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child =
        cmd.arg("--config").arg(&config).arg("serve").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn start_up_refuses_bad_configuration_and_newer_databases() {
    let unreadable_dir = TempDir::new();
    let cases: Vec<(&str, Vec<(String, String)>, &str)> = vec![
        ("bad value", vec![("APP_HTTP_WORKERS".into(), "lots".into())], "APP_HTTP_WORKERS"),
        ("out of range", vec![("APP_HTTP_TIMEOUT_SECONDS".into(), "0".into())], "APP_HTTP_TIMEOUT_SECONDS"),
        (
            "missing rc file",
            vec![("ACCOUNT_PROVISIONING_RC_FILE".into(), "/nonexistent/linphonerc".into())],
            "ACCOUNT_PROVISIONING_RC_FILE",
        ),
        (
            "rc file is a directory",
            vec![("ACCOUNT_PROVISIONING_RC_FILE".into(), unreadable_dir.path().display().to_string())],
            "ACCOUNT_PROVISIONING_RC_FILE",
        ),
        ("newer database", vec![], "newer"),
    ];
    for (what, env, needle) in cases {
        let dir = TempDir::new();
        if what == "newer database" {
            let conn = rusqlite::Connection::open(dir.path().join("flexiapi.sqlite")).unwrap();
            conn.execute_batch("PRAGMA user_version = 99; CREATE TABLE accounts (id INTEGER PRIMARY KEY);").unwrap();
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (code, stderr) = serve_briefly(dir.path(), &env);
        println!("{what}: exit {code:?}: {}", stderr.trim());
        assert!(code.is_some(), "{what}: still running after 10 s");
        assert_ne!(code, Some(0), "{what}: exited 0");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: expected one line, got: {stderr}");
        assert!(lines[0].contains(needle), "{what}: {stderr}");
    }
}

// --- 8. graceful stop ---

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let mut server = Server::start(&[]);
    let (_, _, key) = server.admin("administrator");
    // Sent in two halves, with the stop in between: the server is reading
    // the body when SIGTERM arrives.
    let mut body = serde_json::to_vec(&account_body("inflight")).unwrap();
    body.extend(std::iter::repeat_n(b' ', 2048));
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    s.write_all(first).unwrap();
    // A worker has taken the request and is reading its body.
    std::thread::sleep(Duration::from_millis(600));
    let pid = server.pid().unwrap();
    assert!(Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(600));
    s.write_all(rest).unwrap();
    let mut raw = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_to_end(&mut raw).unwrap();
    let resp = parse_response(&raw)
        .unwrap_or_else(|e| panic!("no response to the in-flight request ({e}):\n{}", server.log()));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let status = server.terminate().expect("exit status");
    assert!(status.success(), "exit: {status}\n{}", server.log());
    let log = server.log();
    assert!(log.contains("stopped"), "{log}");
    assert_eq!(integrity(&server.db_path()), "ok");
    let n: i64 =
        server.db().query_row("select count(*) from accounts where username = 'inflight'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
    println!("in-flight request answered {} during the stop; exit {status}", resp.status);
}

// --- 9. the HTTP front end: limits, framing, keep-alive ---

/// Writes `raw` on a new connection and reads until the server closes.
fn exchange(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(raw);
    read_until_close(&mut s)
}

fn read_until_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                panic!("no close after 10 s; read so far: {}", String::from_utf8_lossy(&out))
            }
            // A reset is a close.
            Err(_) => break,
        }
    }
    out
}

fn status_of(raw: &[u8]) -> u16 {
    parse_response(raw).map(|r| r.status).unwrap_or(0)
}

/// The status lines of every response in `raw`, in order.
fn statuses(raw: &[u8]) -> Vec<u16> {
    String::from_utf8_lossy(raw)
        .split("HTTP/1.1 ")
        .skip(1)
        .filter_map(|r| r.get(..3).and_then(|s| s.parse().ok()))
        .collect()
}

#[test]
fn the_front_end_enforces_its_limits_and_speaks_http_1_1() {
    let server = Server::start(&[("APP_MAX_BODY_BYTES", "65536"), ("APP_HTTP_TIMEOUT_SECONDS", "3")]);
    let (_, _, key) = server.admin("administrator");
    let port = server.port;

    // Heads over the limits: 431 or 414, then a close.
    let huge = format!("GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(status_of(&exchange(port, huge.as_bytes())), 431);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_eq!(status_of(&exchange(port, format!("GET /api/ping HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())), 431);
    let long_uri = format!("GET /api/ping?{} HTTP/1.1\r\nHost: x\r\n\r\n", "q".repeat(9000));
    assert_eq!(status_of(&exchange(port, long_uri.as_bytes())), 414);
    // 100 short headers are fine.
    let hundred: String = (0..98).map(|i| format!("X-H{i}: v\r\n")).collect();
    let ok =
        exchange(port, format!("GET /api/ping HTTP/1.1\r\nHost: x\r\n{hundred}Connection: close\r\n\r\n").as_bytes());
    assert_eq!(status_of(&ok), 200);

    // Garbage and malformed requests: 400.
    for raw in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..],
        b"GET /api/ping HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n",
        b"POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /api/ping HTTP/1.1\r\nBad Header: x\r\n\r\n",
    ] {
        assert_eq!(status_of(&exchange(port, raw)), 400, "{}", String::from_utf8_lossy(raw));
    }

    // Chunked bodies: decoded, and limited by their decoded size.
    let body = serde_json::to_vec(&account_body("chunky")).unwrap();
    let (a, b) = body.split_at(10);
    let mut raw = format!(
        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in [a, b] {
        raw.extend(format!("{:x};ext=1\r\n", part.len()).bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let resp = parse_response(&exchange(port, &raw)).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["username"], "chunky");
    let mut raw = format!(
        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..3 {
        raw.extend(format!("8000\r\n{}\r\n", " ".repeat(0x8000)).bytes());
    }
    assert_eq!(status_of(&exchange(port, &raw)), 413);

    // Expect: 100-continue: "go on" for an acceptable length, 413 at once
    // for a large one.
    let body = serde_json::to_vec(&account_body("expectant")).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /api/accounts HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: application/json\r\nx-api-key: {key}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(&body).unwrap();
    let resp = parse_response(&read_until_close(&mut s)).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let raw = read_until_close(&mut s);
    assert_eq!(statuses(&raw), vec![413], "{}", String::from_utf8_lossy(&raw));

    // Keep-alive: two requests one after the other, then three pipelined.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let resp = parse_response(&buf[..n]).unwrap();
        assert_eq!((resp.status, resp.text().as_str()), (200, "pong"));
        assert!(!resp.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("Connection") && v == "close"));
    }
    s.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\nHEAD /api/ping HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let raw = read_until_close(&mut s);
    assert_eq!(statuses(&raw).len(), 3, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(statuses(&raw), [200, 200, 404]);
    assert_eq!(String::from_utf8_lossy(&raw).matches("pong").count(), 1, "HEAD has no body");

    // HTTP/1.0: closed after the response unless keep-alive is asked for.
    let raw = exchange(port, b"GET /api/ping HTTP/1.0\r\n\r\n");
    assert_eq!(parse_response(&raw).unwrap().text(), "pong");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let resp = parse_response(&buf[..n]).unwrap();
    assert!(resp
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Connection") && v.eq_ignore_ascii_case("keep-alive")));
    s.write_all(b"GET /api/ping HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(status_of(&read_until_close(&mut s)), 200);

    // An idle keep-alive connection is closed after the timeout.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(statuses(&read_until_close(&mut s)), vec![200]);
    let idle = started.elapsed();
    assert!(idle >= Duration::from_secs(2) && idle < Duration::from_secs(6), "closed after {idle:?}");

    // Refusals are counted under their own labels, never raw paths.
    let log = server.log();
    assert!(
        log.contains("(headers too large) 431")
            && log.contains("(uri too long) 414")
            && log.contains("(bad request) 400"),
        "{log}"
    );
    assert!(!log.contains("qqqq"));
}

#[test]
fn connections_over_the_cap_are_answered_503() {
    let server = Server::start(&[("APP_HTTP_MAX_CONNECTIONS", "8"), ("APP_HTTP_TIMEOUT_SECONDS", "5")]);
    // 12 connections: 8 are admitted and wait for a request, the others get
    // a 503 and a close. (The start-up ping's connection may still count
    // for a moment: at least 4 are refused.)
    let mut idle: Vec<TcpStream> = (0..12).map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let (mut admitted, mut refused) = (0, 0);
    for s in idle.iter_mut() {
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut buf = vec![0u8; 4096];
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                admitted += 1
            }
            Ok(n) if n > 0 => {
                let resp =
                    parse_response(&buf[..n]).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&buf[..n])));
                assert_eq!(resp.status, 503);
                assert!(resp.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Retry-After")));
                refused += 1;
            }
            other => panic!("neither waiting nor refused: {other:?}\n{}", server.log()),
        }
    }
    println!("12 connections against a cap of 8: {admitted} admitted, {refused} refused");
    assert!(admitted <= 8 && refused >= 4, "{admitted} admitted, {refused} refused");
    drop(idle);
    // Freed slots are taken again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match http_request(server.port, "GET", "/api/ping", &[], None) {
            Ok(r) if r.status == 200 => break,
            other => {
                assert!(Instant::now() < deadline, "no slot freed: {other:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    assert!(server.log().contains("APP_HTTP_MAX_CONNECTIONS"), "{}", server.log());
}

#[test]
fn sigterm_does_not_wait_for_idle_connections_or_unfinished_heads() {
    // The default 15 s timeout: a stop waiting on these would take that long.
    let mut server = Server::start(&[]);
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    idle.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).unwrap();
    assert_eq!(parse_response(&buf[..n]).unwrap().status, 200);
    let mut partial = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    partial.write_all(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = server.terminate().expect("exit status");
    let took = started.elapsed();
    println!("stopped in {:.0} ms with an idle connection and an unfinished head", ms(took));
    assert!(status.success(), "exit: {status}\n{}", server.log());
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    for s in [&mut idle, &mut partial] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)), "still open after the stop");
    }
}
