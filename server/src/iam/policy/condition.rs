//! The `Condition` element: operators, set qualifiers (`ForAnyValue:`/`ForAllValues:`), the
//! `…IfExists` suffix, the known condition keys, and how each is evaluated against the
//! request's context values.

use std::net::IpAddr;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::pattern::{split_arn, Pattern};
use super::{PolicyError, PolicyRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Compare),
    Date(Compare),
    Bool,
    Binary,
    IpAddress,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    Single,
    ForAnyValue,
    ForAllValues,
}

/// A policy-side value, parsed once when the policy is put.
#[derive(Debug, Clone)]
enum Operand {
    Text(Pattern),
    Number(f64),
    Date(OffsetDateTime),
    Bool(bool),
    Network(Network),
    Arn(Vec<Pattern>),
}

/// One `Operator: { key: values }` entry.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    family: Family,
    negated: bool,
    set: SetQualifier,
    if_exists: bool,
    key: String,
    operands: Vec<Operand>,
}

/// Base operator names, their family and whether they are the negated form.
const OPERATORS: &[(&str, Family, bool)] = &[
    ("StringEquals", Family::StringEquals, false),
    ("StringNotEquals", Family::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Family::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Family::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Family::StringLike, false),
    ("StringNotLike", Family::StringLike, true),
    ("NumericEquals", Family::Numeric(Compare::Equal), false),
    ("NumericNotEquals", Family::Numeric(Compare::Equal), true),
    ("NumericLessThan", Family::Numeric(Compare::Less), false),
    (
        "NumericLessThanEquals",
        Family::Numeric(Compare::LessOrEqual),
        false,
    ),
    (
        "NumericGreaterThan",
        Family::Numeric(Compare::Greater),
        false,
    ),
    (
        "NumericGreaterThanEquals",
        Family::Numeric(Compare::GreaterOrEqual),
        false,
    ),
    ("DateEquals", Family::Date(Compare::Equal), false),
    ("DateNotEquals", Family::Date(Compare::Equal), true),
    ("DateLessThan", Family::Date(Compare::Less), false),
    (
        "DateLessThanEquals",
        Family::Date(Compare::LessOrEqual),
        false,
    ),
    ("DateGreaterThan", Family::Date(Compare::Greater), false),
    (
        "DateGreaterThanEquals",
        Family::Date(Compare::GreaterOrEqual),
        false,
    ),
    ("Bool", Family::Bool, false),
    ("BinaryEquals", Family::Binary, false),
    ("IpAddress", Family::IpAddress, false),
    ("NotIpAddress", Family::IpAddress, true),
    ("ArnEquals", Family::Arn, false),
    ("ArnNotEquals", Family::Arn, true),
    ("ArnLike", Family::Arn, false),
    ("ArnNotLike", Family::Arn, true),
    ("Null", Family::Null, false),
];

/// Global keys (lower case) S3 accepts in a bucket policy.
const GLOBAL_KEYS: &[&str] = &[
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "aws:currenttime",
    "aws:epochtime",
    "aws:federatedprovider",
    "aws:multifactorauthage",
    "aws:multifactorauthpresent",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalisawsservice",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalservicename",
    "aws:principalservicenameslist",
    "aws:principaltype",
    "aws:referer",
    "aws:requestedregion",
    "aws:resourceaccount",
    "aws:resourceorgid",
    "aws:resourceorgpaths",
    "aws:securetransport",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceidentity",
    "aws:sourceip",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:tagkeys",
    "aws:tokenissuetime",
    "aws:useragent",
    "aws:userid",
    "aws:username",
    "aws:viaawsservice",
    "aws:vpcsourceip",
];

/// S3 service keys (lower case).
const S3_KEYS: &[&str] = &[
    "s3:accesspointnetworkorigin",
    "s3:authtype",
    "s3:dataaccesspointaccount",
    "s3:dataaccesspointarn",
    "s3:delimiter",
    "s3:locationconstraint",
    "s3:max-keys",
    "s3:object-lock-legal-hold",
    "s3:object-lock-mode",
    "s3:object-lock-remaining-retention-days",
    "s3:object-lock-retain-until-date",
    "s3:objectcreationoperation",
    "s3:prefix",
    "s3:requestobjecttagkeys",
    "s3:resourceaccount",
    "s3:signatureage",
    "s3:signatureversion",
    "s3:tlsversion",
    "s3:versionid",
    "s3:x-amz-acl",
    "s3:x-amz-content-sha256",
    "s3:x-amz-copy-source",
    "s3:x-amz-grant-full-control",
    "s3:x-amz-grant-read",
    "s3:x-amz-grant-read-acp",
    "s3:x-amz-grant-write",
    "s3:x-amz-grant-write-acp",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-object-ownership",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-server-side-encryption-customer-algorithm",
    "s3:x-amz-storage-class",
    "s3:x-amz-website-redirect-location",
];

/// Keys that carry a tag key after the slash (`s3:ExistingObjectTag/<key>`).
const TAG_KEY_PREFIXES: &[&str] = &[
    "aws:principaltag/",
    "aws:requesttag/",
    "aws:resourcetag/",
    "s3:existingobjecttag/",
    "s3:requestobjecttag/",
];

/// Whether S3 would accept `key` in a bucket policy. Key names ignore case, as in AWS.
pub fn is_known_condition_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    GLOBAL_KEYS.contains(&lower.as_str())
        || S3_KEYS.contains(&lower.as_str())
        || TAG_KEY_PREFIXES
            .iter()
            .any(|p| lower.len() > p.len() && lower.starts_with(p))
}

/// Parses the whole `Condition` element.
pub(crate) fn parse_conditions(
    element: &Value,
    variables: bool,
) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = element else {
        return Err(PolicyError::InvalidConditionBlock);
    };
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let (family, negated, set, if_exists) = parse_operator(operator)?;
        let Value::Object(keys) = keys else {
            return Err(PolicyError::InvalidConditionBlock);
        };
        if keys.is_empty() {
            return Err(PolicyError::InvalidConditionBlock);
        }
        for (key, values) in keys {
            if !is_known_condition_key(key) {
                return Err(PolicyError::InvalidConditionKey(key.clone()));
            }
            let texts = condition_values(values)
                .ok_or_else(|| PolicyError::InvalidConditionValue(operator.clone()))?;
            let operands = texts
                .iter()
                .map(|t| parse_operand(family, t, variables))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| PolicyError::InvalidConditionValue(operator.clone()))?;
            conditions.push(Condition {
                family,
                negated,
                set,
                if_exists,
                key: key.clone(),
                operands,
            });
        }
    }
    Ok(conditions)
}

fn parse_operator(text: &str) -> Result<(Family, bool, SetQualifier, bool), PolicyError> {
    let invalid = || PolicyError::InvalidConditionOperator(text.to_string());
    let (set, rest) = if let Some(r) = strip_prefix_ignore_case(text, "ForAnyValue:") {
        (SetQualifier::ForAnyValue, r)
    } else if let Some(r) = strip_prefix_ignore_case(text, "ForAllValues:") {
        (SetQualifier::ForAllValues, r)
    } else {
        (SetQualifier::Single, text)
    };
    let (base, if_exists) = match rest.len().checked_sub("IfExists".len()) {
        Some(cut) if rest.is_char_boundary(cut) && rest[cut..].eq_ignore_ascii_case("IfExists") => {
            (&rest[..cut], true)
        }
        _ => (rest, false),
    };
    let &(_, family, negated) = OPERATORS
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(base))
        .ok_or_else(invalid)?;
    // Null tests existence itself: neither a suffix nor a set qualifier means anything on it.
    if family == Family::Null && (if_exists || set != SetQualifier::Single) {
        return Err(invalid());
    }
    Ok((family, negated, set, if_exists))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A condition's values: a string, number or boolean, or a non-empty array of them.
fn condition_values(value: &Value) -> Option<Vec<String>> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

fn parse_operand(family: Family, text: &str, variables: bool) -> Option<Operand> {
    Some(match family {
        Family::StringEquals | Family::StringEqualsIgnoreCase | Family::Binary => {
            Operand::Text(Pattern::compile(text, false, variables))
        }
        Family::StringLike => Operand::Text(Pattern::compile(text, true, variables)),
        Family::Numeric(_) => Operand::Number(parse_number(text)?),
        Family::Date(_) => Operand::Date(parse_date(text)?),
        Family::Bool | Family::Null => Operand::Bool(parse_bool(text)?),
        Family::IpAddress => Operand::Network(Network::parse(text)?),
        Family::Arn => Operand::Arn(
            split_arn(text)?
                .into_iter()
                .map(|part| Pattern::compile(part, true, variables))
                .collect(),
        ),
    })
}

fn parse_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// ISO 8601 (RFC 3339, or a bare `YYYY-MM-DD` meaning midnight UTC) or epoch seconds, the
/// two forms AWS accepts for date conditions.
fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    if let Ok(secs) = text.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// An address range from `IpAddress`: CIDR or a single address. Host bits are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub(crate) fn parse(text: &str) -> Option<Network> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub(crate) fn prefix_len(&self) -> u8 {
        self.prefix
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        // A v4 client seen through a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn compare<T: PartialOrd>(request: T, policy: T, how: Compare) -> bool {
    match how {
        Compare::Equal => request == policy,
        Compare::Less => request < policy,
        Compare::LessOrEqual => request <= policy,
        Compare::Greater => request > policy,
        Compare::GreaterOrEqual => request >= policy,
    }
}

impl Condition {
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Whether this condition is a fixed-value test that narrows who can use an Allow
    /// (an IP range, a source ARN…) rather than one any caller could satisfy.
    pub(crate) fn restricts_by_fixed_value(&self) -> bool {
        if self.negated || self.if_exists || self.set == SetQualifier::ForAllValues {
            return false;
        }
        self.operands.iter().all(|o| match o {
            Operand::Text(p) => !p.has_wildcards() && !p.has_variables(),
            Operand::Arn(parts) => parts.iter().all(|p| !p.has_wildcards()),
            // AWS counts a range narrower than /8 (IPv4) or /32 (IPv6) as non-public.
            Operand::Network(n) => n.prefix_len() >= if n.addr.is_ipv4() { 8 } else { 32 },
            _ => true,
        })
    }

    pub(crate) fn evaluate(&self, request: &PolicyRequest) -> bool {
        let values = request.values(&self.key).filter(|v| !v.is_empty());
        if self.family == Family::Null {
            let absent = values.is_none();
            return self
                .operands
                .iter()
                .any(|o| matches!(o, Operand::Bool(want) if *want == absent));
        }
        let Some(values) = values else {
            // AWS: a missing key fails a positive test and passes a negated one, unless
            // IfExists says "only test it if it is there"; ForAllValues over nothing is true.
            return self.if_exists
                || match self.set {
                    SetQualifier::ForAllValues => true,
                    SetQualifier::ForAnyValue => false,
                    SetQualifier::Single => self.negated,
                };
        };
        let lookup = |name: &str| request.variable(name);
        // For one request value: does it satisfy the operator (after negation)? Negated
        // operators NOR the policy's values; positive ones OR them.
        let value_ok = |value: &String| {
            let any = self
                .operands
                .iter()
                .any(|o| self.operand_matches(o, value, &lookup));
            any != self.negated
        };
        match self.set {
            SetQualifier::ForAllValues => values.iter().all(value_ok),
            SetQualifier::ForAnyValue => values.iter().any(value_ok),
            // A single-valued test over several request values: a negated operator must hold
            // for every value, a positive one for some value.
            SetQualifier::Single if self.negated => values.iter().all(value_ok),
            SetQualifier::Single => values.iter().any(value_ok),
        }
    }

    fn operand_matches(
        &self,
        operand: &Operand,
        value: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        match (self.family, operand) {
            (Family::StringEqualsIgnoreCase, Operand::Text(p)) => p.matches(value, true, lookup),
            (_, Operand::Text(p)) => p.matches(value, false, lookup),
            (Family::Numeric(how), Operand::Number(n)) => {
                parse_number(value).is_some_and(|v| compare(v, *n, how))
            }
            (Family::Date(how), Operand::Date(d)) => {
                parse_date(value).is_some_and(|v| compare(v, *d, how))
            }
            (_, Operand::Bool(b)) => parse_bool(value) == Some(*b),
            (_, Operand::Network(n)) => value
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| n.contains(ip)),
            (_, Operand::Arn(parts)) => split_arn(value).is_some_and(|segments| {
                parts
                    .iter()
                    .zip(segments)
                    .all(|(p, s)| p.matches(s, false, lookup))
            }),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix_and_mapped_v4() {
        let n = Network::parse("54.240.143.0/24").unwrap();
        assert!(n.contains("54.240.143.7".parse().unwrap()));
        assert!(!n.contains("54.240.144.7".parse().unwrap()));
        assert!(n.contains("::ffff:54.240.143.9".parse().unwrap()));
        let v6 = Network::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains("2001:db8:1234:5678::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1234:5679::1".parse().unwrap()));
        assert!(!v6.contains("54.240.143.7".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!(Network::parse("10.0.0.1")
            .unwrap()
            .contains("10.0.0.1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("not-an-ip").is_none());
    }

    #[test]
    fn dates_accept_iso8601_bare_dates_and_epoch_seconds() {
        let a = parse_date("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_date("2024-01-01").unwrap(), a);
        assert_eq!(parse_date("1704067200").unwrap(), a);
        assert!(parse_date("January").is_none());
    }

    #[test]
    fn operator_names_parse_with_qualifiers() {
        assert!(parse_operator("StringLikeIfExists").unwrap().3);
        assert_eq!(
            parse_operator("ForAllValues:StringEquals").unwrap().2,
            SetQualifier::ForAllValues
        );
        assert!(parse_operator("NullIfExists").is_err());
        assert!(parse_operator("StringEqual").is_err());
        assert!(parse_operator("ForSomeValues:StringEquals").is_err());
    }

    #[test]
    fn known_keys_ignore_case_and_tag_keys_need_a_name() {
        assert!(is_known_condition_key("aws:SourceIp"));
        assert!(is_known_condition_key("AWS:SOURCEIP"));
        assert!(is_known_condition_key("s3:ExistingObjectTag/team"));
        assert!(!is_known_condition_key("s3:ExistingObjectTag/"));
        assert!(!is_known_condition_key("s3:prefixes"));
        assert!(!is_known_condition_key("ec2:Region"));
    }
}
