//! Path matching with matchit. Route paths use `:name` for a segment parameter and `*name` for
//! a catch-all (the seed's syntax); matchit's own `{name}` form is accepted too.

use crate::error::BuildError;
use crate::params::Params;
use std::sync::Arc;

/// Routes by path to an index into the server's route table.
pub(crate) struct Router {
    inner: matchit::Router<usize>,
}

/// Converts `/ws/rooms/:roomId` to matchit's `/ws/rooms/{roomId}` and lists the names.
pub(crate) fn to_matchit(path: &str) -> Result<(String, Vec<Arc<str>>), BuildError> {
    let invalid = |reason: &str| BuildError::InvalidPath {
        path: path.into(),
        reason: reason.into(),
    };
    if !path.starts_with('/') {
        return Err(invalid("must start with `/`"));
    }
    let mut out = String::with_capacity(path.len() + 8);
    let mut names = Vec::new();
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let (name, catch_all) = if let Some(n) = segment.strip_prefix(':') {
            (Some(n), false)
        } else if let Some(n) = segment.strip_prefix('*') {
            (Some(n), true)
        } else if let Some(n) = segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
            (Some(n), true)
        } else if let Some(n) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            (Some(n), false)
        } else {
            (None, false)
        };
        match name {
            Some(n) if n.is_empty() || !n.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                return Err(invalid("parameter names are letters, digits and `_`"));
            }
            Some(n) => {
                if names.iter().any(|m: &Arc<str>| &**m == n) {
                    return Err(invalid("a parameter name appears twice"));
                }
                names.push(Arc::from(n));
                out.push_str(if catch_all { "{*" } else { "{" });
                out.push_str(n);
                out.push('}');
            }
            None if segment.contains(['{', '}', ':', '*']) => {
                return Err(invalid(
                    "`{`, `}`, `:` and `*` only start a parameter segment",
                ));
            }
            None => out.push_str(segment),
        }
    }
    Ok((out, names))
}

/// Why a path did not lead to a route.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MatchFailure {
    NotFound,
    BadEncoding,
}

impl Router {
    pub(crate) fn new() -> Self {
        Router {
            inner: matchit::Router::new(),
        }
    }

    pub(crate) fn insert(&mut self, path: &str, index: usize) -> Result<(), BuildError> {
        let (pattern, _) = to_matchit(path)?;
        self.inner
            .insert(pattern, index)
            .map_err(|e| BuildError::RouteConflict {
                path: path.into(),
                reason: e.to_string(),
            })
    }

    /// Matches the raw (still percent-encoded) path, then decodes each parameter once.
    pub(crate) fn at(&self, raw_path: &str) -> Result<(usize, Params), MatchFailure> {
        let matched = self
            .inner
            .at(raw_path)
            .map_err(|_| MatchFailure::NotFound)?;
        let mut params = Params::default();
        for (key, value) in matched.params.iter() {
            let decoded = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| MatchFailure::BadEncoding)?;
            params.push(Arc::from(key), decoded.into_owned());
        }
        Ok((*matched.value, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_syntax_converts_to_matchit() {
        let (p, names) = to_matchit("/ws/games/:gameId/players/:playerId").unwrap();
        assert_eq!(p, "/ws/games/{gameId}/players/{playerId}");
        assert_eq!(names.len(), 2);
        assert_eq!(to_matchit("/files/*rest").unwrap().0, "/files/{*rest}");
        assert!(matches!(
            to_matchit("ws/x"),
            Err(BuildError::InvalidPath { .. })
        ));
        assert!(matches!(
            to_matchit("/ws/:a/:a"),
            Err(BuildError::InvalidPath { .. })
        ));
        assert!(matches!(
            to_matchit("/ws/a:b"),
            Err(BuildError::InvalidPath { .. })
        ));
    }

    #[test]
    fn conflicting_routes_fail_at_insert() {
        let mut r = Router::new();
        r.insert("/ws/rooms/:roomId", 0).unwrap();
        let err = r.insert("/ws/rooms/:other", 1).unwrap_err();
        assert!(matches!(err, BuildError::RouteConflict { .. }), "{err}");
        assert!(r.insert("/ws/rooms/:roomId", 2).is_err());
        r.insert("/ws/rooms/lobby/info", 3).unwrap();
    }

    #[test]
    fn params_are_decoded_once() {
        let mut r = Router::new();
        r.insert("/ws/rooms/:roomId", 0).unwrap();
        let (_, p) = r.at("/ws/rooms/a%2Fb%2541").unwrap();
        assert_eq!(p.get("roomId"), Some("a/b%41"));
        assert_eq!(
            r.at("/ws/rooms/%FF").unwrap_err(),
            MatchFailure::BadEncoding
        );
        assert_eq!(r.at("/ws/rooms/a/b").unwrap_err(), MatchFailure::NotFound);
        assert_eq!(r.at("/ws/rooms/").unwrap_err(), MatchFailure::NotFound);
    }
}
