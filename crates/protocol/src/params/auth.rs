//! C_AUTH: the response carrying the token (ZJ-TOKEN-01). The request has no param: its
//! credentials (`accessId`, `accessKey`) travel in the envelope.

use serde::{Deserialize, Serialize};

use super::lenient;

/// C_AUTH response: `{"token":"…"}`, 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    /// The token to present on every later request; valid until 30 minutes without use.
    #[serde(deserialize_with = "lenient::string")]
    pub token: String,
}
