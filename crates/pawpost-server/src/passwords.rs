//! Password hashing with Argon2id (m=19 MiB, t=2, p=1, OWASP's first choice) on a
//! bounded pool off the async runtime: a flood of sign-ins queues here, and requests
//! that hash nothing are never held up by it. Checks are shared out by key (an account,
//! say): one key has at most [`MAX_CHECKS_PER_KEY`] checks queued or running, so that no
//! single account can fill the queue and starve everyone else's sign-ins.
use crate::ratelimit::KeyHash;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Argon2id memory cost in KiB.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Password checks one key may have queued or running at once; more are refused at once.
/// Two lets a person retry while a first attempt is still being checked.
pub const MAX_CHECKS_PER_KEY: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks are waiting")]
    Busy,
    #[error("this key already has as many password checks running as it may")]
    BusyForKey,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    workers: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    /// Checks queued or running, per key.
    checking: Arc<Mutex<HashMap<KeyHash, usize>>>,
    /// A hash of a random password, verified when the email is unknown so that an
    /// unknown address costs the same time as a wrong password.
    dummy: Arc<String>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

impl PasswordHasher {
    pub fn new(workers: usize, queue: usize) -> Result<Self, HashError> {
        let random: [u8; 32] = rand::random();
        let dummy = hash_now(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            random,
        ))?;
        Ok(Self {
            workers: Arc::new(Semaphore::new(workers.max(1))),
            queue: Arc::new(Semaphore::new(queue.max(1) + workers.max(1))),
            checking: Arc::default(),
            dummy: Arc::new(dummy),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _place = self.queue.try_acquire().map_err(|_| HashError::Busy)?;
        let _worker = self.workers.acquire().await.map_err(|_| HashError::Busy)?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_now(&password)).await?
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no
    /// account, taking the same time either way. `key` names whose check it is; a key
    /// with [`MAX_CHECKS_PER_KEY`] checks already under way gets `BusyForKey`.
    pub async fn verify(
        &self,
        key: &str,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let _turn = KeyTurn::take(&self.checking, KeyHash::of(key))?;
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| (*self.dummy).clone());
        let matched = self
            .run(move || {
                PasswordHash::new(&phc)
                    .map(|parsed| {
                        argon2()
                            .verify_password(password.as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matched)
    }
}

/// One check under way for a key; ends when dropped.
struct KeyTurn {
    checking: Arc<Mutex<HashMap<KeyHash, usize>>>,
    key: KeyHash,
}

impl KeyTurn {
    fn take(
        checking: &Arc<Mutex<HashMap<KeyHash, usize>>>,
        key: KeyHash,
    ) -> Result<Self, HashError> {
        let mut map = checking.lock().expect("checking lock");
        let count = map.entry(key).or_insert(0);
        if *count >= MAX_CHECKS_PER_KEY {
            return Err(HashError::BusyForKey);
        }
        *count += 1;
        Ok(Self {
            checking: checking.clone(),
            key,
        })
    }
}

impl Drop for KeyTurn {
    fn drop(&mut self) {
        let mut map = self.checking.lock().expect("checking lock");
        if let Some(count) = map.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = PasswordHasher::new(1, 4).unwrap();
        let phc = hasher.hash("violet kettle harbour".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher
            .verify("rose", "violet kettle harbour".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("rose", "violet kettle harbor".into(), Some(phc))
            .await
            .unwrap());
        assert!(!hasher.verify("ann", "anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn one_key_cannot_take_the_whole_queue() {
        let hasher = PasswordHasher::new(1, 16).unwrap();
        // The only worker is busy, so every check stays queued.
        let worker = hasher.workers.clone().try_acquire_owned().unwrap();
        let jobs: Vec<_> = (0..8)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.verify("rose", format!("guess {i}"), None).await })
            })
            .collect();
        while jobs.iter().filter(|j| j.is_finished()).count() < 8 - MAX_CHECKS_PER_KEY {
            tokio::task::yield_now().await;
        }
        let other = hasher.clone();
        let ann = tokio::spawn(async move { other.verify("ann", "hers".into(), None).await });
        drop(worker);
        let mut turned_away = 0;
        for job in jobs {
            match job.await.unwrap() {
                Err(HashError::BusyForKey) => turned_away += 1,
                result => assert!(!result.unwrap()),
            }
        }
        assert_eq!(turned_away, 8 - MAX_CHECKS_PER_KEY);
        assert!(!ann.await.unwrap().unwrap(), "another key was checked");
        assert!(hasher.checking.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_instead_of_waiting_forever() {
        let hasher = PasswordHasher::new(1, 1).unwrap();
        let jobs: Vec<_> = (0..8)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash(format!("password number {i}")).await })
            })
            .collect();
        let mut busy = 0;
        for job in jobs {
            if matches!(job.await.unwrap(), Err(HashError::Busy)) {
                busy += 1;
            }
        }
        assert!(
            busy > 0,
            "some of 8 simultaneous hashes should find the queue of 2 full"
        );
    }
}
