//! Personal API tokens for integrations: `rcp_` followed by 256 random bits in hex, shown
//! once at creation; the store keeps only their SHA-256. A token acts as its user, with
//! the user's role and projects at the time of each request; revoking it or disabling the
//! user stops it at once.

use super::{Principal, digest, random_hex256};
use crate::state::App;
use crate::store::StoreResult;
use crate::store::console::ApiTokenRow;

/// Every personal token starts with this, so it cannot be confused with the root token.
pub const PREFIX: &str = "rcp_";
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Creates a token for a user: the plain token (to show once) and its row.
pub async fn create(
    app: &App,
    user_id: i64,
    name: &str,
    now: i64,
) -> StoreResult<(String, ApiTokenRow)> {
    let plain = format!("{PREFIX}{}", random_hex256());
    let row = ApiTokenRow {
        id: app.ids.next(),
        user_id,
        name: name.to_owned(),
        token_hash: digest(&plain),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    app.store.create_api_token(&row).await?;
    Ok((plain, row))
}

/// The principal of a personal token; `None` if unknown, revoked or the user is disabled.
pub async fn resolve(app: &App, presented: &str, now: i64) -> StoreResult<Option<Principal>> {
    if !presented.starts_with(PREFIX) {
        return Ok(None);
    }
    let Some(row) = app.store.api_token(&digest(presented)).await? else {
        return Ok(None);
    };
    if row.revoked_at.is_some() {
        return Ok(None);
    }
    let Some(user) = app.store.user(row.user_id).await?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    if row.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY_MS) {
        app.store.touch_api_token(row.id, now).await?;
    }
    Ok(Some(Principal::of_user(app, &user, None).await?))
}
