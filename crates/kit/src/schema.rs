//! JSON Schema, the subset agents use: what an agent's input must be and what its output is.
//!
//! A full JSON Schema implementation (`jsonschema`) brings regex engines, URL resolution and
//! format checkers that no agent needs and costs minutes of build on a 2-core machine; the
//! catalog and custom agents describe plain JSON documents, so this module enforces the
//! keywords such documents use: `type`, `properties`, `required`, `additionalProperties`,
//! `items`, `contains`, `enum`, `const`, `anyOf`, `allOf`, `not`, `if`/`then`/`else`, `minimum`, `maximum`,
//! `minLength`, `maxLength`, `minItems`, `maxItems`, `pattern`. A value refused by `not` is
//! reported as "must not be <value>", followed by the `not` schema's `description` when it has
//! one, so a schema can say why (`"is a Python keyword"`). Annotations (`title`, `description`, `default`,
//! `examples`, `format`, `$schema`, `$id`, `$comment`) are accepted and not enforced. Any other
//! keyword makes the schema invalid rather than silently unenforced, so a definition never
//! promises a check that does not happen.
//!
//! A schema is compiled once ([`Schema::compile`], at catalog load or custom-agent save) and then
//! validates many documents; violations name the failing field as a path such as
//! `input.entities[0].name`.
//!
//! Tenants write schemas (custom agents) and send the documents checked against them, so both
//! are bounded. A schema nests at most [`MAX_SCHEMA_DEPTH`] deep, lists at most
//! [`MAX_ENUM_VALUES`] values and [`MAX_PROPERTIES`] properties, and holds at most
//! [`MAX_PATTERNS`] patterns of at most [`MAX_PATTERN_BYTES`], each compiled within
//! [`PATTERN_SIZE_LIMIT`]. Validating a document stops after [`MAX_VIOLATIONS`] violations,
//! each message and path cut short ([`Violation::new`]), and checks at most
//! [`MAX_PATTERN_TEXT_BYTES`] of its text against patterns in at most [`MAX_VALIDATION_STEPS`]
//! steps: a document failing in every one of 100,000 items, or quoting a large enum in each
//! failure, costs no more than one failing twenty times.

use crate::limits::truncate;
use regex::{Regex, RegexBuilder};
use serde_json::Value;

/// The most violations collected for one document (or one schema); past them checking stops.
pub const MAX_VIOLATIONS: usize = 20;
/// The longest violation message kept, in bytes; a longer one is cut.
pub const MAX_VIOLATION_MESSAGE_BYTES: usize = 160;
/// The longest violation path kept, in bytes; a longer one is cut and ends in `...`.
pub const MAX_VIOLATION_PATH_BYTES: usize = 128;
/// How deep schemas may nest in a schema (through `properties`, `items`,
/// `additionalProperties`, `contains`, `anyOf`, `allOf`, `not` and `if`/`then`/`else`).
pub const MAX_SCHEMA_DEPTH: usize = 16;
/// The most values an `enum` may list.
pub const MAX_ENUM_VALUES: usize = 256;
/// The most properties one object schema may declare.
pub const MAX_PROPERTIES: usize = 256;
/// The most `pattern`s one schema may hold: each compiled one costs memory for as long as the
/// agent is cached.
pub const MAX_PATTERNS: usize = 16;
/// The longest `pattern`, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The most a compiled pattern may take (regex's `size_limit`), and the most its lazy DFA may
/// cache (`dfa_size_limit`). Matching takes time in proportion to the text's length times the
/// states the pattern has active (this workspace builds regex without its lazy DFA, so every
/// match runs the PikeVM): `.{1000}\d`, 1 MiB compiled, took 15 s over 1 MiB of text here.
/// 100 repetitions of a Unicode class such as `\w` are past this bound; an ASCII class
/// (`[A-Za-z0-9_]`, or `(?-u:\w)`) says the same in a few KiB.
pub const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// What a pattern is first compiled within; most fit, and then weigh this little in the cache
/// and cost [`SMALL_PATTERN_COST_PER_BYTE`] per byte of text.
const SMALL_PATTERN_SIZE_LIMIT: usize = 16 * 1024;
/// What a byte of text checked costs of [`MAX_PATTERN_TEXT_BYTES`], for a pattern within
/// [`SMALL_PATTERN_SIZE_LIMIT`] and for a larger one. Measured here (release build) over 64 KiB
/// of text: the slowest small pattern found (`[a-z]{200}\d`) took 0.4 s, the slowest large one
/// (`.{600}\d`) 1.7 s, four times as long.
const SMALL_PATTERN_COST_PER_BYTE: usize = 1;
const LARGE_PATTERN_COST_PER_BYTE: usize = 4;
/// How much text one document may have checked against patterns, in bytes of text checked
/// against small patterns (a large pattern's count four times): past it, a string with a
/// pattern is a violation. Bounds what patterns cost one request to about half a second of CPU.
pub const MAX_PATTERN_TEXT_BYTES: usize = 64 * 1024;
/// The most (schema, value) pairs one validation visits: a document of 500,000 items against
/// an `anyOf` of 3,000 options would otherwise take minutes. Past it the document is refused.
pub const MAX_VALIDATION_STEPS: usize = 1_000_000;

/// One problem, at `path` (into the schema when compiling, into the document when validating).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

impl Violation {
    /// A violation with its path and message cut to [`MAX_VIOLATION_PATH_BYTES`] and
    /// [`MAX_VIOLATION_MESSAGE_BYTES`].
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            path: cut_path(path),
            message: truncate(&message, MAX_VIOLATION_MESSAGE_BYTES).into_owned(),
        }
    }
}

/// Said as `path: message`.
impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// `problems` said one after the other, `path: message; path: message`.
pub fn joined(problems: &[Violation]) -> String {
    problems
        .iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn cut_path(path: &str) -> String {
    if path.len() <= MAX_VIOLATION_PATH_BYTES {
        return path.to_owned();
    }
    let mut end = MAX_VIOLATION_PATH_BYTES - 3;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
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
    /// An array must hold at least one item that holds against it.
    contains: Option<Box<Node>>,
    allowed: Option<Vec<Value>>,
    constant: Option<Value>,
    any_of: Vec<Node>,
    all_of: Vec<Node>,
    not: Option<Box<Node>>,
    /// `if`, `then`, `else`: when a value holds against the first, it must hold against the
    /// second, otherwise against the third.
    condition: Option<Box<Node>>,
    then: Option<Box<Node>>,
    otherwise: Option<Box<Node>>,
    /// Said after "must not be <value>" when this schema is a `not`'s.
    description: Option<String>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    pattern: Option<Pattern>,
}

/// A compiled `pattern`, and what each byte of text it checks costs of
/// [`MAX_PATTERN_TEXT_BYTES`].
#[derive(Debug)]
struct Pattern {
    regex: Regex,
    cost_per_byte: usize,
}

const ANNOTATIONS: &[&str] = &[
    "title", "default", "examples", "format", "$schema", "$id", "$comment",
];

/// A compiled schema and the JSON it came from.
#[derive(Debug)]
pub struct Schema {
    root: Node,
    source: Value,
    /// The most memory its compiled patterns may hold, in bytes.
    pattern_bytes: usize,
}

impl Schema {
    /// Compiles `source`, or lists the problems in it (paths into the schema, from `at`): at
    /// most [`MAX_VIOLATIONS`] of them.
    pub fn compile(source: &Value, at: &str) -> Result<Self, Vec<Violation>> {
        let mut compiler = Compiler::default();
        let root = compiler.node(source, at, 1);
        if compiler.problems.is_empty() {
            Ok(Self {
                root,
                source: source.clone(),
                pattern_bytes: compiler.pattern_bytes,
            })
        } else {
            compiler.problems.truncate(MAX_VIOLATIONS);
            Err(compiler.problems)
        }
    }

    pub fn source(&self) -> &Value {
        &self.source
    }

    /// The most memory the schema's compiled patterns may hold, in bytes.
    pub fn pattern_bytes(&self) -> usize {
        self.pattern_bytes
    }

    /// Whether the schema describes an object (what agent inputs and outputs are).
    pub fn is_object_schema(&self) -> bool {
        self.root.types == [Type::Object]
    }

    /// The ways `document` fails the schema, naming fields from `root` (e.g. "input"): the
    /// first [`MAX_VIOLATIONS`] found.
    pub fn validate(&self, document: &Value, root: &str) -> Vec<Violation> {
        let mut found = Found::new(MAX_VIOLATIONS);
        let mut budget = Budget {
            steps: MAX_VALIDATION_STEPS,
            pattern_text: MAX_PATTERN_TEXT_BYTES,
        };
        let at = Path::Root(root);
        validate_node(&self.root, document, &at, &mut found, &mut budget);
        // A document not checked to its end is refused, whatever the part checked said.
        if budget.steps == 0 {
            found.push(
                &at,
                format!("is too large to check against its schema in {MAX_VALIDATION_STEPS} steps"),
            );
        }
        found.violations
    }
}

/// What compiling one schema has found so far.
#[derive(Default)]
struct Compiler {
    problems: Vec<Violation>,
    patterns: usize,
    pattern_bytes: usize,
}

impl Compiler {
    fn problem(&mut self, at: &str, message: impl Into<String>) {
        self.problems.push(Violation::new(at, message));
    }

    fn node(&mut self, schema: &Value, at: &str, depth: usize) -> Node {
        let Some(map) = schema.as_object() else {
            self.problem(at, "a schema must be an object");
            return Node::default();
        };
        if depth > MAX_SCHEMA_DEPTH {
            self.problem(
                at,
                format!("nests schemas deeper than {MAX_SCHEMA_DEPTH} levels"),
            );
            return Node::default();
        }
        let mut node = Node::default();
        for (keyword, value) in map {
            // A schema can hold thousands of problems; past what is reported, stop looking.
            if self.problems.len() >= MAX_VIOLATIONS {
                break;
            }
            let here = format!("{at}.{keyword}");
            match keyword.as_str() {
                "type" => node.types = self.types(value, &here),
                "properties" => match value.as_object() {
                    Some(properties) if properties.len() > MAX_PROPERTIES => self.problem(
                        &here,
                        format!(
                            "declares {} properties; at most {MAX_PROPERTIES} are allowed",
                            properties.len()
                        ),
                    ),
                    Some(properties) => {
                        for (name, property) in properties {
                            let child = self.node(property, &format!("{here}.{name}"), depth + 1);
                            node.properties.push((name.clone(), child));
                        }
                    }
                    None => self.problem(&here, "must be an object of schemas"),
                },
                "required" => match string_list(value) {
                    Some(names) if names.len() > MAX_PROPERTIES => self.problem(
                        &here,
                        format!("names more than {MAX_PROPERTIES} properties"),
                    ),
                    Some(names) => node.required = names,
                    None => self.problem(&here, "must be an array of names"),
                },
                "additionalProperties" => {
                    node.additional = match value {
                        Value::Bool(true) => Additional::Allowed,
                        Value::Bool(false) => Additional::Forbidden,
                        other => Additional::Schema(Box::new(self.node(other, &here, depth + 1))),
                    }
                }
                "items" => node.items = Some(Box::new(self.node(value, &here, depth + 1))),
                "contains" => node.contains = Some(Box::new(self.node(value, &here, depth + 1))),
                "enum" => match value.as_array() {
                    Some(values) if values.len() > MAX_ENUM_VALUES => self.problem(
                        &here,
                        format!(
                            "lists {} values; at most {MAX_ENUM_VALUES} are allowed",
                            values.len()
                        ),
                    ),
                    Some(values) if !values.is_empty() => node.allowed = Some(values.clone()),
                    _ => self.problem(&here, "must be a non-empty array"),
                },
                "const" => node.constant = Some(value.clone()),
                "description" => node.description = value.as_str().map(str::to_owned),
                "not" => node.not = Some(Box::new(self.node(value, &here, depth + 1))),
                "if" => node.condition = Some(Box::new(self.node(value, &here, depth + 1))),
                "then" => node.then = Some(Box::new(self.node(value, &here, depth + 1))),
                "else" => node.otherwise = Some(Box::new(self.node(value, &here, depth + 1))),
                "anyOf" | "allOf" => match value.as_array() {
                    Some(schemas) if !schemas.is_empty() => {
                        let nodes = schemas
                            .iter()
                            .enumerate()
                            .map(|(i, s)| self.node(s, &format!("{here}[{i}]"), depth + 1))
                            .collect();
                        if keyword == "anyOf" {
                            node.any_of = nodes;
                        } else {
                            node.all_of = nodes;
                        }
                    }
                    _ => self.problem(&here, "must be a non-empty array of schemas"),
                },
                "minimum" | "maximum" => match value.as_f64() {
                    Some(bound) if keyword == "minimum" => node.minimum = Some(bound),
                    Some(bound) => node.maximum = Some(bound),
                    None => self.problem(&here, "must be a number"),
                },
                "minLength" | "maxLength" | "minItems" | "maxItems" => {
                    match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
                        Some(n) => match keyword.as_str() {
                            "minLength" => node.min_length = Some(n),
                            "maxLength" => node.max_length = Some(n),
                            "minItems" => node.min_items = Some(n),
                            _ => node.max_items = Some(n),
                        },
                        None => self.problem(&here, "must be a whole number"),
                    }
                }
                "pattern" => node.pattern = self.pattern(value, &here),
                known if ANNOTATIONS.contains(&known) => {}
                unknown => self.problem(&here, format!("the keyword {unknown:?} is not supported")),
            }
        }
        for name in &node.required {
            let declared = node.properties.iter().any(|(p, _)| p == name);
            if !declared && matches!(node.additional, Additional::Forbidden) {
                self.problem(
                    &format!("{at}.required"),
                    format!(
                        "{name:?} is required but cannot be given (additionalProperties is false)"
                    ),
                );
            }
        }
        node
    }

    fn types(&mut self, value: &Value, at: &str) -> Vec<Type> {
        let names = match value {
            Value::String(name) => vec![name.clone()],
            other => string_list(other).unwrap_or_default(),
        };
        let types: Vec<Type> = names.iter().filter_map(|n| Type::parse(n)).collect();
        if types.is_empty() || types.len() != names.len() {
            self.problem(
                at,
                "must name JSON types (object, array, string, number, integer, boolean, null)",
            );
        }
        types
    }

    /// The regex a `pattern` compiles to within [`PATTERN_SIZE_LIMIT`]: first within
    /// [`SMALL_PATTERN_SIZE_LIMIT`], which most patterns fit, so that they count for little
    /// in [`Schema::pattern_bytes`].
    fn pattern(&mut self, value: &Value, at: &str) -> Option<Pattern> {
        let Some(source) = value.as_str() else {
            self.problem(at, "must be a string");
            return None;
        };
        self.patterns += 1;
        if self.patterns > MAX_PATTERNS {
            self.problem(
                at,
                format!("is one pattern too many: a schema holds at most {MAX_PATTERNS}"),
            );
            return None;
        }
        if source.len() > MAX_PATTERN_BYTES {
            self.problem(
                at,
                format!("must be at most {MAX_PATTERN_BYTES} bytes long"),
            );
            return None;
        }
        for (limit, cost_per_byte) in [
            (SMALL_PATTERN_SIZE_LIMIT, SMALL_PATTERN_COST_PER_BYTE),
            (PATTERN_SIZE_LIMIT, LARGE_PATTERN_COST_PER_BYTE),
        ] {
            let compiled = RegexBuilder::new(source)
                .size_limit(limit)
                .dfa_size_limit(limit)
                .build();
            match compiled {
                Ok(regex) => {
                    // The program and the lazy DFA's cache, each at most `limit`.
                    self.pattern_bytes += 2 * limit;
                    return Some(Pattern {
                        regex,
                        cost_per_byte,
                    });
                }
                Err(regex::Error::CompiledTooBig(_)) if limit < PATTERN_SIZE_LIMIT => {}
                Err(regex::Error::CompiledTooBig(_)) => self.problem(
                    at,
                    format!(
                        "compiles to more than {PATTERN_SIZE_LIMIT} bytes: repeat Unicode \
                         classes less, or use ASCII ones ([A-Za-z0-9_], (?-u:\\w))"
                    ),
                ),
                Err(err) => {
                    self.problem(at, format!("not a valid pattern: {err}"));
                    break;
                }
            }
        }
        None
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

/// Where a value is in the document being validated. Only a violation writes it out, so a
/// document with long keys nested deep costs nothing until something is wrong with it.
enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The path as text such as `input.entities[0].name`, cut as [`Violation::new`] cuts it.
    fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = self;
        let root = loop {
            match at {
                Path::Root(root) => break *root,
                Path::Field(parent, _) | Path::Item(parent, _) => {
                    segments.push(at);
                    at = parent;
                }
            }
        };
        let mut text = root.to_owned();
        for segment in segments.iter().rev() {
            if text.len() > MAX_VIOLATION_PATH_BYTES {
                break;
            }
            match segment {
                Path::Field(_, name) => {
                    text.push('.');
                    // A key can be megabytes long; what is past the cut is never needed.
                    let mut end = name.len().min(MAX_VIOLATION_PATH_BYTES + 1);
                    while !name.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.push_str(&name[..end]);
                }
                Path::Item(_, index) => text.push_str(&format!("[{index}]")),
                Path::Root(_) => {}
            }
        }
        text
    }
}

/// The violations of a document found so far, up to a limit.
struct Found {
    violations: Vec<Violation>,
    /// How many were found, written out or not.
    count: usize,
    limit: usize,
    /// Counts without writing anything out: whether an `anyOf` option holds needs no message.
    quiet: bool,
}

impl Found {
    fn new(limit: usize) -> Self {
        Self {
            violations: Vec::new(),
            count: 0,
            limit,
            quiet: false,
        }
    }

    fn quiet() -> Self {
        Self {
            quiet: true,
            ..Self::new(1)
        }
    }

    fn full(&self) -> bool {
        self.count >= self.limit
    }

    fn push(&mut self, at: &Path<'_>, message: impl Into<String>) {
        if self.full() {
            return;
        }
        self.count += 1;
        if !self.quiet {
            self.violations.push(Violation::new(&at.render(), message));
        }
    }
}

/// What one validation may still spend.
struct Budget {
    steps: usize,
    pattern_text: usize,
}

/// "must be one of ..." listing as many of `allowed` as fit in a violation message.
fn one_of(allowed: &[Value]) -> String {
    let mut message = "must be one of ".to_owned();
    for (i, value) in allowed.iter().enumerate() {
        if message.len() >= MAX_VIOLATION_MESSAGE_BYTES {
            message.push_str(&format!(" ({} values)", allowed.len()));
            break;
        }
        if i > 0 {
            message.push_str(", ");
        }
        message.push_str(&crate::bounded_json::text(
            value,
            MAX_VIOLATION_MESSAGE_BYTES,
        ));
    }
    message
}

/// Whether `value` holds against `node`, which its first violation settles.
fn holds(node: &Node, value: &Value, at: &Path<'_>, budget: &mut Budget) -> bool {
    let mut scratch = Found::quiet();
    validate_node(node, value, at, &mut scratch, budget);
    scratch.count == 0
}

fn validate_node(
    node: &Node,
    value: &Value,
    at: &Path<'_>,
    found: &mut Found,
    budget: &mut Budget,
) {
    if found.full() || budget.steps == 0 {
        return;
    }
    budget.steps -= 1;
    if !node.types.is_empty() && !node.types.iter().any(|t| t.matches(value)) {
        let names: Vec<&str> = node.types.iter().map(|t| t.name()).collect();
        found.push(at, format!("must be {}", names.join(" or ")));
        return;
    }
    if let Some(allowed) = &node.allowed
        && !allowed.contains(value)
    {
        found.push(at, one_of(allowed));
    }
    if let Some(constant) = &node.constant
        && constant != value
    {
        let expected = crate::bounded_json::text(constant, MAX_VIOLATION_MESSAGE_BYTES);
        found.push(at, format!("must be {expected}"));
    }
    if !node.any_of.is_empty()
        && !node
            .any_of
            .iter()
            .any(|option| holds(option, value, at, budget))
    {
        found.push(at, "matches none of the allowed forms");
    }
    for part in &node.all_of {
        validate_node(part, value, at, found, budget);
    }
    if let Some(forbidden) = &node.not
        && holds(forbidden, value, at, budget)
    {
        let mut message = format!(
            "must not be {}",
            crate::bounded_json::text(value, MAX_VIOLATION_MESSAGE_BYTES)
        );
        if let Some(why) = &forbidden.description {
            message.push_str(": ");
            message.push_str(why);
        }
        found.push(at, message);
    }
    if let Some(condition) = &node.condition {
        let branch = if holds(condition, value, at, budget) {
            &node.then
        } else {
            &node.otherwise
        };
        if let Some(branch) = branch {
            validate_node(branch, value, at, found, budget);
        }
    }
    match value {
        Value::Object(map) => {
            for name in &node.required {
                if !map.contains_key(name) {
                    found.push(&Path::Field(at, name), "is required");
                }
            }
            for (key, child) in map {
                if found.full() {
                    return;
                }
                let here = Path::Field(at, key);
                match node.properties.iter().find(|(name, _)| name == key) {
                    Some((_, schema)) => validate_node(schema, child, &here, found, budget),
                    None => match &node.additional {
                        Additional::Allowed => {}
                        Additional::Forbidden => found.push(&here, "is not an accepted field"),
                        Additional::Schema(schema) => {
                            validate_node(schema, child, &here, found, budget)
                        }
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = node.min_items
                && items.len() < min
            {
                found.push(at, format!("must have at least {min} items"));
            }
            if let Some(max) = node.max_items
                && items.len() > max
            {
                found.push(at, format!("must have at most {max} items"));
            }
            if let Some(wanted) = &node.contains
                && !items
                    .iter()
                    .enumerate()
                    .any(|(i, item)| holds(wanted, item, &Path::Item(at, i), budget))
            {
                let message = match &wanted.constant {
                    Some(constant) => format!(
                        "must contain {}",
                        crate::bounded_json::text(constant, MAX_VIOLATION_MESSAGE_BYTES)
                    ),
                    None => "must contain an item of the form its `contains` gives".to_owned(),
                };
                found.push(at, message);
            }
            if let Some(schema) = &node.items {
                for (i, item) in items.iter().enumerate() {
                    if found.full() {
                        return;
                    }
                    validate_node(schema, item, &Path::Item(at, i), found, budget);
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
                found.push(at, message);
            }
            if let Some(max) = node.max_length
                && length > max
            {
                found.push(at, format!("must be at most {max} characters long"));
            }
            if let Some(pattern) = &node.pattern {
                let cost = text.len().saturating_mul(pattern.cost_per_byte);
                match budget.pattern_text.checked_sub(cost) {
                    None => found.push(
                        at,
                        format!(
                            "is past the text one document may have checked against patterns \
                             ({MAX_PATTERN_TEXT_BYTES} bytes, a large pattern's counting \
                             {LARGE_PATTERN_COST_PER_BYTE} times)"
                        ),
                    ),
                    Some(left) => {
                        budget.pattern_text = left;
                        if !pattern.regex.is_match(text) {
                            let source = pattern.regex.as_str();
                            found.push(at, format!("must match the pattern {source}"));
                        }
                    }
                }
            }
        }
        Value::Number(number) => {
            let n = number.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = node.minimum
                && n < min
            {
                found.push(at, format!("must be at least {min}"));
            }
            if let Some(max) = node.maximum
                && n > max
            {
                found.push(at, format!("must be at most {max}"));
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
    fn not_and_if_then_else_name_the_field_and_say_why() {
        let schema = schema(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "not": {"enum": ["class", "from"], "description": "is a Python keyword"}},
                "type": {"enum": ["string", "reference"]}
            },
            "if": {"properties": {"type": {"const": "reference"}}},
            "then": {"required": ["entity"]},
            "else": {"not": {"required": ["entity"]}}
        }));
        assert!(
            schema
                .validate(&json!({"name": "title", "type": "string"}), "input")
                .is_empty()
        );
        let found = schema.validate(&json!({"name": "class", "type": "reference"}), "input");
        let found: Vec<(String, String)> = found.into_iter().map(|v| (v.path, v.message)).collect();
        assert_eq!(
            found,
            [
                ("input.entity".to_owned(), "is required".to_owned()),
                (
                    "input.name".to_owned(),
                    "must not be \"class\": is a Python keyword".to_owned()
                ),
            ]
        );
        let found = schema.validate(&json!({"type": "string", "entity": "A"}), "input");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.starts_with("must not be {"), "{found:?}");

        let roles_need_auth = self::schema(json!({
            "if": {"properties": {"features": {"contains": {"const": "roles"}}}},
            "then": {"properties": {"features": {"contains": {"const": "auth"}}}}
        }));
        assert!(
            roles_need_auth
                .validate(&json!({"features": ["auth", "roles"]}), "input")
                .is_empty()
        );
        assert!(
            roles_need_auth
                .validate(&json!({"features": []}), "input")
                .is_empty()
        );
        let found = roles_need_auth.validate(&json!({"features": ["roles"]}), "input");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].path.as_str(), found[0].message.as_str()),
            ("input.features", "must contain \"auth\"")
        );
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

    #[test]
    fn a_document_failing_everywhere_gets_twenty_short_violations() {
        let allowed: Vec<String> = (0..200).map(|i| format!("value-{i:04}")).collect();
        let schema = schema(json!({"type": "array", "items": {"enum": allowed}}));
        let problems = schema.validate(&json!(vec!["nope"; 100_000]), "input");
        assert_eq!(problems.len(), MAX_VIOLATIONS);
        assert_eq!(problems[19].path, "input[19]");
        for problem in &problems {
            assert!(problem.message.len() <= MAX_VIOLATION_MESSAGE_BYTES);
            assert!(problem.message.starts_with("must be one of \"value-0000\""));
        }
    }

    #[test]
    fn paths_through_long_keys_are_cut() {
        let key = "k".repeat(1 << 20);
        let schema = schema(json!({"type": "object", "additionalProperties": false}));
        let problems = schema.validate(&json!({ key: 1 }), "input");
        assert!(problems[0].path.len() <= MAX_VIOLATION_PATH_BYTES);
        assert!(problems[0].path.starts_with("input.kkk"));
        assert!(problems[0].path.ends_with("..."));
    }

    #[test]
    fn a_document_too_large_to_check_is_refused() {
        let options: Vec<Value> = (0..100).map(|_| json!({"type": "string"})).collect();
        let schema = schema(json!({"type": "array", "items": {"anyOf": options}}));
        let problems = schema.validate(&json!(vec![1; 20_000]), "input");
        assert_eq!(problems.len(), MAX_VIOLATIONS);
        let problems = schema.validate(&json!(vec!["ok"; 20_000]), "input");
        assert!(problems.is_empty(), "{problems:?}");
        let problems = schema.validate(&json!(vec![json!("ok"); 1_000_001]), "input");
        assert_eq!(problems[0].path, "input");
        assert!(problems[0].message.contains("steps"));
    }

    #[test]
    fn patterns_check_a_bounded_amount_of_text() {
        let schema =
            schema(json!({"type": "array", "items": {"type": "string", "pattern": "^a+$"}}));
        let chunk = "a".repeat(1024);
        assert!(
            schema
                .validate(&json!(vec![&chunk; 64]), "input")
                .is_empty()
        );
        let problems = schema.validate(&json!(vec![&chunk; 65]), "input");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "input[64]");

        // A pattern compiled past the small bound counts each byte four times.
        let large = Schema::compile(
            &json!({"type": "array", "items": {"type": "string", "pattern": "^a{1,1024}$"}}),
            "schema",
        )
        .unwrap();
        assert!(large.validate(&json!(vec![&chunk; 16]), "input").is_empty());
        let problems = large.validate(&json!(vec![&chunk; 17]), "input");
        assert_eq!(problems[0].path, "input[16]");
    }

    #[test]
    fn schemas_past_their_bounds_are_refused_naming_the_keyword() {
        let mut deep = json!({"type": "string"});
        for _ in 0..MAX_SCHEMA_DEPTH {
            deep = json!({"type": "array", "items": deep});
        }
        let wide: serde_json::Map<String, Value> = (0..=MAX_PROPERTIES)
            .map(|i| (format!("p{i}"), json!({})))
            .collect();
        let patterns: serde_json::Map<String, Value> = (0..=MAX_PATTERNS)
            .map(|i| (format!("p{i:02}"), json!({"pattern": "^x$"})))
            .collect();
        for (source, path) in [
            (deep, format!("s{}", ".items".repeat(MAX_SCHEMA_DEPTH))),
            (
                json!({"enum": vec![1; MAX_ENUM_VALUES + 1]}),
                "s.enum".to_owned(),
            ),
            (json!({"properties": wide}), "s.properties".to_owned()),
            (
                json!({"properties": patterns}),
                "s.properties.p16.pattern".to_owned(),
            ),
            (
                json!({"pattern": "a".repeat(MAX_PATTERN_BYTES + 1)}),
                "s.pattern".to_owned(),
            ),
            (json!({"pattern": "\\w{100}"}), "s.pattern".to_owned()),
        ] {
            let problems = Schema::compile(&source, "s").unwrap_err();
            assert_eq!(problems.len(), 1, "{path}: {problems:?}");
            assert_eq!(problems[0].path, path);
        }
        let small = Schema::compile(&json!({"pattern": "^[a-z]{3}$"}), "s").unwrap();
        assert_eq!(small.pattern_bytes(), 2 * SMALL_PATTERN_SIZE_LIMIT);
        let large = Schema::compile(&json!({"pattern": "^[a-z]{1000}$"}), "s").unwrap();
        assert_eq!(large.pattern_bytes(), 2 * PATTERN_SIZE_LIMIT);
    }
}
