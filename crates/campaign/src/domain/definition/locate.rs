//! From a document to the one tree serde reads, and from a serde failure back to the field it is
//! about.
//!
//! serde_path_to_error follows structs, maps and lists, but not into an internally tagged enum (a
//! step, the entry, an action): serde buffers those before it knows the variant, and the path stops
//! at the tagged object. Below that point the field is found from serde's message, which names it
//! (``missing field `timeout` ``) or quotes the value it refused (`invalid value: string "soon"`).

use std::fmt::Write as _;

use serde_json::Value;
use serde_path_to_error::Segment;

use super::{Problem, step_path};

pub(super) fn json_tree(document: &str) -> Result<Value, Problem> {
    serde_json::from_str(document).map_err(|e| Problem {
        path: String::new(),
        message: format!("not JSON: {e}"),
    })
}

/// TOML dates and times become the strings the JSON form writes, so that both read alike.
pub(super) fn toml_tree(document: &str) -> Result<Value, Problem> {
    let table: toml::Table = toml::from_str(document).map_err(|e| {
        // toml puts what it expected on a line of its own.
        let message = e.message().trim_end().replace('\n', ", ");
        let message = match e.span() {
            Some(span) => {
                let (line, column) = line_column(document, span.start);
                format!("not TOML (line {line}, column {column}): {message}")
            }
            None => format!("not TOML: {message}"),
        };
        Problem {
            path: String::new(),
            message,
        }
    })?;
    Ok(from_toml(toml::Value::Table(table)))
}

fn from_toml(value: toml::Value) -> Value {
    match value {
        toml::Value::String(text) => Value::String(text),
        toml::Value::Integer(n) => Value::from(n),
        // NaN and infinities have no JSON number; as text they are refused with their name.
        toml::Value::Float(x) => serde_json::Number::from_f64(x)
            .map_or_else(|| Value::String(x.to_string()), Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(at) => Value::String(at.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(from_toml).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(key, value)| (key, from_toml(value)))
                .collect(),
        ),
    }
}

fn line_column(document: &str, offset: usize) -> (usize, usize) {
    let before = document.get(..offset).unwrap_or(document);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Field(String),
    Index(usize),
}

impl Key {
    fn get<'a>(&self, node: &'a Value) -> Option<&'a Value> {
        match self {
            Key::Field(field) => node.get(field),
            Key::Index(index) => node.get(index),
        }
    }
}

pub(super) fn serde_problem(
    error: &serde_path_to_error::Error<serde_json::Error>,
    tree: &Value,
) -> Problem {
    let message = error.inner().to_string();
    let mut path = Vec::new();
    let mut node = Some(tree);
    for segment in error.path().iter() {
        let key = match segment {
            Segment::Seq { index } => Key::Index(*index),
            // An externally tagged variant is a key in the tree.
            Segment::Map { key } | Segment::Enum { variant: key } => Key::Field(key.clone()),
            Segment::Unknown => break,
        };
        node = node.and_then(|n| key.get(n));
        path.push(key);
    }
    if let Some(below) = node.and_then(|node| field_of(node, &message)) {
        path.extend(below);
    }
    Problem {
        path: render(&path, tree),
        message,
    }
}

/// The path, below `node`, of what `message` is about.
fn field_of(node: &Value, message: &str) -> Option<Vec<Key>> {
    let with_field = |found: Option<Vec<Key>>, field: &str| {
        found.map(|mut path| {
            path.push(Key::Field(field.to_owned()));
            path
        })
    };
    if let Some(field) = quoted_after(message, "missing field `") {
        let lacking = find(node, &|v| {
            v.as_object().is_some_and(|o| !o.contains_key(field))
        });
        return with_field(lacking, field);
    }
    if let Some(field) = quoted_after(message, "unknown field `")
        .or_else(|| quoted_after(message, "duplicate field `"))
    {
        let holding = find(node, &|v| {
            v.as_object().is_some_and(|o| o.contains_key(field))
        });
        return with_field(holding, field);
    }
    // What follows names the expected values, which may well be in the tree too.
    let subject = message.split(", expected").next().unwrap_or(message);
    find(node, &|v| quoted_in(v, subject))
}

fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let start = message.find(prefix)? + prefix.len();
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Whether serde's message shows this scalar as the value it refused: strings are debug-quoted or
/// in backticks (an unknown variant), numbers and booleans in backticks.
fn quoted_in(value: &Value, subject: &str) -> bool {
    match value {
        Value::String(text) => {
            subject.contains(&format!("{text:?}")) || subject.contains(&format!("`{text}`"))
        }
        Value::Number(n) => subject.contains(&format!("`{n}`")),
        Value::Bool(b) => subject.contains(&format!("`{b}`")),
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

/// The first node, depth first and `node` itself before all else, that `hit` accepts.
fn find(node: &Value, hit: &dyn Fn(&Value) -> bool) -> Option<Vec<Key>> {
    if hit(node) {
        return Some(Vec::new());
    }
    let below = |key: Key, child: &Value| {
        find(child, hit).map(|mut path| {
            path.insert(0, key);
            path
        })
    };
    match node {
        Value::Object(object) => object
            .iter()
            .find_map(|(field, child)| below(Key::Field(field.clone()), child)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, child)| below(Key::Index(index), child)),
        _ => None,
    }
}

/// `steps[2](wait-order).timeout`: dotted fields, indexed lists, a step with its id.
fn render(path: &[Key], tree: &Value) -> String {
    let mut out = String::new();
    for (i, key) in path.iter().enumerate() {
        match key {
            Key::Index(index) if i == 1 && path[0] == Key::Field("steps".into()) => {
                let id = tree
                    .get("steps")
                    .and_then(|steps| steps.get(index))
                    .and_then(|step| step.get("id"))
                    .and_then(Value::as_str);
                out = step_path(*index, id);
            }
            Key::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
            Key::Field(field) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(field);
            }
        }
    }
    out
}
