//! `/api/v1/vendors`: device vendors (厂商) and their credentials. Credentials are shown
//! once, on creation and on rotation (`services::vendors`); lists and single reads never
//! carry secrets. An RSA public key, when given, is checked with the protocol crate's JWE
//! encrypter, and `require_encryption` makes it mandatory.
//!
//! Who may do what (finding "vendor credentials open to every role"): creating a vendor and
//! rotating its credentials are the administrators' (403 otherwise), because the answer
//! carries the `accessSecret` with which any device of that vendor, in any project, can be
//! impersonated. Everyone signed in may list and read vendors — a project manager needs a
//! vendor's id to register a device in their project — and those answers carry no key and
//! no secret (`VendorView`), only the id, name, `accessId` (which a device sends in clear
//! in `C_AUTH`; it grants nothing without the key and secret) and whether an RSA key is set.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rollcall_protocol::jwe::JweEncrypter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, path_id, required_text};
use crate::services;
use crate::state::AppState;
use crate::store::{Credential, Vendor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/vendors", post(create).get(list))
        .route("/vendors/{id}", get(show))
        .route("/vendors/{id}/rotate-credentials", post(rotate))
}

/// `POST /vendors`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateVendor {
    pub name: String,
    /// RSA public key (PEM, `PUBLIC KEY` or `RSA PUBLIC KEY`, at least 2048 bits). When set,
    /// success responses to this vendor's devices are JWE-encrypted.
    #[serde(default)]
    pub rsa_public_key: Option<String>,
}

/// A new vendor with its credentials (shown once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorCreated {
    pub id: String,
    pub name: String,
    pub access_id: String,
    pub access_key: String,
    pub access_secret: String,
    pub has_rsa_key: bool,
    pub created_at: i64,
}

/// A vendor as lists show it: no secrets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VendorView {
    pub id: String,
    pub name: String,
    pub access_id: String,
    pub has_rsa_key: bool,
    pub created_at: i64,
}

/// `GET /vendors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VendorList {
    pub vendors: Vec<VendorView>,
}

/// New credentials (shown once); the old ones stop working at once (401_02).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub access_id: String,
    pub access_key: String,
    pub access_secret: String,
}

impl From<&Vendor> for VendorView {
    fn from(v: &Vendor) -> Self {
        VendorView {
            id: v.id.to_string(),
            name: v.name.clone(),
            access_id: v.access_id.clone(),
            has_rsa_key: v.rsa_public_key.is_some(),
            created_at: v.created_at,
        }
    }
}

impl From<&Credential> for Credentials {
    fn from(c: &Credential) -> Self {
        Credentials {
            access_id: c.access_id.clone(),
            access_key: c.access_key.expose().to_owned(),
            access_secret: c.access_secret.expose().to_owned(),
        }
    }
}

/// PEM text is long; anything past this is not a public key.
const MAX_PEM_CHARS: usize = 16 * 1024;

/// Create a vendor with fresh credentials (administrators).
#[utoipa::path(
    post,
    operation_id = "createVendor",
    path = "/api/v1/vendors",
    tag = "vendors",
    request_body = CreateVendor,
    responses(
        (status = 201, description = "Created; the secrets are shown only now", body = VendorCreated),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 422, description = "Invalid name or RSA key", body = super::error::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateVendor>,
) -> Result<(StatusCode, Json<VendorCreated>), ApiError> {
    caller.require_admin()?;
    let name = required_text("name", &body.name, 100)?;
    // PEM spans lines, so it is not an ordinary text field.
    let key = body
        .rsa_public_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    if key.as_ref().is_some_and(|k| k.len() > MAX_PEM_CHARS) {
        return Err(ApiError::invalid_field(
            "invalid_rsa_key",
            "rsaPublicKey",
            "字段 rsaPublicKey 过长，不是 RSA 公钥",
        ));
    }
    match &key {
        Some(pem) => {
            if let Err(e) = JweEncrypter::from_public_key_pem(pem) {
                return Err(ApiError::invalid_field(
                    "invalid_rsa_key",
                    "rsaPublicKey",
                    format!("字段 rsaPublicKey 不是可用的 RSA 公钥（PEM，至少 2048 位）：{e}"),
                ));
            }
        }
        None if app.settings.require_encryption => {
            return Err(ApiError::invalid_field(
                "rsa_key_required",
                "rsaPublicKey",
                "平台要求加密，字段 rsaPublicKey 不能为空",
            ));
        }
        None => {}
    }
    let vendor = services::vendors::create(&app, &name, key).await?;
    tracing::info!(vendor = vendor.id, "vendor created");
    Ok((
        StatusCode::CREATED,
        Json(VendorCreated {
            id: vendor.id.to_string(),
            name: vendor.name.clone(),
            access_id: vendor.access_id.clone(),
            access_key: vendor.access_key.expose().to_owned(),
            access_secret: vendor.access_secret.expose().to_owned(),
            has_rsa_key: vendor.rsa_public_key.is_some(),
            created_at: vendor.created_at,
        }),
    ))
}

/// List vendors (no secrets).
#[utoipa::path(
    get,
    operation_id = "listVendors",
    path = "/api/v1/vendors",
    tag = "vendors",
    responses((status = 200, description = "OK", body = VendorList))
)]
pub async fn list(State(app): State<AppState>) -> Result<Json<VendorList>, ApiError> {
    let vendors = app.store.vendors().await?;
    Ok(Json(VendorList {
        vendors: vendors.iter().map(VendorView::from).collect(),
    }))
}

/// One vendor (no secrets).
#[utoipa::path(
    get,
    operation_id = "getVendor",
    path = "/api/v1/vendors/{id}",
    tag = "vendors",
    params(("id" = String, Path, description = "Vendor id")),
    responses(
        (status = 200, description = "OK", body = VendorView),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<VendorView>, ApiError> {
    let id = path_id("厂商", &id)?;
    let vendor = app
        .store
        .vendor(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("厂商 {id}")))?;
    Ok(Json(VendorView::from(&vendor)))
}

/// Issue new credentials; the old ones are revoked at once (administrators).
#[utoipa::path(
    post,
    operation_id = "rotateVendorCredentials",
    path = "/api/v1/vendors/{id}/rotate-credentials",
    tag = "vendors",
    params(("id" = String, Path, description = "Vendor id")),
    responses(
        (status = 200, description = "The new credentials, shown only now", body = Credentials),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn rotate(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Credentials>, ApiError> {
    caller.require_admin()?;
    let id = path_id("厂商", &id)?;
    if app.store.vendor(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("厂商 {id}")));
    }
    let credential = services::vendors::rotate(&app, id).await?;
    tracing::info!(vendor = id, "vendor credentials rotated");
    Ok(Json(Credentials::from(&credential)))
}

#[cfg(test)]
mod tests {
    use rollcall_protocol::ids::Secret;

    use super::*;

    #[test]
    fn views_never_carry_secrets() {
        let v = Vendor {
            id: 12,
            name: "Acme".into(),
            access_id: "AID".into(),
            access_key: Secret::new("KEY-SECRET"),
            access_secret: Secret::new("SECRET-SECRET"),
            rsa_public_key: Some("PEM".into()),
            created_at: 5,
        };
        let json = serde_json::to_value(VendorView::from(&v)).unwrap();
        assert_eq!(json["id"], "12");
        assert_eq!(json["accessId"], "AID");
        assert_eq!(json["hasRsaKey"], true);
        assert!(!json.to_string().contains("SECRET"), "{json}");
    }
}
