//! The one error type of the service layer, and its one mapping to HTTP
//! statuses (and, through `exit_code`, to CLI exit codes).
//!
//! Services return `AppError`; handlers never build error responses by hand.

use std::fmt;

/// Field-level validation failures, kept in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, Vec<String>)>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        match self.0.iter_mut().find(|(f, _)| f == field) {
            Some((_, messages)) => messages.push(message),
            None => self.0.push((field.to_string(), vec![message])),
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f == field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was added, else the 422 error.
    pub fn into_result(self) -> Result<(), AppError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self))
        }
    }

    /// As JSON that keeps the order: `[[field, [message, ...]], ...]`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.0.iter().map(|(field, messages)| serde_json::json!([field, messages])).collect())
    }

    /// Back from `to_json`; anything else gives no errors.
    pub fn from_json(value: &serde_json::Value) -> FieldErrors {
        let mut errors = FieldErrors::default();
        for pair in value.as_array().into_iter().flatten() {
            let (Some(field), Some(messages)) = (pair[0].as_str(), pair[1].as_array()) else { continue };
            for message in messages.iter().filter_map(|m| m.as_str()) {
                errors.add(field, message);
            }
        }
        errors
    }

    pub fn first_message(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| f == field).and_then(|(_, m)| m.first()).map(String::as_str)
    }
}

/// A single-field validation error.
pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    AppError::Validation(errors)
}

/// The wording of FlexiAPI's "record not found by a query".
pub const MISSING_ELEMENTS: &str = "Missing elements to perform the request";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// 422, with the fields at fault.
    Validation(FieldErrors),
    /// 401; the `WWW-Authenticate` challenges to send, if any.
    Unauthorized { message: String, challenges: Vec<String> },
    /// 403 with a reason.
    Forbidden(String),
    /// 404 with a message (`MISSING_ELEMENTS` or empty).
    NotFound(String),
    /// 405, with the methods the path accepts.
    MethodNotAllowed { method: String, allowed: Vec<String> },
    /// 413
    PayloadTooLarge,
    /// 429
    TooManyRequests(String),
    /// 400
    BadRequest(String),
    /// 503: a peer (SMTP, OVH, pusher) or the storage cannot serve now.
    Unavailable(String),
    /// 500; the detail is logged, never shown.
    Internal(String),
}

impl AppError {
    pub fn not_found() -> AppError {
        AppError::NotFound(MISSING_ELEMENTS.to_string())
    }

    /// A required field missing after validation passed: a bug, never the
    /// client's fault (every `None` of a required field adds an error).
    pub fn unvalidated() -> AppError {
        AppError::Internal("validation let a required field through".into())
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::Validation(_) => 422,
            AppError::Unauthorized { .. } => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::MethodNotAllowed { .. } => 405,
            AppError::PayloadTooLarge => 413,
            AppError::TooManyRequests(_) => 429,
            AppError::BadRequest(_) => 400,
            AppError::Unavailable(_) => 503,
            AppError::Internal(_) => 500,
        }
    }

    /// The message shown to a client.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Validation(_) => "The given data was invalid.".to_string(),
            AppError::Unauthorized { message, .. } => message.clone(),
            AppError::Forbidden(m) | AppError::NotFound(m) | AppError::TooManyRequests(m) => m.clone(),
            AppError::BadRequest(m) | AppError::Unavailable(m) => m.clone(),
            AppError::MethodNotAllowed { method, allowed } => format!(
                "The {method} method is not supported for this route. Supported methods: {}.",
                allowed.join(", ")
            ),
            AppError::PayloadTooLarge => "The request body is too large.".to_string(),
            AppError::Internal(_) => "Server Error".to_string(),
        }
    }

    /// CLI exit code: 2 for bad input (usage), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Validation(_) | AppError::BadRequest(_) => 2,
            _ => 1,
        }
    }

    /// The JSON body, Laravel-shaped.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AppError::Validation(errors) => {
                let mut map = serde_json::Map::new();
                for (field, messages) in &errors.0 {
                    map.insert(field.clone(), serde_json::json!(messages));
                }
                serde_json::json!({"message": self.public_message(), "errors": map})
            }
            _ => serde_json::json!({"message": self.public_message()}),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Validation(errors) => {
                let parts: Vec<String> =
                    errors.0.iter().map(|(field, messages)| format!("{field}: {}", messages.join(" "))).collect();
                write!(f, "{}", parts.join("; "))
            }
            AppError::Internal(detail) => write!(f, "internal error: {detail}"),
            other => write!(f, "{}", other.public_message()),
        }
    }
}

impl std::error::Error for AppError {}

impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> AppError {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(code, _) = &e {
            match code.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    return AppError::Unavailable("The database is busy, please retry.".to_string())
                }
                ErrorCode::ReadOnly | ErrorCode::DiskFull | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure => {
                    return AppError::Unavailable(
                        "The database cannot be written at the moment, please retry later.".to_string(),
                    )
                }
                _ => {}
            }
        }
        AppError::Internal(format!("database: {e}"))
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> AppError {
        AppError::Unavailable(format!("The database is unavailable: {e}"))
    }
}

pub type AppResult<T> = Result<T, AppError>;
