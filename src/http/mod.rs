//! The HTTP layer: socket set-up, the service the front end calls, the
//! request context handlers receive, the one error-to-response mapping, and
//! the access log.
//!
//! rouille 3.6 builds its tiny_http server itself, with no socket timeouts,
//! unbounded request bodies and unbounded request heads. `server` is our
//! own HTTP/1.1 front end, with limits on everything a client sends; it
//! hands a rouille `Request` to the handlers, so they keep rouille's API.

pub mod api;
pub mod auth;
pub mod context;
pub mod ops;
pub mod provisioning;
pub mod router;
pub mod server;
pub mod web;

use crate::app::App;
use crate::error::AppError;
pub use context::{Ctx, HttpResult};
use rouille::Response;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Binds the listening socket with read/write timeouts every accepted
/// connection inherits, so idle or slow clients cannot hold a thread.
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

/// The application as the front end sees it: routing, metrics, access log.
struct AppService(Arc<App>);

impl server::Service for AppService {
    fn handle(&self, request: &rouille::Request) -> (&'static str, Response) {
        dispatch(&self.0, request)
    }

    fn done(&self, method: &str, label: &'static str, status: u16, elapsed: Duration) {
        self.0.metrics.record(label, status, elapsed.as_secs_f64());
        // One line per request; the route label, never the raw path, since
        // paths carry tokens.
        crate::log_line!("{method} {label} {status} {:.1}ms", elapsed.as_secs_f64() * 1000.0);
    }
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
    // HEAD is GET without the body (the HTTP front end drops it).
    let method = if method == "HEAD" { "GET".to_string() } else { method };

    let (label, result) = match router::find(&ctx, &method, &segments) {
        Some(route) => match api_rate_limit(&ctx, raw_path) {
            Ok(()) => (route.label, (route.run)()),
            Err(e) => (route.label, Err(e)),
        },
        None => {
            let mut allowed: Vec<String> = ["GET", "POST", "PUT", "DELETE", "PATCH"]
                .iter()
                .filter(|m| **m != method && router::find(&ctx, m, &segments).is_some())
                .map(|m| m.to_string())
                .collect();
            if allowed.first().is_some_and(|m| m == "GET") {
                allowed.insert(1, "HEAD".into());
            }
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
                crate::log_line!("error: {label}: {detail}");
            }
            if wants_json || matches!(error, AppError::Unauthorized { .. }) {
                error_response(&error, true)
            } else if matches!(error, AppError::Validation(_)) {
                // Laravel's answer to a form it cannot accept: back where
                // the browser came from (api.md §1.2), if that is this site.
                Response::redirect_302(ctx.referer_on_this_site().map_or("/", |(as_sent, _)| as_sent).to_string())
            } else {
                browser_error_page(&ctx, &error)
            }
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

/// An error for a browser outside the portal (a provisioning link opened
/// by hand, an unknown page): the portal's error page, without session.
fn browser_error_page(ctx: &Ctx, error: &AppError) -> Response {
    let lang = crate::views::i18n::Lang::from_accept_language(ctx.header("Accept-Language"));
    web::error_page_for(&crate::views::Page::bare(lang, &ctx.app.config, None), error)
}

/// The one mapping from an error to a response (JSON, or plain text).
pub fn error_response(error: &AppError, json: bool) -> Response {
    let mut response = if json { Response::json(&error.to_json()) } else { Response::text(error.public_message()) }
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
    let limits = server::Limits {
        timeout: Duration::from_secs(config.http_timeout_secs),
        max_body: config.max_body_bytes,
        workers: config.http_workers,
        max_connections: config.http_max_connections,
    };
    let server = server::Server::start(Arc::new(AppService(app.clone())), listener, limits)?;
    crate::log_line!("flexiapi {} listening on http://{} ({})", env!("CARGO_PKG_VERSION"), server.addr, config.app_url);
    let janitor = crate::janitor::start(app.clone(), terminate.clone());
    while !terminate.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    crate::log_line!("stopping: finishing in-flight requests");
    server.stop();
    let _ = janitor.join();
    // Connection threads let go of the app just after the last request is
    // counted out: wait for them (briefly) so the pool closes here, and the
    // last SQLite connection checkpoints and removes the WAL.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while Arc::strong_count(&app) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(app);
    crate::log_line!("stopped");
    Ok(())
}

/// Each connection costs a descriptor; the usual soft limit of 1,024 would
/// be reached before `APP_HTTP_MAX_CONNECTIONS` once the database and
/// outgoing connections are counted. Raise the soft limit to the hard one,
/// as most servers do.
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
