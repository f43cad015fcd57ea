//! What can go wrong with a call: the server was not reached (or its answer not read), it
//! answered with an error, or it answered something this client cannot read.

use serde_json::Value;

/// The error of an [`AdminClient`](crate::AdminClient) call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not complete: connection refused or reset, a timeout, a body that
    /// could not be read.
    #[error("{request}: {source}")]
    Transport {
        /// `METHOD /path`.
        request: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with another status than the call's success status. `code` and
    /// `message` come from the error body `{"error": {"code", "message", …}}` (empty when the
    /// body is not one); `body` is the whole body (JSON, or the text as a JSON string).
    #[error("{request}: HTTP {status} {code}: {message}")]
    Api {
        /// `METHOD /path`.
        request: String,
        status: u16,
        code: String,
        message: String,
        body: Value,
    },
    /// The client cannot be set up: an extra CA file without a certificate in it, a TLS
    /// library that cannot start.
    #[error("{0}")]
    Config(String),
    /// A success whose body is not the expected shape.
    #[error("{request}: unexpected answer: {source}")]
    Decode {
        /// `METHOD /path`.
        request: String,
        #[source]
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The machine-readable `error.code` of an API error (`worker_exists`, `not_found`…).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A member of the API error object, e.g. `personId` of `worker_exists`.
    pub fn detail(&self, key: &str) -> Option<&Value> {
        match self {
            ClientError::Api { body, .. } => body.get("error")?.get(key),
            _ => None,
        }
    }

    /// The person id a `409 worker_exists` names: the worker enrolled before with the same
    /// ID-card number.
    pub fn existing_person_id(&self) -> Option<&str> {
        match self.code() {
            Some("worker_exists") => self.detail("personId")?.as_str(),
            _ => None,
        }
    }

    pub(crate) fn api(method: &str, path: &str, status: u16, body: Value) -> Self {
        let field = |k: &str| {
            body.get("error")
                .and_then(|e| e.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        ClientError::Api {
            request: format!("{method} {path}"),
            status,
            code: field("code"),
            message: field("message"),
            body,
        }
    }
}

/// An error and its sources, `: `-separated (reqwest's own message is terse: "error sending
/// request"; the sources say why — refused, reset, a certificate that does not verify).
pub(crate) fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_errors_read_the_error_body() {
        let body = json!({"error": {"code": "worker_exists", "message": "该身份证号的工人已存在", "personId": "42"}});
        let e = ClientError::api("POST", "/workers", 409, body);
        assert_eq!(e.status(), Some(409));
        assert_eq!(e.code(), Some("worker_exists"));
        assert_eq!(e.existing_person_id(), Some("42"));
        assert_eq!(
            e.to_string(),
            "POST /workers: HTTP 409 worker_exists: 该身份证号的工人已存在"
        );
    }

    #[test]
    fn other_bodies_leave_code_and_message_empty() {
        let e = ClientError::api("GET", "/x", 502, Value::String("Bad Gateway".into()));
        assert_eq!(e.code(), Some(""));
        assert_eq!(e.existing_person_id(), None);
        let conflict = ClientError::api(
            "POST",
            "/devices",
            409,
            json!({"error": {"code": "conflict", "personId": "1"}}),
        );
        assert_eq!(
            conflict.existing_person_id(),
            None,
            "only worker_exists names a worker"
        );
    }
}
