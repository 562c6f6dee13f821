//! Keyed counters of attempts in a fixed window: "at most N failed sign-ins for this
//! account in 15 minutes". In memory, bounded in size.
use crate::config::RateLimit;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; past this, expired windows are swept, and if none has expired
/// the oldest windows are dropped. An attacker spraying keys cannot exhaust memory.
pub const MAX_TRACKED_KEYS: usize = 100_000;

pub struct Limiter {
    limit: RateLimit,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when `key` has used up its attempts.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().expect("limiter lock");
        match windows.get(key) {
            Some(w)
                if now.duration_since(w.started) < self.limit.window
                    && w.count >= self.limit.max =>
            {
                Err(self.limit.window - now.duration_since(w.started))
            }
            _ => Ok(()),
        }
    }

    /// Counts one attempt against `key`.
    pub fn record(&self, key: &str) {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("limiter lock");
        if windows.len() >= MAX_TRACKED_KEYS && !windows.contains_key(key) {
            let window = self.limit.window;
            windows.retain(|_, w| now.duration_since(w.started) < window);
            if windows.len() >= MAX_TRACKED_KEYS {
                let mut starts: Vec<Instant> = windows.values().map(|w| w.started).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                windows.retain(|_, w| w.started > cutoff);
            }
        }
        let entry = windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(entry.started) >= self.limit.window {
            *entry = Window {
                started: now,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// Forgets `key`, e.g. an account's failures after its owner signs in.
    pub fn reset(&self, key: &str) {
        self.windows.lock().expect("limiter lock").remove(key);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.windows.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_after_the_limit_is_refused_until_the_window_ends() {
        let limiter = Limiter::new(RateLimit {
            max: 3,
            window: Duration::from_millis(200),
        });
        for _ in 0..3 {
            assert!(limiter.check("rose").is_ok());
            limiter.record("rose");
        }
        let retry = limiter.check("rose").unwrap_err();
        assert!(retry <= Duration::from_millis(200));
        assert!(limiter.check("ann").is_ok(), "other keys are unaffected");
        std::thread::sleep(Duration::from_millis(250));
        assert!(limiter.check("rose").is_ok(), "the window ended");
        limiter.record("rose");
        limiter.reset("rose");
        assert!(limiter.check("rose").is_ok());
    }

    #[test]
    fn a_key_spray_does_not_grow_memory_without_bound() {
        let limiter = Limiter::new(RateLimit {
            max: 1,
            window: Duration::from_secs(3600),
        });
        for i in 0..(MAX_TRACKED_KEYS + 10) {
            limiter.record(&i.to_string());
        }
        assert!(limiter.tracked() <= MAX_TRACKED_KEYS);
    }
}
