//! In-process counters for `/metrics` (Prometheus text format).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

/// Latency histogram bucket bounds, seconds.
pub const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct Metrics {
    /// (route pattern, status) → count. Every worker counts every request:
    /// a known pair is counted under the shared read lock, only a new pair
    /// takes the write lock (a mutex here was where workers queued).
    requests: RwLock<HashMap<(&'static str, u16), AtomicU64>>,
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
    pub fn record(&self, route: &'static str, status: u16, seconds: f64) {
        let counted = match self.requests.read().unwrap_or_else(PoisonError::into_inner).get(&(route, status)) {
            Some(count) => {
                count.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        };
        if !counted {
            let mut map = self.requests.write().unwrap_or_else(PoisonError::into_inner);
            map.entry((route, status)).or_default().fetch_add(1, Ordering::Relaxed);
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

    /// The counts, sorted by route and status.
    pub fn requests(&self) -> Vec<((&'static str, u16), u64)> {
        let map = self.requests.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = map.iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect();
        out.sort_unstable();
        out
    }

    pub fn latency(&self) -> (Vec<u64>, u64, f64) {
        (
            self.latency_buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            self.latency_count.load(Ordering::Relaxed),
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}
