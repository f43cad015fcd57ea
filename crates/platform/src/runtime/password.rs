//! Password hashing (argon2id, PHC strings) and the rules a new password must meet.
//!
//! Hashing costs tens of milliseconds of CPU and 19 MiB of memory on purpose: callers run
//! it on the blocking pool, and every hash asked for by a request goes through the
//! [`Hasher`] of the `App`, which computes at most `max_password_hashes` at once (so a flood
//! of sign-ins cannot take the process's memory: each hash holds its permit until the
//! blocking work ends, even when the request is dropped). A request that finds no free
//! hasher within `password_hash_wait_ms` gets [`Busy`] (503).

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shortest password accepted.
pub const MIN_LEN: usize = 8;

/// Why a new password is refused (messages name the field, in Chinese).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("密码至少 {MIN_LEN} 个字符")]
    TooShort,
    #[error("密码不能超过 128 个字符")]
    TooLong,
}

/// Checks a new password against the rules.
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    match password.chars().count() {
        n if n < MIN_LEN => Err(PasswordError::TooShort),
        n if n > 128 => Err(PasswordError::TooLong),
        _ => Ok(()),
    }
}

/// Every password hasher is busy: try again shortly (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("登录请求过多，请稍后再试")]
pub struct Busy;

/// The bounded pool of password hashers of one platform (see the module docs).
#[derive(Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Hasher {
    pub fn new(max_at_once: usize, wait_ms: u64) -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(max_at_once.max(1))),
            wait: Duration::from_millis(wait_ms),
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(p);
        }
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Busy),
        }
    }

    /// [`hash`], within the bound.
    pub async fn hash(&self, password: &str) -> Result<String, Busy> {
        let permit = self.permit().await?;
        let password = password.to_owned();
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_now(&password)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())))
    }

    /// [`verify`], within the bound.
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, Busy> {
        let permit = self.permit().await?;
        let (password, stored) = (password.to_owned(), stored.to_owned());
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_now(&password, &stored)
        })
        .await
        .unwrap_or(false))
    }

    /// Spends the time of one verification without a user, so that "no such user" and
    /// "wrong password" cannot be told apart by timing.
    pub async fn waste_a_verification(&self) -> Result<(), Busy> {
        self.verify("", DUMMY_HASH).await.map(|_| ())
    }
}

/// The argon2id PHC string of a password (random salt), outside the bound: for startup
/// only (the first administrator), never for a request.
pub async fn hash(password: &str) -> String {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// A valid argon2id hash of a random string, with the default cost parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wJ6mV6cV0Yq0m2QzYb3Qb0d7m8tQy7m0Zp3i1T1m9cE";

#[allow(
    clippy::expect_used,
    reason = "a 16-byte salt and argon2's default parameters are always valid"
)]
fn hash_now(password: &str) -> String {
    let mut salt = [0u8; 16];
    crate::runtime::util::fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail on a password")
        .to_string()
}

/// Whether `password` matches a stored PHC string. A malformed stored hash never matches.
fn verify_now(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = Hasher::new(2, 1000);
        let stored = h.hash("正确的密码123").await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert_eq!(h.verify("正确的密码123", &stored).await, Ok(true));
        assert_eq!(h.verify("错误的密码123", &stored).await, Ok(false));
        assert_eq!(h.verify("正确的密码123", "not a hash").await, Ok(false));
        // Two hashes of one password differ (random salt).
        assert_ne!(stored, hash("正确的密码123").await);
    }

    #[tokio::test]
    async fn a_hasher_computes_at_most_its_bound_at_once() {
        let h = Hasher::new(1, 0);
        let held = h.permit().await.unwrap();
        assert_eq!(
            h.verify("x", DUMMY_HASH).await,
            Err(Busy),
            "no wait: busy at once"
        );
        drop(held);
        assert_eq!(h.verify("x", DUMMY_HASH).await, Ok(false));
    }

    #[test]
    fn new_passwords_have_rules() {
        assert_eq!(check_new("short"), Err(PasswordError::TooShort));
        assert_eq!(check_new(&"x".repeat(129)), Err(PasswordError::TooLong));
        assert_eq!(check_new("long enough"), Ok(()));
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
