//! Schemas to TypeScript types: the [`Ts`] tree and the JSDoc lines of each schema.

use super::print::{Field, Member, Ts};
use crate::export::schema::{self, Defs};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Turns schemas into [`Ts`], recording which named schemas they use.
pub(super) struct Cx<'a> {
    pub(super) defs: &'a Defs,
    /// TypeScript identifier of each definition.
    pub(super) names: &'a BTreeMap<String, String>,
    /// The definitions used so far.
    pub(super) used: BTreeSet<String>,
}

impl Cx<'_> {
    pub(super) fn member(&mut self, schema: &Value) -> Member {
        Member {
            doc: doc_of(schema),
            ty: self.ty(schema),
        }
    }

    /// The members of a schema that is a plain union, else the schema as the only member.
    pub(super) fn members(&mut self, schema: &Value) -> Vec<Member> {
        let union = schema.as_object().and_then(|map| {
            let branches = map.get("oneOf").or_else(|| map.get("anyOf"))?.as_array()?;
            let only = map
                .keys()
                .all(|k| matches!(k.as_str(), "oneOf" | "anyOf" | "description" | "title"));
            only.then_some(branches)
        });
        match union {
            Some(branches) => branches.iter().map(|b| self.member(b)).collect(),
            None => vec![plain(self.ty(schema))],
        }
    }

    pub(super) fn ty(&mut self, schema: &Value) -> Ts {
        match schema {
            Value::Bool(false) => Ts::Keyword("never"),
            Value::Object(map) => self.object_schema(map),
            _ => Ts::UNKNOWN,
        }
    }

    fn object_schema(&mut self, map: &Map<String, Value>) -> Ts {
        if let Some(value) = map.get("const") {
            return literal(value);
        }
        if let Some(Value::Array(options)) = map.get("enum") {
            let members = options.iter().map(|v| plain(literal(v))).collect();
            return Ts::union(members);
        }
        let mut parts = Vec::new();
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            parts.push(self.reference(reference));
        }
        let combined = !parts.is_empty()
            || ["allOf", "anyOf", "oneOf"]
                .iter()
                .any(|k| map.contains_key(*k));
        parts.extend(self.typed(map, combined));
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = map.get(key) {
                let members = branches.iter().map(|b| self.member(b)).collect();
                parts.push(Ts::union(members));
            }
        }
        if let Some(Value::Array(all)) = map.get("allOf") {
            parts.extend(all.iter().map(|s| self.ty(s)));
        }
        match parts.len() {
            0 => Ts::UNKNOWN,
            1 => parts.remove(0),
            _ => Ts::Intersection(parts),
        }
    }

    fn reference(&mut self, reference: &str) -> Ts {
        let Some(name) = schema::ref_name(reference).filter(|n| self.defs.contains_key(n)) else {
            return Ts::UNKNOWN;
        };
        let ident = self.names[&name].clone();
        self.used.insert(name);
        Ts::Named(ident)
    }

    /// What `type` (or the shape keywords) say; `None` when nothing does.
    fn typed(&mut self, map: &Map<String, Value>, combined: bool) -> Option<Ts> {
        let has = |k: &str| map.contains_key(k);
        let types: Vec<&str> = match map.get("type") {
            Some(Value::String(t)) => vec![t],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ if has("properties") || has("additionalProperties") => vec!["object"],
            _ if has("items") || has("prefixItems") => vec!["array"],
            _ => return None,
        };
        let mut members = Vec::new();
        for t in types {
            let ty = match t {
                "string" => Ts::Keyword("string"),
                "number" | "integer" => Ts::Keyword("number"),
                "boolean" => Ts::Keyword("boolean"),
                "null" => Ts::Keyword("null"),
                "array" => self.array(map),
                "object" => match self.object(map, combined) {
                    Some(ty) => ty,
                    None => continue,
                },
                _ => Ts::UNKNOWN,
            };
            members.push(plain(ty));
        }
        (!members.is_empty()).then(|| Ts::union(members))
    }

    fn array(&mut self, map: &Map<String, Value>) -> Ts {
        if let Some(Value::Array(prefix)) = map.get("prefixItems") {
            let items = prefix.iter().map(|s| self.ty(s)).collect();
            let rest = match map.get("items") {
                Some(Value::Bool(false)) => None,
                Some(s) => Some(self.ty(s)),
                None if map.get("maxItems").and_then(Value::as_u64)
                    == Some(prefix.len() as u64) =>
                {
                    None
                }
                None => Some(Ts::UNKNOWN),
            };
            return Ts::Tuple(items, rest.map(Box::new));
        }
        let item = map.get("items").map_or(Ts::UNKNOWN, |s| self.ty(s));
        Ts::Array(Box::new(item))
    }

    /// An object type; `None` for a bare `type: object` beside combinators (they say it all).
    fn object(&mut self, map: &Map<String, Value>, combined: bool) -> Option<Ts> {
        let additional = match map.get("additionalProperties") {
            Some(Value::Bool(true)) | None => None,
            Some(schema) => Some(schema),
        };
        let closed = matches!(additional, Some(Value::Bool(false)));
        let extra = additional.filter(|_| !closed).map(|s| self.ty(s));
        let properties = map.get("properties").and_then(Value::as_object);
        let Some(properties) = properties.filter(|p| !p.is_empty()) else {
            return match extra {
                Some(values) => Some(Ts::Record(Box::new(values))),
                None if closed => Some(Ts::Record(Box::new(Ts::Keyword("never")))),
                None if combined => None,
                None => Some(Ts::Record(Box::new(Ts::UNKNOWN))),
            };
        };
        let required: Vec<&str> = match map.get("required") {
            Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        // Required fields in declaration order (schemars keeps it there), then the rest sorted.
        let mut order: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| properties.contains_key(*r))
            .collect();
        let mut rest: Vec<&str> = properties
            .keys()
            .map(String::as_str)
            .filter(|k| !required.contains(k))
            .collect();
        rest.sort_unstable();
        order.dedup();
        order.extend(rest);
        let fields = order
            .into_iter()
            .map(|name| {
                let schema = &properties[name];
                Field {
                    name: name.to_owned(),
                    optional: !required.contains(&name),
                    doc: doc_of(schema),
                    ty: self.ty(schema),
                }
            })
            .collect();
        let object = Ts::Object(fields);
        Some(match extra {
            Some(values) => Ts::Intersection(vec![object, Ts::Record(Box::new(values))]),
            None => object,
        })
    }
}

pub(super) fn plain(ty: Ts) -> Member {
    Member {
        doc: Vec::new(),
        ty,
    }
}

fn literal(value: &Value) -> Ts {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            Ts::Literal(value.to_string())
        }
        _ => Ts::UNKNOWN,
    }
}

/// Keywords shown as JSDoc tags, in this order.
#[rustfmt::skip]
const CONSTRAINTS: &[&str] = &[
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties",
];

/// JSDoc lines for a schema: title, description, then constraints as tags.
pub(super) fn doc_of(schema: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for key in ["title", "description"] {
        if let Some(text) = schema.get(key).and_then(Value::as_str) {
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.extend(text.lines().map(|l| l.trim_end().to_owned()));
        }
    }
    constraint_tags(schema, "", &mut lines);
    if schema.get("deprecated") == Some(&Value::Bool(true)) {
        lines.push("@deprecated".into());
    }
    if let Some(default) = schema.get("default") {
        lines.push(format!("@default {default}"));
    }
    if let Some(Value::Array(examples)) = schema.get("examples") {
        lines.extend(examples.iter().map(|e| format!("@example {e}")));
    }
    lines
}

/// `@minLength 1`, ...; constraints of array items and map values get an `items.` or
/// `values.` prefix; a nullable wrapper shows its inner type's constraints.
fn constraint_tags(schema: &Value, prefix: &str, lines: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    let unsigned = map
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f.starts_with("uint"));
    let tuple_len = map
        .get("prefixItems")
        .and_then(Value::as_array)
        .map(|p| Value::from(p.len()));
    for key in CONSTRAINTS {
        match map.get(*key) {
            // A tuple's length is in its type.
            Some(n)
                if (*key == "minItems" || *key == "maxItems") && Some(n) == tuple_len.as_ref() => {}
            // Implied by an unsigned format.
            Some(Value::Number(n)) if *key == "minimum" && unsigned && n.as_f64() == Some(0.0) => {}
            Some(Value::String(f)) if *key == "format" && (f == "double" || f == "float") => {}
            Some(Value::String(s)) => lines.push(format!("@{prefix}{key} {s}")),
            Some(Value::Bool(true)) => lines.push(format!("@{prefix}{key}")),
            Some(Value::Bool(false)) | None => {}
            Some(other) => lines.push(format!("@{prefix}{key} {other}")),
        }
    }
    let inline = |s: &&Value| s.is_object() && s.get("$ref").is_none();
    if let Some(items) = map.get("items").filter(inline) {
        constraint_tags(items, &format!("{prefix}items."), lines);
    }
    if let Some(values) = map.get("additionalProperties").filter(inline) {
        constraint_tags(values, &format!("{prefix}values."), lines);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            let non_null: Vec<&Value> = branches
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if let ([inner], 2) = (non_null.as_slice(), branches.len()) {
                if inline(inner) {
                    constraint_tags(inner, prefix, lines);
                }
            }
        }
    }
}
