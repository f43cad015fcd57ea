//! `/api/v1/users`, `/api/v1/me` and `/api/v1/login`: console accounts and roles
//! (administrators manage them), the caller's own password and personal API tokens, and
//! password sign-in for scripts and the console's JavaScript-free forms alike (a session
//! cookie). The audit log is in `audit`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, path_id, required_text};
use crate::accounts::{Principal, Role, personal_tokens, sessions};
use crate::runtime::password;
use crate::runtime::util::now_ms;
use crate::state::{App, AppState};
use crate::store::StoreError;
use crate::store::console::{ApiTokenRow, User, UserPatch};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", post(create).get(list))
        .route("/users/{id}", patch(update))
        .route("/me", get(me))
        .route("/me/password", post(change_password))
        .route("/me/tokens", post(create_token).get(list_tokens))
        .route("/me/tokens/{id}", delete(revoke_token))
}

/// Routes that need no authentication.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
}

/// A user as the API shows them (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    /// Project ids of a project manager.
    pub project_ids: Vec<String>,
    pub created_at: i64,
}

/// `GET /users`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUser {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub password: String,
    pub role: Role,
    /// For a project manager: the projects they manage.
    #[serde(default)]
    pub project_ids: Vec<String>,
}

/// `PATCH /users/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUser {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub project_ids: Option<Vec<String>>,
}

/// The caller (`GET /me`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    /// `root` for the admin token of `serve`.
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// `null` when the caller sees every project.
    pub project_ids: Option<Vec<String>>,
}

/// `POST /me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /me/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateToken {
    pub name: String,
}

/// A personal token; `token` is present only in the answer to its creation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// `GET /me/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// `POST /login`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// A new session: the cookie is set; `csrfToken` goes in `X-CSRF-Token` of unsafe calls.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginAnswer {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
}

fn token_view(t: &ApiTokenRow, plain: Option<String>) -> TokenView {
    TokenView {
        id: t.id.to_string(),
        name: t.name.clone(),
        token: plain,
        created_at: t.created_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
    }
}

async fn user_view(app: &App, u: &User) -> Result<UserView, ApiError> {
    let projects = app.store.user_projects(u.id).await?;
    Ok(UserView {
        id: u.id.to_string(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        role: u.role,
        disabled: u.disabled,
        project_ids: projects.iter().map(i64::to_string).collect(),
        created_at: u.created_at,
    })
}

fn check_password(field: &str, value: &str) -> Result<(), ApiError> {
    password::check_new(value).map_err(|e| {
        ApiError::invalid_field("invalid_password", field, format!("字段 {field}：{e}"))
    })
}

/// Project ids that exist, or a 422 naming `projectIds`.
async fn project_ids(app: &App, ids: &[String]) -> Result<Vec<i64>, ApiError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let parsed = super::extract::id_value(id)
            .filter(|_| true)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "invalid_id",
                    "projectIds",
                    format!(
                        "字段 projectIds：{} 不是有效的项目 id",
                        super::extract::echo(id)
                    ),
                )
            })?;
        if app.store.project(parsed).await?.is_none() {
            return Err(ApiError::invalid_field(
                "unknown_project",
                "projectIds",
                format!("字段 projectIds：项目 {parsed} 不存在"),
            ));
        }
        out.push(parsed);
    }
    Ok(out)
}

/// Creates a console user (administrators only).
#[utoipa::path(post, operation_id = "createUser", path = "/api/v1/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 409, description = "`username_taken`", body = super::error::ErrorBody),
        (status = 422, description = "A field error, named in `field`", body = super::error::ErrorBody),
        (status = 503, description = "`busy`: no password hasher free in time; `Retry-After`", body = super::error::ErrorBody),
    ))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require_admin()?;
    let username = required_text("username", &body.username, 64)?;
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    {
        return Err(ApiError::invalid_field(
            "invalid_username",
            "username",
            "字段 username 只能包含字母、数字和 _ - . @",
        ));
    }
    let display_name = match body.display_name.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => required_text("displayName", d, 64)?,
        _ => username.clone(),
    };
    check_password("password", &body.password)?;
    let projects = project_ids(&app, &body.project_ids).await?;
    let user = User {
        id: app.ids.next(),
        username: username.clone(),
        display_name,
        password_hash: app.hasher.hash(&body.password).await?,
        role: body.role,
        disabled: false,
        created_at: now_ms(),
    };
    app.store.create_user(&user).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::Conflict {
            code: "username_taken",
            message: format!("用户名 {username} 已被使用"),
            extra: serde_json::Map::new(),
        },
        e => e.into(),
    })?;
    if body.role == Role::ProjectManager {
        app.store.set_user_projects(user.id, &projects).await?;
    }
    Ok((StatusCode::CREATED, Json(user_view(&app, &user).await?)))
}

/// Lists console users (administrators only).
#[utoipa::path(get, operation_id = "listUsers", path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "OK", body = UserList),
              (status = 403, description = "Not an administrator", body = super::error::ErrorBody)))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> Result<Json<UserList>, ApiError> {
    caller.require_admin()?;
    let mut users = Vec::new();
    for u in app.store.users().await? {
        users.push(user_view(&app, &u).await?);
    }
    Ok(Json(UserList { users }))
}

/// Changes a user (administrators only). Disabling a user or setting their password ends
/// their sessions.
#[utoipa::path(patch, operation_id = "updateUser", path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUser,
    responses((status = 200, description = "OK", body = UserView),
              (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
              (status = 404, description = "Not found", body = super::error::ErrorBody),
              (status = 422, description = "A field error, named in `field`, or `self_lockout`", body = super::error::ErrorBody),
              (status = 503, description = "`busy`: no password hasher free in time; `Retry-After`", body = super::error::ErrorBody),))]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    caller.require_admin()?;
    let id = path_id("用户", &id)?;
    if app.store.user(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("用户 {id}")));
    }
    if caller.0.user_id() == Some(id)
        && (body.disabled == Some(true) || body.role.is_some_and(|r| r != Role::Administrator))
    {
        return Err(ApiError::invalid(
            "self_lockout",
            "不能停用自己或取消自己的管理员角色",
        ));
    }
    let password_hash = match &body.password {
        Some(p) => {
            check_password("password", p)?;
            Some(app.hasher.hash(p).await?)
        }
        None => None,
    };
    let display_name = match &body.display_name {
        Some(d) => Some(required_text("displayName", d, 64)?),
        None => None,
    };
    let projects = match &body.project_ids {
        Some(ids) => Some(project_ids(&app, ids).await?),
        None => None,
    };
    let ends_sessions = password_hash.is_some() || body.disabled == Some(true);
    let user = app
        .store
        .update_user(
            id,
            &UserPatch {
                display_name,
                password_hash,
                role: body.role,
                disabled: body.disabled,
            },
        )
        .await?;
    if let Some(projects) = projects {
        app.store.set_user_projects(id, &projects).await?;
    }
    if ends_sessions {
        app.store.delete_user_sessions(id).await?;
    }
    Ok(Json(user_view(&app, &user).await?))
}

/// Who the caller is.
#[utoipa::path(get, operation_id = "getMe", path = "/api/v1/me", tag = "users",
    responses((status = 200, description = "OK", body = MeView)))]
pub async fn me(caller: Caller) -> Json<MeView> {
    Json(me_view(&caller.0))
}

pub fn me_view(p: &Principal) -> MeView {
    match p {
        Principal::Root => MeView {
            username: "root".into(),
            display_name: "平台管理员（令牌）".into(),
            role: Role::Administrator,
            project_ids: None,
        },
        Principal::User(u) => MeView {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            project_ids: (u.role == Role::ProjectManager)
                .then(|| u.projects.iter().map(i64::to_string).collect()),
        },
    }
}

fn user_only(caller: &Caller) -> Result<i64, ApiError> {
    caller
        .0
        .user_id()
        .ok_or_else(|| ApiError::invalid("not_a_user", "管理员令牌没有个人账号；请以用户身份登录"))
}

/// Changes the caller's password; their other sessions end.
#[utoipa::path(post, operation_id = "changePassword", path = "/api/v1/me/password", tag = "users",
    request_body = ChangePassword,
    responses((status = 204, description = "Changed"),
              (status = 422, description = "`wrong_password` or `invalid_password`; `not_a_user` for the admin token", body = super::error::ErrorBody),
              (status = 503, description = "`busy`: no password hasher free in time; `Retry-After`", body = super::error::ErrorBody)))]
pub async fn change_password(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let id = user_only(&caller)?;
    let user = app.store.user(id).await?.ok_or(ApiError::Unauthorized)?;
    if !app
        .hasher
        .verify(&body.current_password, &user.password_hash)
        .await?
    {
        return Err(ApiError::invalid_field(
            "wrong_password",
            "currentPassword",
            "当前密码错误",
        ));
    }
    check_password("newPassword", &body.new_password)?;
    let hash = app.hasher.hash(&body.new_password).await?;
    app.store
        .update_user(
            id,
            &UserPatch {
                password_hash: Some(hash),
                ..UserPatch::default()
            },
        )
        .await?;
    app.store.delete_user_sessions(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a personal API token; the token is shown in this answer only.
#[utoipa::path(post, operation_id = "createToken", path = "/api/v1/me/tokens", tag = "users",
    request_body = CreateToken,
    responses((status = 201, description = "Created", body = TokenView),
              (status = 422, description = "A bad `name`, named in `field`; `not_a_user`: the admin token has no account", body = super::error::ErrorBody)))]
pub async fn create_token(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let id = user_only(&caller)?;
    let name = required_text("name", &body.name, 64)?;
    let (plain, row) = personal_tokens::create(&app, id, &name, now_ms()).await?;
    Ok((StatusCode::CREATED, Json(token_view(&row, Some(plain)))))
}

/// The caller's personal tokens (never the tokens themselves).
#[utoipa::path(get, operation_id = "listTokens", path = "/api/v1/me/tokens", tag = "users",
    responses((status = 200, description = "OK", body = TokenList),
              (status = 422, description = "`not_a_user`: the admin token has no account", body = super::error::ErrorBody)))]
pub async fn list_tokens(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<TokenList>, ApiError> {
    let id = user_only(&caller)?;
    let tokens = app.store.api_tokens(id).await?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(|t| token_view(t, None)).collect(),
    }))
}

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, operation_id = "revokeToken", path = "/api/v1/me/tokens/{id}", tag = "users",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such live token", body = super::error::ErrorBody),
              (status = 422, description = "`not_a_user`: the admin token has no account", body = super::error::ErrorBody)))]
pub async fn revoke_token(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(token_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = user_only(&caller)?;
    let token_id = path_id("令牌", &token_id)?;
    if app.store.revoke_api_token(id, token_id, now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("令牌 {token_id}")))
    }
}

/// Signs in with a username and password: sets the session cookie.
#[utoipa::path(post, operation_id = "login", path = "/api/v1/login", tag = "users",
    request_body = Login, security(),
    responses((status = 200, description = "Signed in; `Set-Cookie` carries the session", body = LoginAnswer),
              (status = 401, description = "`invalid_credentials` (written to the audit log)", body = super::error::ErrorBody),
              (status = 429, description = "`too_many_attempts`: too many failures of this username or from this address; `Retry-After` says when to try again", body = super::error::ErrorBody),
              (status = 503, description = "`busy`: too many sign-ins at once; `Retry-After`", body = super::error::ErrorBody)))]
pub async fn login(
    State(app): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    let addr = connect.map(|axum::Extension(c)| c.0.ip());
    let now = now_ms();
    match sessions::login(
        &app,
        &body.username,
        &body.password,
        addr,
        "/api/v1/login",
        now,
    )
    .await
    {
        Ok(s) => {
            let principal = Principal::of_user(&app, &s.user, None).await?;
            crate::accounts::audit::record(
                &app,
                &principal,
                "登录",
                "/api/v1/login",
                None,
                addr.map(|a| a.to_string()),
            )
            .await;
            let cookie = sessions::set_cookie(&s.cookie_value, app.settings.public_url_is_https());
            Ok((
                [(header::SET_COOKIE, cookie)],
                Json(LoginAnswer {
                    username: s.user.username,
                    role: s.user.role,
                    csrf_token: s.csrf,
                }),
            )
                .into_response())
        }
        Err(sessions::LoginError::Invalid) => Err(ApiError::custom(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "用户名或密码错误",
        )),
        Err(sessions::LoginError::Locked { retry_after_secs }) => {
            Err(ApiError::TooManyAttempts { retry_after_secs })
        }
        Err(sessions::LoginError::Busy(b)) => Err(b.into()),
        Err(sessions::LoginError::Store(e)) => Err(e.into()),
    }
}

/// Signs out: ends the session of the cookie, if any, and clears it.
#[utoipa::path(post, operation_id = "logout", path = "/api/v1/logout", tag = "users", security(),
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(cookie) = sessions::cookie_value(&headers) {
        sessions::logout(&app, cookie).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, sessions::clear_cookie())],
    )
        .into_response())
}
