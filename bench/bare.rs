//! The baseline: rouille's hello world, as bare as rouille gets. The
//! benchmark reports each flexiapi endpoint as a ratio to this.

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18099".to_string());
    let workers = std::env::args().nth(2).and_then(|w| w.parse().ok()).unwrap_or(16);
    rouille::start_server_with_pool(addr, Some(workers), move |_request| rouille::Response::text("pong"));
}
