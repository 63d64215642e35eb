//! The project every builder works from: name, entities with fields, features — normalised once,
//! so that the files different builders write agree on every name (table `task_items`, class
//! `TaskItem`, route `/api/task_items`, column `project_id`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AgentError, parse};
use crate::artifacts::slug;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Text,
    Integer,
    Number,
    Boolean,
    Date,
    Datetime,
    Email,
    Url,
    Reference,
}

impl FieldType {
    /// Every type as an input names it.
    pub const NAMES: &[&str] = &[
        "string",
        "text",
        "integer",
        "number",
        "boolean",
        "date",
        "datetime",
        "email",
        "url",
        "reference",
    ];

    pub fn sql(self) -> &'static str {
        match self {
            Self::String => "VARCHAR(255)",
            Self::Text | Self::Url => "TEXT",
            Self::Integer => "INTEGER",
            Self::Number => "DOUBLE PRECISION",
            Self::Boolean => "BOOLEAN",
            Self::Date => "DATE",
            Self::Datetime => "TIMESTAMPTZ",
            Self::Email => "VARCHAR(320)",
            Self::Reference => "BIGINT",
        }
    }

    /// The column type in `models.py`, which imports SQLAlchemy as `_sa` (no entity or field
    /// name can start with `_`, so none can hide it).
    pub fn sqlalchemy(self) -> &'static str {
        match self {
            Self::String => "_sa.String(255)",
            Self::Text | Self::Url => "_sa.Text",
            Self::Integer => "_sa.Integer",
            Self::Number => "_sa.Float",
            Self::Boolean => "_sa.Boolean",
            Self::Date => "_sa.Date",
            Self::Datetime => "_sa.DateTime(timezone=True)",
            Self::Email => "_sa.String(320)",
            Self::Reference => "_ID",
        }
    }

    /// The Python annotation, with `datetime` imported as `_dt`.
    pub fn python(self) -> &'static str {
        match self {
            Self::String | Self::Text | Self::Email | Self::Url => "str",
            Self::Integer | Self::Reference => "int",
            Self::Number => "float",
            Self::Boolean => "bool",
            Self::Date => "_dt.date",
            Self::Datetime => "_dt.datetime",
        }
    }

    pub fn typescript(self) -> &'static str {
        match self {
            Self::Integer | Self::Number | Self::Reference => "number",
            Self::Boolean => "boolean",
            _ => "string",
        }
    }

    /// The name `validation.py` knows the type by.
    pub fn kind(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Email => "email",
            Self::Url => "url",
            Self::Reference => "integer",
        }
    }

    /// A valid sample value as Python source, for generated tests.
    pub fn python_sample(self, n: usize) -> String {
        match self {
            Self::String => format!("\"Sample {n}\""),
            Self::Text => format!("\"Some longer text number {n}.\""),
            Self::Integer | Self::Reference => n.to_string(),
            Self::Number => format!("{n}.5"),
            Self::Boolean => "True".to_owned(),
            Self::Date => "\"2024-05-17\"".to_owned(),
            Self::Datetime => "\"2024-05-17T10:30:00+00:00\"".to_owned(),
            Self::Email => format!("\"person{n}@example.com\""),
            Self::Url => format!("\"https://example.com/{n}\""),
        }
    }

    /// A value of the wrong type, as Python source.
    pub fn python_wrong(self) -> &'static str {
        match self {
            Self::Integer | Self::Reference | Self::Number | Self::Boolean => "\"not a number\"",
            Self::Email => "\"not-an-email\"",
            Self::Url => "\"ftp:/nowhere\"",
            Self::Date | Self::Datetime => "\"31/31/2024\"",
            Self::String | Self::Text => "12345",
        }
    }
}

#[derive(Deserialize)]
struct RawField {
    name: String,
    #[serde(rename = "type")]
    kind: FieldType,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default)]
    entity: Option<String>,
}

#[derive(Deserialize)]
struct RawEntity {
    name: String,
    fields: Vec<RawField>,
}

#[derive(Deserialize)]
struct RawProject {
    project_name: String,
    #[serde(default)]
    description: Option<String>,
    entities: Vec<RawEntity>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// The column and attribute name (`project_id` for a reference named `project`).
    pub column: String,
    pub kind: FieldType,
    pub required: bool,
    pub unique: bool,
    /// The referenced entity's table, for references.
    pub references: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entity {
    /// `TaskItem`
    pub class: String,
    /// `task_item`
    pub singular: String,
    /// `task_items`: table, router module and route.
    pub table: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub name: String,
    /// `task-tracker`
    pub slug: String,
    pub description: String,
    pub entities: Vec<Entity>,
    pub features: Vec<String>,
}

pub const FEATURES: &[&str] = &["auth", "roles", "email", "payments", "markdown"];

/// Field names the generated tables already have.
const GENERATED_COLUMNS: &[&str] = &["id", "created_at", "updated_at"];

/// Field names the generated Python cannot use. A field becomes an attribute of a SQLAlchemy
/// model and of Pydantic schemas, and a key of dictionary literals: Python keywords cannot be
/// attributes, `metadata` and `registry` belong to SQLAlchemy's declarative classes, and a field
/// named like a type the schemas annotate with (`int`, `str`, ...) would hide that type from the
/// fields after it. Everything else the generated modules use is imported under a `_` alias,
/// which no field or entity name can start with, and every SQL identifier is quoted, so SQL,
/// TypeScript and JavaScript keywords (`order`, `group`, `user`, `delete`, `type`) are plain
/// names. `catalog/chains/fullstack-app.json` refuses the same names at submission.
pub const RESERVED_FIELDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "false", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "none", "nonlocal", "not", "or", "pass", "raise", "return", "true", "try", "while",
    "with", "yield", "int", "str", "float", "bool", "metadata", "registry",
];

/// What the generated TypeScript and Pydantic names append to an entity's class name; an entity
/// named like another plus one of these would collide with it.
const CLASS_SUFFIXES: &[&str] = &["Input", "Create", "Update", "Read"];

pub fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn plural(word: &str) -> String {
    let vowel_y = ["ay", "ey", "iy", "oy", "uy"]
        .iter()
        .any(|end| word.ends_with(end));
    if word.ends_with('y') && !vowel_y {
        format!("{}ies", &word[..word.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| word.ends_with(end))
    {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

/// `text` as a Python (and JavaScript) string literal: JSON's escapes are valid in both.
pub fn literal(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// `text` fit for a comment or a docstring: no quotes, backslashes or line breaks that could
/// end one early.
pub fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | '\\' | '`' | '*') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A circle of required references between entities (as table names), if there is one: a
/// depth-first walk that visits each entity once.
fn required_cycle(entities: &[Entity]) -> Option<Vec<String>> {
    fn walk<'a>(
        entities: &'a [Entity],
        here: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(from) = path.iter().position(|t| *t == here) {
            let mut cycle: Vec<String> = path[from..].iter().map(|t| (*t).to_owned()).collect();
            cycle.push(here.to_owned());
            return Some(cycle);
        }
        if done.contains(&here) {
            return None;
        }
        path.push(here);
        let entity = entities.iter().find(|e| e.table == here)?;
        for target in entity
            .fields
            .iter()
            .filter(|f| f.required)
            .filter_map(|f| f.references.as_deref())
        {
            if let Some(cycle) = walk(entities, target, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.push(here);
        None
    }
    let mut done = Vec::new();
    entities
        .iter()
        .find_map(|start| walk(entities, &start.table, &mut Vec::new(), &mut done))
}

impl Project {
    pub fn from_input(input: &Value) -> Result<Self, AgentError> {
        let raw: RawProject = parse(input)?;
        let invalid = |message: String| Err(AgentError::InvalidInput(message));
        let slug = slug(&raw.project_name);
        if slug.is_empty() {
            return invalid("project_name needs at least one letter or digit".to_owned());
        }
        let features: Vec<String> = raw.features.iter().map(|f| f.to_lowercase()).collect();
        if let Some(unknown) = features.iter().find(|f| !FEATURES.contains(&f.as_str())) {
            return invalid(format!(
                "unknown feature {unknown:?}: use {}",
                FEATURES.join(", ")
            ));
        }
        if features.iter().any(|f| f == "roles") && !features.iter().any(|f| f == "auth") {
            return invalid("the roles feature needs the auth feature".to_owned());
        }
        let classes: Vec<&str> = raw.entities.iter().map(|e| e.name.as_str()).collect();
        let mut entities: Vec<Entity> = Vec::new();
        for (i, entity) in raw.entities.iter().enumerate() {
            if classes[..i].contains(&entity.name.as_str()) {
                return invalid(format!("entity {} is defined twice", entity.name));
            }
            if let Some(other) = classes.iter().find(|other| {
                CLASS_SUFFIXES
                    .iter()
                    .any(|suffix| entity.name == format!("{other}{suffix}"))
            }) {
                return invalid(format!(
                    "entity name {} collides with the names generated for entity {other}",
                    entity.name
                ));
            }
            let singular = snake(&entity.name);
            if singular == "user" && features.iter().any(|f| f == "auth") {
                return invalid(format!(
                    "entity name {} is reserved: the auth feature generates the users table; \
                     rename the entity or leave out auth",
                    entity.name
                ));
            }
            let table = plural(&singular);
            if table == "payments" && features.iter().any(|f| f == "payments") {
                return invalid(format!(
                    "entity name {} is reserved: the payments feature generates the payments \
                     routes; rename the entity or leave out payments",
                    entity.name
                ));
            }
            if let Some(other) = entities.iter().find(|e| e.table == table) {
                return invalid(format!(
                    "entities {} and {} would both be the table {table}",
                    other.class, entity.name
                ));
            }
            let mut fields: Vec<Field> = Vec::new();
            for field in &entity.fields {
                if GENERATED_COLUMNS.contains(&field.name.as_str()) {
                    return invalid(format!(
                        "{}.{} is reserved: every table has it already",
                        entity.name, field.name
                    ));
                }
                if RESERVED_FIELDS.contains(&field.name.as_str())
                    || field.name.starts_with("model_")
                {
                    return invalid(format!(
                        "{}.{} is reserved: the generated Python cannot use it as an attribute",
                        entity.name, field.name
                    ));
                }
                if field.kind == FieldType::Reference
                    && field.required
                    && field.entity.as_deref() == Some(entity.name.as_str())
                {
                    return invalid(format!(
                        "{}.{} is a required reference to its own entity: no first row could \
                         ever be created; make it optional",
                        entity.name, field.name
                    ));
                }
                let references = match (field.kind, &field.entity) {
                    (FieldType::Reference, Some(target)) if classes.contains(&target.as_str()) => {
                        Some(plural(&snake(target)))
                    }
                    (FieldType::Reference, _) => {
                        return invalid(format!(
                            "{}.{} must name one of the entities in `entity`",
                            entity.name, field.name
                        ));
                    }
                    _ => None,
                };
                let column = if references.is_some() && !field.name.ends_with("_id") {
                    format!("{}_id", field.name)
                } else {
                    field.name.clone()
                };
                if fields.iter().any(|f| f.column == column) {
                    return invalid(format!("{}.{column} is defined twice", entity.name));
                }
                fields.push(Field {
                    column,
                    kind: field.kind,
                    required: field.required,
                    unique: field.unique,
                    references,
                });
            }
            entities.push(Entity {
                class: entity.name.clone(),
                table,
                singular,
                fields,
            });
        }
        if let Some(cycle) = required_cycle(&entities) {
            return invalid(format!(
                "the required references {} go round in a circle: no first row could ever be \
                 created; make one of them optional",
                cycle.join(" -> ")
            ));
        }
        Ok(Self {
            description: raw
                .description
                .unwrap_or_else(|| format!("{} built with Sankalpa.", raw.project_name)),
            name: raw.project_name,
            slug,
            entities,
            features,
        })
    }

    pub fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_name_reads_as_that_type() {
        for name in FieldType::NAMES {
            let kind: FieldType = serde_json::from_value(json!(name)).expect("a type");
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
        }
    }

    #[test]
    fn names_are_derived_once_for_every_builder() {
        let project = Project::from_input(&json!({
            "project_name": "Task Tracker!",
            "entities": [
                {"name": "Category", "fields": [{"name": "label", "type": "string", "required": true}]},
                {"name": "TaskItem", "fields": [{"name": "category", "type": "reference", "entity": "Category"}]}
            ],
            "features": ["auth"]
        }))
        .unwrap();
        assert_eq!(project.slug, "task-tracker");
        assert_eq!(project.entities[0].table, "categories");
        let task = &project.entities[1];
        assert_eq!(
            (
                task.class.as_str(),
                task.singular.as_str(),
                task.table.as_str()
            ),
            ("TaskItem", "task_item", "task_items")
        );
        assert_eq!(task.fields[0].column, "category_id");
        assert_eq!(task.fields[0].references.as_deref(), Some("categories"));
    }

    #[test]
    fn keyword_entities_optional_self_references_and_optional_cycles_are_fine() {
        let project = Project::from_input(&json!({
            "project_name": "x",
            "entities": [
                {"name": "Class", "fields": [
                    {"name": "parent", "type": "reference", "entity": "Class"},
                    {"name": "order", "type": "reference", "entity": "Order", "required": true}
                ]},
                {"name": "Order", "fields": [{"name": "type", "type": "reference", "entity": "Class"}]}
            ]
        }))
        .unwrap();
        assert_eq!(project.entities[0].table, "classes");
        assert_eq!(project.entities[1].fields[0].column, "type_id");
    }

    #[test]
    fn names_that_would_break_the_generated_code_are_refused() {
        for input in [
            json!({"project_name": "x", "entities": [{"name": "A", "fields": [{"name": "class", "type": "string"}]}]}),
            json!({"project_name": "x", "entities": [{"name": "A", "fields": [{"name": "b", "type": "reference", "entity": "Nope"}]}]}),
            json!({"project_name": "x", "entities": [{"name": "User", "fields": []}], "features": ["auth"]}),
            json!({"project_name": "x", "entities": [], "features": ["roles"]}),
            json!({"project_name": "x", "entities": [{"name": "A", "fields": [{"name": "parent", "type": "reference", "entity": "A", "required": true}]}]}),
            json!({"project_name": "x", "entities": [
                {"name": "A", "fields": [{"name": "b", "type": "reference", "entity": "B", "required": true}]},
                {"name": "B", "fields": [{"name": "a", "type": "reference", "entity": "A", "required": true}]}
            ]}),
            json!({"project_name": "x", "entities": [{"name": "Task", "fields": []}, {"name": "TaskInput", "fields": []}]}),
            json!({"project_name": "x", "entities": [{"name": "A", "fields": [{"name": "model_x", "type": "string"}]}]}),
        ] {
            assert!(
                matches!(
                    Project::from_input(&input),
                    Err(AgentError::InvalidInput(_))
                ),
                "{input}"
            );
        }
    }
}
