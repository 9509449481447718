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
pub mod router;

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
    tiny: Arc<tiny_http::Server>,
}

impl Server {
    /// Starts `workers` threads answering on `listener`.
    pub fn start(app: Arc<App>, listener: TcpListener, workers: usize) -> Result<Server, String> {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let tiny = Arc::new(tiny_http::Server::from_listener(listener, None).map_err(|e| e.to_string())?);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers.max(1))
            .map(|i| {
                let (app, tiny, stop) = (app.clone(), tiny.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || worker(&app, &tiny, &stop))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Server { addr, stop, workers, tiny })
    }

    /// Graceful stop: no new requests are taken, in-flight ones finish.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tiny.unblock();
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn worker(app: &App, tiny: &tiny_http::Server, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match tiny.recv_timeout(Duration::from_millis(250)) {
            Ok(Some(request)) => answer(app, request),
            Ok(None) => {}
            Err(e) => {
                if !stop.load(Ordering::SeqCst) {
                    eprintln!("http: accept error: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// Reads the body up to `limit` bytes; `Err(())` when it is larger.
fn read_body(request: &mut tiny_http::Request, limit: usize) -> Result<Vec<u8>, ()> {
    if request.body_length().is_some_and(|n| n > limit) {
        return Err(());
    }
    let mut body = Vec::new();
    match request.as_reader().take(limit as u64 + 1).read_to_end(&mut body) {
        Ok(_) if body.len() > limit => Err(()),
        Ok(_) => Ok(body),
        // A client that stops sending mid-body: answer with what we have;
        // the handler will see a truncated body and refuse it.
        Err(_) => Ok(body),
    }
}

fn answer(app: &App, mut request: tiny_http::Request) {
    let started = Instant::now();
    let remote = request.remote_addr().copied().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let headers: Vec<(String, String)> =
        request.headers().iter().map(|h| (h.field.as_str().as_str().to_string(), h.value.as_str().to_string())).collect();

    let (label, response) = match read_body(&mut request, app.config.max_body_bytes) {
        Ok(body) => {
            let rouille_request = rouille::Request::fake_http_from(remote, method.clone(), url.clone(), headers, body);
            dispatch(app, &rouille_request)
        }
        Err(()) => ("(body too large)", error_response(&AppError::PayloadTooLarge, true)),
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
