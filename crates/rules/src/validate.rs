//! Field rules shared by the admin API, the console and the services: trimmed text with a
//! length cap and no control characters. Errors name the field, in Chinese.

/// A field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The field's name as the caller sent it (`idcardNo`, `name`, …).
    pub field: String,
    /// Machine-readable code (`invalid_field`, `invalid_idcard`, `invalid_photo`, …).
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        }
    }
}

/// A required text field: trimmed, not empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(
            "invalid_field",
            field,
            format!("字段 {field} 不能为空"),
        ));
    }
    optional_text(field, Some(v), max).map(Option::unwrap_or_default)
}

/// An optional text field: trimmed, empty counts as absent, at most `max` characters.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(FieldError::new(
            "invalid_field",
            field,
            format!("字段 {field} 过长，最多 {max} 个字符"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            "invalid_field",
            field,
            format!("字段 {field} 不能包含控制字符"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// Longest device serial number.
pub const MAX_SN_CHARS: usize = 64;

/// A device serial number: trimmed, not empty, at most [`MAX_SN_CHARS`] characters, and
/// nothing that would break a URL path (`/devices/{sn}`, `/console/devices/{sn}`).
pub fn sn(value: &str) -> Result<String, FieldError> {
    let sn = value.trim();
    let bad = |why: &str| FieldError::new("invalid_sn", "sn", format!("字段 sn {why}"));
    if sn.is_empty() {
        return Err(bad("不能为空"));
    }
    if sn.chars().count() > MAX_SN_CHARS {
        return Err(bad(&format!("过长，最多 {MAX_SN_CHARS} 个字符")));
    }
    if sn
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '?' | '#' | '%'))
    {
        return Err(bad("不能包含空白、控制字符或 / \\ ? # %"));
    }
    Ok(sn.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_fit_in_a_path() {
        assert_eq!(sn(" SN-001 ").as_deref(), Ok("SN-001"));
        for bad in [
            "",
            "  ",
            "a b",
            "a/b",
            "a?b",
            "a#b",
            "a%b",
            "a\\b",
            &"x".repeat(65),
        ] {
            assert_eq!(sn(bad).unwrap_err().field, "sn", "{bad}");
        }
    }

    #[test]
    fn text_rules_name_the_field() {
        assert_eq!(required_text("name", "  张三 ", 8).as_deref(), Ok("张三"));
        assert_eq!(required_text("name", "  ", 8).unwrap_err().field, "name");
        assert_eq!(optional_text("phone", Some(""), 8), Ok(None));
        assert!(optional_text("phone", Some("123456789"), 8).is_err());
        assert!(optional_text("phone", Some("1\u{7}"), 8).is_err());
    }
}
