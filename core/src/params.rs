//! Path parameters: percent-decoded once, looked up by name, or deserialized into a struct.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use smallvec::SmallVec;
use std::fmt;
use std::sync::Arc;

/// The parameters a route path captured, e.g. `roomId` for `/ws/rooms/:roomId`.
///
/// Values are percent-decoded exactly once: `/ws/rooms/a%2Fb` gives `roomId = "a/b"`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: SmallVec<[(Arc<str>, String); 2]>,
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A parameter did not fit the type asked for in [`Params::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path parameters do not fit: {0}")]
pub struct ParamsError(String);

impl de::Error for ParamsError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ParamsError(msg.to_string())
    }
}

impl Params {
    pub(crate) fn push(&mut self, name: Arc<str>, value: String) {
        self.pairs.push((name, value));
    }

    /// The decoded value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(name, value)` pairs in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (&**k, v.as_str()))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the route captured no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Deserializes the parameters into `P` (a struct whose field names are the parameter names;
    /// numbers and booleans are parsed from the text).
    ///
    /// ```
    /// # use wskit::Params;
    /// #[derive(serde::Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Seat { game_id: String, player_id: u32 }
    /// # let params = wskit::testing::params(&[("gameId", "g1"), ("playerId", "7")]);
    /// let seat: Seat = params.parse().unwrap();
    /// assert_eq!((seat.game_id.as_str(), seat.player_id), ("g1", 7));
    /// ```
    pub fn parse<P: DeserializeOwned>(&self) -> Result<P, ParamsError> {
        let entries = self.pairs.iter().map(|(k, v)| (&**k, Text(v)));
        P::deserialize(de::value::MapDeserializer::new(entries))
    }
}

/// A parameter value that parses itself into whatever primitive the target asks for.
struct Text<'a>(&'a str);

impl<'de> IntoDeserializer<'de, ParamsError> for Text<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_as {
    ($($method:ident => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
            let parsed = self.0.parse().map_err(|e| {
                ParamsError(format!("`{}` is not a valid {}: {e}", self.0, stringify!($visit)))
            })?;
            visitor.$visit(parsed)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Text<'_> {
    type Error = ParamsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamsError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamsError> {
        visitor.visit_newtype_struct(self)
    }

    parse_as! {
        deserialize_bool => visit_bool,
        deserialize_i8 => visit_i8, deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32, deserialize_i64 => visit_i64,
        deserialize_u8 => visit_u8, deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32, deserialize_u64 => visit_u64,
        deserialize_f32 => visit_f32, deserialize_f64 => visit_f64,
        deserialize_char => visit_char,
    }

    serde::forward_to_deserialize_any! {
        i128 u128 str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
