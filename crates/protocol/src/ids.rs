//! Newtypes for the identifiers and secrets that cross the wire.
//!
//! Ids are 64-bit numbers written as **decimal strings** (JavaScript loses precision above
//! 2^53); they are read leniently from a string or a number. Secrets (`accessKey`,
//! `accessSecret`, tokens) live in [`Secret`], whose `Debug` is redacted so that logging a
//! struct that holds one can never leak it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 64-bit id written as a decimal string: task ids (19 digits), record ids, person ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id64(pub u64);

/// A task id.
pub type TaskId = Id64;

impl fmt::Display for Id64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Text that is not a decimal 64-bit id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal 64-bit id: {0:?}")]
pub struct BadId(pub String);

impl FromStr for Id64 {
    type Err = BadId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // u64::from_str accepts a leading '+'; ids are plain digits.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadId(s.to_owned()));
        }
        s.parse().map(Id64).map_err(|_| BadId(s.to_owned()))
    }
}

impl Serialize for Id64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Id64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal 64-bit id")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Id64, E> {
                Ok(Id64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Id64, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A device serial number, unique across the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sn(pub String);

impl fmt::Display for Sn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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
