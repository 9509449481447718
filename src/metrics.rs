//! In-process counters for `/metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Latency histogram bucket bounds, seconds.
pub const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    /// (route, status) → count
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    pub emails_sent: AtomicU64,
    pub emails_failed: AtomicU64,
    pub sms_sent: AtomicU64,
    pub sms_failed: AtomicU64,
    pub errors: AtomicU64,
}

impl Metrics {
    pub fn record(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((route.to_string(), status)).or_insert(0) += 1;
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        if status >= 500 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn requests(&self) -> Vec<((String, u16), u64)> {
        self.requests.lock().map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default()
    }

    pub fn latency(&self) -> (Vec<u64>, u64, f64) {
        (
            self.latency_buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            self.latency_count.load(Ordering::Relaxed),
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}
