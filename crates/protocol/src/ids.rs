//! The secrets that cross the wire.
//!
//! Secrets (`accessKey`, `accessSecret`, tokens) live in [`Secret`], whose `Debug` is redacted
//! so that logging a struct that holds one can never leak it. (Ids are plain decimal strings in
//! the typed params, read leniently by [`crate::params::lenient`].)

use std::fmt;

use serde::Deserialize;

/// A secret string. `Debug` and `Display` never show it; [`Secret::expose`] does, on purpose.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call it where the value is needed (a signature, a response that
    /// hands out credentials), never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}
