//! Browser-based uploads (S3 "POST Object"): the form's policy document, its signature
//! (SigV4: `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`; SigV2:
//! `AWSAccessKeyId`, `signature`), its expiration and its conditions.
//!
//! The HTTP layer reads the form fields (everything before the `file` field) into
//! [`FormFields`]; [`authenticate`] says who signed the policy, and [`PostPolicy::check`]
//! holds the fields against every condition, refusing fields no condition covers, as S3 does.
//! `content-length-range` can only be checked while the file streams, so the policy hands it
//! out ([`PostPolicy::content_length_range`]) for the S3 layer to enforce.

use base64::Engine as _;
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::sigv4::{self, Credential, SigningKey, ALGORITHM, S3_SERVICE};
use super::{AuthError, Principal, SecretLookup};

/// The form fields of a POST upload, in the order sent. Names compare case-insensitively.
#[derive(Debug, Default, Clone)]
pub struct FormFields {
    fields: Vec<(String, String)>,
}

impl FormFields {
    pub fn new() -> FormFields {
        FormFields::default()
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push((name.into(), value.into()));
    }

    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Replaces every value of `name` (or adds it).
    pub fn set(&mut self, name: &str, value: String) {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.fields.push((name.to_string(), value));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// One condition of a policy. Field names are lower case, without the `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    ContentLengthRange { min: u64, max: u64 },
}

/// A parsed, signature-checked policy document.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    pub expiration: OffsetDateTime,
    pub conditions: Vec<Condition>,
}

/// Fields that never need a condition (S3: the signature, the file, the policy itself, and
/// names starting with `x-ignore-`).
fn exempt(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "policy" | "x-amz-signature" | "file" | "awsaccesskeyid" | "signature"
    ) || n.starts_with("x-ignore-")
}

/// Fields S3 matches exactly only: `starts-with` on them never holds.
const EXACT_ONLY: &[&str] = &[
    "bucket",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-security-token",
];

fn invalid(message: impl Into<String>) -> AuthError {
    AuthError::InvalidPolicyDocument(format!("Invalid Policy: {}", message.into()))
}

fn denied(message: impl std::fmt::Display) -> AuthError {
    AuthError::AccessDenied(format!("Invalid according to Policy: {message}"))
}

impl PostPolicy {
    /// Parses the `policy` form field: Base64 of a JSON document with `expiration` and
    /// `conditions` (and nothing else).
    pub fn parse(policy_base64: &str) -> Result<PostPolicy, AuthError> {
        let compact: String = policy_base64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let json = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| invalid("the policy is not valid Base64."))?;
        let doc: serde_json::Value =
            serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let serde_json::Value::Object(doc) = doc else {
            return Err(invalid("the policy must be a JSON object."));
        };
        if let Some(other) = doc
            .keys()
            .find(|k| *k != "expiration" && *k != "conditions")
        {
            return Err(invalid(format!("Unexpected field '{other}'.")));
        }
        let expiration = doc
            .get("expiration")
            .ok_or_else(|| invalid("Policy missing expiration."))?
            .as_str()
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .ok_or_else(|| invalid("Invalid 'expiration' value."))?;
        let list = doc
            .get("conditions")
            .ok_or_else(|| invalid("Policy missing conditions."))?
            .as_array()
            .ok_or_else(|| invalid("'conditions' must be a list."))?;
        let mut conditions = Vec::new();
        for c in list {
            parse_condition(c, &mut conditions)?;
        }
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    /// The `content-length-range` bounds, when the policy sets them (the last one wins).
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().rev().find_map(|c| match c {
            Condition::ContentLengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }

    /// Checks expiration and every condition against the form (`bucket` is the bucket the
    /// form is posted to), and that every form field is covered by a condition.
    pub fn check(
        &self,
        fields: &FormFields,
        bucket: &str,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        if self.expiration <= now {
            return Err(denied("Policy expired."));
        }
        let value = |field: &str| -> String {
            if field == "bucket" {
                bucket.to_string()
            } else {
                fields.get(field).unwrap_or_default().to_string()
            }
        };
        for c in &self.conditions {
            let ok = match c {
                Condition::Eq { field, value: want } => value(field) == *want,
                Condition::StartsWith { field, prefix } => {
                    let have = value(field);
                    if EXACT_ONLY.contains(&field.as_str()) {
                        false
                    } else if field == "content-type" {
                        // A list of types: each one must start with the prefix.
                        have.split(',')
                            .all(|t| t.trim().starts_with(prefix.as_str()))
                    } else {
                        have.starts_with(prefix.as_str())
                    }
                }
                Condition::ContentLengthRange { .. } => true,
            };
            if !ok {
                return Err(denied(format!("Policy Condition failed: {}", describe(c))));
            }
        }
        let covered = |name: &str| {
            self.conditions.iter().any(|c| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                    field.eq_ignore_ascii_case(name)
                }
                Condition::ContentLengthRange { .. } => false,
            })
        };
        let extra: Vec<&str> = fields
            .iter()
            .map(|(n, _)| n)
            .filter(|n| !exempt(n) && !covered(n))
            .collect();
        if !extra.is_empty() {
            return Err(denied(format!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(())
    }
}

fn describe(c: &Condition) -> String {
    match c {
        Condition::Eq { field, value } => format!("[\"eq\", \"${field}\", \"{value}\"]"),
        Condition::StartsWith { field, prefix } => {
            format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
        }
        Condition::ContentLengthRange { min, max } => {
            format!("[\"content-length-range\", {min}, {max}]")
        }
    }
}

fn parse_condition(c: &serde_json::Value, out: &mut Vec<Condition>) -> Result<(), AuthError> {
    use serde_json::Value;
    match c {
        // {"acl": "public-read"} is ["eq", "$acl", "public-read"].
        Value::Object(map) if !map.is_empty() => {
            for (field, value) in map {
                let value = value.as_str().ok_or_else(|| {
                    invalid(format!("Condition value of '{field}' must be a string."))
                })?;
                out.push(Condition::Eq {
                    field: field.to_ascii_lowercase(),
                    value: value.to_string(),
                });
            }
            Ok(())
        }
        Value::Array(items) if items.len() == 3 => {
            let op = items[0]
                .as_str()
                .ok_or_else(|| invalid("a condition's operator must be a string."))?
                .to_ascii_lowercase();
            match op.as_str() {
                "eq" | "starts-with" => {
                    let (Some(field), Some(value)) = (items[1].as_str(), items[2].as_str()) else {
                        return Err(invalid(format!(
                            "Condition '{op}' takes a field name and a string."
                        )));
                    };
                    let field = field
                        .strip_prefix('$')
                        .ok_or_else(|| {
                            invalid(format!("Condition field '{field}' must start with '$'."))
                        })?
                        .to_ascii_lowercase();
                    out.push(if op == "eq" {
                        Condition::Eq {
                            field,
                            value: value.to_string(),
                        }
                    } else {
                        Condition::StartsWith {
                            field,
                            prefix: value.to_string(),
                        }
                    });
                    Ok(())
                }
                "content-length-range" => {
                    let bound = |v: &Value| -> Option<u64> {
                        match v {
                            Value::Number(n) => n.as_u64(),
                            Value::String(s) => s.trim().parse().ok(),
                            _ => None,
                        }
                    };
                    let (Some(min), Some(max)) = (bound(&items[1]), bound(&items[2])) else {
                        return Err(invalid(
                            "content-length-range takes two non-negative integers.",
                        ));
                    };
                    if min > max {
                        return Err(invalid(
                            "content-length-range's minimum exceeds its maximum.",
                        ));
                    }
                    out.push(Condition::ContentLengthRange { min, max });
                    Ok(())
                }
                other => Err(invalid(format!("Invalid condition operator '{other}'."))),
            }
        }
        _ => Err(invalid(format!("Invalid condition: {c}"))),
    }
}

/// Who signed the form, and the policy when there is one. A form without a policy and
/// without signature fields is anonymous; a policy always needs a signature and vice versa.
pub fn authenticate(
    fields: &FormFields,
    region: &str,
    secrets: &dyn SecretLookup,
) -> Result<(Principal, Option<PostPolicy>), AuthError> {
    let v4 = fields.get("x-amz-signature").is_some();
    let v2 = fields.get("signature").is_some() || fields.get("awsaccesskeyid").is_some();
    let Some(policy_b64) = fields.get("policy") else {
        if v4 || v2 {
            return Err(missing("policy"));
        }
        return Ok((Principal::Anonymous, None));
    };
    if v4 && v2 {
        return Err(AuthError::InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Signature or the Signature form field \
             should be specified"
                .to_string(),
        ));
    }
    let access_key = if v4 {
        verify_v4(fields, policy_b64, region, secrets)?
    } else {
        verify_v2(fields, policy_b64, secrets)?
    };
    // The signature is good: only now is the document worth reading.
    let policy = PostPolicy::parse(policy_b64)?;
    Ok((Principal::AccessKey(access_key), Some(policy)))
}

fn missing(name: &str) -> AuthError {
    AuthError::InvalidArgument(format!(
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the \
         order of the fields."
    ))
}

fn verify_v4(
    fields: &FormFields,
    policy_b64: &str,
    region: &str,
    secrets: &dyn SecretLookup,
) -> Result<String, AuthError> {
    let algorithm = fields
        .get("x-amz-algorithm")
        .ok_or_else(|| missing("x-amz-algorithm"))?;
    if algorithm != ALGORITHM {
        return Err(AuthError::InvalidArgument(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\""
        )));
    }
    let credential = fields
        .get("x-amz-credential")
        .ok_or_else(|| missing("x-amz-credential"))?;
    let credential = Credential::parse(credential)
        .map_err(|reason| AuthError::InvalidArgument(format!("X-Amz-Credential: {reason}")))?;
    credential
        .check_scope(region)
        .map_err(|reason| AuthError::InvalidArgument(format!("X-Amz-Credential: {reason}")))?;
    let date = fields
        .get("x-amz-date")
        .ok_or_else(|| missing("x-amz-date"))?;
    if sigv4::parse_amz_date(date).is_none() {
        return Err(AuthError::InvalidArgument(
            "X-Amz-Date must be in the ISO8601 basic format (YYYYMMDD'T'HHMMSS'Z')".to_string(),
        ));
    }
    let secret = secrets
        .secret_key(&credential.access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    let key = SigningKey::derive(&secret, &credential.date, &credential.region, S3_SERVICE);
    let expected = hex::encode(key.sign(policy_b64.as_bytes()));
    let supplied = fields
        .get("x-amz-signature")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if supplied.len() != expected.len()
        || !bool::from(expected.as_bytes().ct_eq(supplied.as_bytes()))
    {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    Ok(credential.access_key)
}

fn verify_v2(
    fields: &FormFields,
    policy_b64: &str,
    secrets: &dyn SecretLookup,
) -> Result<String, AuthError> {
    let access_key = fields
        .get("awsaccesskeyid")
        .ok_or_else(|| missing("AWSAccessKeyId"))?;
    let signature = fields
        .get("signature")
        .ok_or_else(|| missing("Signature"))?;
    let secret = secrets
        .secret_key(access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    let expected = super::sigv2::sign(&secret, policy_b64.as_bytes());
    let supplied = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .unwrap_or_default();
    if supplied.len() != expected.len() || !bool::from(expected.ct_eq(supplied.as_slice())) {
        return Err(AuthError::SignatureDoesNotMatch);
    }
    Ok(access_key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Keys;
    impl SecretLookup for Keys {
        fn secret_key(&self, access_key: &str) -> Option<String> {
            (access_key == "AKID").then(|| "secret".to_string())
        }
    }

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    fn form(pairs: &[(&str, &str)]) -> FormFields {
        let mut f = FormFields::new();
        for (n, v) in pairs {
            f.push(*n, *v);
        }
        f
    }

    const FUTURE: &str = "2999-01-01T00:00:00.000Z";

    fn policy(conditions: &str) -> PostPolicy {
        PostPolicy::parse(&b64(&format!(
            r#"{{"expiration":"{FUTURE}","conditions":{conditions}}}"#
        )))
        .expect("a valid policy")
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn parses_the_three_condition_forms() {
        let p = policy(
            r#"[{"acl":"public-read"},{"Bucket":"b"},["starts-with","$Key","user/"],
                ["content-length-range", 1, "100"],["EQ","$x-amz-meta-a","1"]]"#,
        );
        assert_eq!(
            p.conditions,
            vec![
                Condition::Eq {
                    field: "acl".into(),
                    value: "public-read".into()
                },
                Condition::Eq {
                    field: "bucket".into(),
                    value: "b".into()
                },
                Condition::StartsWith {
                    field: "key".into(),
                    prefix: "user/".into()
                },
                Condition::ContentLengthRange { min: 1, max: 100 },
                Condition::Eq {
                    field: "x-amz-meta-a".into(),
                    value: "1".into()
                },
            ]
        );
        assert_eq!(p.content_length_range(), Some((1, 100)));
    }

    #[test]
    fn malformed_documents_are_invalid_policy_documents() {
        for doc in [
            "not json",
            "[]",
            r#"{"conditions":[]}"#,
            r#"{"expiration":"tomorrow","conditions":[]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z"}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":{}}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[],"extra":1}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["eq","key","v"]]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["eq","$key"]]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["in","$key","v"]]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["content-length-range",5,1]]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["content-length-range",-1,1]]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[{"key":1}]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[{}]}"#,
            r#"{"expiration":"2999-01-01T00:00:00Z","conditions":["key"]}"#,
        ] {
            let err = PostPolicy::parse(&b64(doc)).expect_err(doc);
            assert_eq!(err.code(), "InvalidPolicyDocument", "{doc}: {err}");
        }
        assert_eq!(
            PostPolicy::parse("%%%").unwrap_err().code(),
            "InvalidPolicyDocument"
        );
    }

    #[test]
    fn conditions_hold_or_name_the_failed_one() {
        let p = policy(
            r#"[{"bucket":"photos"},["starts-with","$key","user/eric/"],{"success_action_status":"201"},
                ["starts-with","$Content-Type","image/"],["starts-with","$x-amz-meta-tag",""]]"#,
        );
        let good = form(&[
            ("key", "user/eric/a.jpg"),
            ("success_action_status", "201"),
            ("Content-Type", "image/jpeg"),
            ("x-amz-meta-tag", "anything"),
            ("policy", "…"),
            ("x-amz-signature", "…"),
            ("x-ignore-me", "x"),
        ]);
        p.check(&good, "photos", now())
            .expect("every condition holds");
        let err = p.check(&good, "other", now()).unwrap_err();
        assert_eq!(err.code(), "AccessDenied");
        assert!(
            err.to_string().contains(r#"["eq", "$bucket", "photos"]"#),
            "{err}"
        );

        let mut bad = good.clone();
        bad.set("key", "user/mallory/a.jpg".into());
        let err = p.check(&bad, "photos", now()).unwrap_err();
        assert!(err.to_string().contains("$key"), "{err}");

        let mut types = good.clone();
        types.set("Content-Type", "image/png, text/html".into());
        assert!(p.check(&types, "photos", now()).is_err());
    }

    #[test]
    fn fields_without_a_condition_are_extra_input_fields() {
        let p = policy(r#"[{"bucket":"b"},["starts-with","$key",""]]"#);
        let f = form(&[("key", "k"), ("x-amz-meta-secret", "1"), ("Policy", "p")]);
        let err = p.check(&f, "b", now()).unwrap_err();
        assert_eq!(err.code(), "AccessDenied");
        assert_eq!(
            err.to_string(),
            "Invalid according to Policy: Extra input fields: x-amz-meta-secret"
        );
    }

    #[test]
    fn starts_with_on_exact_only_fields_never_holds() {
        let p = policy(r#"[["starts-with","$bucket",""],["starts-with","$key",""]]"#);
        assert!(p.check(&form(&[("key", "k")]), "b", now()).is_err());
    }

    #[test]
    fn an_expired_policy_is_refused() {
        let p = PostPolicy::parse(&b64(
            r#"{"expiration":"2000-01-01T00:00:00Z","conditions":[["starts-with","$key",""]]}"#,
        ))
        .unwrap();
        let err = p.check(&form(&[("key", "k")]), "b", now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid according to Policy: Policy expired."
        );
    }

    fn v4_form(policy_b64: &str, secret: &str, region: &str) -> FormFields {
        let key = SigningKey::derive(secret, "20250101", region, "s3");
        let signature = hex::encode(key.sign(policy_b64.as_bytes()));
        form(&[
            ("key", "k"),
            ("x-amz-algorithm", ALGORITHM),
            (
                "x-amz-credential",
                &format!("AKID/20250101/{region}/s3/aws4_request"),
            ),
            ("x-amz-date", "20250101T000000Z"),
            ("policy", policy_b64),
            ("x-amz-signature", &signature),
        ])
    }

    #[test]
    fn sigv4_and_sigv2_signatures_are_verified() {
        let doc = b64(&format!(r#"{{"expiration":"{FUTURE}","conditions":[]}}"#));
        let (who, p) = authenticate(&v4_form(&doc, "secret", "us-east-1"), "us-east-1", &Keys)
            .expect("a good SigV4 signature");
        assert_eq!(who, Principal::AccessKey("AKID".into()));
        assert!(p.is_some());
        let err =
            authenticate(&v4_form(&doc, "wrong", "us-east-1"), "us-east-1", &Keys).unwrap_err();
        assert_eq!(err, AuthError::SignatureDoesNotMatch);
        let err =
            authenticate(&v4_form(&doc, "secret", "eu-west-1"), "us-east-1", &Keys).unwrap_err();
        assert_eq!(err.code(), "InvalidArgument");

        let sig = base64::engine::general_purpose::STANDARD
            .encode(crate::auth::sigv2::sign("secret", doc.as_bytes()));
        let v2 = form(&[
            ("AWSAccessKeyId", "AKID"),
            ("policy", &doc),
            ("signature", &sig),
        ]);
        let (who, _) = authenticate(&v2, "us-east-1", &Keys).expect("a good SigV2 signature");
        assert_eq!(who, Principal::AccessKey("AKID".into()));
        let mut forged = v2.clone();
        forged.set(
            "policy",
            b64(r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[]}"#),
        );
        assert_eq!(
            authenticate(&forged, "us-east-1", &Keys).unwrap_err(),
            AuthError::SignatureDoesNotMatch
        );
        let mut unknown = v2;
        unknown.set("AWSAccessKeyId", "NOPE".into());
        assert_eq!(
            authenticate(&unknown, "us-east-1", &Keys).unwrap_err(),
            AuthError::InvalidAccessKeyId
        );
    }

    #[test]
    fn anonymous_forms_and_half_signed_forms() {
        let (who, p) = authenticate(&form(&[("key", "k")]), "us-east-1", &Keys).unwrap();
        assert_eq!(who, Principal::Anonymous);
        assert!(p.is_none());
        let err = authenticate(&form(&[("policy", "e30=")]), "us-east-1", &Keys).unwrap_err();
        assert_eq!(err.code(), "InvalidArgument");
        let err =
            authenticate(&form(&[("x-amz-signature", "00")]), "us-east-1", &Keys).unwrap_err();
        assert!(err.to_string().contains("'policy'"), "{err}");
    }
}
