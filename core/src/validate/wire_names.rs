//! Issue paths in wire names (SPEC §4: `path` uses the serde names, e.g. `["roomId"]`).
//!
//! Validators name fields as they know them: `garde` and most hand-written [`Validate`] impls use
//! Rust field names (`priority_level`), while the client sent wire names (`priorityLevel`). This
//! rewrites each key segment of each issue path, on the error path only (a valid message never
//! gets here), from two sources:
//!
//! 1. **The JSON Schema of the message type** (schemars, deserialize contract), generated once per
//!    type on its first validation failure. At a struct level its `properties` are exactly the
//!    names serde accepts there, so the answer does not depend on how the client laid the
//!    message out: a struct sent in serde's array form (`[["name"]]`, no keys), values nested far
//!    deeper than any parser's recursion limit in fields the type ignores, or an unknown key that
//!    happens to be spelled like the Rust name (`{"priorityLevel":0,"priority_level":1}` reports
//!    `priorityLevel`, the field that was validated).
//! 2. **The keys the client sent**, only where the schema lists no property names (a
//!    `serde_json::Value` field, a map, a hand-written schema) or several that fit (variants of
//!    an untagged enum). One streaming pass over the raw text keeps the values along the
//!    unresolved paths and skips everything else with [`IgnoredAny`], which serde_json skips
//!    without recursion: no depth limit, no stack growth, and no `Value` tree of the message.
//!
//! A name fits when it is equal, or equal after normalisation (`roomId`, `room_id`, `room-id`
//! and `RoomId` all become `roomid`), which covers `rename_all`. An unrelated
//! `#[serde(rename = "prio")]` cannot be derived from the Rust name `priority_level` (neither
//! serde nor schemars records Rust names): a hand-written [`Validate`] must report such a field
//! under its wire name (`v.range("prio", ..)`); garde always reports the Rust name (its
//! `rename` rule is parsed but not applied in garde 0.23), so with garde the path keeps
//! `priority_level`. A name that fits nothing stays as it is: so do fields inside an externally
//! tagged enum (`{"Square":{"sideCm":0}}`), because validators leave the variant out of the path
//! (`["shape","side_cm"]`) and the schema level there lists variant names, not fields.
//!
//! [`Validate`]: super::Validate

use crate::error::{Issue, PathSegment};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Rewrites the key segments of `issues` to wire names. `raw` is the JSON text the client sent
/// for a message of type `T` (the envelope, `type` key included).
pub(crate) fn to_wire_paths<T: JsonSchema + 'static>(issues: &mut [Issue], raw: &str) {
    let has_keys = |i: &Issue| i.path.iter().any(|s| matches!(s, PathSegment::Key(_)));
    if issues.iter().any(has_keys) {
        rewrite(issues, raw, &schema_of::<T>());
    }
}

/// The root schema of `T` as JSON, generated once per type: a client repeating an invalid
/// message costs a map lookup, not a schema generation.
fn schema_of<T: JsonSchema + 'static>() -> Arc<Value> {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, Arc<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(schema) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
    {
        return schema.clone();
    }
    // Generated outside the lock: `JsonSchema` impls are user code.
    let schema = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(id)
        .or_insert_with(|| Arc::new(schema))
        .clone()
}

/// [`to_wire_paths`] with the schema at hand.
fn rewrite(issues: &mut [Issue], raw: &str, schema: &Value) {
    let schemas = Schemas { root: schema };
    let top = schemas.expand(vec![schema]);
    // Segments the schema could not decide, as (issue, segment) positions.
    let mut open = Vec::new();
    for (n, issue) in issues.iter_mut().enumerate() {
        let mut at = top.clone();
        for (s, segment) in issue.path.iter_mut().enumerate() {
            match segment {
                PathSegment::Key(key) => {
                    match schemas.wire_name(&at, key) {
                        Some(Some(wire)) => *key = wire.to_owned(),
                        Some(None) => {}
                        None => open.push((n, s)),
                    }
                    at = schemas.property(&at, key);
                }
                PathSegment::Index(i) => at = schemas.item(&at, *i),
            }
        }
    }
    if !open.is_empty() {
        from_document(issues, &open, raw);
    }
}

/// `roomId`, `room_id`, `room-id` and `RoomId` all normalise to `roomid`.
fn normalizing(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
}

fn normalized(name: &str) -> String {
    normalizing(name).collect()
}

/// Whether two names are equal after normalisation (without allocating).
fn fits(a: &str, b: &str) -> bool {
    normalizing(a).eq(normalizing(b))
}

/// Reads a draft 2020-12 schema as generated by schemars. A position in the document is a set of
/// candidate subschemas (the alternatives of `anyOf`/`oneOf`, an `Option`'s `null`, ...).
struct Schemas<'a> {
    root: &'a Value,
}

/// How many subschemas one expansion may visit: bounds `$ref` cycles in hand-written schemas.
const EXPANSION_BUDGET: usize = 256;

impl<'a> Schemas<'a> {
    /// `at` with every `$ref` followed and every `allOf`/`anyOf`/`oneOf` opened up: the cursor
    /// form every method below takes and returns.
    fn expand(&self, at: Vec<&'a Value>) -> Vec<&'a Value> {
        let plain = |n: &&Value| {
            n.as_object().is_some_and(|o| {
                !["$ref", "allOf", "anyOf", "oneOf"]
                    .iter()
                    .any(|k| o.contains_key(*k))
            })
        };
        if at.iter().all(plain) {
            return at;
        }
        let mut out = Vec::new();
        let mut stack = at;
        stack.reverse();
        let mut budget = EXPANSION_BUDGET;
        while let Some(node) = stack.pop() {
            if budget == 0 {
                break;
            }
            budget -= 1;
            // `true`/`false` schemas say nothing about names.
            let Some(obj) = node.as_object() else {
                continue;
            };
            out.push(node);
            let target = obj
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| self.target(r));
            let subs = ["allOf", "anyOf", "oneOf"]
                .iter()
                .filter_map(|k| obj.get(*k).and_then(Value::as_array))
                .flatten();
            let before = stack.len();
            stack.extend(target.into_iter().chain(subs));
            stack[before..].reverse();
        }
        out
    }

    /// The schema a local `$ref` points to (schemars writes `#/$defs/Name`).
    fn target(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        match pointer.strip_prefix("/$defs/") {
            Some(name) if !name.contains(['/', '~']) => self.root.get("$defs")?.get(name),
            _ => self.root.pointer(pointer),
        }
    }

    /// The wire name for `key` here: `Some(None)` keeps it (it is one, or nothing fits),
    /// `Some(Some(wire))` renames it, `None` means the schema lists no names here, or several
    /// different ones fit, and the document must decide.
    fn wire_name(&self, at: &[&'a Value], key: &str) -> Option<Option<&'a str>> {
        let mut listed = false;
        let mut fit: Option<&'a str> = None;
        for props in at.iter().filter_map(|n| properties(n)) {
            listed = true;
            for name in props.keys() {
                if name == key {
                    return Some(None);
                }
                if fits(name, key) {
                    match fit {
                        Some(other) if other != name => return None,
                        _ => fit = Some(name),
                    }
                }
            }
        }
        listed.then_some(fit)
    }

    /// The subschemas of `key`'s value: its property (equal name, else any that fits), else
    /// `additionalProperties` (maps).
    fn property(&self, at: &[&'a Value], key: &str) -> Vec<&'a Value> {
        let props = || at.iter().filter_map(|n| properties(n)).flatten();
        let mut out: Vec<&'a Value> = props().filter(|(k, _)| *k == key).map(|p| p.1).collect();
        if out.is_empty() {
            out = props().filter(|(k, _)| fits(k, key)).map(|p| p.1).collect();
        }
        if out.is_empty() {
            out = at
                .iter()
                .filter_map(|n| n.get("additionalProperties"))
                .collect();
        }
        self.expand(out)
    }

    /// The subschemas of element `i` of an array (tuples use `prefixItems`).
    fn item(&self, at: &[&'a Value], i: usize) -> Vec<&'a Value> {
        let mut out = Vec::new();
        for node in at {
            if let Some(tuple) = node.get("prefixItems").and_then(Value::as_array) {
                if let Some(s) = tuple.get(i) {
                    out.push(s);
                    continue;
                }
            }
            match node.get("items") {
                // Draft 7 tuple form.
                Some(Value::Array(tuple)) => out.extend(tuple.get(i)),
                Some(items) => out.push(items),
                None => {}
            }
        }
        self.expand(out)
    }
}

fn properties(node: &Value) -> Option<&serde_json::Map<String, Value>> {
    node.get("properties").and_then(Value::as_object)
}

/// Resolves the `open` segments from the keys the client sent: exact name first, else the
/// first key that fits.
fn from_document(issues: &mut [Issue], open: &[(usize, usize)], raw: &str) {
    let mut wanted = Wanted::default();
    for &(n, s) in open {
        wanted.insert(&issues[n].path[..=s]);
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let Ok(doc) = Keep(&wanted).deserialize(&mut de) else {
        return;
    };
    for &(n, s) in open {
        let path = &mut issues[n].path;
        let holder = path[..s]
            .iter()
            .try_fold(&doc, |node, segment| node.child(segment).map(|(_, v)| v));
        if let Some((Some(wire), _)) = holder.and_then(|node| node.child(&path[s])) {
            path[s] = PathSegment::Key(wire.to_owned());
        }
    }
}

/// Positions of the document to keep: a trie of issue path prefixes, keys normalised.
#[derive(Default)]
struct Wanted {
    keys: HashMap<String, Wanted>,
    indices: HashMap<usize, Wanted>,
}

impl Wanted {
    fn insert(&mut self, path: &[PathSegment]) {
        let mut node = self;
        for segment in path {
            node = match segment {
                PathSegment::Key(k) => node.keys.entry(normalized(k)).or_default(),
                PathSegment::Index(i) => node.indices.entry(*i).or_default(),
            };
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.indices.is_empty()
    }
}

/// The document reduced to the wanted positions.
enum Sparse {
    /// Entries whose key fits a wanted key, in document order.
    Object(Vec<(String, Sparse)>),
    /// Wanted elements with their index.
    Array(Vec<(usize, Sparse)>),
    /// A scalar, or a value nothing below is wanted from.
    Other,
}

impl Sparse {
    /// The entry for `segment`: for a key, the document's own key (the same key if present,
    /// else the first that fits) and its value.
    fn child(&self, segment: &PathSegment) -> Option<(Option<&str>, &Sparse)> {
        match (self, segment) {
            (Sparse::Object(entries), PathSegment::Key(key)) => entries
                .iter()
                .find(|(k, _)| k == key)
                .or_else(|| entries.iter().find(|(k, _)| fits(k, key)))
                .map(|(k, v)| (Some(k.as_str()), v)),
            (Sparse::Array(items), PathSegment::Index(i)) => {
                // Kept in document order, so sorted by index.
                items
                    .binary_search_by_key(i, |(at, _)| *at)
                    .ok()
                    .map(|k| (None, &items[k].1))
            }
            _ => None,
        }
    }
}

/// Reads one value, keeping only what `Wanted` asks for. Recurses only along wanted paths (as
/// deep as the longest issue path); everything else is skipped by [`IgnoredAny`].
struct Keep<'w>(&'w Wanted);

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Sparse;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Sparse, D::Error> {
        if self.0.is_empty() {
            d.deserialize_ignored_any(IgnoredAny)?;
            return Ok(Sparse::Other);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Sparse;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sparse, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.0.keys.get(&normalized(&key)) {
                Some(below) => entries.push((key, map.next_value_seed(Keep(below))?)),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Sparse::Object(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sparse, A::Error> {
        let mut items = Vec::new();
        for i in 0.. {
            match self.0.indices.get(&i) {
                Some(below) => match seq.next_element_seed(Keep(below))? {
                    Some(v) => items.push((i, v)),
                    None => break,
                },
                None => {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
        }
        Ok(Sparse::Array(items))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Sparse, E> {
        Ok(Sparse::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Sparse, E> {
        Ok(Sparse::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Sparse, E> {
        Ok(Sparse::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Sparse, E> {
        Ok(Sparse::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Sparse, E> {
        Ok(Sparse::Other)
    }
    fn visit_unit<E>(self) -> Result<Sparse, E> {
        Ok(Sparse::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::decode;
    use crate::error::ErrorCode;
    use crate::validate::{Validate, Validator};
    use serde::Deserialize;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Batch {
        items: Vec<Item>,
        priority_level: u8,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Item {
        display_name: String,
    }

    impl Validate for Item {
        fn validate(&self, v: &mut Validator) {
            v.length("display_name", &self.display_name, 1, 20);
        }
    }

    impl Validate for Batch {
        fn validate(&self, v: &mut Validator) {
            v.each("items", &self.items);
            v.range("priority_level", self.priority_level, 1, 5);
        }
    }

    /// The issue paths `decode::<T>` reports for `text`, as JSON.
    fn decoded_paths<T>(text: &str) -> Vec<Value>
    where
        T: serde::de::DeserializeOwned + Validate + JsonSchema + fmt::Debug + 'static,
    {
        let e = decode::<T>(text).expect_err("invalid message");
        assert_eq!(e.code, ErrorCode::ValidationFailed, "{e:?}");
        paths(&e.issues)
    }

    fn paths(issues: &[Issue]) -> Vec<Value> {
        issues
            .iter()
            .map(|i| serde_json::to_value(&i.path).expect("paths serialize"))
            .collect()
    }

    /// Rewrites hand-made issue paths for type `T` and `raw`.
    fn rewritten<T: JsonSchema + 'static>(
        raw: &str,
        issue_paths: &[Vec<PathSegment>],
    ) -> Vec<Value> {
        let mut issues: Vec<Issue> = issue_paths
            .iter()
            .map(|path| Issue {
                path: path.clone(),
                code: "custom".into(),
                message: "m".into(),
            })
            .collect();
        to_wire_paths::<T>(&mut issues, raw);
        paths(&issues)
    }

    /// `depth` nested arrays: far beyond serde_json's recursion limit of 128.
    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    #[test]
    fn rust_names_map_to_wire_names() {
        let text = r#"{"type":"batch","items":[{"displayName":"a"},{"displayName":""}],"priorityLevel":9}"#;
        assert_eq!(
            decoded_paths::<Batch>(text),
            [json!(["items", 1, "displayName"]), json!(["priorityLevel"])]
        );
    }

    #[test]
    fn deep_nesting_in_ignored_values_keeps_wire_names() {
        // The handler's type skips `x` without a depth limit, so the message is well-shaped; the
        // names must come out right without parsing `x` (100 000 levels would overflow the stack
        // of anything that recursed into it).
        let text = format!(
            r#"{{"type":"batch","x":{},"items":[{{"displayName":""}}],"priorityLevel":0}}"#,
            nested(100_000)
        );
        assert_eq!(
            decoded_paths::<Batch>(&text),
            [json!(["items", 0, "displayName"]), json!(["priorityLevel"])]
        );
    }

    #[test]
    fn array_form_struct_keeps_wire_names() {
        // serde accepts a struct as an array of its fields: no keys in the document there.
        let text = r#"{"type":"batch","items":[{"displayName":"a"},["this name is too long!"]],"priorityLevel":1}"#;
        assert_eq!(
            decoded_paths::<Batch>(text),
            [json!(["items", 1, "displayName"])]
        );
    }

    #[test]
    fn unknown_key_spelled_like_the_rust_name_does_not_win() {
        // serde ignores `priority_level`; the field that failed is `priorityLevel`.
        let text = r#"{"type":"batch","items":[{"displayName":"","display_name":"x"}],"priority_level":3,"priorityLevel":0}"#;
        assert_eq!(
            decoded_paths::<Batch>(text),
            [json!(["items", 0, "displayName"]), json!(["priorityLevel"])]
        );
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    struct Settings {
        levels: Vec<Level>,
    }

    #[allow(dead_code)] // read through its schema only
    #[derive(Debug, Deserialize, JsonSchema)]
    struct Level {
        #[serde(rename = "prio")]
        priority_level: u8,
    }

    impl Validate for Settings {
        fn validate(&self, v: &mut Validator) {
            v.each("levels", &self.levels);
        }
    }

    impl Validate for Level {
        fn validate(&self, v: &mut Validator) {
            // An unrelated rename: the validator must name the wire field itself.
            v.range("prio", self.priority_level, 1, 5);
        }
    }

    #[test]
    fn unrelated_serde_rename_reported_by_wire_name_is_kept() {
        let text = r#"{"type":"settings","levels":[{"prio":3},[9],{"priority_level":1,"prio":0}]}"#;
        assert_eq!(
            decoded_paths::<Settings>(text),
            [json!(["levels", 1, "prio"]), json!(["levels", 2, "prio"])]
        );
        // The Rust name cannot be mapped to `prio` (nothing records it): it stays as it is.
        let raw = r#"{"type":"settings","levels":[{"prio":9}]}"#;
        assert_eq!(
            rewritten::<Settings>(
                raw,
                &[vec!["levels".into(), 0.into(), "priority_level".into()]]
            ),
            [json!(["levels", 0, "priority_level"])]
        );
    }

    #[allow(dead_code)] // read through its schema only
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Shapes {
        by_owner: BTreeMap<String, Item>,
        best_item: Option<Item>,
        shape: Shape,
        extra_data: Value,
        tree: Node,
    }

    #[allow(dead_code)] // read through its schema only
    #[derive(Deserialize, JsonSchema)]
    #[serde(tag = "kind", rename_all_fields = "camelCase")]
    enum Shape {
        Circle { radius_cm: u32 },
        Square { side_cm: u32 },
    }

    #[allow(dead_code)] // read through its schema only
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Node {
        node_name: String,
        child_nodes: Vec<Node>,
    }

    #[test]
    fn schema_is_followed_through_maps_options_enums_and_refs() {
        let raw = r#"{"type":"s"}"#; // the schema alone decides every segment here
        let got = rewritten::<Shapes>(
            raw,
            &[
                vec!["by_owner".into(), "owner_one".into(), "display_name".into()],
                vec!["best_item".into(), "display_name".into()],
                vec!["shape".into(), "side_cm".into()],
                vec![
                    "tree".into(),
                    "child_nodes".into(),
                    0.into(),
                    "child_nodes".into(),
                ],
                vec![
                    "tree".into(),
                    "child_nodes".into(),
                    1.into(),
                    "node_name".into(),
                ],
            ],
        );
        assert_eq!(
            got,
            [
                // A map key is data: kept as the client sent it.
                json!(["byOwner", "owner_one", "displayName"]),
                json!(["bestItem", "displayName"]),
                json!(["shape", "sideCm"]),
                json!(["tree", "childNodes", 0, "childNodes"]),
                json!(["tree", "childNodes", 1, "nodeName"]),
            ]
        );
    }

    #[test]
    fn schemaless_values_resolve_from_the_document_at_any_depth() {
        // `extraData` is a `serde_json::Value`: only the client's keys can name its fields. The
        // document pass skips the deep array without recursing into it.
        let raw = format!(
            r#"{{"type":"s","junk":{},"extraData":{{"skip":{},"userInfo":[{{"nick_Name":""}}]}}}}"#,
            nested(100_000),
            nested(100_000)
        );
        let got = rewritten::<Shapes>(
            &raw,
            &[
                vec![
                    "extra_data".into(),
                    "user_info".into(),
                    0.into(),
                    "nick_name".into(),
                ],
                vec!["extra_data".into(), "absent_key".into()],
            ],
        );
        assert_eq!(
            got,
            [
                json!(["extraData", "userInfo", 0, "nick_Name"]),
                json!(["extraData", "absent_key"]),
            ]
        );
    }

    #[allow(dead_code)] // read through its schema only
    #[derive(Deserialize, JsonSchema)]
    #[serde(untagged)]
    enum Contact {
        #[serde(rename_all = "camelCase")]
        Camel { user_name: String },
        #[serde(rename_all = "kebab-case")]
        Kebab { user_name: String, kebab_only: bool },
    }

    #[test]
    fn names_several_variants_fit_are_taken_from_the_document() {
        let path = vec![PathSegment::from("user_name")];
        let raw = r#"{"type":"c","kebab-only":true,"user-name":""}"#;
        assert_eq!(
            rewritten::<Contact>(raw, std::slice::from_ref(&path)),
            [json!(["user-name"])]
        );
        let raw = r#"{"type":"c","userName":""}"#;
        assert_eq!(rewritten::<Contact>(raw, &[path]), [json!(["userName"])]);
    }

    #[test]
    fn paths_without_keys_skip_the_schema() {
        // Index-only paths need no name: the cache is not even consulted.
        let mut issues = vec![Issue {
            path: vec![3.into()],
            code: "custom".into(),
            message: "m".into(),
        }];
        to_wire_paths::<Value>(&mut issues, "not even JSON");
        assert_eq!(issues[0].path, vec![PathSegment::Index(3)]);
    }
}
