//! Access tokens: JWT, HS256 only, with issuer, issue time and expiry.

use std::path::Path;
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
}

#[derive(Debug, thiserror::Error)]
#[error("invalid or expired token")]
pub struct InvalidToken;

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation, ttl }
    }

    pub fn issue(&self, user: Id) -> anyhow::Result<AccessToken> {
        let now = Timestamp::now().as_millis() / 1000;
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims { sub: user.to_string(), iss: ISSUER.into(), iat: now, nbf: now, exp: now + ttl };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(AccessToken { token, expires_in: self.ttl.as_secs() })
    }

    /// The user a token was issued to, if its signature, algorithm, issuer and times check out.
    pub fn verify(&self, token: &str) -> Result<Id, InvalidToken> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| InvalidToken)?;
        data.claims.sub.parse().map_err(|_| InvalidToken)
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
        let claims = Claims { sub: "42".into(), iss: ISSUER.into(), iat: now - 100, nbf: now - 100, exp: now - 1 };
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(tokens.verify(&expired).is_err());
    }
}
