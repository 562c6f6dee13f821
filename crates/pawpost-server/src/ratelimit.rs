//! Keyed counters of attempts in a fixed window: "at most N failed sign-ins for this
//! account in 15 minutes". In memory, bounded in size. Keys (email addresses, client
//! addresses) are kept as hashes, which is also how processes sharing a database tell
//! each other about attempts (see [`crate::relay`]).
use crate::config::RateLimit;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A limiter's key as it is kept and sent: the first 16 bytes of its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 16]);

impl KeyHash {
    pub fn of(key: &str) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(bytes)
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }
}

/// Which limiter, by the name processes use for it in their notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    LoginPerAccount,
    LoginPerAddress,
    SignupPerAddress,
    PairingPerAddress,
    WrongPairingCodesPerAccount,
}

impl LimitName {
    const ALL: [LimitName; 5] = [
        LimitName::LoginPerAccount,
        LimitName::LoginPerAddress,
        LimitName::SignupPerAddress,
        LimitName::PairingPerAddress,
        LimitName::WrongPairingCodesPerAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::LoginPerAccount => "login-account",
            LimitName::LoginPerAddress => "login-address",
            LimitName::SignupPerAddress => "signup-address",
            LimitName::PairingPerAddress => "pairing-address",
            LimitName::WrongPairingCodesPerAccount => "pairing-codes-account",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == text)
    }
}

/// Keys tracked at most; past this, expired windows are swept, and if none has expired
/// the oldest windows are dropped. An attacker spraying keys cannot exhaust memory.
pub const MAX_TRACKED_KEYS: usize = 100_000;

pub struct Limiter {
    limit: RateLimit,
    windows: Mutex<HashMap<KeyHash, Window>>,
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
        match windows.get(&KeyHash::of(key)) {
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
        self.record_hashed(KeyHash::of(key));
    }

    /// Counts one attempt against the key with this hash (one another process counted).
    pub fn record_hashed(&self, key: KeyHash) {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("limiter lock");
        if windows.len() >= MAX_TRACKED_KEYS && !windows.contains_key(&key) {
            let window = self.limit.window;
            windows.retain(|_, w| now.duration_since(w.started) < window);
            if windows.len() >= MAX_TRACKED_KEYS {
                let mut starts: Vec<Instant> = windows.values().map(|w| w.started).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                windows.retain(|_, w| w.started > cutoff);
            }
        }
        let entry = windows.entry(key).or_insert(Window {
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
        self.reset_hashed(KeyHash::of(key));
    }

    /// Forgets the key with this hash.
    pub fn reset_hashed(&self, key: KeyHash) {
        self.windows.lock().expect("limiter lock").remove(&key);
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
