//! The message envelope: a JSON object whose `type` field picks the handler and whose other
//! fields are the handler's message. The object is parsed once into the handler's type; the
//! `type` key is skipped on the way (so `deny_unknown_fields` works) and a second `type` key is
//! rejected.

use crate::error::{ErrorCode, Issue, MessageError, PathSegment};
use crate::validate::{to_wire_paths, Validate, Validator};
use schemars::JsonSchema;
use serde::de::{
    self, Deserialize, DeserializeOwned, Deserializer, IgnoredAny, IntoDeserializer, MapAccess,
    Visitor,
};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Finds the message type. The common form `{"type":"name",...}` is read without parsing the
/// rest; any other layout falls back to a full parse of the envelope.
pub(crate) fn message_type(text: &str) -> Result<Cow<'_, str>, MessageError> {
    if let Some(t) = leading_type(text) {
        return Ok(Cow::Borrowed(t));
    }
    // `from_str`: the adapter already checked UTF-8, so serde_json need not check it again.
    let mut de = serde_json::Deserializer::from_str(text);
    let found = de
        .deserialize_any(TypeFinder)
        .map_err(|e| classify(&e, "message"))?;
    de.end().map_err(|e| classify(&e, "message"))?;
    match found {
        Found::Type(t) => Ok(t),
        Found::NotObject => Err(MessageError::new(
            ErrorCode::InvalidJson,
            "expected a JSON object with a `type` field",
        )),
        Found::NoType => Err(MessageError::new(
            ErrorCode::UnknownType,
            "missing string field `type`",
        )),
    }
}

/// Whether `text` is well-formed JSON at all (used to tell `invalid_json` from `unknown_type`).
pub(crate) fn is_json(text: &str) -> bool {
    serde_json::from_str::<IgnoredAny>(text).is_ok()
}

/// `{ "type" : "name"` with optional whitespace and no escapes in the name.
fn leading_type(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let expect = |token: &[u8], i: &mut usize| -> Option<()> {
        while bytes.get(*i).is_some_and(|b| b.is_ascii_whitespace()) {
            *i += 1;
        }
        bytes.get(*i..*i + token.len()).filter(|s| *s == token)?;
        *i += token.len();
        Some(())
    };
    expect(b"{", &mut i)?;
    expect(b"\"type\"", &mut i)?;
    expect(b":", &mut i)?;
    expect(b"\"", &mut i)?;
    let len = bytes[i..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if bytes[i + len] != b'"' {
        return None;
    }
    // `i` and `i + len` sit next to ASCII quotes, so both are char boundaries.
    text.get(i..i + len)
}

enum Found<'de> {
    Type(Cow<'de, str>),
    NoType,
    NotObject,
}

struct TypeFinder;

impl<'de> Visitor<'de> for TypeFinder {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found<'de>, A::Error> {
        let mut found = Found::NoType;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == "type" && matches!(found, Found::NoType) {
                found = match map.next_value::<MaybeStr<'de>>()?.0 {
                    Some(t) => Found::Type(t),
                    None => Found::NoType,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Found<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Found::NotObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Found<'de>, E> {
        Ok(Found::NotObject)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Found<'de>, E> {
        Ok(Found::NotObject)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Found<'de>, E> {
        Ok(Found::NotObject)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Found<'de>, E> {
        Ok(Found::NotObject)
    }
    fn visit_str<E>(self, _: &str) -> Result<Found<'de>, E> {
        Ok(Found::NotObject)
    }
    fn visit_unit<E>(self) -> Result<Found<'de>, E> {
        Ok(Found::NotObject)
    }
}

/// An object key, borrowed when the input allows.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A value that is a string, or anything else (then `None`).
struct MaybeStr<'de>(Option<Cow<'de, str>>);

impl<'de> de::Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E>(self, s: &str) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<MaybeStr<'de>, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<MaybeStr<'de>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses and validates the message of a handler whose type is `T` (its schema names the wire
/// fields in issue paths).
pub(crate) fn decode<T: DeserializeOwned + Validate + JsonSchema + 'static>(
    text: &str,
) -> Result<T, MessageError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = SkipType::<T>::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        // serde_json's error category says which error it met first, not whether the text is
        // JSON at all: decide that separately (error path only).
        .map_err(|e| match is_json(text) {
            true => data_error::<T>(text, &e),
            false => MessageError::new(
                ErrorCode::InvalidJson,
                format!("message is not valid JSON: {}", strip_position(&e)),
            ),
        })?
        .0;
    let mut issues = Validator::run(&value);
    if issues.is_empty() {
        return Ok(value);
    }
    to_wire_paths::<T>(&mut issues, text);
    Err(MessageError::validation(issues))
}

/// A syntax error is `invalid_json`; a shape error is `validation_failed`.
fn classify(e: &serde_json::Error, what: &str) -> MessageError {
    match e.classify() {
        serde_json::error::Category::Data => {
            MessageError::new(ErrorCode::ValidationFailed, strip_position(e))
        }
        _ => MessageError::new(
            ErrorCode::InvalidJson,
            format!("{what} is not valid JSON: {}", strip_position(e)),
        ),
    }
}

fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Re-runs the failed parse with path tracking (cold path) to say where the shape is wrong.
fn data_error<T: DeserializeOwned>(text: &str, e: &serde_json::Error) -> MessageError {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut path = Vec::new();
    if let Err(tracked) = serde_path_to_error::deserialize::<_, SkipType<T>>(&mut de) {
        for segment in tracked.path().iter() {
            match segment {
                serde_path_to_error::Segment::Map { key } => {
                    path.push(PathSegment::Key(key.clone()))
                }
                serde_path_to_error::Segment::Seq { index } => {
                    path.push(PathSegment::Index(*index))
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    path.push(PathSegment::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
    }
    let message = strip_position(e);
    let code = if let Some(field) = message.strip_prefix("missing field `") {
        path.push(PathSegment::Key(field.trim_end_matches('`').to_owned()));
        "invalid_type"
    } else if message.starts_with("invalid type") || message.starts_with("invalid length") {
        "invalid_type"
    } else if message.starts_with("unknown field") {
        "unrecognized_keys"
    } else if message.starts_with("unknown variant") || message.starts_with("invalid value") {
        "invalid_value"
    } else {
        "custom"
    };
    MessageError::validation(vec![Issue {
        path,
        code: code.into(),
        message,
    }])
}

/// Deserializes `T` from the envelope object minus its `type` key.
struct SkipType<T>(T);

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for SkipType<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = SkipType<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SkipType<T>, A::Error> {
                T::deserialize(WithoutType {
                    map,
                    seen_type: false,
                })
                .map(SkipType)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A map view that hides the first `type` entry and rejects a second one.
struct WithoutType<A> {
    map: A,
    seen_type: bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutType<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(Key(key)) = self.map.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            if key == "type" {
                if self.seen_type {
                    return Err(de::Error::duplicate_field("type"));
                }
                self.seen_type = true;
                self.map.next_value::<IgnoredAny>()?;
                continue;
            }
            return match key {
                Cow::Borrowed(k) => seed.deserialize(de::value::BorrowedStrDeserializer::new(k)),
                Cow::Owned(k) => seed.deserialize(k.into_deserializer()),
            }
            .map(Some);
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for WithoutType<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, A::Error> {
        while self.next_key_seed(PhantomData::<IgnoredAny>)?.is_some() {
            self.map.next_value::<IgnoredAny>()?;
        }
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.deserialize_unit(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Join {
        room_id: String,
    }
    impl Validate for Join {
        fn validate(&self, v: &mut Validator) {
            v.length("roomId", &self.room_id, 1, 50);
        }
    }

    #[test]
    fn type_is_found_in_any_position() {
        assert_eq!(
            message_type(r#"{"type":"join_room","roomId":"a"}"#).unwrap(),
            "join_room"
        );
        assert_eq!(
            message_type(r#" { "roomId":"a", "type" : "join_room" }"#).unwrap(),
            "join_room"
        );
        assert_eq!(message_type(r#"{"type":"jo\u0069n"}"#).unwrap(), "join");
    }

    #[test]
    fn not_an_object_is_invalid_json() {
        for text in ["[1,2]", "42", "\"type\"", "null", "{\"type\":", "nope"] {
            let e = message_type(text).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidJson, "{text}");
        }
    }

    #[test]
    fn missing_or_non_string_type_is_unknown_type() {
        for text in [r#"{"roomId":"a"}"#, r#"{"type":7}"#, r#"{}"#] {
            assert_eq!(message_type(text).unwrap_err().code, ErrorCode::UnknownType);
        }
    }

    #[test]
    fn decode_skips_type_even_with_deny_unknown_fields() {
        let j: Join = decode(r#"{"type":"join_room","roomId":"lobby"}"#).unwrap();
        assert_eq!(j.room_id, "lobby");
    }

    #[test]
    fn duplicate_type_key_is_rejected() {
        let e = decode::<Join>(r#"{"type":"join_room","type":"x","roomId":"a"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert!(
            e.issues[0].message.contains("duplicate field `type`"),
            "{e:?}"
        );
    }

    #[test]
    fn truncated_json_after_type_is_invalid_json() {
        let e = decode::<Join>(r#"{"type":"join_room","roomId":"a"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn missing_field_names_the_wire_field() {
        let e = decode::<Join>(r#"{"type":"join_room"}"#).unwrap_err();
        assert_eq!(e.issues[0].path, vec![PathSegment::from("roomId")]);
        assert_eq!(e.issues[0].code, "invalid_type");
        let e = decode::<Join>(r#"{"type":"join_room","roomId":5}"#).unwrap_err();
        assert_eq!(e.issues[0].path, vec![PathSegment::from("roomId")]);
    }

    #[test]
    fn constraint_violation_is_validation_failed() {
        let e = decode::<Join>(r#"{"type":"join_room","roomId":""}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(e.issues[0].path, vec![PathSegment::from("roomId")]);
        assert_eq!(e.issues[0].code, "too_small");
    }

    #[test]
    fn unit_message_accepts_bare_type() {
        #[derive(Deserialize, schemars::JsonSchema)]
        struct Ping;
        impl Validate for Ping {}
        decode::<Ping>(r#"{"type":"ping"}"#).unwrap();
        decode::<()>(r#"{"type":"ping","extra":1}"#).unwrap();
    }
}
