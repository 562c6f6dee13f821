//! Keyed counters of attempts in a fixed window: "at most N failed sign-ins for this
//! account in 15 minutes". In memory, bounded in size. Keys (email addresses, client
//! addresses) are kept as hashes, which is also how processes sharing a database tell
//! each other about attempts (see [`crate::relay`]).
use crate::config::RateLimit;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The key under which a client address is limited. An IPv6 client is one /64: a single
/// subscriber usually holds a whole /64 and can pick any address in it, so counting
/// addresses one by one would give them 2^64 fresh budgets. An IPv4-mapped IPv6 address
/// counts as the IPv4 address it carries.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

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
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

/// Which limiter, by the name processes use for it in their notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    /// Failed password checks for an account from clients it does not trust.
    LoginPerAccount,
    /// Failed password checks for an account from one browser it trusts (see
    /// [`crate::credentials`]).
    LoginPerDevice,
    LoginPerAddress,
    SignupPerAddress,
    PairingPerAddress,
    WrongPairingCodesPerAccount,
    ToyAuthFailuresPerAddress,
    /// Links to choose a new password asked for one email address.
    PasswordResetsPerAccount,
    /// Links to choose a new password asked for from one client address.
    PasswordResetsPerAddress,
}

impl LimitName {
    const ALL: [LimitName; 9] = [
        LimitName::LoginPerAccount,
        LimitName::LoginPerDevice,
        LimitName::LoginPerAddress,
        LimitName::SignupPerAddress,
        LimitName::PairingPerAddress,
        LimitName::WrongPairingCodesPerAccount,
        LimitName::ToyAuthFailuresPerAddress,
        LimitName::PasswordResetsPerAccount,
        LimitName::PasswordResetsPerAddress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::LoginPerAccount => "login-account",
            LimitName::LoginPerDevice => "login-device",
            LimitName::LoginPerAddress => "login-address",
            LimitName::SignupPerAddress => "signup-address",
            LimitName::PairingPerAddress => "pairing-address",
            LimitName::WrongPairingCodesPerAccount => "pairing-codes-account",
            LimitName::ToyAuthFailuresPerAddress => "toy-auth-address",
            LimitName::PasswordResetsPerAccount => "password-resets-account",
            LimitName::PasswordResetsPerAddress => "password-resets-address",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == text)
    }
}

/// Keys tracked at most. Past this, expired windows are swept first, then the oldest
/// half of the windows that are not throttled; a throttled window is never dropped early,
/// so a spray of new keys cannot wipe an account's failures. When every tracked key is
/// throttled, a new key is refused as if it were throttled too, until the oldest window
/// ends: failing closed for keys nobody has tried yet is the lesser harm, and reaching it
/// takes `MAX_TRACKED_KEYS` keys each driven to its limit within one window.
pub const MAX_TRACKED_KEYS: usize = 100_000;

pub struct Limiter {
    limit: RateLimit,
    windows: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    by_key: HashMap<KeyHash, Window>,
    /// Set when the map is full of throttled windows: no new key fits before then, so
    /// the map is not swept again for every request until it does.
    full_until: Option<Instant>,
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
            windows: Mutex::new(Windows::default()),
        }
    }

    fn throttled(&self, w: &Window, now: Instant) -> bool {
        now.duration_since(w.started) < self.limit.window && w.count >= self.limit.max
    }

    fn retry_after(&self, w: &Window, now: Instant) -> Duration {
        self.limit
            .window
            .saturating_sub(now.duration_since(w.started))
    }

    /// Makes room for one more key; `Err(retry_after)` when every tracked key is
    /// throttled and the new one cannot be tracked.
    fn make_room(&self, windows: &mut Windows, now: Instant) -> Result<(), Duration> {
        if windows.by_key.len() < MAX_TRACKED_KEYS {
            return Ok(());
        }
        if let Some(until) = windows.full_until {
            if now < until {
                return Err(until - now);
            }
        }
        let window = self.limit.window;
        windows
            .by_key
            .retain(|_, w| now.duration_since(w.started) < window);
        if windows.by_key.len() >= MAX_TRACKED_KEYS {
            let mut starts: Vec<Instant> = windows
                .by_key
                .values()
                .filter(|w| !self.throttled(w, now))
                .map(|w| w.started)
                .collect();
            if !starts.is_empty() {
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                windows
                    .by_key
                    .retain(|_, w| self.throttled(w, now) || w.started > cutoff);
            }
        }
        if windows.by_key.len() >= MAX_TRACKED_KEYS {
            let retry = windows
                .by_key
                .values()
                .map(|w| self.retry_after(w, now))
                .min()
                .unwrap_or(self.limit.window)
                .max(Duration::from_secs(1));
            windows.full_until = Some(now + retry);
            return Err(retry);
        }
        windows.full_until = None;
        Ok(())
    }

    /// `Err(retry_after)` when `key` has used up its attempts, or is new and cannot be
    /// tracked (see [`MAX_TRACKED_KEYS`]).
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("limiter lock");
        match windows.by_key.get(&KeyHash::of(key)) {
            Some(w) if self.throttled(w, now) => Err(self.retry_after(w, now)),
            Some(_) => Ok(()),
            None => self.make_room(&mut windows, now),
        }
    }

    /// Checks and counts one attempt against `key` at once, so that simultaneous
    /// attempts cannot all pass the check before any is counted. `Err(retry_after)`,
    /// counting nothing, when `key` has used up its attempts. An attempt that turns out
    /// not to be a failure is handed back with [`Limiter::refund`].
    pub fn reserve(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let hash = KeyHash::of(key);
        let mut windows = self.windows.lock().expect("limiter lock");
        if !windows.by_key.contains_key(&hash) {
            self.make_room(&mut windows, now)?;
        }
        let entry = windows.by_key.entry(hash).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(entry.started) >= self.limit.window {
            *entry = Window {
                started: now,
                count: 0,
            };
        }
        if entry.count >= self.limit.max {
            return Err(self.retry_after(entry, now));
        }
        entry.count += 1;
        Ok(())
    }

    /// Hands back one attempt [`Limiter::reserve`] counted (it succeeded).
    pub fn refund(&self, key: &str) {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("limiter lock");
        if let Some(w) = windows.by_key.get_mut(&KeyHash::of(key)) {
            if now.duration_since(w.started) < self.limit.window {
                w.count = w.count.saturating_sub(1);
            }
        }
    }

    /// Attempts counted against `key` in its current window.
    pub fn count(&self, key: &str) -> u32 {
        let now = Instant::now();
        let windows = self.windows.lock().expect("limiter lock");
        windows
            .by_key
            .get(&KeyHash::of(key))
            .filter(|w| now.duration_since(w.started) < self.limit.window)
            .map_or(0, |w| w.count)
    }

    /// Counts one attempt against `key`.
    pub fn record(&self, key: &str) {
        self.record_hashed(KeyHash::of(key));
    }

    /// Counts one attempt against the key with this hash (one another process counted).
    /// A new key that cannot be tracked is not counted here; [`Limiter::check`] and
    /// [`Limiter::reserve`] refuse it anyway while that lasts.
    pub fn record_hashed(&self, key: KeyHash) {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("limiter lock");
        if !windows.by_key.contains_key(&key) && self.make_room(&mut windows, now).is_err() {
            return;
        }
        let entry = windows.by_key.entry(key).or_insert(Window {
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
        let mut windows = self.windows.lock().expect("limiter lock");
        if windows.by_key.remove(&key).is_some() {
            windows.full_until = None;
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.windows.lock().unwrap().by_key.len()
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

    fn limiter(max: u32, window: Duration) -> Limiter {
        Limiter::new(RateLimit { max, window })
    }

    #[test]
    fn simultaneous_reservations_never_exceed_the_limit_and_refunds_hand_attempts_back() {
        let limiter = std::sync::Arc::new(limiter(10, Duration::from_secs(3600)));
        let granted: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let limiter = limiter.clone();
                    scope.spawn(move || (0..10).filter(|_| limiter.reserve("rose").is_ok()).count())
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert_eq!(
            granted, 10,
            "80 simultaneous attempts against a limit of 10"
        );
        assert_eq!(
            limiter.count("rose"),
            10,
            "a refused attempt counts nothing"
        );
        limiter.refund("rose");
        assert_eq!(limiter.count("rose"), 9);
        assert!(
            limiter.reserve("rose").is_ok(),
            "the refunded attempt is free again"
        );
        assert!(limiter.reserve("rose").is_err());
    }

    #[test]
    fn a_key_spray_never_evicts_a_throttled_key() {
        let limiter = limiter(2, Duration::from_secs(3600));
        limiter.reserve("victim").unwrap();
        limiter.reserve("victim").unwrap();
        assert!(limiter.check("victim").is_err());
        // Each sprayed key is below its limit, so it may be dropped; the victim may not.
        for i in 0..(MAX_TRACKED_KEYS + 10) {
            limiter.reserve(&i.to_string()).unwrap();
        }
        assert!(limiter.tracked() <= MAX_TRACKED_KEYS);
        assert!(
            limiter.reserve("victim").is_err(),
            "the spray did not reset the victim's failures"
        );
    }

    #[test]
    fn a_new_key_is_refused_when_every_tracked_key_is_throttled() {
        let limiter = limiter(1, Duration::from_secs(3600));
        for i in 0..MAX_TRACKED_KEYS {
            limiter.reserve(&i.to_string()).unwrap();
        }
        let retry = limiter.reserve("newcomer").unwrap_err();
        assert!(retry > Duration::ZERO && retry <= Duration::from_secs(3600));
        assert!(limiter.check("newcomer").is_err(), "checks fail closed too");
        limiter.record("newcomer");
        assert_eq!(limiter.count("newcomer"), 0, "it cannot be tracked");
        assert!(limiter.reserve("0").is_err(), "tracked keys stay throttled");
        // Once a key is forgotten there is room again.
        limiter.reset("0");
        assert!(limiter.reserve("newcomer").is_ok());
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1234:5678:9abc".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b), "one /64 is one client");
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), address_key(v4));
        assert_eq!(address_key(v4), "192.0.2.7");
        assert_ne!(address_key("192.0.2.8".parse().unwrap()), address_key(v4));
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
