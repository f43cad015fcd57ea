//! The national real-name platform's wire format (UPLINK.md "Transport and envelope"), as
//! pure functions: no I/O, no clock, no randomness — the caller passes the nonce and the
//! timestamp, so the known-answer vectors of UPLINK.md are tests here.
//!
//! - [`sign`]: lowercase hex SHA-256 of the lowercased `name=value&…&appsecret=…` string
//!   (names in ASCII order, raw values, the secret last).
//! - [`encrypt_id`] / [`decrypt_id`]: AES-256-CBC, key = the 32 ASCII bytes of the secret,
//!   IV = its first 16 bytes, PKCS#7, Base64. Deterministic (a fixed IV), which is what the
//!   national platform expects: it is how the same ID number is recognised in two requests.
//! - [`Envelope`]: the form fields of one request, signed; [`parse_answer`]: the
//!   `{"code","message","data"}` answer.

use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::array::Array;
use aes_gcm::aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rollcall_protocol::ids::Secret;
use rollcall_protocol::time::Timestamp;
use sha2::{Digest, Sha256};

/// The envelope's fixed `format` and `version`.
pub const FORMAT: &str = "json";
pub const VERSION: &str = "1.0";
/// An `appsecret` is 32 ASCII characters (it is also the AES-256 key).
pub const SECRET_LEN: usize = 32;
const BLOCK: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("appsecret must be 32 ASCII characters")]
    BadSecret,
    #[error("not Base64 of AES-256-CBC blocks")]
    BadCiphertext,
    #[error("bad PKCS#7 padding (wrong secret?)")]
    BadPadding,
    #[error("the answer is not the platform's JSON: {0}")]
    BadAnswer(String),
}

/// Whether a secret can key the cipher (32 ASCII bytes).
pub fn valid_secret(secret: &str) -> bool {
    secret.len() == SECRET_LEN && secret.is_ascii()
}

fn cipher(secret: &str) -> Result<(Aes256, [u8; BLOCK]), CodecError> {
    if !valid_secret(secret) {
        return Err(CodecError::BadSecret);
    }
    let key = secret.as_bytes();
    let aes = Aes256::new_from_slice(key).map_err(|_| CodecError::BadSecret)?;
    let mut iv = [0u8; BLOCK];
    iv.copy_from_slice(&key[..BLOCK]);
    Ok((aes, iv))
}

/// Encrypts an ID (or bank-card) number for the wire.
pub fn encrypt_id(secret: &Secret, plain: &str) -> Result<String, CodecError> {
    let (aes, iv) = cipher(secret.expose())?;
    let mut data = plain.as_bytes().to_vec();
    let pad = BLOCK - data.len() % BLOCK;
    data.extend(std::iter::repeat_n(pad as u8, pad));
    let mut previous = iv;
    for chunk in data.chunks_exact_mut(BLOCK) {
        for (b, p) in chunk.iter_mut().zip(previous) {
            *b ^= p;
        }
        let mut block = Array::<u8, _>::try_from(&*chunk).map_err(|_| CodecError::BadSecret)?;
        aes.encrypt_block(&mut block);
        chunk.copy_from_slice(&block);
        previous.copy_from_slice(chunk);
    }
    Ok(STANDARD.encode(data))
}

/// Decrypts what [`encrypt_id`] made (the mock platform and checks use it).
pub fn decrypt_id(secret: &Secret, encoded: &str) -> Result<String, CodecError> {
    let (aes, iv) = cipher(secret.expose())?;
    let mut data = STANDARD
        .decode(encoded)
        .map_err(|_| CodecError::BadCiphertext)?;
    if data.is_empty() || !data.len().is_multiple_of(BLOCK) {
        return Err(CodecError::BadCiphertext);
    }
    let mut previous = iv;
    for chunk in data.chunks_exact_mut(BLOCK) {
        let mut saved = [0u8; BLOCK];
        saved.copy_from_slice(chunk);
        let mut block = Array::<u8, _>::try_from(&*chunk).map_err(|_| CodecError::BadCiphertext)?;
        aes.decrypt_block(&mut block);
        for ((out, b), p) in chunk.iter_mut().zip(block.iter()).zip(previous) {
            *out = b ^ p;
        }
        previous = saved;
    }
    let pad = usize::from(*data.last().ok_or(CodecError::BadPadding)?);
    if pad == 0
        || pad > BLOCK
        || data[data.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return Err(CodecError::BadPadding);
    }
    data.truncate(data.len() - pad);
    String::from_utf8(data).map_err(|_| CodecError::BadPadding)
}

/// One request's envelope, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub appid: String,
    /// The business JSON, as sent (its case is kept; only the signed string is lowercased).
    pub data: String,
    pub method: String,
    pub nonce: String,
    /// `yyyyMMddHHmmss`, Beijing time.
    pub timestamp: String,
}

impl Envelope {
    /// The form fields to POST, `sign` last.
    pub fn form(&self, secret: &Secret) -> Vec<(&'static str, String)> {
        vec![
            ("appid", self.appid.clone()),
            ("data", self.data.clone()),
            ("format", FORMAT.to_owned()),
            ("method", self.method.clone()),
            ("nonce", self.nonce.clone()),
            ("timestamp", self.timestamp.clone()),
            ("version", VERSION.to_owned()),
            ("sign", self.sign(secret)),
        ]
    }

    pub fn sign(&self, secret: &Secret) -> String {
        sign(
            &[
                ("appid", &self.appid),
                ("data", &self.data),
                ("format", FORMAT),
                ("method", &self.method),
                ("nonce", &self.nonce),
                ("timestamp", &self.timestamp),
                ("version", VERSION),
            ],
            secret,
        )
    }
}

/// The signature of a request's fields (any order: they are sorted by name here; `sign`
/// itself is left out).
pub fn sign(fields: &[(&str, &str)], secret: &Secret) -> String {
    let mut sorted: Vec<&(&str, &str)> = fields.iter().filter(|(k, _)| *k != "sign").collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    text.push_str("&appsecret=");
    text.push_str(secret.expose());
    hex::encode(Sha256::digest(text.to_lowercase().as_bytes()))
}

/// `yyyyMMddHHmmss` in Beijing time.
pub fn wire_timestamp(ms: i64) -> String {
    Timestamp::from_epoch_ms(ms).to_wire()
}

/// `yyyy-MM-dd HH:mm:ss` in Beijing time (attendance `date`).
pub fn beijing_datetime(ms: i64) -> String {
    let w = wire_timestamp(ms);
    format!(
        "{}-{}-{} {}:{}:{}",
        &w[0..4],
        &w[4..6],
        &w[6..8],
        &w[8..10],
        &w[10..12],
        &w[12..14]
    )
}

/// `yyyy-MM-dd` in Beijing time (entry/exit `date`).
pub fn beijing_date(ms: i64) -> String {
    beijing_datetime(ms)[..10].to_owned()
}

/// The platform's refusal: `code != 0` and its message (which names the field in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
}

/// Reads an answer: `Ok(Ok(data))` for `code == 0` (`data` is `null` when absent),
/// `Ok(Err(refusal))` otherwise; `Err` when the body is not the platform's JSON.
pub fn parse_answer(body: &[u8]) -> Result<Result<serde_json::Value, Refusal>, CodecError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CodecError::BadAnswer(e.to_string()))?;
    let code = match &value["code"] {
        serde_json::Value::Number(n) => n.as_i64(),
        // Some deployments send the code as a string.
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| CodecError::BadAnswer("no code".to_owned()))?;
    let message = value["message"].as_str().unwrap_or_default().to_owned();
    Ok(if code == 0 {
        Ok(value["data"].clone())
    } else {
        Err(Refusal { code, message })
    })
}

/// An async job's status (`AsyncHandleResult.Query` → `data.status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsyncStatus {
    /// `"0"`: still being handled.
    Pending,
    /// `"10"`: refused; `data.result` says why.
    Failed(String),
    /// `"20"`: done; `data.result` may carry what was made (a team's `teamSysNo`).
    Succeeded(serde_json::Value),
}

/// Reads the `data` of an `AsyncHandleResult.Query` answer.
pub fn async_status(data: &serde_json::Value) -> Result<AsyncStatus, CodecError> {
    let status = match &data["status"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(CodecError::BadAnswer("no status".to_owned())),
    };
    match status.as_str() {
        "0" => Ok(AsyncStatus::Pending),
        "10" => Ok(AsyncStatus::Failed(match &data["result"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "国家平台处理失败".to_owned(),
            other => other.to_string(),
        })),
        "20" => Ok(AsyncStatus::Succeeded(data["result"].clone())),
        other => Err(CodecError::BadAnswer(format!("unknown status {other:?}"))),
    }
}

/// The `teamSysNo` in a `Team.Add` result or a `Team.Query` row (a number or a numeric
/// string, alone or under `teamSysNo`).
pub fn team_sys_no(value: &serde_json::Value) -> Option<i64> {
    let n = match value {
        serde_json::Value::Object(map) => map.get("teamSysNo")?,
        other => other,
    };
    match n {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    /// UPLINK.md "Known-answer vectors", the ID number.
    #[test]
    fn the_id_number_vector_encrypts_and_decrypts() {
        let secret = Secret::new(SECRET);
        let enc = encrypt_id(&secret, "330102199001011234").unwrap();
        assert_eq!(enc, "xXJ6QbHxH9UXrJlpGtH4UugsTsjVXgBL2RXh1KWH6xE=");
        assert_eq!(decrypt_id(&secret, &enc).unwrap(), "330102199001011234");
    }

    /// UPLINK.md "Known-answer vectors", the signature.
    #[test]
    fn the_signature_vector_signs() {
        let secret = Secret::new(SECRET);
        let envelope = Envelope {
            appid: "330100000000000001".into(),
            data: r#"{"projectCode":"330100000000000001","teamSysNo":1001,"dataList":[{"idCardType":"01","idCardNumber":"xXJ6QbHxH9UXrJlpGtH4UugsTsjVXgBL2RXh1KWH6xE=","date":"2024-05-01 07:30:00","direction":"01"}]}"#.into(),
            method: "WorkerAttendance.Add".into(),
            nonce: "00000000000000000000000000000000".into(),
            timestamp: "20240501073005".into(),
        };
        assert_eq!(
            envelope.sign(&secret),
            "fd6165c7b8f2c61ae833fb53c2019195c9b78c60ea8960afa1271fd2a2440bcc"
        );
        let form = envelope.form(&secret);
        assert_eq!(form.last().unwrap().0, "sign");
        // The same fields in another order sign the same.
        let mut fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        fields.reverse();
        assert_eq!(sign(&fields, &secret), envelope.sign(&secret));
    }

    #[test]
    fn a_wrong_secret_or_ciphertext_is_refused() {
        assert_eq!(
            encrypt_id(&Secret::new("short"), "1"),
            Err(CodecError::BadSecret)
        );
        let other = Secret::new("fedcba9876543210fedcba9876543210");
        let enc = encrypt_id(&Secret::new(SECRET), "330102199001011234").unwrap();
        assert!(decrypt_id(&other, &enc).is_err());
        assert_eq!(
            decrypt_id(&Secret::new(SECRET), "not base64!"),
            Err(CodecError::BadCiphertext)
        );
    }

    #[test]
    fn times_are_beijing_time() {
        // 2024-04-30T23:30:00Z is 2024-05-01 07:30:00 in Beijing.
        let ms = 1_714_519_800_000;
        assert_eq!(beijing_datetime(ms), "2024-05-01 07:30:00");
        assert_eq!(beijing_date(ms), "2024-05-01");
        assert_eq!(wire_timestamp(ms), "20240501073000");
    }

    #[test]
    fn answers_and_async_results_are_read() {
        let ok = parse_answer(br#"{"code":0,"message":"ok","data":{"requestSerialCode":"abc"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(ok["requestSerialCode"], "abc");
        let refused =
            parse_answer(r#"{"code":"1","message":"[teamSysNo]值超出范围或无效"}"#.as_bytes())
                .unwrap()
                .unwrap_err();
        assert_eq!(refused.code, 1);
        assert!(refused.message.contains("teamSysNo"));
        assert!(parse_answer(b"<html>").is_err());
        let failed =
            async_status(&serde_json::json!({"status": "10", "result": "[date]不能大于当天!"}));
        assert_eq!(
            failed,
            Ok(AsyncStatus::Failed("[date]不能大于当天!".into()))
        );
        assert_eq!(
            async_status(&serde_json::json!({"status": 0})),
            Ok(AsyncStatus::Pending)
        );
        assert_eq!(
            team_sys_no(&serde_json::json!({"teamSysNo": "1001"})),
            Some(1001)
        );
        assert_eq!(team_sys_no(&serde_json::json!(7)), Some(7));
    }
}
