//! JWE compact RSA-OAEP-256 + A256GCM (ZJ-JWE-01, ZJ-JWE-02).
//!
//! Keys are fixtures in `tests/data/jwe/` (see the README there): RSA key generation is far too
//! slow for debug-mode tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use rollcall_protocol::jwe::{JweDecrypter, JweEncrypter, JweError, PROTECTED_HEADER};

const SPKI_2048: &str = include_str!("data/jwe/key2048.spki.pem");
const PKCS1_PUB_2048: &str = include_str!("data/jwe/key2048.pkcs1.pub.pem");
const PKCS8_2048: &str = include_str!("data/jwe/key2048.pkcs8.pem");
const PKCS1_2048: &str = include_str!("data/jwe/key2048.pkcs1.pem");
const OTHER_PKCS8_2048: &str = include_str!("data/jwe/other2048.pkcs8.pem");
const OTHER_SPKI_2048: &str = include_str!("data/jwe/other2048.spki.pem");
const SPKI_1024: &str = include_str!("data/jwe/key1024.spki.pem");
const PKCS1_PUB_1024: &str = include_str!("data/jwe/key1024.pkcs1.pub.pem");
const SPKI_512: &str = include_str!("data/jwe/key512.spki.pem");

static ENCRYPTER: LazyLock<JweEncrypter> = LazyLock::new(|| encrypter(SPKI_2048));
static DECRYPTER: LazyLock<JweDecrypter> = LazyLock::new(|| decrypter(PKCS8_2048));

fn encrypter(pem: &str) -> JweEncrypter {
    JweEncrypter::from_public_key_pem(pem).expect("fixture public key loads")
}

fn decrypter(pem: &str) -> JweDecrypter {
    JweDecrypter::from_private_key_pem(pem).expect("fixture private key loads")
}

fn encrypt(plaintext: &[u8]) -> String {
    ENCRYPTER.encrypt(plaintext).expect("encrypts")
}

fn parts(compact: &str) -> Vec<&str> {
    compact.split('.').collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(part)
        .expect("our output is base64url")
}

/// Re-assembles `compact` with part `index` decoded, changed by `f` and re-encoded.
fn tamper(compact: &str, index: usize, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut parts: Vec<String> = parts(compact).into_iter().map(str::to_owned).collect();
    let mut bytes = unb64(&parts[index]);
    f(&mut bytes);
    parts[index] = b64(&bytes);
    parts.join(".")
}

fn replace_part(compact: &str, index: usize, with: &str) -> String {
    let mut parts = parts(compact);
    parts[index] = with;
    parts.join(".")
}

fn with_header(compact: &str, header_json: &str) -> String {
    replace_part(compact, 0, &b64(header_json.as_bytes()))
}

// ---------------------------------------------------------------- round trips

#[test]
fn round_trip() {
    let hundred_kb: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    let texts: [&[u8]; 5] = [
        b"",
        br#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#,
        "{\"name\":\"张三\",\"errormsg\":\"成功\",\"地址\":\"浙江省杭州市\"}".as_bytes(),
        &hundred_kb,
        &[0, 255, 0, 128],
    ];
    for text in texts {
        let jwe = encrypt(text);
        assert_eq!(DECRYPTER.decrypt(&jwe).expect("decrypts"), text);
    }
}

#[test]
fn both_pem_flavours_of_each_key() {
    let encrypters = [encrypter(SPKI_2048), encrypter(PKCS1_PUB_2048)];
    let decrypters = [decrypter(PKCS8_2048), decrypter(PKCS1_2048)];
    for e in &encrypters {
        assert_eq!(e.key_bits(), 2048);
        let jwe = e.encrypt("考勤".as_bytes()).expect("encrypts");
        for d in &decrypters {
            assert_eq!(d.key_bits(), 2048);
            assert_eq!(d.decrypt(&jwe).expect("decrypts"), "考勤".as_bytes());
        }
    }
}

#[test]
fn pem_whitespace_and_crlf_are_tolerated() {
    let crlf_pub = SPKI_2048.replace('\n', "\r\n");
    let padded_pub = format!("\n\n  {SPKI_2048}  \n\n");
    let crlf_priv = PKCS1_2048.replace('\n', "\r\n");
    let e1 = encrypter(&crlf_pub);
    let e2 = encrypter(&padded_pub);
    let d = decrypter(&crlf_priv);
    for e in [e1, e2] {
        let jwe = e.encrypt(b"x").expect("encrypts");
        assert_eq!(d.decrypt(&jwe).expect("decrypts"), b"x");
    }
}

// ---------------------------------------------------------------- keys

#[test]
fn small_keys_are_refused() {
    for pem in [SPKI_1024, PKCS1_PUB_1024] {
        match JweEncrypter::from_public_key_pem(pem) {
            Err(JweError::KeyTooSmall { bits: 1024 }) => {}
            other => panic!("1024-bit key must be refused, got {other:?}"),
        }
    }
    // Below the rsa crate's own minimum, the size is still reported.
    match JweEncrypter::from_public_key_pem(SPKI_512) {
        Err(JweError::KeyTooSmall { bits: 512 }) => {}
        other => panic!("512-bit key must be refused, got {other:?}"),
    }
    let message = JweEncrypter::from_public_key_pem(SPKI_1024)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "RSA key of 1024 bits refused: at least 2048 bits required"
    );
}

#[test]
fn wrong_kinds_of_pem_are_refused() {
    let bad_public = [
        "",
        "not a key",
        PKCS8_2048,
        PKCS1_2048,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ];
    for pem in bad_public {
        assert!(
            matches!(
                JweEncrypter::from_public_key_pem(pem),
                Err(JweError::Key(_))
            ),
            "{pem:?} must be refused as a public key"
        );
    }
    let bad_private = [
        "",
        "not a key",
        SPKI_2048,
        PKCS1_PUB_2048,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    ];
    for pem in bad_private {
        assert!(
            matches!(
                JweDecrypter::from_private_key_pem(pem),
                Err(JweError::Key(_))
            ),
            "{pem:?} must be refused as a private key"
        );
    }
    // A PKCS#1 key mislabelled as SPKI (and vice versa) is refused, not misread.
    let mislabelled = PKCS1_PUB_2048.replace("RSA PUBLIC KEY", "PUBLIC KEY");
    assert!(JweEncrypter::from_public_key_pem(&mislabelled).is_err());
}

#[test]
fn key_errors_never_quote_key_material() {
    let Err(err) = JweDecrypter::from_private_key_pem(SPKI_2048) else {
        panic!("a public key is not a private key");
    };
    let message = err.to_string();
    assert!(!message.contains("MII"), "{message}");
}

#[test]
fn debug_shows_only_the_key_size() {
    let e = format!("{:?}", *ENCRYPTER);
    assert_eq!(e, "JweEncrypter { key_bits: 2048 }");
    let d = format!("{:?}", *DECRYPTER);
    assert!(d.contains("REDACTED"), "{d}");
    assert!(d.contains("2048"), "{d}");
    assert!(!d.contains("MII"), "{d}");
    // No big integers (modulus, exponents, primes) in any radix.
    assert!(d.len() < 80, "{d}");
}

// ---------------------------------------------------------------- the format

#[test]
fn output_shape() {
    let text = br#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#;
    let jwe = encrypt(text);
    assert!(
        jwe.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
        "base64url without padding: {jwe}"
    );
    let p = parts(&jwe);
    assert_eq!(p.len(), 5);
    assert_eq!(unb64(p[0]), PROTECTED_HEADER.as_bytes());
    assert_eq!(p[0], "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0");
    let header: serde_json::Value = serde_json::from_slice(&unb64(p[0])).expect("JSON header");
    assert_eq!(
        header,
        serde_json::json!({"alg": "RSA-OAEP-256", "enc": "A256GCM"})
    );
    assert_eq!(unb64(p[1]).len(), 256, "RSA-2048 encrypted key");
    assert_eq!(unb64(p[2]).len(), 12, "96-bit IV");
    assert_eq!(unb64(p[3]).len(), text.len(), "GCM ciphertext");
    assert_eq!(unb64(p[4]).len(), 16, "128-bit tag");
}

#[test]
fn empty_plaintext_has_an_empty_ciphertext_part() {
    let jwe = encrypt(b"");
    assert_eq!(parts(&jwe)[3], "");
    assert_eq!(DECRYPTER.decrypt(&jwe).expect("decrypts"), b"");
}

#[test]
fn each_encryption_is_fresh() {
    let a = encrypt(b"same text");
    let b = encrypt(b"same text");
    assert_ne!(a, b);
    let (pa, pb) = (parts(&a), parts(&b));
    assert_eq!(pa[0], pb[0]);
    assert_ne!(pa[1], pb[1], "fresh CEK");
    assert_ne!(pa[2], pb[2], "fresh IV");
    assert_ne!(pa[3], pb[3]);
}

// ---------------------------------------------------------------- interop

/// Produced once by jwcrypto 1.6.1 (Python) for `key2048.spki.pem`; see the data README.
#[test]
fn decrypts_jwcrypto_output() {
    let vectors = [
        (
            include_str!("data/jwe/jwcrypto_token.jwe"),
            include_str!("data/jwe/jwcrypto_token.json"),
        ),
        (
            include_str!("data/jwe/jwcrypto_chinese.jwe"),
            include_str!("data/jwe/jwcrypto_chinese.json"),
        ),
    ];
    for (jwe, json) in vectors {
        for d in [&*DECRYPTER, &decrypter(PKCS1_2048)] {
            let plaintext = d.decrypt(jwe.trim()).expect("decrypts jwcrypto's JWE");
            assert_eq!(String::from_utf8(plaintext).expect("UTF-8"), json);
        }
    }
    assert_eq!(
        include_str!("data/jwe/jwcrypto_token.json"),
        r#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#
    );
}

/// Produced once by this module and verified by jwcrypto to decrypt (see the data README).
#[test]
fn decrypts_our_stored_output() {
    let jwe = include_str!("data/jwe/ours_token.jwe").trim();
    assert_eq!(
        DECRYPTER.decrypt(jwe).expect("decrypts"),
        br#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#
    );
    assert!(jwe.starts_with("eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0."));
}

/// Prints a fresh JWE of the token text for a by-hand check with an independent implementation:
/// `cargo test -p rollcall-protocol --test jwe -- --ignored --nocapture emit_for_interop`.
#[test]
#[ignore = "by-hand interop check"]
fn emit_for_interop() {
    println!(
        "{}",
        encrypt(br#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#)
    );
}

// ---------------------------------------------------------------- rejection

fn assert_decrypt_fails(jwe: &str) {
    match DECRYPTER.decrypt(jwe) {
        Err(JweError::Decrypt) => {}
        other => panic!("expected Decrypt error, got {other:?}"),
    }
}

#[test]
fn tampering_with_any_part_is_detected() {
    let jwe = encrypt(br#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#);
    // Encrypted key: a flipped bit, first and last byte.
    assert_decrypt_fails(&tamper(&jwe, 1, |b| b[0] ^= 1));
    assert_decrypt_fails(&tamper(&jwe, 1, |b| {
        let last = b.len() - 1;
        b[last] ^= 0x80;
    }));
    // Encrypted key of the wrong length.
    assert_decrypt_fails(&tamper(&jwe, 1, |b| b.truncate(255)));
    assert_decrypt_fails(&tamper(&jwe, 1, |b| b.push(0)));
    assert_decrypt_fails(&replace_part(&jwe, 1, ""));
    // IV, ciphertext, tag.
    assert_decrypt_fails(&tamper(&jwe, 2, |b| b[11] ^= 1));
    assert_decrypt_fails(&tamper(&jwe, 3, |b| b[0] ^= 1));
    assert_decrypt_fails(&tamper(&jwe, 3, |b| b.truncate(b.len() - 1)));
    assert_decrypt_fails(&tamper(&jwe, 3, |b| b.push(0)));
    assert_decrypt_fails(&tamper(&jwe, 4, |b| b[15] ^= 1));
    // The header is authenticated (AAD): an equivalent but different header fails.
    assert_decrypt_fails(&with_header(
        &jwe,
        r#"{"enc":"A256GCM","alg":"RSA-OAEP-256"}"#,
    ));
    assert_decrypt_fails(&with_header(
        &jwe,
        r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"x"}"#,
    ));
    // Parts swapped between two valid JWEs.
    let other = encrypt(br#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#);
    assert_decrypt_fails(&replace_part(&jwe, 1, parts(&other)[1]));
    assert_decrypt_fails(&replace_part(&jwe, 4, parts(&other)[4]));
    // Still fine untouched.
    assert!(DECRYPTER.decrypt(&jwe).is_ok());
}

#[test]
fn every_single_character_change_is_an_error_not_a_panic() {
    let jwe = encrypt(b"{}");
    let bytes = jwe.as_bytes();
    // Every position of the short parts, and a stride through the encrypted key.
    for i in (0..bytes.len()).filter(|i| i % 7 == 0 || *i > bytes.len() - 80) {
        if bytes[i] == b'.' {
            continue;
        }
        let mut changed = bytes.to_vec();
        changed[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).expect("ASCII");
        assert!(DECRYPTER.decrypt(&changed).is_err(), "position {i}");
    }
}

#[test]
fn wrong_private_key_fails() {
    let jwe = encrypt(b"secret");
    let other = decrypter(OTHER_PKCS8_2048);
    match other.decrypt(&jwe) {
        Err(JweError::Decrypt) => {}
        r => panic!("expected Decrypt error, got {r:?}"),
    }
    // And the other key pair works on its own.
    let jwe = encrypter(OTHER_SPKI_2048)
        .encrypt(b"secret")
        .expect("encrypts");
    assert_eq!(other.decrypt(&jwe).expect("decrypts"), b"secret");
    assert!(DECRYPTER.decrypt(&jwe).is_err());
}

#[test]
fn other_algorithms_are_unsupported() {
    let jwe = encrypt(b"{}");
    let headers = [
        r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#,
        r#"{"alg":"RSA1_5","enc":"A256GCM"}"#,
        r#"{"alg":"dir","enc":"A256GCM"}"#,
        r#"{"alg":"none","enc":"A256GCM"}"#,
        r#"{"alg":"rsa-oaep-256","enc":"A256GCM"}"#,
        r#"{"alg":"RSA-OAEP-256","enc":"A128GCM"}"#,
        r#"{"alg":"RSA-OAEP-256","enc":"A256CBC-HS512"}"#,
        r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","zip":"DEF"}"#,
        r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","crit":["exp"],"exp":1}"#,
        r#"{"alg":["RSA-OAEP-256"],"enc":"A256GCM"}"#,
        r#"{"alg":"RSA-OAEP-256","enc":7}"#,
        r#"{"alg":null,"enc":"A256GCM"}"#,
    ];
    for header in headers {
        match DECRYPTER.decrypt(&with_header(&jwe, header)) {
            Err(JweError::Unsupported(_)) => {}
            other => panic!("{header}: expected Unsupported, got {other:?}"),
        }
    }
    let long_alg = format!(r#"{{"alg":"{}","enc":"A256GCM"}}"#, "X".repeat(10_000));
    match DECRYPTER.decrypt(&with_header(&jwe, &long_alg)) {
        Err(JweError::Unsupported(detail)) => assert!(detail.len() < 200, "{detail}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn malformed_inputs() {
    let jwe = encrypt(b"{}");
    let p = parts(&jwe);
    let cases = [
        String::new(),
        ".".repeat(4),
        p[..4].join("."),
        format!("{jwe}."),
        format!("{jwe}.{}", p[4]),
        replace_part(&jwe, 0, ""),
        with_header(&jwe, "not json"),
        with_header(&jwe, r#"["RSA-OAEP-256","A256GCM"]"#),
        with_header(&jwe, r#""RSA-OAEP-256""#),
        with_header(&jwe, r#"{"enc":"A256GCM"}"#),
        with_header(&jwe, r#"{"alg":"RSA-OAEP-256"}"#),
        replace_part(&jwe, 0, &format!("{}=", p[0])),
        replace_part(&jwe, 1, &format!("{}==", p[1])),
        replace_part(&jwe, 2, &p[2].replace(|c: char| c.is_alphanumeric(), "+")),
        replace_part(&jwe, 3, "!!!!"),
        tamper(&jwe, 2, |b| b.truncate(11)),
        tamper(&jwe, 2, |b| b.push(0)),
        tamper(&jwe, 4, |b| b.truncate(15)),
        replace_part(&jwe, 4, ""),
        jwe.replace('.', ","),
        format!(" {jwe}"),
    ];
    for case in &cases {
        match DECRYPTER.decrypt(case) {
            Err(JweError::Malformed(_)) => {}
            other => panic!("{case:?}: expected Malformed, got {other:?}"),
        }
    }
}

#[test]
fn errors_display() {
    assert_eq!(JweError::Decrypt.to_string(), "JWE decryption failed");
    assert_eq!(
        JweError::Malformed("expected 5 dot-separated parts").to_string(),
        "malformed JWE: expected 5 dot-separated parts"
    );
}

// ---------------------------------------------------------------- never panics

fn b64url_part() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{0,64}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decrypt_never_panics_on_arbitrary_strings(s in any::<String>()) {
        prop_assert!(DECRYPTER.decrypt(&s).is_err());
    }

    #[test]
    fn decrypt_never_panics_on_arbitrary_five_part_strings(
        a in any::<String>(), b in any::<String>(), c in any::<String>(),
        d in any::<String>(), e in any::<String>(),
    ) {
        let s = [a, b, c, d, e].map(|p| p.replace('.', "")).join(".");
        prop_assert!(DECRYPTER.decrypt(&s).is_err());
    }

    #[test]
    fn decrypt_never_panics_on_base64url_five_part_strings(
        parts in proptest::collection::vec(b64url_part(), 5),
    ) {
        let _ = DECRYPTER.decrypt(&parts.join("."));
    }

    /// Our header with random key, IV, ciphertext and tag of plausible sizes: reaches the RSA and
    /// GCM steps.
    #[test]
    fn decrypt_rejects_random_bodies_with_a_valid_header(
        ek in proptest::collection::vec(any::<u8>(), 0..300),
        iv in proptest::collection::vec(any::<u8>(), 12),
        ct in proptest::collection::vec(any::<u8>(), 0..64),
        tag in proptest::collection::vec(any::<u8>(), 16),
    ) {
        let s = [PROTECTED_HEADER.as_bytes(), &ek, &iv, &ct, &tag].map(b64).join(".");
        prop_assert!(matches!(DECRYPTER.decrypt(&s), Err(JweError::Decrypt)));
    }

    #[test]
    fn round_trip_any_bytes(text in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let jwe = encrypt(&text);
        prop_assert_eq!(DECRYPTER.decrypt(&jwe).map_err(|e| TestCaseError::fail(e.to_string()))?, text);
    }
}
