//! The HTTP server: socket set-up, the worker pool, request limits, the
//! request context handlers receive, the one error-to-response mapping, and
//! the access log.
//!
//! rouille 3.6 builds its tiny_http server itself, with no socket timeouts
//! and unbounded request bodies. We build the tiny_http server over a
//! listener we configure (accepted sockets inherit SO_RCVTIMEO/SO_SNDTIMEO
//! from it on Linux), read each body up to the configured limit, and hand a
//! rouille `Request` to the handlers, so they keep rouille's API.

pub mod api;
pub mod auth;
pub mod context;
pub mod ops;
pub mod provisioning;
pub mod router;
pub mod web;

use crate::app::App;
use crate::error::AppError;
pub use context::{Ctx, HttpResult};
use rouille::Response;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Binds the listening socket with read/write timeouts every accepted
/// connection inherits, so idle or slow clients cannot hold a worker.
pub fn bind(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// A running server: its address, and how to stop it.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
    accept: Arc<Acceptor>,
}

/// The tiny_http server accepting connections, renewed when its accept
/// thread ends.
///
/// tiny_http's accept thread stops for good on the first `accept()` error,
/// and on Linux the listener's SO_RCVTIMEO (which accepted sockets inherit,
/// the reason it is set) also bounds `accept()` itself: with no new
/// connection for `APP_HTTP_TIMEOUT_SECONDS`, `accept()` fails with EAGAIN.
/// Without renewal the server would stop accepting after its first quiet
/// moment (or its first EMFILE). We keep a clone of the listening socket, so
/// it stays open and connections wait in the backlog, and start a new
/// tiny_http server on it. The previous one is kept (and drained) for a
/// while: its open keep-alive connections still deliver requests to it.
struct Acceptor {
    listener: TcpListener,
    state: std::sync::Mutex<Generations>,
    /// How long a replaced server is still drained.
    grace: Duration,
}

/// How long connections may wait in the listen queue before the accept
/// thread is deemed dead.
const STUCK_ACCEPT: Duration = Duration::from_secs(5);

struct Generations {
    current: Arc<tiny_http::Server>,
    /// `current`'s accept thread has ended and a renewal failed (EMFILE):
    /// retry.
    dead: bool,
    /// Since when connections have been waiting in the listen queue, by
    /// the last checks; the accept thread can also die without a word
    /// (tiny_http panics when it cannot duplicate an accepted socket).
    pending_since: Option<Instant>,
    last_check: Instant,
    retired: Vec<(Arc<tiny_http::Server>, Instant)>,
}

impl Acceptor {
    fn new(listener: TcpListener, grace: Duration) -> Result<Acceptor, String> {
        let current = Self::tiny(&listener)?;
        let state = std::sync::Mutex::new(Generations { current, dead: false, pending_since: None, last_check: Instant::now(), retired: Vec::new() });
        Ok(Acceptor { listener, state, grace })
    }

    fn tiny(listener: &TcpListener) -> Result<Arc<tiny_http::Server>, String> {
        let clone = listener.try_clone().map_err(|e| e.to_string())?;
        Ok(Arc::new(tiny_http::Server::from_listener(clone, None).map_err(|e| e.to_string())?))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current server, whether it needs renewal, and the retired ones
    /// still drained.
    fn servers(&self) -> (Arc<tiny_http::Server>, bool, Vec<Arc<tiny_http::Server>>) {
        let mut state = self.lock();
        let grace = self.grace;
        state.retired.retain(|(_, since)| since.elapsed() < grace);
        if state.last_check.elapsed() >= Duration::from_millis(500) {
            state.last_check = Instant::now();
            if self.connections_waiting() {
                let since = *state.pending_since.get_or_insert_with(Instant::now);
                // A live accept thread takes a connection in microseconds.
                if since.elapsed() >= STUCK_ACCEPT && !state.dead {
                    eprintln!("http: connections are not being accepted: restarting the acceptor");
                    state.dead = true;
                    state.pending_since = None;
                }
            } else {
                state.pending_since = None;
            }
        }
        (state.current.clone(), state.dead, state.retired.iter().map(|(s, _)| s.clone()).collect())
    }

    /// Are connections waiting in the listen queue?
    fn connections_waiting(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut fd = libc::pollfd { fd: self.listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no wait.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        ready > 0 && fd.revents & libc::POLLIN != 0
    }

    /// `failed`'s accept thread has ended: start a new server, unless
    /// another worker already did.
    fn renew(&self, failed: &Arc<tiny_http::Server>) {
        let mut state = self.lock();
        if !Arc::ptr_eq(&state.current, failed) {
            return;
        }
        state.pending_since = None;
        match Self::tiny(&self.listener) {
            Ok(fresh) => {
                let old = std::mem::replace(&mut state.current, fresh);
                state.retired.push((old, Instant::now()));
                state.dead = false;
            }
            Err(e) => {
                state.dead = true;
                drop(state);
                eprintln!("http: cannot restart the acceptor: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    fn unblock(&self) {
        let state = self.lock();
        state.current.unblock();
        for (server, _) in &state.retired {
            server.unblock();
        }
    }
}

impl Server {
    /// Starts `workers` threads answering on `listener`.
    pub fn start(app: Arc<App>, listener: TcpListener, workers: usize) -> Result<Server, String> {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Long enough for a keep-alive connection of the replaced server to
        // time out (its reads are bounded by the socket timeout).
        let grace = Duration::from_secs(app.config.http_timeout_secs.saturating_mul(2).saturating_add(5));
        let accept = Arc::new(Acceptor::new(listener, grace)?);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers.max(1))
            .map(|i| {
                let (app, accept, stop) = (app.clone(), accept.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&app, &accept, &stop))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Server { addr, stop, workers, accept })
    }

    /// Graceful stop: no new requests are taken, in-flight ones finish.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.accept.unblock();
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn worker(app: &App, accept: &Acceptor, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let (current, dead, retired) = accept.servers();
        for old in &retired {
            while let Ok(Some(request)) = old.try_recv() {
                answer(app, request);
            }
        }
        if dead {
            accept.renew(&current);
        }
        match current.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(request)) => answer(app, request),
            Ok(None) => {}
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                // An accept timeout (EAGAIN) is the normal quiet case.
                if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
                    eprintln!("http: accept error: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                accept.renew(&current);
            }
        }
    }
}

/// Why a body was not read.
enum BodyError {
    /// Larger than the limit: 413.
    TooLarge,
    /// The client stopped sending, or sent too slowly: 408.
    TimedOut,
}

/// Reads the body up to `limit` bytes, within `deadline` overall: each read
/// is bounded by the socket timeout, but a client dripping a byte at a time
/// would otherwise hold a worker of the fixed pool for as long as it likes.
fn read_body(request: &mut tiny_http::Request, limit: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    if request.body_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    let mut reader = request.as_reader().take(limit as u64 + 1);
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(BodyError::TimedOut),
        }
        if body.len() > limit {
            return Err(BodyError::TooLarge);
        }
        if Instant::now() > deadline {
            return Err(BodyError::TimedOut);
        }
    }
    Ok(body)
}

fn answer(app: &App, mut request: tiny_http::Request) {
    let started = Instant::now();
    let remote = request.remote_addr().copied().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let headers: Vec<(String, String)> =
        request.headers().iter().map(|h| (h.field.as_str().as_str().to_string(), h.value.as_str().to_string())).collect();

    let deadline = started + Duration::from_secs(app.config.http_timeout_secs);
    let (label, response) = match read_body(&mut request, app.config.max_body_bytes, deadline) {
        Ok(body) => {
            let rouille_request = rouille::Request::fake_http_from(remote, method.clone(), url.clone(), headers, body);
            dispatch(app, &rouille_request)
        }
        Err(BodyError::TooLarge) => ("(body too large)", error_response(&AppError::PayloadTooLarge, true)),
        Err(BodyError::TimedOut) => (
            "(body timed out)",
            Response::json(&serde_json::json!({"message": "The request body was not received in time."}))
                .with_status_code(408)
                .with_additional_header("Connection", "close"),
        ),
    };
    let status = response.status_code;
    let (reader, size) = response.data.into_reader_and_size();
    let mut out = tiny_http::Response::new(tiny_http::StatusCode(status), Vec::new(), reader, size, None);
    for (key, value) in response.headers {
        if key.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        // Values never carry CR/LF: tiny_http refuses such headers.
        if let Ok(header) = tiny_http::Header::from_bytes(key.as_bytes(), value.as_bytes()) {
            out.add_header(header);
        }
    }
    let _ = request.respond(out);
    let elapsed = started.elapsed();
    app.metrics.record(label, status, elapsed.as_secs_f64());
    // One line per request; the route label, never the raw path, since paths
    // carry tokens.
    eprintln!("{method} {label} {status} {:.1}ms", elapsed.as_secs_f64() * 1000.0);
}

/// Routes a request and maps its outcome to a response. Returns the route
/// label for the log and the metrics.
pub fn dispatch(app: &App, request: &rouille::Request) -> (&'static str, Response) {
    let ctx = Ctx::new(app, request);
    let raw_path = request.raw_url().split('?').next().unwrap_or("");
    let wants_json = raw_path == "/api" || raw_path.starts_with("/api/") || ctx.wants_json();
    // Split before decoding, so an encoded `/` stays inside its segment.
    let segments: Vec<String> = raw_path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    let method = request.method().to_ascii_uppercase();

    let (label, result) = match router::find(&ctx, &method, &segments) {
        Some(route) => match api_rate_limit(&ctx, raw_path) {
            Ok(()) => (route.label, (route.run)()),
            Err(e) => (route.label, Err(e)),
        },
        None => {
            let allowed: Vec<String> = ["GET", "POST", "PUT", "DELETE", "PATCH"]
                .iter()
                .filter(|m| **m != method && router::find(&ctx, m, &segments).is_some())
                .map(|m| m.to_string())
                .collect();
            if allowed.is_empty() {
                ("(not found)", Err(AppError::NotFound(String::new())))
            } else {
                ("(method not allowed)", Err(AppError::MethodNotAllowed { method: method.clone(), allowed }))
            }
        }
    };
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            if let AppError::Internal(detail) = &error {
                eprintln!("error: {label}: {detail}");
            }
            error_response(&error, wants_json)
        }
    };
    (label, ctx.finish(response))
}

/// `APP_API_RATE_LIMIT_PER_MINUTE`: requests per client IP and minute on `/api`.
fn api_rate_limit(ctx: &Ctx, path: &str) -> Result<(), AppError> {
    let per_minute = ctx.app.config.api_rate_limit_per_minute;
    if per_minute <= 0 || !(path == "/api" || path.starts_with("/api/")) {
        return Ok(());
    }
    let limit = crate::services::ratelimit::Limit { max: per_minute, window_seconds: 60 };
    crate::services::ratelimit::hit(ctx.app, &format!("api:ip:{}", ctx.client_ip()), limit)
}

/// The one mapping from an error to a response.
pub fn error_response(error: &AppError, json: bool) -> Response {
    let mut response = if json {
        Response::json(&error.to_json())
    } else {
        Response::text(error.public_message())
    }
    .with_status_code(error.status());
    match error {
        AppError::Unauthorized { challenges, .. } => {
            for challenge in challenges {
                response = response.with_additional_header("WWW-Authenticate", challenge.clone());
            }
        }
        AppError::MethodNotAllowed { allowed, .. } => {
            response = response.with_additional_header("Allow", allowed.join(", "));
        }
        _ => {}
    }
    response
}

/// Runs the server until SIGTERM/SIGINT, with the janitor beside it.
pub fn serve(app: Arc<App>) -> Result<(), String> {
    let config = &app.config;
    raise_open_files_limit();
    let listener = bind(config.listen, Duration::from_secs(config.http_timeout_secs))
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let terminate = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, terminate.clone()).map_err(|e| format!("cannot handle signals: {e}"))?;
    }
    let server = Server::start(app.clone(), listener, config.http_workers)?;
    eprintln!("flexiapi {} listening on http://{} ({})", env!("CARGO_PKG_VERSION"), server.addr, config.app_url);
    let janitor = crate::janitor::start(app.clone(), terminate.clone());
    while !terminate.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopping: finishing in-flight requests");
    server.stop();
    let _ = janitor.join();
    eprintln!("stopped");
    Ok(())
}

/// Each connection costs a descriptor (and a tiny_http thread); the usual
/// soft limit of 1,024 is reached by a thousand idle clients, and tiny_http
/// then stops accepting until the acceptor is renewed. Raise the soft limit
/// to the hard one, as most servers do.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
