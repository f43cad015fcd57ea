//! Password hashing (argon2id, PHC strings) and the rules a new password must meet.
//!
//! Hashing costs tens of milliseconds of CPU on purpose: callers run it on the blocking
//! pool ([`hash`] and [`verify`] are async wrappers that do so).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

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

/// The argon2id PHC string of a password (random salt).
pub async fn hash(password: &str) -> String {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Whether `password` matches a stored PHC string. A malformed stored hash never matches.
pub async fn verify(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    tokio::task::spawn_blocking(move || verify_now(&password, &stored))
        .await
        .unwrap_or(false)
}

/// Spends the time of one verification without a user, so that "no such user" and "wrong
/// password" cannot be told apart by timing.
pub async fn waste_a_verification() {
    let _ = verify("", DUMMY_HASH).await;
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
        let stored = hash("正确的密码123").await;
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("正确的密码123", &stored).await);
        assert!(!verify("错误的密码123", &stored).await);
        assert!(!verify("正确的密码123", "not a hash").await);
        // Two hashes of one password differ (random salt).
        assert_ne!(stored, hash("正确的密码123").await);
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
