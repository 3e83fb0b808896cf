//! Validation that runs after deserialization and before any handler.
//!
//! Implement [`Validate`] by hand with the [`Validator`] helpers, or enable the `garde` feature
//! and derive `garde::Validate` (use `length(chars, ..)` so lengths count code points as Zod does).
//! Either way issue paths reach the client in wire (serde) names: Rust field names are mapped to
//! the names serde accepts (see `wire_names`), except for a field renamed to something unrelated
//! (`#[serde(rename = "prio")] priority_level`): report that one under its wire name in a
//! hand-written impl (garde always reports the Rust name).

use crate::error::{Issue, PathSegment};
use std::fmt::Display;

mod wire_names;
pub(crate) use wire_names::to_wire_paths;

/// A client message that can check its own constraints.
///
/// Types with no constraints implement it with an empty body: `impl Validate for Ping {}`.
///
/// ```
/// use wskit::{Validate, Validator};
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct ChatMessage { room_id: String, message: String }
///
/// impl Validate for ChatMessage {
///     fn validate(&self, v: &mut Validator) {
///         v.length("roomId", &self.room_id, 1, 50);
///         v.length("message", &self.message, 1, 1000);
///     }
/// }
/// let issues = Validator::run(&ChatMessage { room_id: "".into(), message: "hi".into() });
/// assert_eq!(issues[0].code, "too_small");
/// ```
pub trait Validate {
    /// Records every violated constraint in `v`. The default accepts everything.
    fn validate(&self, v: &mut Validator) {
        let _ = v;
    }
}

/// Collects [`Issue`]s with their paths.
#[derive(Debug, Default)]
pub struct Validator {
    path: Vec<PathSegment>,
    issues: Vec<Issue>,
}

impl Validator {
    /// Validates `value` and returns its issues (empty when valid).
    pub fn run<T: Validate + ?Sized>(value: &T) -> Vec<Issue> {
        let mut v = Validator::default();
        value.validate(&mut v);
        v.issues
    }

    /// Records an issue at `field` (relative to the current path).
    pub fn issue(
        &mut self,
        field: impl Into<PathSegment>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) {
        let mut path = self.path.clone();
        path.push(field.into());
        self.issues.push(Issue {
            path,
            code: code.into(),
            message: message.into(),
        });
    }

    /// Records an issue about the value itself (at the current path).
    pub fn issue_here(&mut self, code: impl Into<String>, message: impl Into<String>) {
        let path = self.path.clone();
        self.issues.push(Issue {
            path,
            code: code.into(),
            message: message.into(),
        });
    }

    /// String length in Unicode code points (as Zod 4 counts), inclusive bounds.
    pub fn length(&mut self, field: impl Into<PathSegment>, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        if n < min {
            self.issue(
                field,
                "too_small",
                format!("Too small: expected string to have >={min} characters"),
            );
        } else if n > max {
            self.issue(
                field,
                "too_big",
                format!("Too big: expected string to have <={max} characters"),
            );
        }
    }

    /// Numeric (or any ordered) range, inclusive bounds.
    pub fn range<N: PartialOrd + Display>(
        &mut self,
        field: impl Into<PathSegment>,
        value: N,
        min: N,
        max: N,
    ) {
        if value < min {
            self.issue(
                field,
                "too_small",
                format!("Too small: expected number to be >={min}"),
            );
        } else if value > max {
            self.issue(
                field,
                "too_big",
                format!("Too big: expected number to be <={max}"),
            );
        }
    }

    /// Records `message` with code `custom` unless `ok`.
    pub fn ensure(&mut self, field: impl Into<PathSegment>, ok: bool, message: &str) {
        if !ok {
            self.issue(field, "custom", message);
        }
    }

    /// Validates a nested value under `field`.
    pub fn nested<T: Validate + ?Sized>(&mut self, field: impl Into<PathSegment>, value: &T) {
        self.path.push(field.into());
        value.validate(self);
        self.path.pop();
    }

    /// Validates each element of a list under `field`, with its index in the path.
    pub fn each<T: Validate>(&mut self, field: impl Into<PathSegment>, items: &[T]) {
        self.path.push(field.into());
        for (i, item) in items.iter().enumerate() {
            self.nested(i, item);
        }
        self.path.pop();
    }

    /// Whether no issue was recorded so far.
    pub fn is_valid(&self) -> bool {
        self.issues.is_empty()
    }
}

/// A message with no fields (`{"type":"ping"}` into `()`). With the `garde` feature the same
/// impl comes through garde's own impl for `()`.
#[cfg(not(feature = "garde"))]
impl Validate for () {}

#[cfg(feature = "garde")]
mod garde_bridge {
    use super::*;

    /// Every `garde::Validate` type with a default context is a [`Validate`]. garde reports Rust
    /// field names; the envelope maps them to wire names.
    impl<T: garde::Validate> Validate for T
    where
        T::Context: Default,
    {
        fn validate(&self, v: &mut Validator) {
            let Err(report) = garde::Validate::validate(self) else {
                return;
            };
            for (path, error) in report.iter() {
                let mut full = v.path.clone();
                // garde lists components innermost first.
                for (kind, component) in path.__iter().rev() {
                    match kind {
                        garde::error::Kind::Index => {
                            full.push(PathSegment::Index(component.parse().unwrap_or(0)))
                        }
                        garde::error::Kind::Key => {
                            full.push(PathSegment::Key(component.to_string()))
                        }
                        garde::error::Kind::None => {}
                    }
                }
                let message = error.message().to_string();
                v.issues.push(Issue {
                    path: full,
                    code: garde_code(&message).into(),
                    message,
                });
            }
        }
    }

    /// garde errors carry only a message; recover a Zod-style code from its wording.
    fn garde_code(message: &str) -> &'static str {
        if message.contains("lower than") || message.contains("less than") {
            "too_small"
        } else if message.contains("greater than") || message.contains("more than") {
            "too_big"
        } else if message.contains("not a valid") || message.contains("does not match") {
            "invalid_format"
        } else {
            "custom"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_code_points_not_bytes() {
        let mut v = Validator::default();
        v.length("name", "ééééé", 1, 5); // 10 bytes, 5 code points
        v.length("emoji", "😀😀", 1, 2);
        assert!(v.is_valid(), "{:?}", v.issues);
        v.length("name", "éééééé", 1, 5);
        assert_eq!(v.issues[0].code, "too_big");
        assert_eq!(v.issues[0].path, vec![PathSegment::from("name")]);
    }
}
