//! Access tokens: JWT, HS256 only, with issuer, issue time and expiry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::config::Secret;
use crate::domain::{Id, Timestamp};

const ISSUER: &str = "chirp";
const MIN_SECRET_LEN: usize = 32;

/// How far apart node clocks may be: a token another node issued a moment
/// ago (`nbf` = its now) is accepted by a node whose clock is a little
/// behind, and one that just expired by a little ahead.
pub const CLOCK_LEEWAY_SECS: i64 = 5;

/// Seconds since the Unix epoch, as a node sees them.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> i64 {
    Timestamp::now().as_millis() / 1000
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    clock: Clock,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid or expired token")]
pub struct InvalidToken;

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self::with_clock(secret, ttl, Arc::new(system_clock))
    }

    /// Issues and checks times by `clock` instead of the system's.
    pub fn with_clock(secret: &[u8], ttl: Duration, clock: Clock) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        // Times are checked in `verify`, against `clock`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation, ttl, clock }
    }

    pub fn issue(&self, user: Id) -> anyhow::Result<AccessToken> {
        let now = (self.clock)();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims { sub: user.to_string(), iss: ISSUER.into(), iat: now, nbf: now, exp: now + ttl };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(AccessToken { token, expires_in: self.ttl.as_secs() })
    }

    /// The user a token was issued to, if its signature, algorithm, issuer and times check out.
    pub fn verify(&self, token: &str) -> Result<Id, InvalidToken> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| InvalidToken)?;
        let claims = data.claims;
        let now = (self.clock)();
        let current = claims.nbf <= now + CLOCK_LEEWAY_SECS
            && claims.iat <= now + CLOCK_LEEWAY_SECS
            && now < claims.exp.saturating_add(CLOCK_LEEWAY_SECS);
        if !current {
            return Err(InvalidToken);
        }
        claims.sub.parse().map_err(|_| InvalidToken)
    }
}

/// The token secret: configured, or generated once and kept in the data dir.
pub fn load_or_create_secret(configured: Option<&Secret>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(secret.expose().len() >= MIN_SECRET_LEN, "CHIRP_JWT_SECRET must be at least {MIN_SECRET_LEN} bytes");
        return Ok(secret.expose().as_bytes().to_vec());
    }
    let path = data_dir.join("jwt.secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= MIN_SECRET_LEN => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!("{} is too short; delete it to have a new one made", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a new token secret");
    Ok(secret.into_bytes())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// A key for a separate purpose, derived from the token secret.
pub fn derive_key(secret: &[u8], purpose: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_verifies_only_with_its_own_key() {
        let tokens = Tokens::new(SECRET, Duration::from_secs(60));
        let t = tokens.issue(Id::from_i64(42)).unwrap();
        assert_eq!(tokens.verify(&t.token).unwrap(), Id::from_i64(42));
        let other = Tokens::new(b"another secret of at least 32 bytes!", Duration::from_secs(60));
        assert!(other.verify(&t.token).is_err());
    }

    #[test]
    fn unsigned_and_expired_tokens_are_refused() {
        let tokens = Tokens::new(SECRET, Duration::from_secs(60));
        let now = Timestamp::now().as_millis() / 1000;
        let body = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"42","iss":"chirp","iat":{now},"nbf":{now},"exp":{}}}"#, now + 60));
        let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#));
        assert!(tokens.verify(&none).is_err());
        let claims = Claims { sub: "42".into(), iss: ISSUER.into(), iat: now - 100, nbf: now - 100, exp: now - 10 };
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(tokens.verify(&expired).is_err());
    }

    fn clock_at(offset: i64) -> Clock {
        Arc::new(move || system_clock() + offset)
    }

    #[test]
    fn a_node_whose_clock_is_a_little_behind_accepts_a_token_just_issued_elsewhere() {
        let ahead = Tokens::with_clock(SECRET, Duration::from_secs(60), clock_at(3));
        let behind = Tokens::with_clock(SECRET, Duration::from_secs(60), clock_at(0));
        let t = ahead.issue(Id::from_i64(7)).unwrap();
        assert_eq!(behind.verify(&t.token).unwrap(), Id::from_i64(7));

        let far_ahead = Tokens::with_clock(SECRET, Duration::from_secs(60), clock_at(30));
        let t = far_ahead.issue(Id::from_i64(7)).unwrap();
        assert!(behind.verify(&t.token).is_err(), "beyond the leeway a token is not yet valid");
    }

    #[test]
    fn expiry_allows_the_leeway_and_no_more() {
        let issuer = Tokens::with_clock(SECRET, Duration::from_secs(60), clock_at(0));
        let t = issuer.issue(Id::from_i64(7)).unwrap();
        let just_after = Tokens::with_clock(SECRET, Duration::from_secs(60), clock_at(62));
        assert!(just_after.verify(&t.token).is_ok());
        let well_after = Tokens::with_clock(SECRET, Duration::from_secs(60), clock_at(60 + CLOCK_LEEWAY_SECS));
        assert!(well_after.verify(&t.token).is_err());
    }
}
