//! Shared plumbing of the admin handlers: the JSON body extractor whose every rejection is an
//! [`ApiError`] (`{"error": {...}}`, never axum's plain text), query-string parameters with
//! errors that name the parameter, `from`/`to` times (epoch milliseconds or RFC 3339), ids
//! as decimal strings, and page limits.
//!
//! Body errors reuse the protocol crate's diagnosis ([`rollcall_protocol::params::parse`]):
//! a body that is valid JSON but does not fit the request type gets a Chinese message naming
//! the member (`缺少字段 sn`, `字段 enabled 类型错误: …`). The admin API itself stays strict
//! JSON: JSON5 is never accepted here.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Longest piece of client input echoed in an error message, in characters.
const MAX_ECHO_CHARS: usize = 40;

/// `axum::Json` with [`ApiError`] rejections: 415 `unsupported_media_type` without a JSON
/// content type, 413 `payload_too_large` over the route's body limit, 422 `invalid_json` for
/// bad syntax or a body that does not fit (with `field` when the member is known).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::custom(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "请求体须为 JSON（Content-Type: application/json）",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| match r.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::custom(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "请求体过大",
                ),
                _ => ApiError::invalid("invalid_json", "无法读取请求体"),
            })?;
        parse_body(&bytes).map(ApiJson)
    }
}

/// The media type of a request's `Content-Type`, lower case, parameters dropped.
fn essence(headers: &HeaderMap) -> Option<String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?;
    Some(
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// `application/json` or `application/*+json`, parameters (charset) ignored.
fn is_json(headers: &HeaderMap) -> bool {
    essence(headers).is_some_and(|essence| {
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    })
}

/// `axum::extract::Multipart` with [`ApiError`] rejections (axum's are plain text): 415
/// `unsupported_media_type` unless the body is `multipart/form-data`, 422 `invalid_form`
/// when its boundary is missing or unusable. Errors while reading fields go through
/// [`form_error`].
#[derive(Debug)]
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if essence(req.headers()).as_deref() != Some("multipart/form-data") {
            return Err(ApiError::custom(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "请求体须为表单（Content-Type: multipart/form-data）",
            ));
        }
        Multipart::from_request(req, state)
            .await
            .map(ApiMultipart)
            .map_err(|_| {
                ApiError::invalid(
                    "invalid_form",
                    "无法读取上传的表单：Content-Type 缺少有效的 boundary",
                )
            })
    }
}

/// A field of a form that could not be read: 413 `payload_too_large` over the route's body
/// limit, else 422 `invalid_form`.
pub fn form_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::custom(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "请求体过大",
        )
    } else {
        ApiError::invalid(
            "invalid_form",
            format!("无法读取上传的表单：{}", e.body_text()),
        )
    }
}

/// `axum::extract::Path` with [`ApiError`] rejections (axum's are plain text): a path
/// parameter that cannot be read (not UTF-8 once percent-decoded) names nothing, so it is a
/// 404 like a malformed id ([`path_id`]), naming the parameter in `field`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e))
                if !e.status().is_server_error() =>
            {
                let (message, field) = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => (
                        format!("路径参数 {key} 不是有效的 UTF-8"),
                        Some(key.clone()),
                    ),
                    _ => ("路径参数无法解析".to_owned(), None),
                };
                let err = ApiError::custom(StatusCode::NOT_FOUND, "not_found", message);
                Err(match field {
                    Some(key) => err.with("field", serde_json::Value::from(key)),
                    None => err,
                })
            }
            // The route and the handler's type disagree: a bug, not bad input.
            Err(e) => Err(ApiError::Internal(format!("path parameters: {e}"))),
        }
    }
}

/// Reads a strict JSON body into `T`; errors name the member where possible.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object. serde would also read a struct from an array of its
    // members in order (`[null, null]` as an empty patch), which no client means.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(ApiError::invalid(
            "invalid_json",
            "请求体须为 JSON 对象（{…}）",
        ));
    }
    let err = match serde_json::from_slice::<T>(bytes) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if !err.is_data() {
        let message = if bytes.iter().all(u8::is_ascii_whitespace) {
            "请求体为空，需要一个 JSON 对象".to_owned()
        } else {
            format!(
                "请求体不是有效的 JSON：第 {} 行第 {} 列",
                err.line(),
                err.column()
            )
        };
        return Err(ApiError::invalid("invalid_json", message));
    }
    // Valid JSON that does not fit: the protocol crate's diagnosis names the member.
    let detail = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| rollcall_protocol::params::parse::<T>(text).err())
        .and_then(|e| e.detail)
        .unwrap_or_else(|| format!("请求体字段错误：{err}"));
    Err(match field_of(&detail) {
        Some(field) => ApiError::invalid_field("invalid_json", &field, detail),
        None => ApiError::invalid("invalid_json", detail),
    })
}

/// The member a diagnosis names: `缺少字段 X` or `字段 X …`.
fn field_of(detail: &str) -> Option<String> {
    let rest = detail
        .strip_prefix("缺少字段 ")
        .or_else(|| detail.strip_prefix("字段 "))?;
    let name = rest.split(' ').next().unwrap_or("");
    (!name.is_empty()).then(|| name.to_owned())
}

/// The query string as name → value (the last of repeated names wins). A malformed query
/// string is a 422 `invalid_query`.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(map)| QueryParams(map))
            .map_err(|_| ApiError::invalid("invalid_query", "查询参数格式错误"))
    }
}

impl QueryParams {
    /// A parameter's value; an empty value counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An id parameter (decimal string).
    pub fn id(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                id_value(v).ok_or_else(|| {
                    ApiError::invalid_field(
                        "invalid_query",
                        name,
                        format!("参数 {name} 应为十进制数字字符串，收到 {}", echo(v)),
                    )
                })
            })
            .transpose()
    }

    /// A time parameter: epoch milliseconds or RFC 3339.
    pub fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                parse_time(v).ok_or_else(|| {
                    ApiError::invalid_field(
                        "invalid_query",
                        name,
                        format!(
                            "参数 {name} 应为毫秒时间戳或 RFC 3339 时间（如 2024-05-01T08:00:00+08:00），收到 {}",
                            echo(v)
                        ),
                    )
                })
            })
            .transpose()
    }

    /// `limit`: a positive integer (64-bit, as the OpenAPI document declares it), `default`
    /// when absent, clamped to `max`.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(n.min(i64::from(max)) as u32),
                _ => Err(ApiError::invalid_field(
                    "invalid_query",
                    "limit",
                    format!(
                        "参数 limit 应为正整数（超过 {max} 按 {max} 计），收到 {}",
                        echo(v)
                    ),
                )),
            },
        }
    }
}

/// Parses a decimal id (1 to 19 digits, positive), naming `field` in the 422 `invalid_id`.
pub fn parse_id(field: &str, s: &str) -> Result<i64, ApiError> {
    id_value(s).ok_or_else(|| {
        ApiError::invalid_field(
            "invalid_id",
            field,
            format!("字段 {field} 应为十进制数字字符串，收到 {}", echo(s)),
        )
    })
}

/// A positive decimal id, or `None`.
pub fn id_value(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok().filter(|&id| id > 0)
}

/// An id in a path: a malformed one cannot name anything, so it is a 404 like an unknown one.
pub fn path_id(what: &str, s: &str) -> Result<i64, ApiError> {
    id_value(s).ok_or_else(|| ApiError::NotFound(format!("{what} {}", echo(s))))
}

/// Client input as shown in an error message: quoted and cut.
pub fn echo(s: &str) -> String {
    let mut cut: String = s.chars().take(MAX_ECHO_CHARS).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    format!("\"{}\"", cut.escape_debug())
}

/// A required text field: trimmed, not empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    Ok(rollcall_rules::validate::required_text(field, value, max)?)
}

/// An optional text field: trimmed, empty counts as absent, at most `max` characters.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    Ok(rollcall_rules::validate::optional_text(field, value, max)?)
}

/// Epoch milliseconds (an optionally signed integer) or an RFC 3339 date-time.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    parse_rfc3339(s)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to epoch milliseconds (fraction truncated to ms).
///
/// Lenient where URLs are: `t`/`z` in lower case and a space for `T` (RFC 3339 §5.6 note),
/// and a space for `+` in the offset (a `+` not percent-encoded in a query string arrives as
/// a space). A leap second (`:60`) counts as the next second.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = num(17..19)?;
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start || end - start > 9 {
            return None;
        }
        for k in 0..3 {
            millis = millis * 10
                + b.get(start + k)
                    .filter(|_| start + k < end)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        i = end;
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-' | b' ') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_millis_pass_through() {
        assert_eq!(parse_time("0"), Some(0));
        assert_eq!(parse_time("1714521600000"), Some(1_714_521_600_000));
        assert_eq!(parse_time("-1000"), Some(-1000));
        assert_eq!(parse_time(" 1714521600000 "), Some(1_714_521_600_000));
        assert_eq!(parse_time(""), None);
        assert_eq!(parse_time("-"), None);
        assert_eq!(parse_time("12a"), None);
        assert_eq!(parse_time("1e3"), None);
    }

    #[test]
    fn rfc3339_forms() {
        // 2024-05-01T00:00:00Z = 1714521600 s.
        let utc = 1_714_521_600_000;
        assert_eq!(parse_time("2024-05-01T00:00:00Z"), Some(utc));
        assert_eq!(parse_time("2024-05-01t00:00:00z"), Some(utc));
        assert_eq!(parse_time("2024-05-01 00:00:00Z"), Some(utc));
        assert_eq!(parse_time("2024-05-01T08:00:00+08:00"), Some(utc));
        // An unencoded `+` in a query string arrives as a space.
        assert_eq!(parse_time("2024-05-01T08:00:00 08:00"), Some(utc));
        assert_eq!(parse_time("2024-04-30T19:30:00-04:30"), Some(utc));
        assert_eq!(parse_time("2024-05-01T00:00:00.5Z"), Some(utc + 500));
        assert_eq!(
            parse_time("2024-05-01T00:00:00.123456789Z"),
            Some(utc + 123)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), Some(-1000));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_time("2016-12-31T23:59:60Z"), Some(1_483_228_800_000));
    }

    #[test]
    fn rfc3339_rejects() {
        for bad in [
            "2024-05-01",
            "2024-05-01T00:00:00",
            "2024-05-01T00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T00:60:00Z",
            "2024-05-01T00:00:61Z",
            "2024-05-01T00:00:00.Z",
            "2024-05-01T00:00:00.1234567891Z",
            "2024-05-01T00:00:00+0800",
            "2024-05-01T00:00:00+24:00",
            "2024-05-01T00:00:00Zjunk",
            "2024/05/01T00:00:00Z",
            "２024-05-01T00:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(id_value("1"), Some(1));
        assert_eq!(
            id_value("4508004291609636864"),
            Some(4_508_004_291_609_636_864)
        );
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1.0",
            "abc",
            "99999999999999999999",
            "9223372036854775808",
        ] {
            assert_eq!(id_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn echo_cuts_and_quotes() {
        assert_eq!(echo("abc"), "\"abc\"");
        assert_eq!(echo("a\"b"), "\"a\\\"b\"");
        let long = "x".repeat(100);
        assert_eq!(echo(&long).chars().count(), MAX_ECHO_CHARS + 3);
    }

    /// A form over the route's body limit is 413 `payload_too_large`, as the document says,
    /// not 422 `invalid_form`. (The real upload limits are hundreds of MiB: a small router
    /// with the same extractor and a small limit shows the mapping.)
    #[tokio::test]
    async fn a_form_over_the_body_limit_is_413() {
        use axum::body::{Body, to_bytes};
        use axum::extract::DefaultBodyLimit;
        use axum::response::IntoResponse;
        use tower_service::Service;

        async fn upload(ApiMultipart(mut form): ApiMultipart) -> Result<StatusCode, ApiError> {
            while let Some(field) = form.next_field().await.map_err(form_error)? {
                field.bytes().await.map_err(form_error)?;
            }
            Ok(StatusCode::NO_CONTENT)
        }
        let mut router = axum::Router::new()
            .route("/", axum::routing::post(upload))
            .layer(DefaultBodyLimit::max(256));
        let form = |size: usize| {
            let mut body = b"--X\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n".to_vec();
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend(b"\r\n--X--\r\n");
            Request::builder()
                .method("POST")
                .uri("/")
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=X")
                .body(Body::from(body))
                .unwrap()
        };
        let small = router.call(form(10)).await.into_response();
        assert_eq!(small.status(), StatusCode::NO_CONTENT);
        let big = router.call(form(4096)).await.into_response();
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = to_bytes(big.into_body(), 4096).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "payload_too_large");
    }

    #[test]
    fn body_errors_name_the_member() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            sn: String,
            enabled: Option<bool>,
        }
        let err = parse_body::<Body>(br#"{"enabled":true}"#).unwrap_err();
        assert!(err.to_string().contains("sn"), "{err}");
        let err = parse_body::<Body>(br#"{"sn":"a","enabled":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("enabled"), "{err}");
        let err = parse_body::<Body>(b"{sn:'a'}").unwrap_err();
        assert!(err.to_string().contains("JSON"), "{err}");
        let err = parse_body::<Body>(b"").unwrap_err();
        assert!(err.to_string().contains("为空"), "{err}");
        // A struct is never read from an array of its members.
        for not_an_object in [&b"[\"a\", true]"[..], b" [null]", b"\"a\"", b"1", b"null"] {
            let err = parse_body::<Body>(not_an_object).unwrap_err();
            assert!(err.to_string().contains("对象"), "{err}");
        }
        assert!(parse_body::<Body>(b" {\"sn\":\"a\"}").is_ok());
        assert_eq!(field_of("缺少字段 sn"), Some("sn".into()));
        assert_eq!(
            field_of("字段 fence.center 类型错误"),
            Some("fence.center".into())
        );
        assert_eq!(field_of("JSON 语法错误"), None);
    }
}
