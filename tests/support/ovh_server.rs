//! A loopback stand-in for the OVH API (SMS part), std + serde_json only.
//!
//! Include it with `#[path = "support/ovh_server.rs"] mod ovh_server;` and set
//! `OVH_APP_ENDPOINT` to [`OvhServer::base_url`] (`http://127.0.0.1:<port>/1.0`).
//!
//! Routes (HTTP/1.1, one request per connection, `Connection: close`):
//! - `GET /1.0/auth/time`: server UNIX time as a plain number (unsigned);
//! - `GET /1.0/sms`: JSON array of service names (default `["sms-ab12345-1"]`);
//! - `POST /1.0/sms/{service}/jobs`: records `{receivers, message, sender}`
//!   and answers a job result like OVH's;
//! - `GET /1.0/sms/{service}/jobs`: JSON array of the job ids.
//!
//! Every route but `/auth/time` checks the OVH headers: `X-Ovh-Application`
//! and `X-Ovh-Consumer` must match, `X-Ovh-Timestamp` must be within 60 s of
//! the server clock, and `X-Ovh-Signature` must be
//! `"$1$" + sha1hex(secret+consumer+METHOD+url+body+timestamp)` with
//! `url = "http://" + Host + target`; otherwise `403` with OVH's JSON
//! (`{"message":"Invalid signature"}` for a bad signature).
//! [`OvhServer::set_mode`] makes it answer 500 or stall (fault tests).
//! The server stops accepting when dropped; at most 32 connections at once.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const MAX_CONNECTIONS: usize = 32;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One SMS job accepted by the stand-in.
#[derive(Debug, Clone)]
pub struct SmsJob {
    pub id: u64,
    pub service: String,
    pub receivers: Vec<String>,
    pub message: String,
    pub sender: String,
    /// The whole JSON body as sent.
    pub body: serde_json::Value,
}

/// One request seen (any route, valid or not).
#[derive(Debug, Clone)]
pub struct OvhRequest {
    pub method: String,
    /// Request target, e.g. `/1.0/sms`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// HTTP status answered.
    pub status: u16,
}

impl OvhRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OvhMode {
    /// Behave like OVH.
    Normal,
    /// Answer `500` to every request.
    Fail500,
    /// Wait this long before answering each request (then answer normally).
    Slow(Duration),
}

struct State {
    app_key: String,
    app_secret: String,
    consumer_key: String,
    services: Vec<String>,
    mode: OvhMode,
    time_offset: i64,
    jobs: Vec<SmsJob>,
    requests: Vec<OvhRequest>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    connections: AtomicUsize,
}

/// The stand-in server; stops when dropped.
pub struct OvhServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl OvhServer {
    /// Starts on `127.0.0.1:<free port>` with the credentials it will accept.
    pub fn start(app_key: &str, app_secret: &str, consumer_key: &str) -> OvhServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback OVH server");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                app_key: app_key.to_string(),
                app_secret: app_secret.to_string(),
                consumer_key: consumer_key.to_string(),
                services: vec!["sms-ab12345-1".to_string()],
                mode: OvhMode::Normal,
                time_offset: 0,
                jobs: Vec::new(),
                requests: Vec::new(),
                next_id: 123_456_789,
            }),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if s.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                            s.connections.fetch_sub(1, Ordering::SeqCst);
                            continue; // dropped: connection closed
                        }
                        let s2 = s.clone();
                        std::thread::spawn(move || {
                            let _ = handle(stream, &s2);
                            s2.connections.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        OvhServer { addr, shared, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:<port>/1.0`, the value for `OVH_APP_ENDPOINT`.
    pub fn base_url(&self) -> String {
        format!("http://{}/1.0", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Jobs accepted so far.
    pub fn jobs(&self) -> Vec<SmsJob> {
        self.shared.state.lock().map(|s| s.jobs.clone()).unwrap_or_default()
    }

    /// Waits until at least `count` jobs were accepted (or `timeout`), returns them all.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<SmsJob> {
        let deadline = Instant::now() + timeout;
        loop {
            let jobs = self.jobs();
            if jobs.len() >= count || Instant::now() >= deadline {
                return jobs;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<OvhRequest> {
        self.shared.state.lock().map(|s| s.requests.clone()).unwrap_or_default()
    }

    /// Forgets jobs and requests.
    pub fn clear(&self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.jobs.clear();
            s.requests.clear();
        }
    }

    pub fn set_mode(&self, mode: OvhMode) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.mode = mode;
        }
    }

    /// The service names `GET /sms` returns (empty = account without SMS service).
    pub fn set_services(&self, services: Vec<String>) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.services = services;
        }
    }

    /// Shifts the server clock (seconds) to check that clients apply the time delta.
    pub fn set_time_offset(&self, seconds: i64) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.time_offset = seconds;
        }
    }
}

impl Drop for OvhServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Internal Server Error",
    }
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn error_json(message: &str, error_code: &str, status: u16) -> String {
    serde_json::json!({
        "message": message,
        "errorCode": error_code,
        "httpCode": format!("{status} {}", reason(status)),
    })
    .to_string()
}

fn handle(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);

    // request line + headers
    let mut head_len = 0usize;
    let mut request_line = String::new();
    head_len += reader.by_ref().take(MAX_HEAD as u64).read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    if method.is_empty() || target.is_empty() {
        return respond(&mut out, 400, "application/json", &error_json("Bad request", "BAD_REQUEST", 400));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.by_ref().take((MAX_HEAD - head_len.min(MAX_HEAD)) as u64).read_line(&mut line)?;
        head_len += n;
        if n == 0 || head_len >= MAX_HEAD {
            return respond(&mut out, 400, "application/json", &error_json("Bad request", "BAD_REQUEST", 400));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let header = |name: &str| -> String {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let length: usize = header("Content-Length").parse().unwrap_or(0);
    if length > MAX_BODY {
        return respond(&mut out, 413, "application/json", &error_json("Payload too large", "TOO_LARGE", 413));
    }
    let mut body_bytes = vec![0u8; length];
    reader.read_exact(&mut body_bytes)?;
    let body = String::from_utf8_lossy(&body_bytes).into_owned();

    let mode = shared.state.lock().map(|s| s.mode).unwrap_or(OvhMode::Normal);
    if let OvhMode::Slow(d) = mode {
        std::thread::sleep(d);
    }
    let (status, content_type, answer) = if mode == OvhMode::Fail500 {
        (500, "application/json", error_json("Internal server error", "INTERNAL_ERROR", 500))
    } else {
        route(shared, &method, &target, &header("Host"), &headers, &body)
    };
    if let Ok(mut s) = shared.state.lock() {
        s.requests.push(OvhRequest { method, path: target, headers: headers.clone(), body, status });
    }
    respond(&mut out, status, content_type, &answer)
}

fn route(
    shared: &Shared,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, &'static str, String) {
    let json = "application/json; charset=utf-8";
    let path = target.split('?').next().unwrap_or("");
    let (app_key, secret, consumer, offset) = match shared.state.lock() {
        Ok(s) => (s.app_key.clone(), s.app_secret.clone(), s.consumer_key.clone(), s.time_offset),
        Err(_) => return (500, json, error_json("Internal server error", "INTERNAL_ERROR", 500)),
    };
    let server_time = now_unix() + offset;

    if path == "/1.0/auth/time" {
        return if method == "GET" {
            (200, json, server_time.to_string())
        } else {
            (405, json, error_json("Method not allowed", "METHOD_NOT_ALLOWED", 405))
        };
    }

    // every other route is signed
    let h = |name: &str| -> String {
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    if h("X-Ovh-Application") != app_key {
        return (403, json, error_json("This application key is invalid", "INVALID_KEY", 403));
    }
    if h("X-Ovh-Consumer") != consumer {
        return (403, json, error_json("This credential does not exist", "INVALID_CREDENTIAL", 403));
    }
    let timestamp: i64 = match h("X-Ovh-Timestamp").parse() {
        Ok(t) => t,
        Err(_) => return (400, json, error_json("Missing or invalid timestamp", "QUERY_TIME_OUT", 400)),
    };
    if (timestamp - server_time).abs() > 60 {
        return (400, json, error_json("Query out of time", "QUERY_TIME_OUT", 400));
    }
    let url = format!("http://{host}{target}");
    let expected =
        format!("$1${}", sha1_hex(format!("{secret}+{consumer}+{method}+{url}+{body}+{timestamp}").as_bytes()));
    if h("X-Ovh-Signature") != expected {
        return (403, json, error_json("Invalid signature", "INVALID_SIGNATURE", 403));
    }

    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["1.0", "sms"]) => {
            let services = shared.state.lock().map(|s| s.services.clone()).unwrap_or_default();
            (200, json, serde_json::json!(services).to_string())
        }
        (_, ["1.0", "sms", service, "jobs"]) => {
            let service = service.to_string();
            let known = shared.state.lock().map(|s| s.services.contains(&service)).unwrap_or(false);
            if !known {
                let m = format!("The requested object (serviceName = {service}) does not exist");
                return (404, json, error_json(&m, "RESOURCE_NOT_FOUND", 404));
            }
            match method {
                "GET" => {
                    let ids: Vec<u64> = shared
                        .state
                        .lock()
                        .map(|s| s.jobs.iter().filter(|j| j.service == service).map(|j| j.id).collect())
                        .unwrap_or_default();
                    (200, json, serde_json::json!(ids).to_string())
                }
                "POST" => post_job(shared, &service, body),
                _ => (405, json, error_json("Method not allowed", "METHOD_NOT_ALLOWED", 405)),
            }
        }
        _ => (404, json, error_json("Got an invalid (or empty) URL", "INVALID_URL", 404)),
    }
}

fn post_job(shared: &Shared, service: &str, body: &str) -> (u16, &'static str, String) {
    let json = "application/json; charset=utf-8";
    let value: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return (400, json, error_json("Invalid JSON received", "INVALID_BODY", 400)),
    };
    let receivers: Vec<String> = value
        .get("receivers")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let message = value.get("message").and_then(|m| m.as_str()).unwrap_or("").to_string();
    if receivers.is_empty() || message.is_empty() {
        return (400, json, error_json("Missing receivers or message", "INVALID_BODY", 400));
    }
    let sender = value.get("sender").and_then(|s| s.as_str()).unwrap_or("").to_string();
    let mut state = match shared.state.lock() {
        Ok(s) => s,
        Err(_) => return (500, json, error_json("Internal server error", "INTERNAL_ERROR", 500)),
    };
    let id = state.next_id;
    state.next_id += 1;
    state.jobs.push(SmsJob {
        id,
        service: service.to_string(),
        receivers: receivers.clone(),
        message,
        sender,
        body: value,
    });
    let answer = serde_json::json!({
        "totalCreditsRemoved": receivers.len(),
        "invalidReceivers": [],
        "ids": [id],
        "validReceivers": receivers,
        "tag": null,
    });
    (200, json, answer.to_string())
}

/// Lowercase hex SHA-1 (FIPS 180-4), for checking OVH signatures without crates.
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let (mut a, mut b, mut c, mut d, mut e) = (h[0], h[1], h[2], h[3], h[4]);
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(b);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn sha1_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let long = vec![b'a'; 1000];
        assert_eq!(sha1_hex(&long), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    }
}
