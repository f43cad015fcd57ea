//! Who is calling the admin API and the console, and what they may do.
//!
//! Three ways in, one [`Principal`] out:
//! - the root admin token of `serve` (`Authorization: Bearer …`) — [`Principal::Root`], an
//!   administrator that no one can disable;
//! - a personal API token (`Bearer rcp_…`, [`tokens`]) — the user who created it;
//! - a console session cookie ([`sessions`]) — the signed-in user, with the session's CSRF
//!   token that every form and every unsafe API call made with the cookie must echo.
//!
//! Roles ([`Role`]): administrators do everything; project managers see and change only the
//! projects assigned to them (and the devices bound to, and workers enrolled in, those
//! projects); auditors read everything and change nothing. Passwords are argon2id
//! (`runtime::password`). What a principal did is written to the audit log by [`audit`].

pub mod audit;
pub mod personal_tokens;
pub mod sessions;

use crate::state::App;
pub use crate::store::console::Role;
use crate::store::console::User;
use crate::store::{Device, StoreResult};

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token of `serve`.
    Root,
    User(UserPrincipal),
}

/// A console user as they act in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrincipal {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The projects of a project manager (empty for the other roles, who see all).
    pub projects: Vec<i64>,
    /// The anti-CSRF token, when the request came with a session cookie.
    pub csrf: Option<String>,
}

/// Which projects a principal sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    All,
    Projects(&'a [i64]),
}

impl Principal {
    /// Builds the principal of an enabled user (their projects read from the store).
    pub async fn of_user(app: &App, user: &User, csrf: Option<String>) -> StoreResult<Principal> {
        let projects = match user.role {
            Role::ProjectManager => app.store.user_projects(user.id).await?,
            Role::Administrator | Role::Auditor => Vec::new(),
        };
        Ok(Principal::User(UserPrincipal {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            projects,
            csrf,
        }))
    }

    /// The name written to the audit log.
    pub fn actor(&self) -> &str {
        match self {
            Principal::Root => "root",
            Principal::User(u) => &u.username,
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        match self {
            Principal::Root => None,
            Principal::User(u) => Some(u.id),
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Principal::Root => Role::Administrator,
            Principal::User(u) => u.role,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Administrator
    }

    /// Auditors change nothing.
    pub fn can_write(&self) -> bool {
        self.role() != Role::Auditor
    }

    pub fn scope(&self) -> Scope<'_> {
        match self {
            Principal::User(u) if u.role == Role::ProjectManager => Scope::Projects(&u.projects),
            _ => Scope::All,
        }
    }

    pub fn sees_project(&self, project_id: i64) -> bool {
        match self.scope() {
            Scope::All => true,
            Scope::Projects(ids) => ids.contains(&project_id),
        }
    }

    /// A project manager sees the devices bound to their projects; unbound ones are the
    /// administrators'.
    pub fn sees_device(&self, device: &Device) -> bool {
        match self.scope() {
            Scope::All => true,
            Scope::Projects(ids) => device.project_id.is_some_and(|p| ids.contains(&p)),
        }
    }

    /// Whether a worker with these memberships is visible: a project manager sees the
    /// workers who are or were members of one of their projects.
    pub fn sees_member_of(&self, project_ids: &[i64]) -> bool {
        match self.scope() {
            Scope::All => true,
            Scope::Projects(ids) => project_ids.iter().any(|p| ids.contains(p)),
        }
    }
}

/// 256 random bits as lowercase hex (session cookies, API tokens, CSRF tokens).
pub(crate) fn random_hex256() -> String {
    let mut buf = [0u8; 32];
    crate::runtime::util::fill_random(&mut buf);
    hex::encode(buf)
}

/// Whether a presented secret (the root admin token, a CSRF token) is exactly the expected
/// one, compared in constant time. Case matters: only the protocol's MD5 signs ignore hex
/// case (ZJ-SIGN-13), and that rule lives in the protocol crate, not here.
pub(crate) fn secret_eq(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    // `ct_eq` on slices of different lengths is false without looking at the bytes; the
    // length of a secret is not itself secret.
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// SHA-256 of a secret, hex: what the store keeps of session cookies and API tokens.
pub(crate) fn digest(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(projects: Vec<i64>) -> Principal {
        Principal::User(UserPrincipal {
            id: 1,
            username: "li".into(),
            display_name: "李".into(),
            role: Role::ProjectManager,
            projects,
            csrf: None,
        })
    }

    #[test]
    fn a_project_manager_sees_only_their_projects() {
        let p = manager(vec![7]);
        assert!(p.sees_project(7));
        assert!(!p.sees_project(8));
        assert!(p.sees_member_of(&[8, 7]));
        assert!(!p.sees_member_of(&[8]));
        assert!(!p.sees_member_of(&[]));
        assert!(p.can_write());
        assert!(!p.is_admin());
    }

    #[test]
    fn root_and_auditors_see_everything_and_auditors_change_nothing() {
        assert!(Principal::Root.sees_project(42) && Principal::Root.is_admin());
        let auditor = Principal::User(UserPrincipal {
            id: 2,
            username: "audit".into(),
            display_name: "审计".into(),
            role: Role::Auditor,
            projects: vec![],
            csrf: None,
        });
        assert!(auditor.sees_project(42));
        assert!(!auditor.can_write());
        assert_eq!(auditor.scope(), Scope::All);
    }

    #[test]
    fn secrets_are_compared_exactly() {
        assert!(secret_eq("Rollcall-Token-AbC", "Rollcall-Token-AbC"));
        assert!(!secret_eq("Rollcall-Token-AbC", "rollcall-token-abc"));
        assert!(!secret_eq("rollcall-token-abc", "ROLLCALL-TOKEN-ABC"));
        assert!(!secret_eq("abc", "abcd"));
        assert!(!secret_eq("abc", ""));
    }

    #[test]
    fn digests_are_stable_and_secrets_random() {
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(random_hex256(), random_hex256());
        assert_eq!(random_hex256().len(), 64);
    }
}
