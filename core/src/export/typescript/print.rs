//! The TypeScript type tree and how it is printed.

/// A TypeScript type expression.
pub(super) enum Ts {
    /// `string`, `number`, `boolean`, `null`, `unknown` or `never`.
    Keyword(&'static str),
    /// A literal type, as JSON text (`"join_room"`, `1`, `true`).
    Literal(String),
    /// A named type declared in the file.
    Named(String),
    Array(Box<Ts>),
    /// Fixed elements, then optionally a rest element type.
    Tuple(Vec<Ts>, Option<Box<Ts>>),
    Object(Vec<Field>),
    /// `Record<string, T>`.
    Record(Box<Ts>),
    Union(Vec<Member>),
    Intersection(Vec<Ts>),
}

pub(super) struct Field {
    pub(super) name: String,
    pub(super) optional: bool,
    pub(super) doc: Vec<String>,
    pub(super) ty: Ts,
}

/// A union member; its doc is printed only where the union is declared one member per line.
pub(super) struct Member {
    pub(super) doc: Vec<String>,
    pub(super) ty: Ts,
}

impl Ts {
    pub(super) const UNKNOWN: Ts = Ts::Keyword("unknown");

    pub(super) fn union(mut members: Vec<Member>) -> Ts {
        match members.len() {
            0 => Ts::Keyword("never"),
            1 => members.remove(0).ty,
            _ => Ts::Union(members),
        }
    }

    /// Binding strength: unions bind loosest, then intersections, then everything else.
    fn precedence(&self) -> u8 {
        match self {
            Ts::Union(_) => 0,
            Ts::Intersection(_) => 1,
            _ => 2,
        }
    }
}

pub(super) fn literal_text(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// Appends `export interface` / `export type` for `ty`, with its JSDoc. Unions go one member
/// per line when `list` is set, when a member is documented or when one line is too long.
pub(super) fn declare(out: &mut String, name: &str, doc: &[String], ty: &Ts, list: bool) {
    out.push('\n');
    write_doc(out, doc, 0);
    let one_line = format!("export type {name} = {};\n", print(ty, 0, 0));
    match ty {
        Ts::Object(fields) if !fields.is_empty() => {
            out.push_str(&format!(
                "export interface {name} {}\n",
                object(fields, 0, true)
            ));
        }
        Ts::Union(members)
            if list
                || members.iter().any(|m| !m.doc.is_empty())
                || one_line.len() > 100
                || one_line.lines().count() > 1 =>
        {
            out.push_str(&format!("export type {name} =\n"));
            for member in members {
                write_doc(out, &member.doc, 1);
                out.push_str(&format!("  | {}\n", print(&member.ty, 1, 1)));
            }
            out.pop();
            out.push_str(";\n");
        }
        _ => out.push_str(&one_line),
    }
}

/// Declares a route's message type: one union member per line (as SPEC §5 shows), `never`
/// without members, `unknown` when undeclared.
pub(super) fn declare_members(
    out: &mut String,
    name: &str,
    doc: &[String],
    members: Option<Vec<Member>>,
) {
    match members {
        Some(members) if !members.is_empty() => declare(out, name, doc, &Ts::Union(members), true),
        Some(_) => declare(out, name, doc, &Ts::Keyword("never"), false),
        None => declare(out, name, doc, &Ts::UNKNOWN, false),
    }
}

fn write_doc(out: &mut String, lines: &[String], indent: usize) {
    let pad = "  ".repeat(indent);
    let lines: Vec<String> = lines.iter().map(|l| l.replace("*/", "*\\/")).collect();
    match lines.as_slice() {
        [] => {}
        [one] => out.push_str(&format!("{pad}/** {one} */\n")),
        many => {
            out.push_str(&format!("{pad}/**\n"));
            for line in many {
                let sep = if line.is_empty() { "" } else { " " };
                out.push_str(&format!("{pad} *{sep}{line}\n"));
            }
            out.push_str(&format!("{pad} */\n"));
        }
    }
}

/// Prints `ty` at nesting depth `indent`, in parentheses if it binds looser than `min`.
pub(super) fn print(ty: &Ts, indent: usize, min: u8) -> String {
    let text = match ty {
        Ts::Keyword(k) => (*k).to_owned(),
        Ts::Literal(l) | Ts::Named(l) => l.clone(),
        Ts::Array(item) => format!("{}[]", print(item, indent, 2)),
        Ts::Tuple(items, rest) => {
            let mut parts: Vec<String> = items.iter().map(|t| print(t, indent, 0)).collect();
            parts.extend(rest.iter().map(|r| format!("...{}[]", print(r, indent, 2))));
            format!("[{}]", parts.join(", "))
        }
        Ts::Object(fields) => object(fields, indent, false),
        Ts::Record(values) => format!("Record<string, {}>", print(values, indent, 0)),
        Ts::Union(members) => {
            let parts: Vec<String> = members.iter().map(|m| print(&m.ty, indent, 1)).collect();
            parts.join(" | ")
        }
        Ts::Intersection(parts) => {
            let parts: Vec<String> = parts.iter().map(|t| print(t, indent, 2)).collect();
            parts.join(" & ")
        }
    };
    if ty.precedence() < min {
        format!("({text})")
    } else {
        text
    }
}

/// An object type: on one line when short and undocumented, else one member per line.
fn object(fields: &[Field], indent: usize, multiline: bool) -> String {
    if fields.is_empty() {
        return "{}".into();
    }
    let members: Vec<String> = fields
        .iter()
        .map(|f| {
            let optional = if f.optional { "?" } else { "" };
            format!(
                "{}{optional}: {}",
                key(&f.name),
                print(&f.ty, indent + 1, 0)
            )
        })
        .collect();
    let one_line = format!("{{ {} }}", members.join("; "));
    let documented = fields.iter().any(|f| !f.doc.is_empty());
    if !multiline && !documented && !one_line.contains('\n') && one_line.len() + 2 * indent <= 90 {
        return one_line;
    }
    let mut out = String::from("{\n");
    let pad = "  ".repeat(indent + 1);
    for (f, member) in fields.iter().zip(members) {
        write_doc(&mut out, &f.doc, indent + 1);
        out.push_str(&format!("{pad}{member};\n"));
    }
    out.push_str(&"  ".repeat(indent));
    out.push('}');
    out
}

/// A property key: bare when it is an identifier, else quoted.
fn key(name: &str) -> String {
    let mut chars = name.chars();
    let starts = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$');
    if starts && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        name.to_owned()
    } else {
        literal_text(name)
    }
}
