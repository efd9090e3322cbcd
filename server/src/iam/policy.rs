//! Bucket policies: the AWS JSON policy grammar, validated as S3's PutBucketPolicy validates
//! it, and evaluated against one request. Pure code: the caller builds a [`PolicyRequest`]
//! (principal, action, resource ARN, condition-key values such as `aws:SourceIp`) and gets a
//! [`Decision`]; combining it with access-key scopes is the caller's job.
//!
//! Principals. Coffer has one tenant and no IAM users or roles, so a policy names access
//! keys. A request's principal is its access key id (`None` for anonymous). A policy
//! principal matches it when it is:
//! - `"*"` or `{"AWS": "*"}`: everyone, anonymous included;
//! - `{"AWS": "arn:aws:iam::<account>:user/<path/><id>"}` or `{"AWS": "<id>"}` or
//!   `{"CanonicalUser": "<id>"}`: the key whose id is `<id>` (the account digits are not
//!   checked: there is only one account);
//! - `{"AWS": "arn:aws:iam::<account>:root"}` or `{"AWS": "<12 digits>"}`: every signed
//!   request, never an anonymous one;
//! - `{"Service": …}` / `{"Federated": …}`: accepted for compatibility, never matches.
//!
//! Role, group and other IAM ARNs are refused ("Invalid principal in policy"); a request
//! principal given as a user ARN is reduced to its last path segment before matching.
//!
//! Policy variables (`${aws:username}`, `${s3:prefix}`…) are substituted in `Resource`,
//! `NotResource` and in String/Arn condition values when `Version` is `2012-10-17`, from the
//! request's condition values; one that is unset makes that resource or value match nothing.
//! Under `2008-10-17` (the default when `Version` is absent) they are literal text. The
//! `${key, 'default'}` form is not supported (it never resolves).
//!
//! Every [`PolicyError`] is S3's `MalformedPolicy`; its `Display` is the message.

mod actions;
mod condition;
mod pattern;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::{Map, Value};

pub use actions::{action_kind, s3_action_for, s3_version_action_for, ResourceKind, S3_ACTIONS};
pub use condition::is_known_condition_key;

use condition::{parse_conditions, Condition};
use pattern::Pattern;

/// S3's limit on a bucket policy document.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Why a policy was refused. All map to S3's `MalformedPolicy` with `to_string()` as the
/// message; the wording follows what S3 answers where S3's wording is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("This policy contains invalid Json")]
    InvalidJson,
    #[error("Policies must be less than 20 KB")]
    TooLarge,
    #[error("The policy must contain a valid version string")]
    InvalidVersion,
    #[error("Unknown field {0}")]
    UnknownField(String),
    #[error("Missing required field {0}")]
    MissingField(&'static str),
    #[error("Could not parse the policy: Statement is empty!")]
    EmptyStatement,
    #[error("Invalid effect: {0}")]
    InvalidEffect(String),
    #[error("Statement cannot contain both {0} and Not{0}")]
    ConflictingElements(&'static str),
    #[error("Invalid principal in policy")]
    InvalidPrincipal,
    #[error("Policy has invalid action")]
    InvalidAction,
    #[error("Policy has invalid resource")]
    InvalidResource,
    #[error("Action does not apply to any resource(s) in statement")]
    ActionResourceMismatch,
    #[error("Invalid Condition type : {0}")]
    InvalidConditionOperator(String),
    #[error("Policy has an invalid condition key")]
    InvalidConditionKey(String),
    #[error("Invalid Condition value for {0}")]
    InvalidConditionValue(String),
    #[error("Condition block must map operators to objects of keys and values")]
    InvalidConditionBlock,
    #[error("Field {0} has an invalid type")]
    InvalidFieldType(&'static str),
}

/// The result of evaluating one policy. Explicit deny beats any allow; `NotApplicable`
/// means the policy says nothing, so the caller's default (deny for anonymous) applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    ExplicitDeny,
    Allow,
    NotApplicable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    V2008_10_17,
    V2012_10_17,
}

/// What one request looks like to a policy. `conditions` holds the context keys (any case;
/// several values for multi-valued keys); the caller fills the ones it knows, such as
/// `aws:SourceIp`, `aws:SecureTransport`, `aws:CurrentTime`, `aws:username`, `s3:prefix`.
#[derive(Debug, Clone, Default)]
pub struct PolicyRequest<'a> {
    /// The access key id (or `arn:aws:iam::…:user/<id>`), `None` when anonymous.
    pub principal: Option<String>,
    /// The action, e.g. `s3:GetObject` (see [`s3_action_for`]).
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key` (see [`bucket_arn`], [`object_arn`]).
    pub resource: String,
    pub conditions: HashMap<String, Vec<String>>,
}

impl<'a> PolicyRequest<'a> {
    pub fn new(principal: Option<&str>, action: &'a str, resource: String) -> Self {
        PolicyRequest {
            principal: principal.map(str::to_string),
            action,
            resource,
            conditions: HashMap::new(),
        }
    }

    /// Adds one value for a condition key.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.conditions
            .entry(key.to_string())
            .or_default()
            .push(value.into());
        self
    }

    /// The values of a condition key, whose name ignores case as in AWS.
    pub fn values(&self, key: &str) -> Option<&[String]> {
        self.conditions
            .get(key)
            .or_else(|| {
                self.conditions
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .map(Vec::as_slice)
    }

    /// A policy variable's value: the key's single value (multi-valued keys don't substitute).
    fn variable(&self, key: &str) -> Option<String> {
        match self.values(key) {
            Some([one]) => Some(one.clone()),
            _ => None,
        }
    }

    /// The principal's key id: a user ARN reduced to its last path segment.
    fn principal_id(&self) -> Option<&str> {
        let p = self.principal.as_deref()?;
        if p.starts_with("arn:") {
            return p
                .rsplit_once(":user/")
                .map(|(_, path)| match path.rsplit_once('/') {
                    Some((_, name)) => name,
                    None => path,
                });
        }
        Some(p)
    }
}

/// `arn:aws:s3:::<bucket>`.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// `arn:aws:s3:::<bucket>/<key>`.
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalEntry {
    Everyone,
    Key(String),
    Account,
    /// Service or federated principals: valid, never a Coffer caller.
    Foreign,
}

impl PrincipalEntry {
    fn matches(&self, request: &PolicyRequest) -> bool {
        match self {
            PrincipalEntry::Everyone => true,
            PrincipalEntry::Key(id) => request.principal_id() == Some(id.as_str()),
            PrincipalEntry::Account => request.principal.is_some(),
            PrincipalEntry::Foreign => false,
        }
    }
}

/// `Action`/`Resource`/`Principal` each come as the element or its `Not…` form.
#[derive(Debug, Clone)]
enum Scope<T> {
    Listed(Vec<T>),
    AllBut(Vec<T>),
}

impl<T> Scope<T> {
    fn applies(&self, mut matches: impl FnMut(&T) -> bool) -> bool {
        match self {
            Scope::Listed(items) => items.iter().any(&mut matches),
            Scope::AllBut(items) => !items.iter().any(&mut matches),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    principals: Scope<PrincipalEntry>,
    actions: Scope<Pattern>,
    resources: Scope<Pattern>,
    conditions: Vec<Condition>,
}

impl Statement {
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    fn applies(&self, request: &PolicyRequest) -> bool {
        let lookup = |name: &str| request.variable(name);
        self.principals.applies(|p| p.matches(request))
            && self
                .actions
                .applies(|a| a.matches(request.action, true, &lookup))
            && self
                .resources
                .applies(|r| r.matches(&request.resource, false, &lookup))
            && self.conditions.iter().all(|c| c.evaluate(request))
    }
}

/// A validated bucket policy.
#[derive(Debug, Clone)]
pub struct Policy {
    version: PolicyVersion,
    id: Option<String>,
    statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates a policy document for `bucket`, as PutBucketPolicy does.
    pub fn parse(document: &[u8], bucket: &str) -> Result<Policy, PolicyError> {
        if document.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let value: Value =
            serde_json::from_slice(document).map_err(|_| PolicyError::InvalidJson)?;
        let Value::Object(top) = value else {
            return Err(PolicyError::InvalidJson);
        };
        for field in top.keys() {
            if !matches!(field.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::UnknownField(field.clone()));
            }
        }
        let version = match top.get("Version") {
            None => PolicyVersion::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => PolicyVersion::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => PolicyVersion::V2008_10_17,
            Some(_) => return Err(PolicyError::InvalidVersion),
        };
        let id = optional_string(&top, "Id")?;
        let statements = match top.get("Statement") {
            None => return Err(PolicyError::MissingField("Statement")),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(PolicyError::EmptyStatement)
            }
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(PolicyError::InvalidFieldType("Statement")),
        };
        let variables = version == PolicyVersion::V2012_10_17;
        let statements = statements
            .into_iter()
            .map(|s| parse_statement(s, bucket, variables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            version,
            id,
            statements,
        })
    }

    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Evaluates every statement: any applicable Deny wins, else any applicable Allow.
    pub fn evaluate(&self, request: &PolicyRequest) -> Decision {
        let mut decision = Decision::NotApplicable;
        for statement in &self.statements {
            if statement.applies(request) {
                match statement.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => decision = Decision::Allow,
                }
            }
        }
        decision
    }

    /// GetBucketPolicyStatus's `IsPublic`: some Allow reaches anonymous callers without a
    /// fixed-value condition (source IP range, source ARN, account…) narrowing it.
    pub fn is_public(&self) -> bool {
        const NARROWING_KEYS: &[&str] = &[
            "aws:sourceip",
            "aws:sourcearn",
            "aws:sourcevpc",
            "aws:sourcevpce",
            "aws:sourceaccount",
            "aws:sourceowner",
            "aws:principalaccount",
            "aws:principalarn",
            "aws:principalorgid",
            "aws:userid",
            "s3:dataaccesspointarn",
            "s3:dataaccesspointaccount",
        ];
        let anonymous = PolicyRequest::default();
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.principals.applies(|p| p.matches(&anonymous))
                && !s.conditions.iter().any(|c| {
                    NARROWING_KEYS.contains(&c.key().to_ascii_lowercase().as_str())
                        && c.restricts_by_fixed_value()
                })
        })
    }
}

fn optional_string(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, PolicyError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PolicyError::InvalidFieldType(field)),
    }
}

/// `"x"` or `["x", "y"]`, non-empty, all strings; `what` is the error for anything else.
fn string_list(value: &Value, what: PolicyError) -> Result<Vec<String>, PolicyError> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| what.clone())?,
        _ => return Err(what),
    };
    Ok(list)
}

/// The element or its `Not…` form, exactly one of them.
fn either<'v>(
    map: &'v Map<String, Value>,
    name: &'static str,
    not_name: &'static str,
) -> Result<(bool, &'v Value), PolicyError> {
    match (map.get(name), map.get(not_name)) {
        (Some(_), Some(_)) => Err(PolicyError::ConflictingElements(name)),
        (Some(v), None) => Ok((false, v)),
        (None, Some(v)) => Ok((true, v)),
        (None, None) => Err(PolicyError::MissingField(name)),
    }
}

fn scope<T>(negated: bool, items: Vec<T>) -> Scope<T> {
    if negated {
        Scope::AllBut(items)
    } else {
        Scope::Listed(items)
    }
}

fn parse_statement(value: &Value, bucket: &str, variables: bool) -> Result<Statement, PolicyError> {
    let Value::Object(map) = value else {
        return Err(PolicyError::InvalidFieldType("Statement"));
    };
    if map.is_empty() {
        return Err(PolicyError::EmptyStatement);
    }
    for field in map.keys() {
        if !matches!(
            field.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(PolicyError::UnknownField(field.clone()));
        }
    }
    let sid = optional_string(map, "Sid")?;
    let effect = match map.get("Effect") {
        None => return Err(PolicyError::MissingField("Effect")),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(PolicyError::InvalidEffect(shown));
        }
    };

    let (not, principal) = either(map, "Principal", "NotPrincipal")?;
    let principals = scope(not, parse_principal(principal)?);

    let (not_action, action) = either(map, "Action", "NotAction")?;
    let action_texts = string_list(action, PolicyError::InvalidAction)?;
    let mut action_patterns = Vec::with_capacity(action_texts.len());
    for text in &action_texts {
        action_patterns.push(parse_action(text)?);
    }

    let (not_resource, resource) = either(map, "Resource", "NotResource")?;
    let resource_texts = string_list(resource, PolicyError::InvalidResource)?;
    for text in &resource_texts {
        check_resource(text, bucket)?;
    }
    let resource_patterns: Vec<Pattern> = resource_texts
        .iter()
        .map(|r| Pattern::compile(r, true, variables))
        .collect();

    check_actions_fit_resources(
        &action_patterns,
        not_action,
        &resource_texts,
        not_resource,
        bucket,
    )?;

    let conditions = match map.get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(c, variables)?,
    };

    Ok(Statement {
        sid,
        effect,
        principals,
        actions: scope(not_action, action_patterns),
        resources: scope(not_resource, resource_patterns),
        conditions,
    })
}

fn parse_principal(value: &Value) -> Result<Vec<PrincipalEntry>, PolicyError> {
    let map = match value {
        Value::String(s) if s == "*" => return Ok(vec![PrincipalEntry::Everyone]),
        Value::Object(map) if !map.is_empty() => map,
        _ => return Err(PolicyError::InvalidPrincipal),
    };
    let mut entries = Vec::new();
    for (kind, ids) in map {
        for id in string_list(ids, PolicyError::InvalidPrincipal)? {
            entries.push(match kind.as_str() {
                "AWS" => parse_aws_principal(&id)?,
                "CanonicalUser" if is_plain_id(&id) => PrincipalEntry::Key(id),
                "Service" | "Federated" if !id.is_empty() => PrincipalEntry::Foreign,
                _ => return Err(PolicyError::InvalidPrincipal),
            });
        }
    }
    Ok(entries)
}

fn is_plain_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn parse_aws_principal(id: &str) -> Result<PrincipalEntry, PolicyError> {
    if id == "*" {
        return Ok(PrincipalEntry::Everyone);
    }
    if is_account_id(id) {
        return Ok(PrincipalEntry::Account);
    }
    if let Some(rest) = id.strip_prefix("arn:aws:iam::") {
        let (account, resource) = rest.split_once(':').ok_or(PolicyError::InvalidPrincipal)?;
        if !is_account_id(account) {
            return Err(PolicyError::InvalidPrincipal);
        }
        if resource == "root" {
            return Ok(PrincipalEntry::Account);
        }
        if let Some(path) = resource.strip_prefix("user/") {
            let name = path.rsplit('/').next().unwrap_or(path);
            if is_plain_id(name) {
                return Ok(PrincipalEntry::Key(name.to_string()));
            }
        }
        return Err(PolicyError::InvalidPrincipal);
    }
    if is_plain_id(id) {
        return Ok(PrincipalEntry::Key(id.to_string()));
    }
    Err(PolicyError::InvalidPrincipal)
}

/// `*`, or `s3:` followed by an action name or a wildcard pattern matching at least one.
fn parse_action(text: &str) -> Result<Pattern, PolicyError> {
    if text == "*" {
        return Ok(Pattern::compile(text, true, false));
    }
    let (service, name) = text.split_once(':').ok_or(PolicyError::InvalidAction)?;
    if !service.eq_ignore_ascii_case("s3") || name.is_empty() {
        return Err(PolicyError::InvalidAction);
    }
    let pattern = Pattern::compile(text, true, false);
    let none = |_: &str| None;
    if !S3_ACTIONS
        .iter()
        .any(|(a, _)| pattern.matches(a, true, &none))
    {
        return Err(PolicyError::InvalidAction);
    }
    Ok(pattern)
}

/// A resource must be an S3 ARN inside the bucket the policy is attached to.
fn check_resource(text: &str, bucket: &str) -> Result<(), PolicyError> {
    let rest = text
        .strip_prefix("arn:aws:s3:::")
        .ok_or(PolicyError::InvalidResource)?;
    let bucket_part = rest.split('/').next().unwrap_or(rest);
    // Variables may name keys, never the bucket: a policy must be about its own bucket.
    let none = |_: &str| None;
    if bucket_part.is_empty()
        || bucket_part.contains("${")
        || !Pattern::compile(bucket_part, true, false).matches(bucket, false, &none)
    {
        return Err(PolicyError::InvalidResource);
    }
    Ok(())
}

/// AWS refuses a statement where no listed action applies to any listed resource: object
/// actions need `bucket/…` ARNs, bucket actions the bucket ARN itself.
fn check_actions_fit_resources(
    actions: &[Pattern],
    not_action: bool,
    resources: &[String],
    not_resource: bool,
    bucket: &str,
) -> Result<(), PolicyError> {
    let none = |_: &str| None;
    let kinds: Vec<ResourceKind> = S3_ACTIONS
        .iter()
        .filter(|(name, _)| actions.iter().any(|p| p.matches(name, true, &none)) != not_action)
        .map(|(_, kind)| *kind)
        .collect();
    let bucket_arn = bucket_arn(bucket);
    let fits = |kind: ResourceKind| {
        kind != ResourceKind::Account
            && (not_resource
                || resources.iter().any(|r| {
                    let rest = &r["arn:aws:s3:::".len()..];
                    match kind {
                        ResourceKind::Object => rest.contains('/') || rest.contains('*'),
                        _ => Pattern::compile(r, true, false).matches(&bucket_arn, false, &none),
                    }
                }))
    };
    if kinds.into_iter().any(fits) {
        Ok(())
    } else {
        Err(PolicyError::ActionResourceMismatch)
    }
}
