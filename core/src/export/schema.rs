//! JSON Schema plumbing shared by the three outputs: collecting the named definitions of both
//! directions, `$ref` handling, the wire form of client messages and deterministic JSON text.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Named schemas, keyed by name (sorted, so every output is deterministic).
pub(crate) type Defs = BTreeMap<String, Value>;

/// Definition renames applied to one side's schemas.
pub(crate) type Renames = BTreeMap<String, String>;

const DEFS_PREFIX: &str = "#/$defs/";

/// Keywords whose values are data, not subschemas: never searched for `$ref`.
const DATA_KEYWORDS: [&str; 5] = ["const", "enum", "default", "examples", "example"];

/// The definition name a `#/$defs/...` reference points to.
pub(crate) fn ref_name(reference: &str) -> Option<String> {
    let encoded = reference.strip_prefix(DEFS_PREFIX)?;
    let unescaped = encoded.replace("~1", "/").replace("~0", "~");
    Some(
        percent_encoding::percent_decode_str(&unescaped)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// A reference to definition `name` under `prefix` (`#/$defs/` or `#/components/schemas/`).
pub(crate) fn ref_to(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    for c in name.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c if c.is_ascii_alphanumeric() || "-._!$&'()*+,;=:@".contains(c) => out.push(c),
            c => {
                let mut buf = [0; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
        }
    }
    out
}

/// Calls `f` on every `$ref` string in `schema`, skipping data keywords.
fn for_each_ref(schema: &mut Value, f: &mut impl FnMut(&mut String)) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(s) if key == "$ref" => f(s),
                    _ if DATA_KEYWORDS.contains(&key.as_str()) => {}
                    _ => for_each_ref(value, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| for_each_ref(v, f)),
        _ => {}
    }
}

/// The definition names `schema` refers to directly.
pub(crate) fn refs_of(schema: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for_each_ref(&mut schema.clone(), &mut |r| {
        names.extend(ref_name(r));
    });
    names
}

/// Renames `#/$defs/` references in `schema` per `renames`.
pub(crate) fn rename_refs(schema: &mut Value, renames: &Renames) {
    if renames.is_empty() {
        return;
    }
    for_each_ref(schema, &mut |r| {
        if let Some(new) = ref_name(r).and_then(|n| renames.get(&n)) {
            *r = ref_to(DEFS_PREFIX, new);
        }
    });
}

/// Points every `#/$defs/Name` reference at `prefix` + `names[Name]` (for AsyncAPI components).
pub(crate) fn retarget_refs(schema: &mut Value, prefix: &str, names: &BTreeMap<String, String>) {
    for_each_ref(schema, &mut |r| {
        if let Some(name) = ref_name(r) {
            let key = names.get(&name).map_or(name.as_str(), String::as_str);
            *r = ref_to(prefix, key);
        }
    });
}

/// Merges the definitions of the client side (deserialize contract) and the server side
/// (serialize contract). A type whose two schemas differ (say an `Option` field: optional when
/// read, always present when written) becomes `NameInput` and `NameOutput`, as does every
/// shared type that refers to such a type. Returns the renames of each side and the union.
pub(crate) fn merge_defs(
    client: Map<String, Value>,
    server: Map<String, Value>,
) -> (Renames, Renames, Defs) {
    let in_both = |name: &String| client.contains_key(name) && server.contains_key(name);
    let mut conflicts: BTreeSet<String> = client
        .iter()
        .filter(|(name, schema)| server.get(*name).is_some_and(|s| s != *schema))
        .map(|(name, _)| name.clone())
        .collect();
    loop {
        let spreading: Vec<String> = client
            .iter()
            .chain(server.iter())
            .filter(|(name, schema)| {
                in_both(name)
                    && !conflicts.contains(*name)
                    && refs_of(schema).iter().any(|r| conflicts.contains(r))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if spreading.is_empty() {
            break;
        }
        conflicts.extend(spreading);
    }
    let mut taken: BTreeSet<String> = client.keys().chain(server.keys()).cloned().collect();
    let mut client_renames = Renames::new();
    let mut server_renames = Renames::new();
    for name in &conflicts {
        client_renames.insert(name.clone(), unique(&mut taken, &format!("{name}Input")));
        server_renames.insert(name.clone(), unique(&mut taken, &format!("{name}Output")));
    }
    let mut defs = Defs::new();
    for (side, renames) in [(client, &client_renames), (server, &server_renames)] {
        for (name, mut schema) in side {
            rename_refs(&mut schema, renames);
            let name = renames.get(&name).cloned().unwrap_or(name);
            defs.insert(name, schema);
        }
    }
    (client_renames, server_renames, defs)
}

/// `base`, or `base2`, `base3`, ... whichever is not yet in `taken` (and records it).
pub(crate) fn unique(taken: &mut BTreeSet<String>, base: &str) -> String {
    let mut name = base.to_owned();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}{n}");
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// Follows a schema that is only a `$ref` (possibly with annotations) to its definition.
pub(crate) fn resolve<'a>(mut schema: &'a Value, defs: &'a Defs) -> &'a Value {
    for _ in 0..16 {
        let Some(map) = schema.as_object() else { break };
        let only_ref = map.keys().all(|k| k == "$ref" || is_annotation(k));
        let target = map
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(ref_name)
            .and_then(|n| defs.get(&n));
        match target {
            Some(target) if only_ref => schema = target,
            _ => break,
        }
    }
    schema
}

fn is_annotation(key: &str) -> bool {
    matches!(
        key,
        "description" | "title" | "deprecated" | "default" | "examples"
    )
}

/// The definitions reachable from `roots`.
pub(crate) fn reachable<'a>(
    roots: impl IntoIterator<Item = &'a Value>,
    defs: &Defs,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().flat_map(refs_of).collect();
    while let Some(name) = todo.pop() {
        if let Some(schema) = defs.get(&name) {
            if seen.insert(name) {
                todo.extend(refs_of(schema));
            }
        }
    }
    seen
}

/// The schema of a whole client message on the wire: the handler type's schema (top-level
/// `$ref` inlined) plus the `type` discriminator, which the envelope strips before
/// deserializing (so it fits even `deny_unknown_fields` types).
pub(crate) fn wire_client(schema: &Value, message_type: &str, defs: &Defs) -> Value {
    let tag = json!({ "type": "string", "const": message_type });
    let body = resolve(schema, defs);
    let Some(map) = body.as_object() else {
        // `true` (any value, e.g. `serde_json::Value`) or `false`.
        return match body {
            Value::Bool(false) => Value::Bool(false),
            _ => tagged_object(tag, Map::new()),
        };
    };
    let combinators = ["$ref", "allOf", "anyOf", "oneOf", "not", "if"];
    let is_plain = !combinators.iter().any(|k| map.contains_key(*k));
    let ty = map.get("type").and_then(Value::as_str);
    if is_plain && (ty == Some("object") || (ty.is_none() && map.contains_key("properties"))) {
        let mut out = map.clone();
        let props = out.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert("type".into(), tag);
        }
        let mut required = vec![Value::from("type")];
        if let Some(Value::Array(old)) = out.get("required") {
            required.extend(old.iter().filter(|r| *r != "type").cloned());
        }
        out.insert("required".into(), Value::Array(required));
        out.insert("type".into(), "object".into());
        return Value::Object(out);
    }
    if is_plain && (ty == Some("null") || map.keys().all(|k| is_annotation(k))) {
        // `()`: the envelope ignores every other field.
        let annotations = map.iter().filter(|(k, _)| is_annotation(k));
        return tagged_object(
            tag,
            annotations.map(|(k, v)| (k.clone(), v.clone())).collect(),
        );
    }
    let only_union = map
        .keys()
        .all(|k| k == "oneOf" || k == "anyOf" || is_annotation(k));
    if let (true, Some((key, Value::Array(branches)))) = (
        only_union,
        map.iter().find(|(k, _)| *k == "oneOf" || *k == "anyOf"),
    ) {
        let mut out = map.clone();
        let tagged = branches
            .iter()
            .map(|b| wire_client(b, message_type, defs))
            .collect();
        out.insert(key.clone(), Value::Array(tagged));
        return Value::Object(out);
    }
    json!({ "allOf": [tagged_object(tag, Map::new()), body] })
}

fn tagged_object(tag: Value, mut extra: Map<String, Value>) -> Value {
    extra.insert("type".into(), "object".into());
    extra.insert("properties".into(), json!({ "type": tag }));
    extra.insert("required".into(), json!(["type"]));
    Value::Object(extra)
}

/// The `type` value a message schema pins (`{"properties":{"type":{"const":..}}}`).
pub(crate) fn type_tag(schema: &Value, defs: &Defs) -> Option<String> {
    let tag = resolve(schema, defs).get("properties")?.get("type")?;
    let tag = resolve(tag, defs);
    match (tag.get("const"), tag.get("enum")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (None, Some(Value::Array(one))) if one.len() == 1 => one[0].as_str().map(str::to_owned),
        _ => None,
    }
}

/// The variants of a discriminated union (`oneOf`/`anyOf` whose branches each pin a distinct
/// `type`), e.g. a `#[serde(tag = "type")]` enum. `None` for any other shape.
pub(crate) fn variants(schema: &Value, defs: &Defs) -> Option<Vec<(String, Value)>> {
    let body = resolve(schema, defs);
    let branches = body
        .get("oneOf")
        .or_else(|| body.get("anyOf"))?
        .as_array()?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for branch in branches {
        let tag = type_tag(branch, defs)?;
        if !seen.insert(tag.clone()) {
            return None;
        }
        out.push((tag, branch.clone()));
    }
    (!out.is_empty()).then_some(out)
}

/// `join_room` -> `JoinRoom`, `chat` -> `Chat`, `roomJoined` -> `RoomJoined`.
pub(crate) fn pascal_case(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            first.unwrap_or_default() + chars.as_str()
        })
        .collect()
}

/// Pretty JSON with object keys sorted, whatever `serde_json`'s map order is in this build.
pub(crate) fn to_json_text(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&Sorted(value)).expect("JSON values serialize");
    text.push('\n');
    text
}

struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    out.serialize_entry(k, &Sorted(v))?;
                }
                out.end()
            }
            Value::Array(items) => s.collect_seq(items.iter().map(Sorted)),
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_round_trip_through_escaping() {
        for name in ["Plain", "a/b~c", "Wrapper<String>", "é"] {
            assert_eq!(ref_name(&ref_to(DEFS_PREFIX, name)).as_deref(), Some(name));
        }
    }

    #[test]
    fn differing_definitions_are_split_and_refs_follow() {
        let client = json!({
            "Point": {"type": "object", "required": []},
            "Line": {"properties": {"a": {"$ref": "#/$defs/Point"}}},
            "Same": {"type": "string"}
        });
        let server = json!({
            "Point": {"type": "object", "required": ["label"]},
            "Line": {"properties": {"a": {"$ref": "#/$defs/Point"}}},
            "Same": {"type": "string"}
        });
        let (c, s, defs) = merge_defs(
            client.as_object().unwrap().clone(),
            server.as_object().unwrap().clone(),
        );
        assert_eq!(c["Line"], "LineInput");
        assert_eq!(s["Point"], "PointOutput");
        assert_eq!(
            defs["LineOutput"]["properties"]["a"]["$ref"],
            "#/$defs/PointOutput"
        );
        assert!(defs.contains_key("Same") && !defs.contains_key("Point"));
    }

    #[test]
    fn unit_and_struct_messages_get_the_type_tag() {
        let defs = Defs::new();
        let unit = wire_client(&json!({"type": "null"}), "ping", &defs);
        assert_eq!(unit["properties"]["type"]["const"], "ping");
        let object = json!({"type": "object", "properties": {"a": {}}, "required": ["a"]});
        let tagged = wire_client(&object, "x", &defs);
        assert_eq!(tagged["required"], json!(["type", "a"]));
    }

    #[test]
    fn pascal_case_of_names() {
        assert_eq!(pascal_case("join_room"), "JoinRoom");
        assert_eq!(pascal_case("rooms-v2"), "RoomsV2");
        assert_eq!(pascal_case("roomJoined"), "RoomJoined");
    }
}
