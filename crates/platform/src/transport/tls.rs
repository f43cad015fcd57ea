//! TLS of the HTTP surface (`tls_cert` / `tls_key`): reading the operator's PEM certificate
//! chain and private key into a rustls server configuration, with every way that can fail
//! as a [`TlsError`] naming the setting or the file.
//!
//! The crypto provider is aws-lc-rs, the one reqwest's `rustls` feature brings for the
//! device SDK and the admin client, so the binary carries one crypto library. ALPN offers
//! `http/1.1` only: the server speaks HTTP/1. The handshake itself runs in
//! [`super::http`], per connection, bounded in time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::Settings;

/// Why the TLS settings cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// One of the pair without the other.
    #[error(
        "--{given} is set without --{missing} (setting {missing_key}, ROLLCALL_{missing_env}): give both or neither"
    )]
    Incomplete {
        given: &'static str,
        missing: &'static str,
        missing_key: &'static str,
        missing_env: &'static str,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a readable PEM file: {detail}", path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("{}: no certificate (a PEM `CERTIFICATE` block) in it", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{}: no private key in it (an unencrypted PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("the private key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("certificate {} with key {}: {source}", cert.display(), key.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The acceptor for the settings' certificate and key, `None` when TLS is not configured.
pub async fn acceptor(settings: &Settings) -> Result<Option<TlsAcceptor>, TlsError> {
    let (cert, key) = match (&settings.tls_cert, &settings.tls_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(TlsError::Incomplete {
                given: "tls-cert",
                missing: "tls-key",
                missing_key: "tls_key",
                missing_env: "TLS_KEY",
            });
        }
        (None, Some(_)) => {
            return Err(TlsError::Incomplete {
                given: "tls-key",
                missing: "tls-cert",
                missing_key: "tls_cert",
                missing_env: "TLS_CERT",
            });
        }
    };
    let config = server_config(cert, key).await?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// A server configuration from a PEM certificate chain (end-entity first) and a PEM private
/// key (PKCS#8, PKCS#1 RSA or SEC1 EC) that must belong to the end-entity certificate.
pub async fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let cert_pem = read(cert).await?;
    let key_pem = read(key).await?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert.to_owned(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key.to_owned(),
        },
        e => TlsError::Pem {
            path: key.to_owned(),
            detail: e.to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let rejected = |source| TlsError::Rejected {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        // Loads the key and checks it against the end-entity certificate's public key.
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    cert: cert.to_owned(),
                    key: key.to_owned(),
                }
            }
            e => rejected(e),
        })?;
    // The server speaks HTTP/1 only; a client offering only h2 is refused at the handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

async fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
}
