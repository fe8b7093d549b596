//! Discord's JSON error responses: `{"message": …, "code": …}` with Discord's codes, so
//! clients' error handling (twilight's `ApiError`, discord.py's `HTTPException`) sees what it
//! would see against Discord.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use serde_json::json;

/// An error answer of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: u32,
    pub(crate) message: &'static str,
    pub(crate) detail: Option<String>,
    /// For a form error on one field: its path (`message_reference`,
    /// `allowed_mentions.parse`) and Discord's error code for it.
    pub(crate) field: Option<(&'static str, &'static str)>,
}

impl ApiError {
    const fn new(status: StatusCode, code: u32, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
            detail: None,
            field: None,
        }
    }

    /// 400 Invalid Form Body, naming what is wrong.
    pub(crate) fn invalid_form(detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..Self::INVALID_FORM_BODY
        }
    }

    /// 400 Invalid Form Body for one field, as Discord reports it:
    /// `{"errors": {"message_reference": {"_errors": [{"code": …, "message": …}]}}}`.
    pub(crate) fn invalid_field(
        path: &'static str,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            detail: Some(detail.into()),
            field: Some((path, code)),
            ..Self::INVALID_FORM_BODY
        }
    }

    pub(crate) const UNAUTHORIZED: Self =
        Self::new(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    pub(crate) const NOT_FOUND: Self = Self::new(StatusCode::NOT_FOUND, 0, "404: Not Found");
    pub(crate) const METHOD_NOT_ALLOWED: Self =
        Self::new(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed");
    pub(crate) const UNKNOWN_APPLICATION: Self =
        Self::new(StatusCode::NOT_FOUND, 10002, "Unknown Application");
    pub(crate) const UNKNOWN_CHANNEL: Self =
        Self::new(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    pub(crate) const UNKNOWN_GUILD: Self = Self::new(StatusCode::NOT_FOUND, 10004, "Unknown Guild");
    pub(crate) const UNKNOWN_MEMBER: Self =
        Self::new(StatusCode::NOT_FOUND, 10007, "Unknown Member");
    pub(crate) const UNKNOWN_MESSAGE: Self =
        Self::new(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    pub(crate) const UNKNOWN_ROLE: Self = Self::new(StatusCode::NOT_FOUND, 10011, "Unknown Role");
    pub(crate) const UNKNOWN_WEBHOOK: Self =
        Self::new(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    pub(crate) const UNKNOWN_INTERACTION: Self =
        Self::new(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    pub(crate) const ALREADY_ACKNOWLEDGED: Self = Self::new(
        StatusCode::BAD_REQUEST,
        40060,
        "Interaction has already been acknowledged.",
    );
    pub(crate) const MISSING_ACCESS: Self =
        Self::new(StatusCode::FORBIDDEN, 50001, "Missing Access");
    pub(crate) const EMPTY_MESSAGE: Self = Self::new(
        StatusCode::BAD_REQUEST,
        50006,
        "Cannot send an empty message",
    );
    pub(crate) const NOT_TEXT_CHANNEL: Self = Self::new(
        StatusCode::BAD_REQUEST,
        50008,
        "Cannot send messages in a non-text channel",
    );
    pub(crate) const MISSING_PERMISSIONS: Self =
        Self::new(StatusCode::FORBIDDEN, 50013, "Missing Permissions");
    pub(crate) const INVALID_WEBHOOK_TOKEN: Self =
        Self::new(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
    pub(crate) const INVALID_FORM_BODY: Self =
        Self::new(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
    pub(crate) const INVALID_JSON: Self = Self::new(
        StatusCode::BAD_REQUEST,
        50109,
        "The request body contains invalid JSON.",
    );
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match (&self.detail, self.field) {
            (Some(detail), Some((path, code))) => {
                let mut errors = json!({"_errors": [{"code": code, "message": detail}]});
                for segment in path.rsplit('.') {
                    errors = json!({ segment: errors });
                }
                json!({"message": self.message, "code": self.code, "errors": errors})
            }
            (Some(detail), None) => json!({
                "message": self.message,
                "code": self.code,
                "errors": {"_errors": [{"code": "BASE_TYPE_INVALID", "message": detail}]},
            }),
            (None, _) => json!({"message": self.message, "code": self.code}),
        };
        (self.status, Json(body)).into_response()
    }
}

/// Parses a snowflake path segment; anything else answers with `not_found`.
pub(crate) fn snowflake(segment: &str, not_found: ApiError) -> Result<u64, ApiError> {
    segment
        .parse::<u64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or(not_found)
}
