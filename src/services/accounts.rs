//! Registration with an emailed code, verification, login.
//!
//! A registration is pending in the Cache (never in the Store) until its
//! code is verified. The cache holds the password only as an Argon2id hash
//! and the code only as an HMAC.
//!
//! Guessing is bounded per email, not per registration: each code allows
//! `MAX_CODE_ATTEMPTS` wrong guesses, and an email gets at most
//! `MAX_CODES_PER_WINDOW` codes a `CODE_WINDOW`, so at most 25 guesses an
//! hour. Registering again for an email with a registration pending replaces
//! it: the earlier code stops working, and the new code goes to the same
//! address, naming the username it is for and saying that it replaces an
//! earlier registration. Whoever registers, only the owner of the address
//! gets a code, and a code creates only the account it was sent for.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::domain::{DisplayName, Email, FieldErrors, Id, IdGenerator, Password, Timestamp, User, Username};
use crate::error::{Error, Result};
use crate::ports::cache::Cache;
use crate::ports::mailer::{self, Mailer};
use crate::ports::store::{NewUser, Store, StoreError};
use crate::services::passwords::Passwords;
use crate::services::tokens::{AccessToken, Tokens};

/// Wrong codes allowed per pending registration; the next attempt finds it void.
pub const MAX_CODE_ATTEMPTS: u64 = 5;

/// Codes sent to one email per `CODE_WINDOW`; the next register for it is 429.
pub const MAX_CODES_PER_WINDOW: u64 = 5;

pub const CODE_WINDOW: Duration = Duration::from_secs(3600);

/// A registration as submitted; each field is checked by `Accounts::register`.
#[derive(Debug, Default)]
pub struct Registration {
    pub email: Option<String>,
    pub username: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
}

/// What the cache holds between register and verify-register.
#[derive(Serialize, Deserialize)]
struct PendingRegistration {
    email: String,
    username: String,
    name: String,
    password_hash: String,
    code_mac: String,
    /// Distinguishes this registration from an earlier one for the same email.
    nonce: u64,
    expires_at_ms: i64,
}

pub struct PendingReceipt {
    pub email: String,
    pub expires_in: u64,
}

pub struct Session {
    pub user: User,
    pub token: AccessToken,
}

pub struct Accounts {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    mailer: Arc<dyn Mailer>,
    tokens: Arc<Tokens>,
    ids: Arc<IdGenerator>,
    code_key: [u8; 32],
    registration_ttl: Duration,
    /// Checked against when a username is unknown, so that login takes as long either way.
    decoy_hash: OnceCell<String>,
    known_users: Mutex<HashSet<Id>>,
    passwords: Passwords,
}

const KNOWN_USERS_CAP: usize = 200_000;

fn required<'a>(errors: &mut FieldErrors, field: &str, value: &'a Option<String>) -> Option<&'a str> {
    if value.is_none() {
        errors.add(field, "is required");
    }
    value.as_deref()
}

fn pending_key(email: &Email) -> String {
    format!("registration:{}", email.normalized())
}

fn codes_key(email: &Email) -> String {
    format!("registration-codes:{}", email.normalized())
}

fn attempts_key(email: &Email, nonce: u64) -> String {
    format!("registration-attempts:{}:{nonce}", email.normalized())
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn Cache>,
        mailer: Arc<dyn Mailer>,
        tokens: Arc<Tokens>,
        ids: Arc<IdGenerator>,
        code_key: [u8; 32],
        registration_ttl: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            mailer,
            tokens,
            ids,
            code_key,
            registration_ttl,
            decoy_hash: OnceCell::new(),
            known_users: Mutex::default(),
            passwords: Passwords::default(),
        }
    }

    /// Hashes on `passwords` instead of the default pool.
    pub fn with_passwords(mut self, passwords: Passwords) -> Self {
        self.passwords = passwords;
        self
    }

    fn code_mac(&self, email: &Email, code: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.code_key).expect("any key length");
        mac.update(email.normalized().as_bytes());
        mac.update(b"\0");
        mac.update(code.as_bytes());
        mac
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(&self, input: Registration) -> Result<PendingReceipt> {
        let mut errors = FieldErrors::default();
        let email = required(&mut errors, "email", &input.email).and_then(|s| errors.check("email", Email::parse(s)));
        let username =
            required(&mut errors, "username", &input.username).and_then(|s| errors.check("username", Username::parse(s)));
        let name = required(&mut errors, "name", &input.name).and_then(|s| errors.check("name", DisplayName::parse(s)));
        let password =
            required(&mut errors, "password", &input.password).and_then(|s| errors.check("password", Password::parse(s)));
        let (Some(email), Some(username), Some(name), Some(password)) = (email, username, name, password) else {
            return Err(Error::Validation(errors));
        };

        if let Some(taken) = self.store.taken(username.as_str(), email.as_str()).await? {
            return Err(StoreError::Conflict(taken).into());
        }
        // Counted before the (costly) hash, and atomically, so that
        // concurrent registers cannot get more codes between them.
        let (codes, window_left) = self.cache.increment_in_window(&codes_key(&email), CODE_WINDOW).await?;
        if codes > MAX_CODES_PER_WINDOW {
            metrics::counter!("chirp_registration_codes_refused_total").increment(1);
            return Err(Error::RateLimited { retry_after: window_left.max(Duration::from_secs(1)) });
        }

        let password_hash = self.passwords.hash(&password).await?;
        let (code, nonce) = {
            let mut rng = rand::rng();
            (format!("{:06}", rng.random_range(0..1_000_000u32)), rng.random::<u64>())
        };
        let ttl = self.registration_ttl;
        let pending = PendingRegistration {
            email: email.as_str().to_owned(),
            username: username.as_str().to_owned(),
            name: name.as_str().to_owned(),
            password_hash,
            code_mac: B64.encode(self.code_mac(&email, &code).finalize().into_bytes()),
            nonce,
            expires_at_ms: Timestamp::now().as_millis() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2),
        };
        let bytes = serde_json::to_vec(&pending).map_err(|e| Error::Internal(e.into()))?;
        let replaced: Option<PendingRegistration> =
            self.cache.get(&pending_key(&email)).await?.and_then(|b| serde_json::from_slice(&b).ok());
        self.cache.put(&pending_key(&email), &bytes, ttl).await?;
        let replacing = match replaced {
            Some(earlier) => format!(
                "This registration replaces the one made earlier for this address (for @{}): \
                 the code sent for that one no longer works. Use this code only if you made \
                 this registration yourself.\n\n",
                earlier.username
            ),
            None => String::new(),
        };

        let minutes = ttl.as_secs().div_ceil(60);
        let sent = self
            .mailer
            .send(mailer::Email {
                to: email.as_str().to_owned(),
                subject: format!("Your chirp code for @{username}: {code}", username = username.as_str()),
                body: format!(
                    "Hello {name},\n\n\
                     Your chirp verification code is:\n\n    {code}\n\n\
                     It is for the account @{username}: send it to verify-register within {minutes} minutes \
                     to create that account.\n\n\
                     {replacing}\
                     If you did not register, ignore this email: no account is created without the code.\n",
                    name = name.as_str(),
                    username = username.as_str(),
                ),
            })
            .await;
        if let Err(e) = sent {
            // No code reached the user: leave nothing pending that no one can verify.
            let _ = self.cache.delete(&pending_key(&email)).await;
            return Err(e.into());
        }
        tracing::info!(username = username.as_str(), "registration pending");
        Ok(PendingReceipt { email: email.as_str().to_owned(), expires_in: ttl.as_secs() })
    }

    #[tracing::instrument(skip_all)]
    pub async fn verify(&self, email: Option<String>, code: Option<String>) -> Result<Session> {
        let mut errors = FieldErrors::default();
        let email = required(&mut errors, "email", &email).map(str::to_owned);
        let code = required(&mut errors, "code", &code).map(str::to_owned);
        let (Some(email), Some(code)) = (email, code) else {
            return Err(Error::Validation(errors));
        };
        // Nothing can be pending for an address that could not register.
        let email = Email::parse(&email).map_err(|_| Error::InvalidCode)?;

        let key = pending_key(&email);
        let Some(bytes) = self.cache.get(&key).await? else {
            return Err(Error::InvalidCode);
        };
        let pending: PendingRegistration = serde_json::from_slice(&bytes).map_err(|e| Error::Internal(e.into()))?;
        let remaining_ms = pending.expires_at_ms - Timestamp::now().as_millis();
        let remaining = Duration::from_millis(u64::try_from(remaining_ms).unwrap_or(0).max(1));

        // Count the attempt before looking at the code: concurrent guesses
        // cannot get more than MAX_CODE_ATTEMPTS comparisons between them.
        let attempt = self.cache.increment(&attempts_key(&email, pending.nonce), remaining).await?;
        if attempt > MAX_CODE_ATTEMPTS {
            return Err(Error::TooManyAttempts);
        }
        let expected = B64.decode(&pending.code_mac).map_err(|e| Error::Internal(e.into()))?;
        let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        if !well_formed || self.code_mac(&email, &code).verify_slice(&expected).is_err() {
            return Err(Error::InvalidCode);
        }

        // One verifier takes the registration; a concurrent one finds nothing.
        let Some(taken) = self.cache.take(&key).await? else {
            return Err(Error::InvalidCode);
        };
        let pending: PendingRegistration = serde_json::from_slice(&taken).map_err(|e| Error::Internal(e.into()))?;
        let new_user = NewUser {
            id: self.ids.next_id(),
            username: pending.username.clone(),
            email: pending.email.clone(),
            name: pending.name.clone(),
            password_hash: pending.password_hash.clone(),
            created_at: Timestamp::now(),
        };
        let user = match self.store.insert_user(&new_user).await {
            Ok(user) => user,
            Err(e @ StoreError::Conflict(_)) => return Err(e.into()),
            Err(e) => {
                // The database failed, not the user: keep the registration so the same code works again.
                if let Err(restore) = self.cache.put(&key, &taken, remaining).await {
                    tracing::warn!(error = %restore, "could not restore a pending registration");
                }
                return Err(e.into());
            }
        };
        tracing::info!(user_id = %user.id, "account created");
        let token = self.tokens.issue(user.id).map_err(Error::Internal)?;
        Ok(Session { user, token })
    }

    #[tracing::instrument(skip_all)]
    pub async fn login(&self, username: Option<String>, password: Option<String>) -> Result<Session> {
        let mut errors = FieldErrors::default();
        let username = required(&mut errors, "username", &username).map(str::to_owned);
        let password = required(&mut errors, "password", &password).map(str::to_owned);
        let (Some(username), Some(password)) = (username, password) else {
            return Err(Error::Validation(errors));
        };
        let credentials = match Username::parse(&username) {
            Ok(name) if password.chars().count() <= Password::MAX => self.store.credentials_by_username(name.as_str()).await?,
            _ => None,
        };
        let hash = match &credentials {
            Some(c) => c.password_hash.clone(),
            None => self.decoy_hash().await?.to_owned(),
        };
        let matches = self.passwords.verify(&password, &hash).await?;
        match credentials {
            Some(c) if matches => {
                let token = self.tokens.issue(c.user.id).map_err(Error::Internal)?;
                Ok(Session { user: c.user, token })
            }
            _ => Err(Error::InvalidCredentials),
        }
    }

    pub async fn user(&self, id: Id) -> Result<User> {
        self.store.user_by_id(id).await?.ok_or(Error::NotFound)
    }

    /// Whether an account exists; asked on every authenticated request, so
    /// ids seen once are remembered (accounts are never deleted).
    pub async fn exists(&self, id: Id) -> Result<bool> {
        if self.known_users.lock().unwrap_or_else(|e| e.into_inner()).contains(&id) {
            return Ok(true);
        }
        let exists = self.store.user_by_id(id).await?.is_some();
        if exists {
            let mut known = self.known_users.lock().unwrap_or_else(|e| e.into_inner());
            if known.len() >= KNOWN_USERS_CAP {
                known.clear();
            }
            known.insert(id);
        }
        Ok(exists)
    }

    /// Makes the decoy hash that logins of unknown users are checked
    /// against, so that no login pays for it.
    pub async fn prepare(&self) -> Result<()> {
        self.decoy_hash().await.map(drop)
    }

    /// Password verifications run so far (login runs one for every attempt,
    /// known user or not, so that its timing does not tell them apart).
    pub fn password_checks(&self) -> u64 {
        self.passwords.verifications()
    }

    async fn decoy_hash(&self) -> Result<&str> {
        self.decoy_hash
            .get_or_try_init(|| async {
                let decoy = Password::parse("decoy password, never matches").expect("valid");
                self.passwords.hash(&decoy).await.map_err(Error::from)
            })
            .await
            .map(String::as_str)
    }
}
