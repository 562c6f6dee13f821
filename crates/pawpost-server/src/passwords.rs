//! Password hashing with Argon2id (m=19 MiB, t=2, p=1, OWASP's first choice) on a
//! bounded pool of threads of its own, off the async runtime: a flood of sign-ins queues
//! here, and requests that hash nothing are never held up by it. Checks are shared out
//! by key (an account, say): one key has at most [`MAX_CHECKS_PER_KEY`] checks queued or
//! running, so that no single account can fill the queue and starve everyone else's
//! sign-ins. Up to [`MAX_WAITING_PER_KEY`] more wait for their key's turn, holding no
//! place in the queue, instead of being refused at once: clients that retry a refusal
//! at once (a flood of guesses at one account) would otherwise cost the server a request
//! each, as fast as it answers, beside the deliveries.
//!
//! The hashing threads run at the lowest CPU priority ([`HASH_THREAD_NICE`]): when the
//! cores are busy, every other thread of the process (deliveries, toys connecting, the
//! store's) runs first and a hash takes the time that is left. A storm of wrong
//! passwords then slows the sign-ins, not the messages.
use crate::ratelimit::KeyHash;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::{oneshot, Semaphore};

/// Argon2id memory cost in KiB.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Password checks one key may have queued or running at once; more are refused at once.
/// Two lets a person retry while a first attempt is still being checked.
pub const MAX_CHECKS_PER_KEY: usize = 2;
/// Password checks of one key that may wait for a turn beyond [`MAX_CHECKS_PER_KEY`];
/// more are refused at once (`BusyForKey`). Each waiting check is one parked request.
pub const MAX_WAITING_PER_KEY: usize = 32;
/// The nice value of the threads that hash passwords: 19, the lowest priority Linux
/// gives a thread outside `SCHED_IDLE` (a weight of 15 against 1,024 for the rest of the
/// process), so that hashing takes only the CPU time nothing else wants.
pub const HASH_THREAD_NICE: i32 = 19;

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
    /// The hashing threads' queue; they end when the last clone is dropped.
    pool: Arc<mpsc::Sender<Job>>,
    workers: Arc<Semaphore>,
    queue: Arc<Semaphore>,
    /// Checks queued, running or waiting for their key's turn, per key.
    checking: Arc<Mutex<HashMap<KeyHash, KeyChecks>>>,
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

/// One hash to compute on a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Starts `count` hashing threads at [`HASH_THREAD_NICE`], taking jobs from one queue.
fn start_pool(count: usize) -> Result<mpsc::Sender<Job>, HashError> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..count {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("pawpost-hash-{n}"))
            .spawn(move || {
                lower_priority();
                loop {
                    // The lock is held only while waiting for the next job.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => break,
                    };
                    match job {
                        // A hash that panics loses its answer, not the thread.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => break,
                    }
                }
            })
            .map_err(|e| {
                HashError::Failed(format!(
                    "could not start a password hashing thread ({e}); lower --hash-workers"
                ))
            })?;
    }
    Ok(jobs)
}

/// Gives the calling thread the lowest priority. On Linux the nice value belongs to each
/// thread, and `setpriority(PRIO_PROCESS, 0, ...)` sets the calling thread's alone
/// (setpriority(2), "Bugs"); elsewhere it would lower the whole process, so it is not
/// done. A thread that cannot lower it still hashes, at the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, HASH_THREAD_NICE) {
        tracing::warn!(%error, "a password hashing thread keeps the normal CPU priority: sign-in storms may slow deliveries");
    }
}

impl PasswordHasher {
    pub fn new(workers: usize, queue: usize) -> Result<Self, HashError> {
        let random: [u8; 32] = rand::random();
        let dummy = hash_now(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            random,
        ))?;
        Ok(Self {
            pool: Arc::new(start_pool(workers.max(1))?),
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
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(job());
        });
        self.pool
            .send(job)
            .map_err(|_| HashError::Failed("the hashing threads have stopped".into()))?;
        result
            .await
            .map_err(|_| HashError::Failed("a password hashing thread stopped mid-hash".into()))
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_now(&password)).await?
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no
    /// account, taking the same time either way. `key` names whose check it is; a key
    /// with [`MAX_CHECKS_PER_KEY`] checks under way waits for one of them to end, and
    /// one with [`MAX_WAITING_PER_KEY`] checks waiting as well gets `BusyForKey`.
    pub async fn verify(
        &self,
        key: &str,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let _turn = KeyTurn::take(&self.checking, KeyHash::of(key))?
            .wait()
            .await?;
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

/// A key's checks: those running or waiting, and the turns among them.
struct KeyChecks {
    /// Checks under way or waiting for a turn.
    count: usize,
    /// [`MAX_CHECKS_PER_KEY`] turns.
    turns: Arc<Semaphore>,
}

/// One check of a key, under way or waiting for its turn; it ends when dropped.
struct KeyTurn {
    checking: Arc<Mutex<HashMap<KeyHash, KeyChecks>>>,
    key: KeyHash,
    turns: Arc<Semaphore>,
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl KeyTurn {
    fn take(
        checking: &Arc<Mutex<HashMap<KeyHash, KeyChecks>>>,
        key: KeyHash,
    ) -> Result<Self, HashError> {
        let mut map = checking.lock().expect("checking lock");
        let checks = map.entry(key).or_insert_with(|| KeyChecks {
            count: 0,
            turns: Arc::new(Semaphore::new(MAX_CHECKS_PER_KEY)),
        });
        if checks.count >= MAX_CHECKS_PER_KEY + MAX_WAITING_PER_KEY {
            return Err(HashError::BusyForKey);
        }
        checks.count += 1;
        Ok(Self {
            checking: checking.clone(),
            key,
            turns: checks.turns.clone(),
            turn: None,
        })
    }

    /// Waits for one of the key's turns (first come, first served).
    async fn wait(mut self) -> Result<Self, HashError> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::BusyForKey)?;
        self.turn = Some(turn);
        Ok(self)
    }
}

impl Drop for KeyTurn {
    fn drop(&mut self) {
        self.turn = None;
        let mut map = self.checking.lock().expect("checking lock");
        if let Some(checks) = map.get_mut(&self.key) {
            checks.count -= 1;
            if checks.count == 0 {
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
        // A queue of 4: far fewer places than one key's checks under way and waiting.
        let hasher = PasswordHasher::new(1, 4).unwrap();
        // The only worker is busy, so no check ends.
        let worker = hasher.workers.clone().try_acquire_owned().unwrap();
        let beyond = 3;
        let total = MAX_CHECKS_PER_KEY + MAX_WAITING_PER_KEY + beyond;
        let jobs: Vec<_> = (0..total)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.verify("rose", format!("guess {i}"), None).await })
            })
            .collect();
        // Those beyond the key's checks and waiting places are refused at once ...
        while jobs.iter().filter(|j| j.is_finished()).count() < beyond {
            tokio::task::yield_now().await;
        }
        // ... and the waiting ones hold no place in the queue: another key is checked.
        let other = hasher.clone();
        let ann = tokio::spawn(async move { other.verify("ann", "hers".into(), None).await });
        drop(worker);
        assert!(!ann.await.unwrap().unwrap(), "another key was checked");
        let mut turned_away = 0;
        for job in jobs {
            if job.is_finished() {
                match job.await.unwrap() {
                    Err(HashError::BusyForKey) => turned_away += 1,
                    result => assert!(!result.unwrap()),
                }
            } else {
                // Still waiting for its turn (or hashing): a client that gives up.
                job.abort();
                let _ = job.await;
            }
        }
        assert_eq!(turned_away, beyond);
        // Ended and dropped checks, waiting or not, leave nothing behind.
        assert!(hasher.checking.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_keys_waiting_check_runs_when_a_turn_ends() {
        let hasher = PasswordHasher::new(1, 4).unwrap();
        let jobs: Vec<_> = (0..MAX_CHECKS_PER_KEY + 2)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.verify("rose", format!("guess {i}"), None).await })
            })
            .collect();
        for job in jobs {
            assert!(
                !job.await.unwrap().unwrap(),
                "every check ran, none refused"
            );
        }
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
