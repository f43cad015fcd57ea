//! Signatures: **the** recipe tables, for requests (ZJ-SIGN-05), responses (ZJ-SIGN-09) and
//! commands (ZJ-CONN-08).
//!
//! `sign = lowercase_hex(MD5(concatenation of the listed fields ‖ accessSecret))`. Absent
//! fields contribute nothing; `success` contributes `true`/`false`. The param contributes
//! the text exactly as it was sent (for an HTTP object param: its raw byte span in the body),
//! except for the apicodes whose signature leaves the images out — there the param is cut
//! with [`crate::json::cut_members`], which never re-serialises. The platform verifies with
//! [`verify_request`]; the device SDK signs with [`sign_request`]; both read [`request_recipe`].
//!
//! Example: `T_SEND_PERSON` is signed over `version+sn+token+taskid+apicode+param+secret`
//! (see the table in [`request_recipe`]); its response over `version+success+taskid+response
//! +secret` ([`response_recipe`]).

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::apicode::{ApiCode, ImgCut};
use crate::code::ErrorCode;
use crate::json::{self, Cut, JsonError};

/// One ingredient of a signature, in the order a recipe lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Version,
    Sn,
    Token,
    ApiCode,
    TaskId,
    TimeStamp,
    AccessId,
    AccessKey,
    /// The param text as sent.
    Param,
    /// The param text with the apicode's image members cut (ZJ-SIGN-06, ZJ-SIGN-08).
    ParamWithoutImg,
    /// Responses: `true` or `false`.
    Success,
    /// Responses: the exact text written, JSON or JWE; nothing for an acknowledgement
    /// (ZJ-SIGN-10).
    Response,
}

use Part as P;

/// What a request of `api` is signed over, before the secret (ZJ-SIGN-05).
pub const fn request_recipe(api: ApiCode) -> &'static [Part] {
    match api {
        ApiCode::Auth => &[
            P::Version,
            P::Sn,
            P::ApiCode,
            P::AccessId,
            P::AccessKey,
            P::TimeStamp,
        ],
        ApiCode::Heartbeat => &[
            P::Version,
            P::Sn,
            P::Token,
            P::ApiCode,
            P::TimeStamp,
            P::Param,
        ],
        ApiCode::SignIn => &[
            P::Version,
            P::Sn,
            P::Token,
            P::ApiCode,
            P::TimeStamp,
            P::ParamWithoutImg,
        ],
        ApiCode::GetTasks | ApiCode::UpdateTasksStatus => {
            &[P::Version, P::Sn, P::Token, P::ApiCode, P::Param]
        }
        ApiCode::SendPerson
        | ApiCode::UpdateDevicePerson
        | ApiCode::DelDevicePerson
        | ApiCode::UpdateDeviceVersion => {
            &[P::Version, P::Sn, P::Token, P::TaskId, P::ApiCode, P::Param]
        }
        ApiCode::ClearDevicePerson => &[P::Version, P::Sn, P::Token, P::TaskId, P::ApiCode],
        ApiCode::PostDevicePerson => &[
            P::Version,
            P::Sn,
            P::Token,
            P::TaskId,
            P::ApiCode,
            P::ParamWithoutImg,
        ],
        // ZJ-COLLECT-02: timeStamp signed, every image member cut.
        ApiCode::CollectPerson => &[
            P::Version,
            P::Sn,
            P::Token,
            P::ApiCode,
            P::TimeStamp,
            P::ParamWithoutImg,
        ],
    }
}

/// What a response to `api` is signed over, before the secret (ZJ-SIGN-09).
/// The standard signs no C_ response; we sign them like T_GET_TASKS (ext), and
/// X_COLLECT_PERSON likewise (ZJ-COLLECT-02).
pub const fn response_recipe(api: ApiCode) -> &'static [Part] {
    match api {
        ApiCode::Auth
        | ApiCode::Heartbeat
        | ApiCode::SignIn
        | ApiCode::GetTasks
        | ApiCode::UpdateTasksStatus
        | ApiCode::CollectPerson => &[P::Version, P::Success, P::Response],
        ApiCode::SendPerson | ApiCode::UpdateDevicePerson | ApiCode::PostDevicePerson => {
            &[P::Version, P::Success, P::TaskId, P::Response]
        }
        // ZJ-SIGN-14: T_UPDATE_DEVICE_VERSION's answer is not covered; its signed task param is.
        ApiCode::DelDevicePerson | ApiCode::ClearDevicePerson | ApiCode::UpdateDeviceVersion => {
            &[P::Version, P::Success, P::TaskId]
        }
    }
}

/// What a platform→device command is signed over, before the secret (ZJ-CONN-08, ext).
pub const COMMAND_RECIPE: &[Part] = &[
    P::Version,
    P::Sn,
    P::ApiCode,
    P::TaskId,
    P::TimeStamp,
    P::Param,
];

/// The values a signature may cover. Empty strings and `None` are absent and contribute
/// nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignFields<'a> {
    pub version: &'a str,
    pub sn: &'a str,
    pub token: &'a str,
    pub apicode: &'a str,
    pub taskid: &'a str,
    pub time_stamp: &'a str,
    pub access_id: &'a str,
    pub access_key: &'a str,
    /// The param text as sent (a string param's value, or an object param's raw text).
    pub param: Option<&'a str>,
    pub success: Option<bool>,
    pub response: Option<&'a str>,
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The param cannot be tokenized, so the image cut is impossible (answered 400_02,
    /// ZJ-SIGN-08).
    #[error("param cannot be tokenized: {0}")]
    Untokenizable(#[from] JsonError),
    /// No accepted form of the material matches the presented sign (answered 400_04).
    #[error("signature does not match")]
    Mismatch,
}

impl SignError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SignError::Untokenizable(_) => ErrorCode::ParamInvalid,
            SignError::Mismatch => ErrorCode::AuthFailed,
        }
    }
}

/// Lowercase hex MD5 of `recipe` over `fields` with `param` in place of the param, then
/// the secret (ZJ-SIGN-01): absent fields add nothing, `success` adds `true`/`false`
/// (ZJ-SIGN-02). The secret is only hashed, never sent (ZJ-CRED-02).
fn digest(recipe: &[Part], fields: &SignFields<'_>, param: Option<&str>, secret: &str) -> String {
    hex_text(&digest_hex(recipe, fields, param, secret))
}

/// A digest's 32 hex digits as text. They are always ASCII, so the check cannot fail; it is a
/// plain validation, not `from_utf8_lossy`, whose scan for replacements cost every answer's
/// sign a tenth of signing it (BENCHMARKS.md, "sixth machine").
fn hex_text(hex: &[u8; 32]) -> String {
    hex_str(hex).to_owned()
}

/// A sign's 32 hex digits ([`SignMemo::sign_response_hex`]) as text, borrowed.
pub fn hex_str(hex: &[u8; 32]) -> &str {
    // Hex digits are ASCII, so this cannot fail.
    std::str::from_utf8(hex).unwrap_or_default()
}

/// [`digest`] as its 32 hex digits, without allocating: the platform computes two per request
/// (the request's to verify, the answer's to sign), so their buffers showed in a heartbeat's
/// profile (BENCHMARKS.md).
fn digest_hex(
    recipe: &[Part],
    fields: &SignFields<'_>,
    param: Option<&str>,
    secret: &str,
) -> [u8; 32] {
    let mut md5 = Md5::new();
    for &part in recipe {
        md5.update(part_text(part, fields, param).as_bytes());
    }
    md5.update(secret.as_bytes());
    let digest = md5.finalize();
    let mut text = [0u8; 32];
    // A 16-byte digest fills exactly 32 digits, so this cannot fail.
    let _ = hex::encode_to_slice(digest, &mut text);
    text
}

/// What `part` contributes (ZJ-SIGN-02): absent fields nothing, `success` `true`/`false`.
fn part_text<'a>(part: Part, fields: &SignFields<'a>, param: Option<&'a str>) -> &'a str {
    match part {
        P::Version => fields.version,
        P::Sn => fields.sn,
        P::Token => fields.token,
        P::ApiCode => fields.apicode,
        P::TaskId => fields.taskid,
        P::TimeStamp => fields.time_stamp,
        P::AccessId => fields.access_id,
        P::AccessKey => fields.access_key,
        P::Param | P::ParamWithoutImg => param.unwrap_or(""),
        P::Success => match fields.success {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        },
        P::Response => fields.response.unwrap_or(""),
    }
}

/// The cut a recipe asks for, as a [`json::Cut`].
fn cut_for(api: ApiCode) -> Option<Cut<'static>> {
    match api.img_cut() {
        ImgCut::None => None,
        ImgCut::TopLevel(names) => Some(Cut::TopLevel(names)),
        ImgCut::DataRows(name) => Some(Cut::DataRows(name)),
    }
}

/// The param texts a request signature of `api` may cover, form A first (ZJ-SIGN-06,
/// ZJ-SIGN-07).
///
/// `param` is the text as sent (ZJ-SIGN-03). `alt` is an extra accepted rendering (the HTTP
/// layer passes the compact strict rewrite of an object param found in a JSON5 envelope,
/// ZJ-SIGN-04).
pub fn param_candidates(
    api: ApiCode,
    param: Option<&str>,
    alt: Option<&str>,
) -> Result<Vec<String>, JsonError> {
    let mut out: Vec<String> = Vec::with_capacity(4);
    for text in [param, alt].into_iter().flatten() {
        match cut_for(api) {
            Some(cut) => {
                let forms = json::cut_members(text, cut)?;
                out.push(forms.compact);
                out.push(forms.spaced);
            }
            None => out.push(text.to_owned()),
        }
    }
    out.dedup();
    Ok(out)
}

/// Signs a request of `api` as a device should: the param as given, or its form A cut.
pub fn sign_request(
    api: ApiCode,
    fields: &SignFields<'_>,
    secret: &str,
) -> Result<String, JsonError> {
    let recipe = request_recipe(api);
    let param = match (cut_for(api), fields.param) {
        (Some(cut), Some(text)) => Some(json::cut_members(text, cut)?.compact),
        (_, p) => p.map(str::to_owned),
    };
    Ok(digest(recipe, fields, param.as_deref(), secret))
}

/// Verifies a request's `presented` sign against every accepted form (ZJ-SIGN-07), in
/// constant time per comparison (ZJ-SIGN-13). Hex case is ignored: devices in the field send
/// uppercase MD5 too.
pub fn verify_request(
    api: ApiCode,
    fields: &SignFields<'_>,
    alt_param: Option<&str>,
    secret: &str,
    presented: &str,
) -> Result<(), SignError> {
    let recipe = request_recipe(api);
    // The common case, one param form as sent and no image cut (every heartbeat): hashed in
    // place, no candidate list.
    if cut_for(api).is_none() && alt_param.is_none() {
        let expected = digest_hex(recipe, fields, fields.param, secret);
        return if matches_hex(&expected, presented) {
            Ok(())
        } else {
            Err(SignError::Mismatch)
        };
    }
    // A param with nothing to cut (`Cut::leaves_whole`) has itself as its only form, if it
    // tokenizes: one hash, no candidate list. Taken only when it matches: a param that does not
    // tokenize is refused by its interface's parse then (400_02, as here), and a mismatch goes
    // the whole way below for its code (400_02 before 400_04).
    if alt_param.is_none()
        && let (Some(cut), Some(text)) = (cut_for(api), fields.param)
        && cut.leaves_whole(text)
        && matches_hex(&digest_hex(recipe, fields, Some(text), secret), presented)
    {
        return Ok(());
    }
    let candidates = param_candidates(api, fields.param, alt_param)?;
    let mut ok = false;
    if candidates.is_empty() {
        ok |= matches_hex(&digest_hex(recipe, fields, None, secret), presented);
    }
    for c in &candidates {
        // No early exit: the work done does not depend on which form matched.
        ok |= matches_hex(&digest_hex(recipe, fields, Some(c), secret), presented);
    }
    if ok { Ok(()) } else { Err(SignError::Mismatch) }
}

/// Signs a response to `api` (`fields.version`, `success`, `taskid`, `response`).
pub fn sign_response(api: ApiCode, fields: &SignFields<'_>, secret: &str) -> String {
    digest(response_recipe(api), fields, None, secret)
}

/// The sign of one answer, kept for the answers that hash the same bytes.
///
/// A vendor's devices mostly get the same answer to a heartbeat (no task due), signed with the
/// same secret: one MD5 over the same bytes each time, a tenth of a heartbeat's work
/// (BENCHMARKS.md). A memo keeps the first answer it signs — the bytes hashed before the
/// secret, and the sign — and answers every later one with the same bytes without hashing.
/// The bytes decide the hash, so a hit is exact whatever fields they came from.
///
/// **One secret per memo**: the secret is not part of what is compared (it is not kept), so a
/// memo must live with the secret it signs with and go with it (the platform keeps one in each
/// cached vendor row, which a credential rotation replaces).
#[derive(Default)]
pub struct SignMemo(std::sync::OnceLock<Remembered>);

struct Remembered {
    /// The recipe's fields concatenated, without the secret.
    hashed: Box<[u8]>,
    hex: [u8; 32],
}

impl std::fmt::Debug for SignMemo {
    /// Whether it holds an answer; never the answer's text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignMemo")
            .field("remembered", &self.0.get().is_some())
            .finish()
    }
}

impl SignMemo {
    /// [`sign_response`], from the memo when the answer hashes the bytes of the one it keeps.
    pub fn sign_response(&self, api: ApiCode, fields: &SignFields<'_>, secret: &str) -> String {
        hex_text(&self.sign_response_hex(api, fields, secret))
    }

    /// [`Self::sign_response`] as its 32 lowercase hex digits, without allocating (read them
    /// with [`hex_str`]).
    pub fn sign_response_hex(
        &self,
        api: ApiCode,
        fields: &SignFields<'_>,
        secret: &str,
    ) -> [u8; 32] {
        let recipe = response_recipe(api);
        if let Some(kept) = self.0.get()
            && same_bytes(recipe, fields, &kept.hashed)
        {
            return kept.hex;
        }
        let hex = digest_hex(recipe, fields, None, secret);
        if self.0.get().is_none() {
            let hashed: Vec<u8> = recipe
                .iter()
                .flat_map(|&part| part_text(part, fields, None).bytes())
                .collect();
            let _ = self.0.set(Remembered {
                hashed: hashed.into_boxed_slice(),
                hex,
            });
        }
        hex
    }
}

/// Whether `recipe` over `fields` concatenates to exactly `kept`, without concatenating.
fn same_bytes(recipe: &[Part], fields: &SignFields<'_>, kept: &[u8]) -> bool {
    let mut rest = kept;
    for &part in recipe {
        let text = part_text(part, fields, None).as_bytes();
        match rest.strip_prefix(text) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Checks a response's sign (device side).
pub fn verify_response(
    api: ApiCode,
    fields: &SignFields<'_>,
    secret: &str,
    presented: &str,
) -> bool {
    matches(&sign_response(api, fields, secret), presented)
}

/// Signs a command pushed to a device (`version+sn+apicode+taskid+timeStamp+param`).
pub fn sign_command(fields: &SignFields<'_>, secret: &str) -> String {
    digest(COMMAND_RECIPE, fields, fields.param, secret)
}

/// Checks a command's sign (device side).
pub fn verify_command(fields: &SignFields<'_>, secret: &str, presented: &str) -> bool {
    matches(&sign_command(fields, secret), presented)
}

/// Constant-time comparison of an expected lowercase hex sign with a presented one (ZJ-SIGN-13).
pub fn matches(expected: &str, presented: &str) -> bool {
    ct_eq_ignoring_case(expected.as_bytes(), presented.as_bytes())
}

fn matches_hex(expected: &[u8; 32], presented: &str) -> bool {
    ct_eq_ignoring_case(expected, presented.as_bytes())
}

/// `expected` (lowercase) equals `presented` with its ASCII letters lowercased, in time that
/// depends only on the lengths, without a lowercased copy.
fn ct_eq_ignoring_case(expected: &[u8], presented: &[u8]) -> bool {
    if expected.len() != presented.len() {
        return false;
    }
    // The differing bits of every byte, gathered with no branch, and tested once: a `Choice`
    // per byte (an optimisation barrier each) was a sixth of verifying a heartbeat.
    let differ = expected
        .iter()
        .zip(presented)
        .fold(0u8, |differ, (e, p)| differ | (e ^ p.to_ascii_lowercase()));
    differ.ct_eq(&0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_matches_in_either_case_and_only_at_its_length() {
        let expected = "0123456789abcdef0123456789abcdef";
        assert!(matches(expected, expected));
        assert!(matches(expected, &expected.to_uppercase()));
        assert!(!matches(expected, &expected[..31]));
        assert!(!matches(expected, "0123456789abcdef0123456789abcdeg"));
        assert!(!matches(expected, ""));
        let mut hex = [0u8; 32];
        hex.copy_from_slice(expected.as_bytes());
        assert!(matches_hex(&hex, "0123456789ABCDEF0123456789ABCDEF"));
        assert!(!matches_hex(&hex, "1123456789abcdef0123456789abcdef"));
    }

    fn answer<'a>(version: &'a str, success: bool, response: &'a str) -> SignFields<'a> {
        SignFields {
            version,
            success: Some(success),
            response: Some(response),
            ..SignFields::default()
        }
    }

    const SECRET: &str = "memo-secret-0123456789abcdef0123";

    #[test]
    fn a_memo_signs_as_the_recipe_does_and_keeps_only_the_first_answer() {
        let memo = SignMemo::default();
        let idle = answer("1.0", true, r#"{"taskids":[]}"#);
        let due = answer("1.0", true, r#"{"taskids":["7"]}"#);
        // The memo's sign is the recipe's, whatever it keeps.
        let same = |f: &SignFields<'_>| {
            assert_eq!(
                memo.sign_response(ApiCode::Heartbeat, f, SECRET),
                sign_response(ApiCode::Heartbeat, f, SECRET),
                "{:?}",
                f.response
            );
        };
        same(&idle);
        assert!(format!("{memo:?}").contains("remembered: true"));
        assert!(!format!("{memo:?}").contains("taskids"));
        // Another answer is hashed, and does not replace the kept one.
        same(&due);
        same(&idle);
        // A prefix or an extension of the kept bytes is another answer; so is a failure.
        same(&answer("1.0", true, r#"{"taskids":[]"#));
        same(&answer("1.0", true, r#"{"taskids":[]}x"#));
        same(&answer("1.0", false, r#"{"taskids":[]}"#));
        // The memo still holds the first answer, and answers it without hashing: given another
        // secret (which its holder never does), it still gives the kept sign.
        let kept = memo.0.get().map(|k| k.hashed.to_vec());
        assert_eq!(kept.as_deref(), Some(&b"1.0true{\"taskids\":[]}"[..]));
        assert_eq!(
            memo.sign_response(ApiCode::Heartbeat, &idle, "another secret"),
            sign_response(ApiCode::Heartbeat, &idle, SECRET)
        );
    }

    proptest::proptest! {
        /// Whatever answer a memo keeps, it signs every answer exactly as the recipe does.
        #[test]
        fn a_memo_never_changes_a_sign(
            first in ("[0-9.]{0,4}", proptest::bool::ANY, "[a-z{}\\[\\]\":0-9]{0,24}", "[a-z0-9]{0,3}"),
            later in proptest::collection::vec(
                ("[0-9.]{0,4}", proptest::bool::ANY, "[a-z{}\\[\\]\":0-9]{0,24}", "[a-z0-9]{0,3}"),
                1..8,
            ),
            api in proptest::sample::select(vec![ApiCode::Heartbeat, ApiCode::SendPerson, ApiCode::DelDevicePerson]),
        ) {
            let memo = SignMemo::default();
            for (version, success, response, taskid) in std::iter::once(&first).chain(&later) {
                let fields = SignFields {
                    taskid,
                    ..answer(version, *success, response)
                };
                proptest::prop_assert_eq!(
                    memo.sign_response(api, &fields, SECRET),
                    sign_response(api, &fields, SECRET)
                );
            }
        }
    }
}
