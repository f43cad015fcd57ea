//! The OpenAPI 3.1 document of the admin REST API, served without authentication at
//! `GET /api/v1/openapi.json`. It is assembled by utoipa from the `#[utoipa::path]`
//! attributes of the handlers and the `ToSchema` derives of their request and response
//! types, so it cannot drift from the code; every operation but sign-in and sign-out requires
//! the bearer token, and [`CommonAnswers`] adds the answers of the layers every handler shares.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail};
use super::{
    attendance, audit, devices, firmware, members, national, projects, reports, tasks, teams,
    uplink, users, vendors, webhooks, workers,
};

/// The name of the security scheme every operation requires.
pub const BEARER: &str = "bearerAuth";

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin token (`--admin-token`)"))
                    .build(),
            ),
        );
    }
}

/// The answers that come from the plumbing every handler shares rather than from the
/// handler itself, added to every operation they apply to (a handler's own description of
/// the same status wins):
/// - 401: every operation behind the access layer (`access::authenticate`);
/// - 403: every change behind it (auditors change nothing but their own password and
///   tokens; a session cookie needs its `X-CSRF-Token`);
/// - 404: every path with a parameter (an unknown or malformed id, or an object outside
///   the caller's scope: `access::device_or_404` and friends, `extract::ApiPath`);
/// - 413, 415, 422: every request body (`extract::ApiJson`, `extract::ApiMultipart`);
/// - 422: every query string (`extract::QueryParams`).
struct CommonAnswers;

/// Whether an operation is behind the access layer: public ones declare `security: []`.
fn authenticated(op: &Operation) -> bool {
    op.security.as_ref().is_none_or(|s| !s.is_empty())
}

fn error_answer(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
        .into()
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                (false, &mut item.get),
                (true, &mut item.post),
                (true, &mut item.put),
                (true, &mut item.patch),
                (true, &mut item.delete),
            ];
            for (changes, op) in ops {
                let Some(op) = op.as_mut() else { continue };
                // An empty query value counts as absent (`QueryParams::get`). utoipa has no
                // field for `allowEmptyValue`, so it goes in through the flattened map.
                for param in op.parameters.iter_mut().flatten() {
                    if let RefOr::T(p) = param
                        && p.parameter_in == ParameterIn::Query
                    {
                        p.extensions
                            .get_or_insert_with(Default::default)
                            .insert("allowEmptyValue".to_owned(), serde_json::Value::Bool(true));
                    }
                }
                let has = |place: ParameterIn, op: &Operation| {
                    op.parameters.iter().flatten().any(|p| match p {
                        RefOr::T(p) => p.parameter_in == place,
                        RefOr::Ref(_) => false,
                    })
                };
                let (in_path, in_query) = (has(ParameterIn::Path, op), has(ParameterIn::Query, op));
                let body = match &op.request_body {
                    Some(RefOr::T(b)) => b.content.keys().next().cloned(),
                    _ => None,
                };
                let authenticated = authenticated(op);
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_answer(description));
                };
                if authenticated {
                    add(
                        "401",
                        "Missing or wrong token, or no session (`unauthorized`)",
                    );
                    if changes {
                        add(
                            "403",
                            "The caller's role may not change this (`forbidden`), or a session \
                             cookie came without its `X-CSRF-Token` (`csrf`)",
                        );
                    }
                }
                if in_path {
                    add(
                        "404",
                        "No such object, a malformed id, or one outside the caller's scope \
                         (`not_found`)",
                    );
                }
                if let Some(content_type) = body {
                    add("413", "The body is over the limit (`payload_too_large`)");
                    if content_type == "multipart/form-data" {
                        add(
                            "415",
                            "Not `multipart/form-data` (`unsupported_media_type`)",
                        );
                        add("422", "A form that cannot be read (`invalid_form`)");
                    } else {
                        add("415", "Not `application/json` (`unsupported_media_type`)");
                        add(
                            "422",
                            "Not JSON, or a member missing or of the wrong type \
                             (`invalid_json`, naming it in `field`); a bad value, named in `field`",
                        );
                    }
                }
                if in_query {
                    add(
                        "422",
                        "A bad query parameter (`invalid_query`, naming it in `field`)",
                    );
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rollcall admin API",
        description = "Admin REST API of the Rollcall real-name attendance platform. JSON; ids \
                       are decimal strings; times are epoch milliseconds; errors are \
                       `{\"error\": {\"code\", \"message\", …}}`; ID-card numbers are masked.",
    ),
    paths(
        super::session,
        vendors::create,
        vendors::list,
        vendors::show,
        vendors::rotate,
        projects::create,
        projects::list,
        projects::show,
        members::join,
        members::leave,
        members::roster,
        members::update_member,
        teams::create_team,
        teams::teams,
        devices::create,
        devices::list,
        devices::show,
        devices::update,
        devices::presence,
        devices::persons,
        workers::create,
        workers::list,
        workers::show,
        workers::blacklist,
        workers::unblacklist,
        workers::list_blacklist,
        tasks::create,
        tasks::list,
        tasks::reconciliation,
        tasks::retry,
        attendance::list,
        reports::daily,
        reports::monthly,
        reports::import_roster,
        firmware::upload,
        firmware::list,
        firmware::show,
        firmware::deploy,
        users::create,
        users::list,
        users::update,
        users::me,
        users::change_password,
        users::create_token,
        users::list_tokens,
        users::revoke_token,
        audit::audit_log,
        uplink::put,
        uplink::show,
        uplink::items,
        uplink::retry,
        workers::update_worker,
        national::list_dictionaries,
        national::put_dictionary_entry,
        webhooks::create,
        webhooks::list,
        webhooks::disable,
        webhooks::deliveries,
        users::login,
        users::logout,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &CommonAnswers),
    security(("bearerAuth" = [])),
    tags(
        (name = "session", description = "Who the token or session is"),
        (name = "vendors", description = "Device vendors and their credentials"),
        (name = "projects", description = "Projects, fences and rosters"),
        (name = "devices", description = "Devices, binding, presence and sync state"),
        (name = "workers", description = "Workers and their face photos"),
        (name = "tasks", description = "Tasks given to devices"),
        (name = "attendance", description = "Attendance records"),
        (name = "reports", description = "Daily summary, monthly sheet, roster import"),
        (name = "firmware", description = "Firmware packages and their rollout"),
        (name = "users", description = "Console users, roles, personal tokens, sign-in and the audit log"),
        (name = "uplink", description = "Reporting to the national real-name platform"),
    )
)]
pub struct ApiDoc;

/// The document as JSON (built once per call; it is small).
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// `GET /api/v1/openapi.json` (no authentication).
pub async fn serve() -> Json<serde_json::Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_documented_with_bearer_security() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, method) in [
            ("/api/v1/vendors", "post"),
            ("/api/v1/vendors", "get"),
            ("/api/v1/vendors/{id}", "get"),
            ("/api/v1/vendors/{id}/rotate-credentials", "post"),
            ("/api/v1/projects", "post"),
            ("/api/v1/projects", "get"),
            ("/api/v1/projects/{id}", "get"),
            ("/api/v1/projects/{id}/workers", "post"),
            ("/api/v1/projects/{id}/workers", "get"),
            ("/api/v1/projects/{id}/workers/{personId}", "delete"),
            ("/api/v1/devices", "post"),
            ("/api/v1/devices", "get"),
            ("/api/v1/devices/{sn}", "get"),
            ("/api/v1/devices/{sn}", "patch"),
            ("/api/v1/devices/{sn}/presence", "get"),
            ("/api/v1/devices/{sn}/persons", "get"),
            ("/api/v1/devices/{sn}/tasks", "post"),
            ("/api/v1/devices/{sn}/tasks", "get"),
            ("/api/v1/devices/{sn}/tasks/{taskid}/reconciliation", "get"),
            ("/api/v1/workers", "post"),
            ("/api/v1/workers", "get"),
            ("/api/v1/workers/{personId}", "get"),
            ("/api/v1/attendance", "get"),
            ("/api/v1/session", "get"),
            ("/api/v1/projects/{id}/workers/{personId}", "patch"),
            ("/api/v1/projects/{id}/teams", "post"),
            ("/api/v1/projects/{id}/teams", "get"),
            ("/api/v1/projects/{id}/daily", "get"),
            ("/api/v1/projects/{id}/import", "post"),
            ("/api/v1/reports/monthly", "get"),
            ("/api/v1/workers/{personId}/blacklist", "post"),
            ("/api/v1/workers/{personId}/blacklist", "delete"),
            ("/api/v1/blacklist", "get"),
            ("/api/v1/firmware", "post"),
            ("/api/v1/firmware", "get"),
            ("/api/v1/firmware/{id}", "get"),
            ("/api/v1/firmware/{id}/deploy", "post"),
            ("/api/v1/users", "post"),
            ("/api/v1/users", "get"),
            ("/api/v1/users/{id}", "patch"),
            ("/api/v1/me", "get"),
            ("/api/v1/me/password", "post"),
            ("/api/v1/me/tokens", "post"),
            ("/api/v1/me/tokens", "get"),
            ("/api/v1/me/tokens/{id}", "delete"),
            ("/api/v1/audit", "get"),
            ("/api/v1/login", "post"),
            ("/api/v1/logout", "post"),
            ("/api/v1/devices/{sn}/tasks/{taskid}/retry", "post"),
        ] {
            assert!(paths[path][method].is_object(), "{method} {path} missing");
        }
        assert_eq!(doc["security"][0][BEARER], serde_json::json!([]));
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for name in [
            "CreateVendor",
            "VendorCreated",
            "CreateProject",
            "ProjectView",
            "FenceBody",
            "CreateDevice",
            "PatchDevice",
            "DeviceView",
            "CreateWorker",
            "WorkerView",
            "CreateTask",
            "TaskView",
            "AttendancePage",
            "ErrorBody",
        ] {
            assert!(schemas.contains_key(name), "schema {name} missing");
        }
        assert!(
            schemas["DeviceView"]["properties"]["expectedPersonCount"].is_object(),
            "camelCase properties"
        );
        // Operation ids are unique, every response has a description, every authenticated
        // operation documents 401, every change 403, every path parameter 404, every body
        // 413/415/422 and every query string 422.
        let mut ids = std::collections::HashSet::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item") {
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
                let responses = op["responses"].as_object().expect("responses");
                let public = op["security"] == serde_json::json!([]);
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let mut expected = Vec::new();
                if !public {
                    expected.push("401");
                    if method != "get" {
                        expected.push("403");
                    }
                }
                if params.iter().any(|p| p["in"] == "path") {
                    expected.push("404");
                }
                if op["requestBody"].is_object() {
                    expected.extend(["413", "415", "422"]);
                }
                if params.iter().any(|p| p["in"] == "query") {
                    expected.push("422");
                }
                for status in expected {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
                if public {
                    assert!(!responses.contains_key("403"), "{method} {path}: 403");
                }
                for (status, r) in responses {
                    assert!(
                        r["description"].is_string(),
                        "{method} {path} {status}: no description"
                    );
                }
            }
        }
    }
}
