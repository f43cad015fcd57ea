//! C_AUTH (ZJ-CRED-03, ZJ-CRED-04, ZJ-DEV-02, ZJ-DEV-03, ZJ-TOKEN-01): vendor credentials in, a token out. Registers an unknown sn as unbound
//! when `auto_register` is on (after the credentials and signature check out, so junk never
//! registers a device).

use std::sync::Arc;

use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::AuthResponse;

use super::{ConnCtx, Signer, reply, verify_sign};
use crate::pipeline::error::DeviceError;
use crate::services::devices;
use crate::state::App;
use crate::store::StoreError;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    conn: Option<&ConnCtx>,
    now: i64,
    signer: &mut Signer,
) -> Result<Option<String>, DeviceError> {
    // Through the directory like every other request, so the rows are cached for the
    // device's first requests after it connects (1,000 devices connecting at once otherwise
    // read them all again on their first heartbeat).
    let store = app.store.as_ref();
    let (shared_sn, device) = app
        .directory
        .device_with_sn(store, &req.sn, now)
        .await?
        .unzip();
    match &device {
        None if !app.settings.auto_register => return Err(DeviceError::DeviceUnavailable),
        Some(d) if !d.enabled => return Err(DeviceError::DeviceUnavailable),
        _ => {}
    }
    // Unknown id and wrong key look the same: nothing confirms that an id exists.
    let cred = app
        .directory
        .credential(store, &req.access_id, now)
        .await?
        .filter(|c| crate::accounts::secret_eq(c.access_key.expose(), &req.access_key))
        .ok_or(DeviceError::AuthFailed("credentials"))?;
    // ZJ-CRED-03: the pair rotated away (id and key both matching) gets 401_02.
    if cred.revoked_at.is_some() {
        return Err(DeviceError::CredentialsRevoked);
    }
    signer.secret = Some(cred.access_secret.expose().to_owned());
    if device
        .as_ref()
        .is_some_and(|d| d.vendor_id != cred.vendor_id)
    {
        return Err(DeviceError::AuthFailed("sn of another vendor"));
    }
    verify_sign(
        rollcall_protocol::ApiCode::Auth,
        &req.view(),
        cred.access_secret.expose(),
    )?;
    // A connection bound to another device: refused before anything is registered or issued.
    if let Some(conn) = conn {
        conn.check_binding(&req.sn)?;
    }
    if let Some(vendor) = app.directory.vendor(store, cred.vendor_id, now).await? {
        signer.rsa_public_key = vendor.row.rsa_public_key.clone();
    }
    if device.is_none() {
        match devices::register(app, devices::unbound(&req.sn, cred.vendor_id)).await {
            Ok(_) => tracing::info!(sn = %req.sn, "device registered as unbound"),
            // Registered meanwhile by a concurrent C_AUTH: check it is this vendor's.
            Err(StoreError::Conflict(_)) => {
                let d = app.store.device(&req.sn).await?;
                if d.is_none_or(|d| d.vendor_id != cred.vendor_id) {
                    return Err(DeviceError::AuthFailed("sn of another vendor"));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    // One copy of the sn for the directory, the token cache and the registry (BENCHMARKS.md,
    // "idle").
    let sn: Arc<str> = shared_sn.unwrap_or_else(|| req.sn.as_str().into());
    let token = app
        .tokens
        .issue(app.store.as_ref(), &sn, &cred.access_id, now)
        .await?;
    if let Some(conn) = conn {
        conn.bind(app, &sn)?;
    }
    reply(&AuthResponse { token })
}
