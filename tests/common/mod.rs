//! Test harness: starts the real `flexiapi` binary on a free loopback port
//! with a temporary database, and talks HTTP to it the way clients do.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_flexiapi");
pub const DOMAIN: &str = "sip.example.org";

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("flexiapi-test-{}-{}-{}", std::process::id(), n, rand_suffix()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (t.as_nanos() % 1_000_000_007) as u64
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub struct Server {
    pub dir: TempDir,
    pub port: u16,
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Server {
    /// Starts the server with the default test configuration plus `env`.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new();
        Server::start_in(dir, env)
    }

    pub fn start_in(dir: TempDir, env: &[(&str, &str)]) -> Server {
        let mut server = Server::configure(dir, env);
        server.spawn();
        server
    }

    /// Prepares a server (env, database) without starting it.
    pub fn configure(dir: TempDir, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut all: Vec<(String, String)> = vec![
            ("APP_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("APP_URL".into(), format!("http://127.0.0.1:{port}")),
            ("DB_DATABASE".into(), dir.path().join("flexiapi.sqlite").display().to_string()),
            ("APP_SIP_DOMAIN".into(), DOMAIN.into()),
            ("APP_HTTP_WORKERS".into(), "8".into()),
        ];
        for (k, v) in env {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.to_string()));
        }
        Server { dir, port, env: all, child: None }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn db_path(&self) -> PathBuf {
        PathBuf::from(self.env_value("DB_DATABASE").unwrap_or_default())
    }

    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear();
        for key in ["PATH", "HOME", "TMPDIR", "LANG"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        // Never read the machine's /etc/flexiapi/flexiapi.env in tests.
        let empty_config = self.dir.path().join("empty.env");
        if !empty_config.exists() {
            let _ = std::fs::write(&empty_config, "");
        }
        cmd.arg("--config").arg(&empty_config);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file");
        let child = self
            .command()
            .arg("serve")
            // Both streams in the log, so tests can read all it prints.
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start flexiapi");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("flexiapi exited at start ({status}): {}", self.log());
                }
            }
            if let Ok(resp) = self.try_request("GET", "/api/ping", &[], None) {
                if resp.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("flexiapi did not answer /api/ping: {}", self.log());
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGTERM and waits (graceful stop).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().ok()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs a console command with the same configuration.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run flexiapi")
    }

    /// Creates an admin account through the CLI; returns (username, password, api key).
    pub fn admin(&self, username: &str) -> (String, String, String) {
        let password = "adminpassword";
        let out = self.cli(&["accounts:create-admin-account", "-u", username, "-p", password]);
        assert!(out.status.success(), "create-admin-account: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let key = stdout.lines().find_map(|l| l.strip_prefix("API key: ")).expect("API key line").trim().to_string();
        (username.to_string(), password.to_string(), key)
    }

    /// A direct connection to the database, for assertions.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.db_path()).expect("open db");
        conn.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
        conn
    }

    pub fn count(&self, table: &str) -> i64 {
        self.db().query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).expect("count")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        Req::new(self, "GET", path)
    }
    pub fn post(&self, path: &str) -> Req<'_> {
        Req::new(self, "POST", path)
    }
    pub fn put(&self, path: &str) -> Req<'_> {
        Req::new(self, "PUT", path)
    }
    pub fn delete(&self, path: &str) -> Req<'_> {
        Req::new(self, "DELETE", path)
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> std::io::Result<Resp> {
        http_request(self.port, method, path, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A request being built.
pub struct Req<'a> {
    server: &'a Server,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl<'a> Req<'a> {
    fn new(server: &'a Server, method: &str, path: &str) -> Req<'a> {
        Req {
            server,
            method: method.into(),
            path: path.into(),
            headers: vec![("Accept".into(), "application/json".into())],
            body: None,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.retain(|(key, _)| !key.eq_ignore_ascii_case(k));
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn no_accept(mut self) -> Self {
        self.headers.retain(|(key, _)| !key.eq_ignore_ascii_case("Accept"));
        self
    }
    pub fn key(self, key: &str) -> Self {
        self.header("x-api-key", key)
    }
    pub fn json(mut self, value: Value) -> Self {
        self.body = Some(serde_json::to_vec(&value).expect("json"));
        self.header("Content-Type", "application/json")
    }
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect();
        self.body = Some(body.join("&").into_bytes());
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
    pub fn send(self) -> Resp {
        self.server
            .try_request(&self.method, &self.path, &self.headers, self.body.as_deref())
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.method, self.path))
    }

    /// DIGEST round trip: a first request for the challenge, then the
    /// answer computed from `password` for the first offered algorithm
    /// matching `algorithm` (or the first one).
    pub fn digest(self, username: &str, domain: &str, password: &str, algorithm: Option<&str>) -> Resp {
        let from = format!("sip:{username}@{domain}");
        let first = Req {
            server: self.server,
            method: self.method.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
        .header("From", &from)
        .send();
        assert_eq!(first.status, 401, "expected a challenge: {}", first.text());
        let challenges = first.headers_all("WWW-Authenticate");
        let challenge = challenges
            .iter()
            .map(|c| Challenge::parse(c))
            .find(|c| algorithm.is_none_or(|a| c.algorithm == a))
            .expect("a matching challenge");
        let auth = challenge.authorization(&self.method, &self.path, username, password, 1, "0a4f113b");
        self.header("From", &from).header("Authorization", &auth).send()
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
    pub fn headers_all(&self, name: &str) -> Vec<String> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
    }
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        self
    }
    /// Asserts a 422 naming `field`.
    #[track_caller]
    pub fn expect_invalid(self, field: &str) -> Resp {
        assert_eq!(self.status, 422, "expected 422; body: {}", self.text());
        let json = self.json();
        assert!(json["errors"].get(field).is_some(), "expected errors.{field} in {json}");
        self
    }
}

/// One HTTP/1.1 exchange on a new connection (`Connection: close`).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    } else if method == "POST" || method == "PUT" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        stream.write_all(body)?;
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> std::io::Result<Resp> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 =
        status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("Transfer-Encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Resp { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else { break };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end]).split(';').next().unwrap_or("0").trim(),
            16,
        )
        .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// A parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: String,
    pub algorithm: String,
}

impl Challenge {
    pub fn parse(header: &str) -> Challenge {
        let get = |name: &str| -> String {
            let rest = header.split(&format!("{name}=")).nth(1).unwrap_or("");
            let rest = rest.trim_start_matches('"');
            rest.split(['"', ',']).next().unwrap_or("").to_string()
        };
        Challenge { realm: get("realm"), nonce: get("nonce"), opaque: get("opaque"), algorithm: get("algorithm") }
    }

    /// The `Authorization` value for this challenge.
    pub fn authorization(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let ha1 = hash(&self.algorithm, &format!("{username}:{}:{password}", self.realm));
        self.authorization_with_ha1(method, uri, username, &ha1, nc, cnonce)
    }

    pub fn authorization_with_ha1(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        ha1: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let nc = format!("{nc:08x}");
        let ha2 = hash(&self.algorithm, &format!("{method}:{uri}"));
        let response = hash(&self.algorithm, &format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce));
        format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm={}, nc={nc}, cnonce=\"{cnonce}\", qop=auth, response=\"{response}\", opaque=\"{}\"",
            self.realm, self.nonce, self.algorithm, self.opaque
        )
    }
}

pub fn hash(algorithm: &str, text: &str) -> String {
    use md5::Digest as _;
    let bytes: Vec<u8> = if algorithm == "SHA-256" {
        sha2::Sha256::digest(text.as_bytes()).to_vec()
    } else {
        md5::Md5::digest(text.as_bytes()).to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates an account through the admin API; returns its JSON.
pub fn create_account(server: &Server, admin_key: &str, body: Value) -> Value {
    server.post("/api/accounts").key(admin_key).json(body).send().expect(200).json()
}

/// Creates an account and an API key for it; returns (id, key).
pub fn account_with_key(server: &Server, admin_key: &str, username: &str, password: &str) -> (i64, String) {
    let account = create_account(
        server,
        admin_key,
        serde_json::json!({"username": username, "password": password, "algorithm": "SHA-256", "activated": true}),
    );
    let id = account["id"].as_i64().expect("id");
    let key = server.get("/api/accounts/me/api_key").digest(username, DOMAIN, password, None).expect(200).text();
    (id, key)
}

// --- real peers ---

/// Set to `1` to let tests whose peer (redis-server, linphone-daemon,
/// chromium...) is missing pass with a `SKIPPED` line instead of failing.
/// Meant for a developer machine; CI (`bash .ci/run`) installs every peer and
/// leaves it unset, so a missing peer fails the suite loudly.
pub const ALLOW_MISSING_PEERS: &str = "FLEXIAPI_TESTS_ALLOW_MISSING_PEERS";

/// The Debian package providing `tool` (for install hints).
fn package_of(tool: &str) -> &str {
    match tool {
        "linphone-daemon" | "linphonec" | "linphonecsh" => "linphone-cli",
        "chromedriver" => "chromium-driver",
        "prlimit" | "mount" | "umount" => "util-linux",
        other => other,
    }
}

/// `tool` found in `PATH` (then /usr/sbin, /sbin, /usr/bin, /bin).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(tool)).find(|p| p.is_file())
}

/// Whether a missing peer may be skipped (see [`ALLOW_MISSING_PEERS`]).
pub fn missing_peers_allowed() -> bool {
    std::env::var(ALLOW_MISSING_PEERS).is_ok_and(|v| v.trim() == "1")
}

/// A peer this test needs is not usable: panics with `hint`, unless
/// [`ALLOW_MISSING_PEERS`] is `1`, in which case it prints `SKIPPED` and
/// returns (the caller then returns too).
#[track_caller]
pub fn peer_missing(what: &str, hint: &str) {
    if missing_peers_allowed() {
        println!("SKIPPED ({ALLOW_MISSING_PEERS}=1): {what}");
        eprintln!("SKIPPED ({ALLOW_MISSING_PEERS}=1): {what}");
        return;
    }
    panic!(
        "{what}.\n  This test needs the real peer: {hint}\n  (`bash .ci/run` installs every peer; set {ALLOW_MISSING_PEERS}=1 to skip such tests on a machine without them)"
    );
}

/// The path of `tool`, a real peer this test needs. When it is missing:
/// panics with an install hint, or returns `None` (after a `SKIPPED` line)
/// when [`ALLOW_MISSING_PEERS`] is `1`.
///
/// ```ignore
/// let Some(redis) = require_tool("redis-server") else { return };
/// ```
#[track_caller]
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    if let Some(path) = find_tool(tool) {
        return Some(path);
    }
    peer_missing(
        &format!("`{tool}` is not installed"),
        &format!("apt-get install --no-install-recommends {} (or bash .ci/install-deps)", package_of(tool)),
    );
    None
}

/// A real `linphone-daemon --pipe NAME` (package linphone-cli), headless, no
/// account, SIP on random local ports; its command socket is `/tmp/NAME`
/// (the daemon always prefixes `/tmp/`). Killed, socket removed, on drop.
/// See .ci/PEERS.md for the protocol and its pitfalls.
pub struct LinphoneDaemon {
    child: Option<Child>,
    pub dir: TempDir,
    /// The `--pipe` name.
    pub name: String,
    /// `/tmp/NAME`: what `APP_LINPHONE_DAEMON_UNIX_PATH` must be.
    pub socket: PathBuf,
}

impl LinphoneDaemon {
    /// Starts the daemon and waits until its socket answers a command.
    pub fn start(binary: &Path) -> LinphoneDaemon {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = TempDir::new();
        let d = dir.path().display();
        // The message DBs must be openable (else liblinphone hangs in its
        // configuring stage); random SIP ports so nothing clashes on 5060.
        std::fs::write(
            dir.path().join("rc"),
            format!(
                "[sip]\nsip_port=-1\nsip_tcp_port=-1\nsip_tls_port=-1\n\n\
                 [storage]\nuri={d}/linphone.db\ncall_logs_db_uri={d}/calls.db\nzrtp_secrets_db_uri={d}/zrtp.db\n"
            ),
        )
        .expect("write daemon rc");
        let name = format!(
            "flexiapi-test-ld-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand_suffix() % 100_000
        );
        let socket = PathBuf::from(format!("/tmp/{name}"));
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(binary)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .arg("--config")
            .arg(dir.path().join("rc"))
            .arg("--pipe")
            .arg(&name)
            .arg("--log")
            .arg(dir.path().join("daemon.log"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("daemon.out")).expect("daemon out"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start linphone-daemon");
        let mut daemon = LinphoneDaemon { child: Some(child), dir, name, socket };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // `bogus` is harmless: "Status: Error / Reason: Unknown command."
            if let Ok(reply) = daemon.command("bogus") {
                if reply.contains("Unknown command") {
                    return daemon;
                }
            }
            if let Some(Ok(Some(status))) = daemon.child.as_mut().map(|c| c.try_wait()) {
                panic!("linphone-daemon exited at start ({status}): {}", daemon.out());
            }
            if Instant::now() > deadline {
                panic!("linphone-daemon socket {} not ready: {}", daemon.socket.display(), daemon.out());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One raw command on the socket; reads until the reply is complete (the
    /// daemon never closes the connection itself).
    pub fn command(&self, line: &str) -> std::io::Result<String> {
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(format!("{line}\n").as_bytes())?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if text.contains("Reason:") || text.contains("Id:") || text.contains("Value:") {
                return Ok(text);
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Ok(text);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("daemon running")
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The daemon's stdout: `Event-type: message-state-changed` events.
    pub fn out(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.out")).unwrap_or_default()
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`...) to the daemon.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Stops the daemon (SIGKILL); the socket file is left behind, as after a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LinphoneDaemon {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // a test may have stopped it (SIGSTOP): SIGKILL works anyway, CONT for tidiness
            let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
        }
        self.kill();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A minimal SIP user agent on UDP: receives requests and answers `200 OK`.
///
/// liblinphone sends a `message sip:user@HOST:PORT` to HOST's port 5060
/// whatever PORT says (the chat room keeps the identity address only), so
/// the UA listens on 5060 of a loopback address of its own in 127.0.0.0/8:
/// no clash with another test or a real SIP server on 127.0.0.1:5060.
pub struct SipUa {
    socket: std::net::UdpSocket,
    /// The loopback address it listens on (port 5060).
    pub host: String,
}

/// One SIP request as received.
#[derive(Debug, Clone)]
pub struct SipRequest {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub from: std::net::SocketAddr,
}

impl SipRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
}

impl SipUa {
    pub fn start() -> SipUa {
        for _ in 0..50 {
            let n = rand_suffix();
            let host = format!("127.{}.{}.{}", 10 + n % 200, (n / 200) % 250 + 1, (n / 50_000) % 250 + 2);
            if let Ok(socket) = std::net::UdpSocket::bind((host.as_str(), 5060)) {
                return SipUa { socket, host };
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        panic!("no free 127.x.y.z:5060 for the SIP UA");
    }

    /// The next request within `timeout` (retransmissions included), answered
    /// with `200 OK` (headers mirrored, a To tag added).
    pub fn receive(&self, timeout: Duration) -> Option<SipRequest> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_535];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket.set_read_timeout(Some(left.max(Duration::from_millis(1)))).ok()?;
            let (n, from) = self.socket.recv_from(&mut buf).ok()?;
            let raw = &buf[..n];
            let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&raw[..split]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next().unwrap_or("").split(' ');
            let method = first.next().unwrap_or("").to_string();
            if method.starts_with("SIP/") {
                continue; // a response, not for us
            }
            let uri = first.next().unwrap_or("").to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
                .collect();
            let request = SipRequest { method, uri, headers, body: raw[split + 4..].to_vec(), from };
            let mut answer = String::from("SIP/2.0 200 OK\r\n");
            for (k, v) in &request.headers {
                match k.to_ascii_lowercase().as_str() {
                    "via" | "from" | "call-id" | "cseq" => answer.push_str(&format!("{k}: {v}\r\n")),
                    "to" if !v.contains("tag=") => answer.push_str(&format!("{k}: {v};tag=flexiapitest\r\n")),
                    "to" => answer.push_str(&format!("{k}: {v}\r\n")),
                    _ => {}
                }
            }
            answer.push_str("Content-Length: 0\r\n\r\n");
            let _ = self.socket.send_to(answer.as_bytes(), from);
            return Some(request);
        }
    }
}

/// The `soci-*-request` lines of the fenced block starting with
/// `# flexisip.conf` in `text` (the README, docs/operations.md).
pub fn soci_requests(text: &str) -> std::collections::BTreeMap<String, String> {
    let text = text.replace("```\r\n", "```\n");
    let block = text.split("```\n# flexisip.conf").nth(1).expect("a fenced block starting with `# flexisip.conf`");
    let block = block.split("```").next().unwrap_or("");
    block
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim().starts_with("soci-") && k.trim().ends_with("-request"))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// One of the README's Flexisip requests, by name.
pub fn readme_soci_request(name: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    soci_requests(&readme).remove(name).unwrap_or_else(|| panic!("{name} in the README"))
}
