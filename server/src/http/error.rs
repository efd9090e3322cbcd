//! S3 errors as clients see them: a code, an HTTP status and the XML error document.
//! Every lower layer's error is mapped to an S3 code here and only here; the log gets the
//! internal cause, the client gets the code, a message and the request id.

use http::StatusCode;

use crate::auth::AuthError;
use crate::iam::policy::PolicyError;
use crate::store::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidStorageClass,
    KeyTooLongError,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NoSuchVersion,
    NotImplemented,
    NotModified,
    PreconditionFailed,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
    InvalidLocationConstraint,
    IllegalLocationConstraintException,
    MissingSecurityHeader,
    ServiceUnavailable,
    SlowDown,
    MalformedPolicy,
    NoSuchBucketPolicy,
    InvalidPolicyDocument,
    MalformedPOSTRequest,
    MaxPostPreDataLengthExceeded,
    InvalidBucketState,
    NoSuchTagSet,
    InvalidTag,
    ObjectLockConfigurationNotFoundError,
    NoSuchObjectLockConfiguration,
    QuotaExceeded,
    NoSuchCORSConfiguration,
    NoSuchLifecycleConfiguration,
    CORSResponse,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "AccessDenied",
            ErrorCode::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            ErrorCode::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            ErrorCode::BadDigest => "BadDigest",
            ErrorCode::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            ErrorCode::BucketNotEmpty => "BucketNotEmpty",
            ErrorCode::EntityTooLarge => "EntityTooLarge",
            ErrorCode::EntityTooSmall => "EntityTooSmall",
            ErrorCode::IncompleteBody => "IncompleteBody",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::InvalidAccessKeyId => "InvalidAccessKeyId",
            ErrorCode::InvalidArgument => "InvalidArgument",
            ErrorCode::InvalidBucketName => "InvalidBucketName",
            ErrorCode::InvalidDigest => "InvalidDigest",
            ErrorCode::InvalidPart => "InvalidPart",
            ErrorCode::InvalidPartOrder => "InvalidPartOrder",
            ErrorCode::InvalidRange => "InvalidRange",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::InvalidStorageClass => "InvalidStorageClass",
            ErrorCode::KeyTooLongError => "KeyTooLongError",
            ErrorCode::MalformedXML => "MalformedXML",
            ErrorCode::MetadataTooLarge => "MetadataTooLarge",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::MissingContentLength => "MissingContentLength",
            ErrorCode::NoSuchBucket => "NoSuchBucket",
            ErrorCode::NoSuchKey => "NoSuchKey",
            ErrorCode::NoSuchUpload => "NoSuchUpload",
            ErrorCode::NoSuchVersion => "NoSuchVersion",
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotModified => "NotModified",
            ErrorCode::PreconditionFailed => "PreconditionFailed",
            ErrorCode::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            ErrorCode::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            ErrorCode::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            ErrorCode::InvalidLocationConstraint => "InvalidLocationConstraint",
            ErrorCode::IllegalLocationConstraintException => "IllegalLocationConstraintException",
            ErrorCode::MissingSecurityHeader => "MissingSecurityHeader",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::SlowDown => "SlowDown",
            ErrorCode::MalformedPolicy => "MalformedPolicy",
            ErrorCode::NoSuchBucketPolicy => "NoSuchBucketPolicy",
            ErrorCode::InvalidPolicyDocument => "InvalidPolicyDocument",
            ErrorCode::MalformedPOSTRequest => "MalformedPOSTRequest",
            ErrorCode::MaxPostPreDataLengthExceeded => "MaxPostPreDataLengthExceeded",
            ErrorCode::InvalidBucketState => "InvalidBucketState",
            ErrorCode::NoSuchTagSet => "NoSuchTagSet",
            ErrorCode::InvalidTag => "InvalidTag",
            ErrorCode::ObjectLockConfigurationNotFoundError => {
                "ObjectLockConfigurationNotFoundError"
            }
            ErrorCode::NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            ErrorCode::QuotaExceeded => "QuotaExceeded",
            ErrorCode::NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            ErrorCode::NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            ErrorCode::CORSResponse => "CORSResponse",
        }
    }

    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            AccessDenied | InvalidAccessKeyId | SignatureDoesNotMatch | RequestTimeTooSkewed => {
                StatusCode::FORBIDDEN
            }
            BucketAlreadyOwnedByYou | BucketNotEmpty | InvalidBucketState => StatusCode::CONFLICT,
            NoSuchBucket
            | NoSuchKey
            | NoSuchUpload
            | NoSuchVersion
            | NoSuchBucketPolicy
            | NoSuchTagSet
            | ObjectLockConfigurationNotFoundError
            | NoSuchObjectLockConfiguration
            | NoSuchCORSConfiguration
            | NoSuchLifecycleConfiguration => StatusCode::NOT_FOUND,
            CORSResponse => StatusCode::FORBIDDEN,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            NotModified => StatusCode::NOT_MODIFIED,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailable | SlowDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn default_message(self) -> &'static str {
        use ErrorCode::*;
        match self {
            AccessDenied => "Access Denied",
            BadDigest => "The Content-MD5 or checksum you specified did not match what we received.",
            BucketAlreadyOwnedByYou => "Your previous request to create the named bucket succeeded and you already own it.",
            BucketNotEmpty => "The bucket you tried to delete is not empty",
            EntityTooLarge => "Your proposed upload exceeds the maximum allowed object size.",
            EntityTooSmall => "Your proposed upload is smaller than the minimum allowed object size.",
            IncompleteBody => "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            InternalError => "We encountered an internal error. Please try again.",
            InvalidAccessKeyId => "The AWS Access Key Id you provided does not exist in our records.",
            InvalidBucketName => "The specified bucket is not valid.",
            InvalidPart => "One or more of the specified parts could not be found.",
            InvalidPartOrder => "The list of parts was not in ascending order.",
            InvalidRange => "The requested range is not satisfiable",
            KeyTooLongError => "Your key is too long",
            MalformedXML => "The XML you provided was not well-formed or did not validate against our published schema.",
            MetadataTooLarge => "Your metadata headers exceed the maximum allowed metadata size.",
            MethodNotAllowed => "The specified method is not allowed against this resource.",
            MissingContentLength => "You must provide the Content-Length HTTP header.",
            NoSuchBucket => "The specified bucket does not exist",
            NoSuchKey => "The specified key does not exist.",
            NoSuchUpload => "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            NoSuchVersion => "The specified version does not exist.",
            NotImplemented => "A header or query you provided implies functionality that is not implemented.",
            NotModified => "Not Modified",
            PreconditionFailed => "At least one of the pre-conditions you specified did not hold",
            RequestTimeTooSkewed => "The difference between the request time and the server's time is too large.",
            SignatureDoesNotMatch => "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            XAmzContentSHA256Mismatch => "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ServiceUnavailable | SlowDown => "Please reduce your request rate.",
            NoSuchBucketPolicy => "The bucket policy does not exist",
            MalformedPolicy => "Policies must be valid JSON and the first byte must be '{'",
            InvalidPolicyDocument => "The content of the form does not meet the conditions specified in the policy document.",
            MalformedPOSTRequest => "The body of your POST request is not well-formed multipart/form-data.",
            MaxPostPreDataLengthExceeded => "Your POST request fields preceding the upload file were too large.",
            NoSuchTagSet => "The TagSet does not exist",
            InvalidTag => "The tag provided was not a valid tag.",
            ObjectLockConfigurationNotFoundError => "Object Lock configuration does not exist for this bucket",
            NoSuchObjectLockConfiguration => "The specified object does not have a ObjectLock configuration",
            QuotaExceeded => "The bucket quota would be exceeded by this request.",
            NoSuchCORSConfiguration => "The CORS configuration does not exist",
            NoSuchLifecycleConfiguration => "The lifecycle configuration does not exist",
            CORSResponse => "This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            _ => "The request is not valid.",
        }
    }
}

/// An error answered to the client.
#[derive(Debug)]
pub struct S3Error {
    pub code: ErrorCode,
    pub message: String,
    /// Extra elements of the error document (e.g. `Key`, `BucketName`, `Condition`).
    pub extra: Vec<(&'static str, String)>,
    /// Response headers S3 sets on this error (`x-amz-delete-marker`, `x-amz-version-id`).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(code: ErrorCode) -> S3Error {
        S3Error {
            code,
            message: code.default_message().to_string(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn msg(code: ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error {
            code,
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((name, value.into()));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.headers.push((name, value.into()));
        self
    }

    pub fn internal(cause: impl std::fmt::Display) -> S3Error {
        tracing::error!(error = %cause, "internal error");
        S3Error::new(ErrorCode::InternalError)
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<ErrorCode> for S3Error {
    fn from(code: ErrorCode) -> S3Error {
        S3Error::new(code)
    }
}

impl From<StoreError> for S3Error {
    fn from(e: StoreError) -> S3Error {
        use ErrorCode as C;
        match e {
            StoreError::NoSuchBucket => C::NoSuchBucket.into(),
            StoreError::BucketAlreadyExists => C::BucketAlreadyOwnedByYou.into(),
            StoreError::BucketNotEmpty => C::BucketNotEmpty.into(),
            StoreError::NoSuchKey => C::NoSuchKey.into(),
            // The current version is a delete marker: 404; a delete marker asked for by its
            // version id: 405. Both say so in headers.
            StoreError::DeleteMarker(marker, by_id) => {
                let e = if by_id {
                    S3Error::new(C::MethodNotAllowed).with_header("allow", "DELETE")
                } else {
                    S3Error::new(C::NoSuchKey)
                };
                e.with_header("x-amz-delete-marker", "true").with_header(
                    "x-amz-version-id",
                    marker.version_id.unwrap_or_else(|| "null".into()),
                )
            }
            StoreError::InvalidBucketState(m) => S3Error::msg(C::InvalidBucketState, m),
            StoreError::InvalidRequest(m) => S3Error::msg(C::InvalidRequest, m),
            StoreError::ObjectLocked(m) => S3Error::msg(C::AccessDenied, m),
            StoreError::QuotaExceeded(m) => S3Error::msg(C::QuotaExceeded, m),
            StoreError::NoSuchVersion => C::NoSuchVersion.into(),
            StoreError::NoSuchUpload => C::NoSuchUpload.into(),
            StoreError::PreconditionFailed => C::PreconditionFailed.into(),
            StoreError::InvalidPart(m) => S3Error::msg(
                C::InvalidPart,
                format!("One or more of the specified parts could not be found: {m}"),
            ),
            StoreError::InvalidPartOrder => C::InvalidPartOrder.into(),
            StoreError::EntityTooSmall(n) => {
                S3Error::new(C::EntityTooSmall).with("PartNumber", n.to_string())
            }
            StoreError::EntityTooLarge => C::EntityTooLarge.into(),
            StoreError::QuorumLost { .. }
            | StoreError::Indeterminate { .. }
            | StoreError::Stale(_) => S3Error::msg(
                C::ServiceUnavailable,
                "Not enough drives are online to serve this request; try again later.",
            ),
            StoreError::Fenced(_) | StoreError::LockLost(_) => S3Error::msg(
                C::ServiceUnavailable,
                "The key's lock was taken over by another writer; try again.",
            ),
            StoreError::Busy(_) => S3Error::msg(
                C::SlowDown,
                "The key is busy with other writers; please reduce your request rate.",
            ),
            e @ (StoreError::Config(_)
            | StoreError::Io(_)
            | StoreError::Db(_)
            | StoreError::Record(_)
            | StoreError::Internal(_)) => S3Error::internal(e),
        }
    }
}

impl From<PolicyError> for S3Error {
    fn from(e: PolicyError) -> S3Error {
        // The message names the problem, as S3's does; it carries nothing internal.
        S3Error::msg(ErrorCode::MalformedPolicy, e.to_string())
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> S3Error {
        let code = match e.code() {
            "AccessDenied" => ErrorCode::AccessDenied,
            "AuthorizationHeaderMalformed" => ErrorCode::AuthorizationHeaderMalformed,
            "AuthorizationQueryParametersError" => ErrorCode::AuthorizationQueryParametersError,
            "InvalidAccessKeyId" => ErrorCode::InvalidAccessKeyId,
            "SignatureDoesNotMatch" => ErrorCode::SignatureDoesNotMatch,
            "RequestTimeTooSkewed" => ErrorCode::RequestTimeTooSkewed,
            "XAmzContentSHA256Mismatch" => ErrorCode::XAmzContentSHA256Mismatch,
            "IncompleteBody" => ErrorCode::IncompleteBody,
            "NotImplemented" => ErrorCode::NotImplemented,
            "MissingSecurityHeader" => ErrorCode::MissingSecurityHeader,
            "InvalidRequest" => ErrorCode::InvalidRequest,
            "InvalidPolicyDocument" => ErrorCode::InvalidPolicyDocument,
            _ => ErrorCode::InvalidArgument,
        };
        S3Error::msg(code, e.to_string())
    }
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// The S3 XML error document.
pub fn error_xml(err: &S3Error, resource: &str, request_id: &str) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
    out.push_str(err.code.as_str());
    out.push_str("</Code><Message>");
    out.push_str(&escape(&err.message));
    out.push_str("</Message>");
    for (name, value) in &err.extra {
        out.push_str(&format!("<{name}>{}</{name}>", escape(value)));
    }
    out.push_str("<Resource>");
    out.push_str(&escape(resource));
    out.push_str("</Resource><RequestId>");
    out.push_str(request_id);
    out.push_str("</RequestId></Error>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_has_code_message_resource_and_request_id() {
        let err = S3Error::new(ErrorCode::NoSuchKey).with("Key", "a<b");
        let xml = error_xml(&err, "/bucket/a<b", "REQ1");
        assert!(xml.contains("<Code>NoSuchKey</Code>"));
        assert!(xml.contains("<Key>a&lt;b</Key>"));
        assert!(xml.contains("<Resource>/bucket/a&lt;b</Resource>"));
        assert!(xml.contains("<RequestId>REQ1</RequestId>"));
        assert_eq!(ErrorCode::NoSuchKey.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ErrorCode::PreconditionFailed.status(),
            StatusCode::PRECONDITION_FAILED
        );
    }
}
