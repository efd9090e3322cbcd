//! The one error type of the authentication layer, with its S3 error code and HTTP status.
//!
//! Messages are shown to clients, so they name what was wrong with the request and never
//! carry a secret key, a signing key or the signature the server expected.

/// Everything the authentication layer can refuse a request for, one variant per S3 error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Anonymous where a principal is needed, an expired or not-yet-valid presigned URL,
    /// or `x-amz-*` headers the signature does not cover.
    #[error("{0}")]
    AccessDenied(String),
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId,
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your key and signing method."
    )]
    SignatureDoesNotMatch,
    #[error("The authorization header is malformed; {0}")]
    AuthorizationHeaderMalformed(String),
    #[error("{0}")]
    AuthorizationQueryParametersError(String),
    #[error("The difference between the request time and the server's time is too large.")]
    RequestTimeTooSkewed,
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    XAmzContentSHA256Mismatch,
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// The aws-chunked body was truncated, malformed or of the wrong decoded length.
    #[error("{0}")]
    IncompleteBody(String),
    /// A known but unsupported scheme: SigV4A (ECDSA).
    #[error("{0}")]
    NotImplemented(String),
    /// A POST upload's policy document is not valid Base64, JSON or policy grammar.
    #[error("{0}")]
    InvalidPolicyDocument(String),
}

impl AuthError {
    /// The S3 error code (`<Code>` in the XML error body).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::AccessDenied(_) => "AccessDenied",
            AuthError::InvalidAccessKeyId => "InvalidAccessKeyId",
            AuthError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            AuthError::AuthorizationHeaderMalformed(_) => "AuthorizationHeaderMalformed",
            AuthError::AuthorizationQueryParametersError(_) => "AuthorizationQueryParametersError",
            AuthError::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            AuthError::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            AuthError::InvalidArgument(_) => "InvalidArgument",
            AuthError::InvalidRequest(_) => "InvalidRequest",
            AuthError::IncompleteBody(_) => "IncompleteBody",
            AuthError::NotImplemented(_) => "NotImplemented",
            AuthError::InvalidPolicyDocument(_) => "InvalidPolicyDocument",
        }
    }

    /// The HTTP status S3 answers this error with. The HTTP layer owns the final mapping;
    /// this is the conventional one.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::AccessDenied(_)
            | AuthError::InvalidAccessKeyId
            | AuthError::SignatureDoesNotMatch
            | AuthError::RequestTimeTooSkewed => 403,
            AuthError::AuthorizationHeaderMalformed(_)
            | AuthError::AuthorizationQueryParametersError(_)
            | AuthError::XAmzContentSHA256Mismatch
            | AuthError::InvalidArgument(_)
            | AuthError::InvalidRequest(_)
            | AuthError::IncompleteBody(_)
            | AuthError::InvalidPolicyDocument(_) => 400,
            AuthError::NotImplemented(_) => 501,
        }
    }
}
