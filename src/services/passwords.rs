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

pub struct Passwords {
    jobs: mpsc::Sender<Job>,
    /// Verifications run so far: login must run one whether or not the user
    /// exists, and the tests count them to check it.
    verified: AtomicU64,
}

impl Default for Passwords {
    fn default() -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..cores {
            let queue = queue.clone();
            // The threads end when `Passwords` is dropped and the queue closes.
            let _ = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        }
        Self { jobs, verified: AtomicU64::new(0) }
    }
}

impl Passwords {
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs.send(Box::new(move || drop(tx.send(f())))).map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
        rx.await.context("the hashing threads stopped")
    }

    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
    }

    /// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
    pub async fn verify(&self, password: &str, hash: &str) -> anyhow::Result<bool> {
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
}
