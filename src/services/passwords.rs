//! Argon2id hashing on a few dedicated threads (one per core): a burst of
//! logins never stalls the async workers, and since each hash takes 19 MiB,
//! keeping the work on the same few threads lets the allocator reuse that
//! memory instead of growing an arena per blocking-pool thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

use crate::domain::Password;

type Job = Box<dyn FnOnce() + Send>;

/// Hashes that may wait for a thread, by default: with one thread per core
/// and about 50 ms a hash, the last of them waits a second or two; more
/// would only answer later than a client waits.
pub const DEFAULT_QUEUE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every thread is busy and the queue is full: try again shortly.
    #[error("the password hashing queue is full")]
    Busy,
    #[error("password hashing failed")]
    Failed(#[source] anyhow::Error),
}

impl From<HashError> for crate::error::Error {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Self::Unavailable { what: "password checking", source: e.into() },
            HashError::Failed(source) => Self::Internal(source),
        }
    }
}

pub struct Passwords {
    jobs: mpsc::SyncSender<Job>,
    /// Verifications run so far: login must run one whether or not the user
    /// exists, and the tests count them to check it.
    verified: AtomicU64,
    /// Jobs dropped unrun because whoever asked had gone.
    abandoned: Arc<AtomicU64>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, DEFAULT_QUEUE)
    }
}

impl Passwords {
    /// `threads` hashing threads, and at most `queue` jobs (at least one)
    /// waiting for them.
    pub fn new(threads: usize, queue: usize) -> Self {
        // With no room at all, a job is taken only while a thread happens to
        // be waiting in `recv`, which a thread just started may not be yet.
        let (jobs, receiver) = mpsc::sync_channel::<Job>(queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            // The threads end when `Passwords` is dropped and the queue closes.
            let _ = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                loop {
                    let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        }
        Self { jobs, verified: AtomicU64::new(0), abandoned: Arc::default() }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let abandoned = self.abandoned.clone();
        let job: Job = Box::new(move || {
            // The request was cancelled (its client went away) while this
            // waited: 50 ms of a core and 19 MiB for no one.
            if tx.is_closed() {
                abandoned.fetch_add(1, Ordering::Relaxed);
                return;
            }
            drop(tx.send(f()));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                metrics::counter!("chirp_password_queue_full_total").increment(1);
                return Err(HashError::Busy);
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(HashError::Failed(anyhow::anyhow!("the hashing threads stopped")));
            }
        }
        rx.await.context("the hashing threads stopped").map_err(HashError::Failed)
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.expose().to_owned();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
        .map_err(HashError::Failed)
    }

    /// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.verified.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.run(move || match PasswordHash::new(&hash) {
            Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        })
        .await
    }

    /// How many verifications have been run.
    pub fn verifications(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// How many jobs were dropped because their requester had gone.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Occupies the one thread until `release` is sent.
    async fn occupy(passwords: &Passwords) -> std::sync::mpsc::Sender<()> {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = started.send(());
            let _ = wait.recv();
        });
        passwords.jobs.try_send(job).unwrap();
        running.await.unwrap();
        release
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let passwords = Arc::new(Passwords::new(1, 1));
        let release = occupy(&passwords).await;
        let waiting = tokio::spawn({
            let passwords = passwords.clone();
            async move { passwords.verify("password", "not a hash").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = passwords.verify("password", "not a hash").await;
        assert!(matches!(refused, Err(HashError::Busy)), "{refused:?}");

        drop(release);
        assert!(!waiting.await.unwrap().unwrap(), "the queued job still runs");
    }

    #[tokio::test]
    async fn work_whose_requester_has_gone_is_dropped_unrun() {
        let passwords = Passwords::new(1, 4);
        let release = occupy(&passwords).await;
        let password = Password::parse("correct horse battery").unwrap();
        // Asked for, then given up on (as when a client disconnects).
        let gave_up = tokio::time::timeout(Duration::from_millis(50), passwords.hash(&password)).await;
        assert!(gave_up.is_err());

        drop(release);
        // A later job runs after it; by then the abandoned one was skipped.
        assert!(passwords.hash(&password).await.unwrap().starts_with("$argon2id$"));
        assert_eq!(passwords.abandoned(), 1);
    }
}
