//! Vendors and their credentials (PROTOCOL.md §3): generated here, 128 random bits each,
//! shown once on creation and rotation. Rotation revokes the old pair (401_02).

use rollcall_protocol::ids::Secret;

use crate::runtime::util::{now_ms, random_hex128};
use crate::state::App;
use crate::store::{Credential, StoreResult, Vendor};

/// Creates a vendor with fresh credentials.
pub async fn create(app: &App, name: &str, rsa_public_key: Option<String>) -> StoreResult<Vendor> {
    let vendor = Vendor {
        id: app.ids.next(),
        name: name.to_owned(),
        access_id: random_hex128(),
        access_key: Secret::new(random_hex128()),
        access_secret: Secret::new(random_hex128()),
        rsa_public_key,
        created_at: now_ms(),
    };
    app.store.create_vendor(&vendor).await?;
    Ok(vendor)
}

/// Issues new credentials; the old ones stop working at once.
pub async fn rotate(app: &App, vendor_id: i64) -> StoreResult<Credential> {
    let new = Credential {
        access_id: random_hex128(),
        access_key: Secret::new(random_hex128()),
        access_secret: Secret::new(random_hex128()),
        vendor_id,
        revoked_at: None,
    };
    app.store.rotate_credentials(vendor_id, &new).await?;
    app.directory.forget_vendor(vendor_id);
    Ok(new)
}
