//! JSON Schema, the subset agents use: what an agent's input must be and what its output is.
//!
//! A full JSON Schema implementation (`jsonschema`) brings regex engines, URL resolution and
//! format checkers that no agent needs and costs minutes of build on a 2-core machine; the
//! catalog and custom agents describe plain JSON documents, so this module enforces the
//! keywords such documents use: `type`, `properties`, `required`, `additionalProperties`,
//! `items`, `enum`, `const`, `anyOf`, `minimum`, `maximum`, `minLength`, `maxLength`,
//! `minItems`, `maxItems`, `pattern`. Annotations (`title`, `description`, `default`,
//! `examples`, `format`, `$schema`, `$id`, `$comment`) are accepted and not enforced. Any other
//! keyword makes the schema invalid rather than silently unenforced, so a definition never
//! promises a check that does not happen.
//!
//! A schema is compiled once ([`Schema::compile`], at catalog load or custom-agent save) and then
//! validates many documents; violations name the failing field as a path such as
//! `input.entities[0].name`.

use regex::Regex;
use serde_json::Value;

/// One problem, at `path` (into the schema when compiling, into the document when validating).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl Violation {
    fn new(path: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Object,
    Array,
    String,
    Number,
    Integer,
    Boolean,
    Null,
}

impl Type {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "object" => Self::Object,
            "array" => Self::Array,
            "string" => Self::String,
            "number" => Self::Number,
            "integer" => Self::Integer,
            "boolean" => Self::Boolean,
            "null" => Self::Null,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Object => "an object",
            Self::Array => "an array",
            Self::String => "a string",
            Self::Number => "a number",
            Self::Integer => "an integer",
            Self::Boolean => "a boolean",
            Self::Null => "null",
        }
    }

    fn matches(self, value: &Value) -> bool {
        match self {
            Self::Object => value.is_object(),
            Self::Array => value.is_array(),
            Self::String => value.is_string(),
            Self::Number => value.is_number(),
            Self::Integer => {
                value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0)
            }
            Self::Boolean => value.is_boolean(),
            Self::Null => value.is_null(),
        }
    }
}

#[derive(Debug, Default)]
enum Additional {
    #[default]
    Allowed,
    Forbidden,
    Schema(Box<Node>),
}

#[derive(Debug, Default)]
struct Node {
    types: Vec<Type>,
    properties: Vec<(String, Node)>,
    required: Vec<String>,
    additional: Additional,
    items: Option<Box<Node>>,
    allowed: Option<Vec<Value>>,
    constant: Option<Value>,
    any_of: Vec<Node>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    pattern: Option<Regex>,
}

const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "format",
    "$schema",
    "$id",
    "$comment",
];

/// A compiled schema and the JSON it came from.
#[derive(Debug)]
pub struct Schema {
    root: Node,
    source: Value,
}

impl Schema {
    /// Compiles `source`, or lists every problem in it (paths into the schema, from `at`).
    pub fn compile(source: &Value, at: &str) -> Result<Self, Vec<Violation>> {
        let mut problems = Vec::new();
        let root = compile_node(source, at, &mut problems);
        if problems.is_empty() {
            Ok(Self {
                root,
                source: source.clone(),
            })
        } else {
            Err(problems)
        }
    }

    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Whether the schema describes an object (what agent inputs and outputs are).
    pub fn is_object_schema(&self) -> bool {
        self.root.types == [Type::Object]
    }

    /// Every way `document` fails the schema, naming fields from `root` (e.g. "input").
    pub fn validate(&self, document: &Value, root: &str) -> Vec<Violation> {
        let mut problems = Vec::new();
        validate_node(&self.root, document, root, &mut problems);
        problems
    }
}

fn compile_node(schema: &Value, at: &str, problems: &mut Vec<Violation>) -> Node {
    let Some(map) = schema.as_object() else {
        problems.push(Violation::new(at, "a schema must be an object"));
        return Node::default();
    };
    let mut node = Node::default();
    for (keyword, value) in map {
        let here = format!("{at}.{keyword}");
        match keyword.as_str() {
            "type" => node.types = compile_types(value, &here, problems),
            "properties" => match value.as_object() {
                Some(properties) => {
                    for (name, property) in properties {
                        let child = compile_node(property, &format!("{here}.{name}"), problems);
                        node.properties.push((name.clone(), child));
                    }
                }
                None => problems.push(Violation::new(&here, "must be an object of schemas")),
            },
            "required" => match string_list(value) {
                Some(names) => node.required = names,
                None => problems.push(Violation::new(&here, "must be an array of names")),
            },
            "additionalProperties" => {
                node.additional = match value {
                    Value::Bool(true) => Additional::Allowed,
                    Value::Bool(false) => Additional::Forbidden,
                    other => Additional::Schema(Box::new(compile_node(other, &here, problems))),
                }
            }
            "items" => node.items = Some(Box::new(compile_node(value, &here, problems))),
            "enum" => match value.as_array() {
                Some(values) if !values.is_empty() => node.allowed = Some(values.clone()),
                _ => problems.push(Violation::new(&here, "must be a non-empty array")),
            },
            "const" => node.constant = Some(value.clone()),
            "anyOf" => match value.as_array() {
                Some(schemas) if !schemas.is_empty() => {
                    node.any_of = schemas
                        .iter()
                        .enumerate()
                        .map(|(i, s)| compile_node(s, &format!("{here}[{i}]"), problems))
                        .collect();
                }
                _ => problems.push(Violation::new(
                    &here,
                    "must be a non-empty array of schemas",
                )),
            },
            "minimum" | "maximum" => match value.as_f64() {
                Some(bound) if keyword == "minimum" => node.minimum = Some(bound),
                Some(bound) => node.maximum = Some(bound),
                None => problems.push(Violation::new(&here, "must be a number")),
            },
            "minLength" | "maxLength" | "minItems" | "maxItems" => {
                match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
                    Some(n) => match keyword.as_str() {
                        "minLength" => node.min_length = Some(n),
                        "maxLength" => node.max_length = Some(n),
                        "minItems" => node.min_items = Some(n),
                        _ => node.max_items = Some(n),
                    },
                    None => problems.push(Violation::new(&here, "must be a whole number")),
                }
            }
            "pattern" => match value.as_str().map(Regex::new) {
                Some(Ok(regex)) => node.pattern = Some(regex),
                Some(Err(err)) => {
                    problems.push(Violation::new(&here, format!("not a valid pattern: {err}")))
                }
                None => problems.push(Violation::new(&here, "must be a string")),
            },
            known if ANNOTATIONS.contains(&known) => {}
            unknown => problems.push(Violation::new(
                &here,
                format!("the keyword {unknown:?} is not supported"),
            )),
        }
    }
    for name in &node.required {
        let declared = node.properties.iter().any(|(p, _)| p == name);
        if !declared && matches!(node.additional, Additional::Forbidden) {
            problems.push(Violation::new(
                &format!("{at}.required"),
                format!("{name:?} is required but cannot be given (additionalProperties is false)"),
            ));
        }
    }
    node
}

fn compile_types(value: &Value, at: &str, problems: &mut Vec<Violation>) -> Vec<Type> {
    let names = match value {
        Value::String(name) => vec![name.clone()],
        other => string_list(other).unwrap_or_default(),
    };
    let types: Vec<Type> = names.iter().filter_map(|n| Type::parse(n)).collect();
    if types.is_empty() || types.len() != names.len() {
        problems.push(Violation::new(
            at,
            "must name JSON types (object, array, string, number, integer, boolean, null)",
        ));
    }
    types
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

fn validate_node(node: &Node, value: &Value, at: &str, problems: &mut Vec<Violation>) {
    if !node.types.is_empty() && !node.types.iter().any(|t| t.matches(value)) {
        let names: Vec<&str> = node.types.iter().map(|t| t.name()).collect();
        problems.push(Violation::new(
            at,
            format!("must be {}", names.join(" or ")),
        ));
        return;
    }
    if let Some(allowed) = &node.allowed
        && !allowed.contains(value)
    {
        let listed: Vec<String> = allowed.iter().map(Value::to_string).collect();
        problems.push(Violation::new(
            at,
            format!("must be one of {}", listed.join(", ")),
        ));
    }
    if let Some(constant) = &node.constant
        && constant != value
    {
        problems.push(Violation::new(at, format!("must be {constant}")));
    }
    if !node.any_of.is_empty()
        && !node.any_of.iter().any(|option| {
            let mut scratch = Vec::new();
            validate_node(option, value, at, &mut scratch);
            scratch.is_empty()
        })
    {
        problems.push(Violation::new(at, "matches none of the allowed forms"));
    }
    match value {
        Value::Object(map) => {
            for name in &node.required {
                if !map.contains_key(name) {
                    problems.push(Violation::new(&format!("{at}.{name}"), "is required"));
                }
            }
            for (key, child) in map {
                let here = format!("{at}.{key}");
                match node.properties.iter().find(|(name, _)| name == key) {
                    Some((_, schema)) => validate_node(schema, child, &here, problems),
                    None => match &node.additional {
                        Additional::Allowed => {}
                        Additional::Forbidden => {
                            problems.push(Violation::new(&here, "is not an accepted field"))
                        }
                        Additional::Schema(schema) => validate_node(schema, child, &here, problems),
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = node.min_items
                && items.len() < min
            {
                problems.push(Violation::new(
                    at,
                    format!("must have at least {min} items"),
                ));
            }
            if let Some(max) = node.max_items
                && items.len() > max
            {
                problems.push(Violation::new(at, format!("must have at most {max} items")));
            }
            if let Some(schema) = &node.items {
                for (i, item) in items.iter().enumerate() {
                    validate_node(schema, item, &format!("{at}[{i}]"), problems);
                }
            }
        }
        Value::String(text) => {
            let length = text.chars().count();
            if let Some(min) = node.min_length
                && length < min
            {
                let message = if min == 1 {
                    "must not be empty".to_owned()
                } else {
                    format!("must be at least {min} characters long")
                };
                problems.push(Violation::new(at, message));
            }
            if let Some(max) = node.max_length
                && length > max
            {
                problems.push(Violation::new(
                    at,
                    format!("must be at most {max} characters long"),
                ));
            }
            if let Some(pattern) = &node.pattern
                && !pattern.is_match(text)
            {
                problems.push(Violation::new(
                    at,
                    format!("must match the pattern {}", pattern.as_str()),
                ));
            }
        }
        Value::Number(number) => {
            let n = number.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = node.minimum
                && n < min
            {
                problems.push(Violation::new(at, format!("must be at least {min}")));
            }
            if let Some(max) = node.maximum
                && n > max
            {
                problems.push(Violation::new(at, format!("must be at most {max}")));
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(source: Value) -> Schema {
        Schema::compile(&source, "schema").expect("a valid schema")
    }

    #[test]
    fn violations_name_the_nested_field() {
        let schema = schema(json!({
            "type": "object",
            "required": ["entities"],
            "properties": {
                "entities": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string", "pattern": "^[A-Za-z]+$"}}
                }}
            }
        }));
        let problems = schema.validate(
            &json!({"entities": [{"name": "Ok"}, {"name": "b-d"}]}),
            "input",
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "input.entities[1].name");
        assert_eq!(
            schema.validate(&json!({}), "input")[0].path,
            "input.entities"
        );
        assert_eq!(
            schema.validate(&json!({"entities": []}), "input")[0].message,
            "must have at least 1 items"
        );
    }

    #[test]
    fn types_enums_bounds_and_unknown_fields_are_enforced() {
        let schema = schema(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"enum": ["a", "b"]},
                "v": {"anyOf": [{"type": "string"}, {"type": "number"}]}
            }
        }));
        assert!(
            schema
                .validate(&json!({"n": 3, "mode": "a", "v": 2.5}), "input")
                .is_empty()
        );
        assert!(schema.validate(&json!({"n": 3.0}), "input").is_empty());
        let paths = |doc: Value| -> Vec<String> {
            schema
                .validate(&doc, "input")
                .into_iter()
                .map(|v| v.path)
                .collect()
        };
        assert_eq!(paths(json!({"n": 2.5})), ["input.n"]);
        assert_eq!(paths(json!({"n": 11})), ["input.n"]);
        assert_eq!(paths(json!({"mode": "c"})), ["input.mode"]);
        assert_eq!(paths(json!({"v": true})), ["input.v"]);
        assert_eq!(paths(json!({"extra": 1})), ["input.extra"]);
        assert_eq!(paths(json!([])), ["input"]);
    }

    #[test]
    fn unsupported_keywords_and_bad_patterns_make_a_schema_invalid() {
        let problems = Schema::compile(
            &json!({"type": "object", "properties": {"a": {"type": "strin"}, "b": {"pattern": "("}}, "oneOf": []}),
            "input_schema",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|v| v.path.as_str()).collect();
        assert!(
            paths.contains(&"input_schema.properties.a.type"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"input_schema.properties.b.pattern"),
            "{paths:?}"
        );
        assert!(paths.contains(&"input_schema.oneOf"), "{paths:?}");
    }
}
