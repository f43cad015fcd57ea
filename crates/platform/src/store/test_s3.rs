//! An S3-compatible store for tests: a prefix of its own in the bucket of the test server
//! (SeaweedFS, started by `.ci/seaweedfs.sh`, which `.ci/run` calls), so parallel tests and
//! CI runs never see each other's objects. Shared by the test suites of every crate, like
//! [`super::test_db`].
//!
//! Tests that need it do not skip: without a server they fail with [`TestS3::missing`]'s
//! instruction.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::StoreOptions;
use rollcall_protocol::time::now_ms;

/// The variable naming the S3 endpoint of the tests (default [`DEFAULT_S3_ENDPOINT`]).
pub const TEST_S3_ENDPOINT: &str = "ROLLCALL_TEST_S3_ENDPOINT";
/// Where `.ci/seaweedfs.sh` serves S3.
pub const DEFAULT_S3_ENDPOINT: &str = "http://127.0.0.1:8333";
/// The bucket `.ci/seaweedfs.sh` creates.
pub const TEST_S3_BUCKET: &str = "photos";
/// The test server's credentials (`.ci/seaweedfs.sh` starts it with them).
pub const TEST_S3_ACCESS_KEY: &str = "rollcall-test";
pub const TEST_S3_SECRET_KEY: &str = "rollcall-test-secret";

/// One test's place in the test S3 server.
#[derive(Debug, Clone)]
pub struct TestS3 {
    pub endpoint: String,
    pub prefix: String,
}

impl TestS3 {
    /// A fresh prefix named after `name` in the test bucket.
    pub fn new(name: &str) -> TestS3 {
        static N: AtomicU32 = AtomicU32::new(0);
        let endpoint = match std::env::var(TEST_S3_ENDPOINT) {
            Ok(e) if !e.is_empty() => e,
            _ => DEFAULT_S3_ENDPOINT.to_owned(),
        };
        let prefix = format!(
            "t-{name}-{}-{}-{}",
            now_ms(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        TestS3 { endpoint, prefix }
    }

    /// The `photo_store` setting: `s3://{bucket}/{prefix}`.
    pub fn photo_store(&self) -> String {
        format!("s3://{TEST_S3_BUCKET}/{}", self.prefix)
    }

    /// The `photo_store_options` setting that reaches the test server.
    pub fn options(&self) -> StoreOptions {
        StoreOptions(
            [
                ("aws_endpoint", self.endpoint.as_str()),
                ("aws_access_key_id", TEST_S3_ACCESS_KEY),
                ("aws_secret_access_key", TEST_S3_SECRET_KEY),
                ("aws_region", "us-east-1"),
                ("aws_allow_http", "true"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )
    }

    /// The standard `AWS_*` environment of a `rollcall serve` child process that uses it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ROLLCALL_PHOTO_STORE", self.photo_store()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", TEST_S3_ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", TEST_S3_SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// Fails the test with [`TestS3::missing`]'s instruction unless the server accepts
    /// connections.
    #[allow(
        clippy::panic,
        reason = "test support: a missing server fails the test"
    )]
    pub async fn require(&self) {
        let addr = self
            .endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        if let Err(e) = tokio::net::TcpStream::connect(&addr).await {
            panic!("{}", self.missing(&e));
        }
    }

    /// The instruction a test fails with when the server does not answer.
    pub fn missing(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "this test needs an S3 server at {} ({error}): start one with \
             `bash .ci/seaweedfs.sh` or point {TEST_S3_ENDPOINT} at one",
            self.endpoint
        )
    }
}
