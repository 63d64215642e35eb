//! The project every builder works from: name, entities with fields, features — normalised once,
//! so that the files different builders write agree on every name (table `task_items`, class
//! `TaskItem`, route `/api/task_items`, column `project_id`).

use serde::Deserialize;
use serde_json::Value;

use super::{AgentError, parse};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

    pub fn sqlalchemy(self) -> &'static str {
        match self {
            Self::String => "String(255)",
            Self::Text | Self::Url => "Text",
            Self::Integer => "Integer",
            Self::Number => "Float",
            Self::Boolean => "Boolean",
            Self::Date => "Date",
            Self::Datetime => "DateTime(timezone=True)",
            Self::Email => "String(320)",
            Self::Reference => "ID",
        }
    }

    pub fn python(self) -> &'static str {
        match self {
            Self::String | Self::Text | Self::Email | Self::Url => "str",
            Self::Integer | Self::Reference => "int",
            Self::Number => "float",
            Self::Boolean => "bool",
            Self::Date => "date",
            Self::Datetime => "datetime",
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

#[derive(Debug, Clone)]
pub struct Field {
    /// The column and attribute name (`project_id` for a reference named `project`).
    pub column: String,
    pub kind: FieldType,
    pub required: bool,
    pub unique: bool,
    /// The referenced entity's table, for references.
    pub references: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Entity {
    /// `TaskItem`
    pub class: String,
    /// `task_item`
    pub singular: String,
    /// `task_items`: table, router module and route.
    pub table: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
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

/// Names the generated Python cannot use: an entity's name becomes a class, and its snake form
/// part of function names and dictionary keys; a field's name becomes an attribute and a keyword
/// argument. `type` is not a keyword but a field of that name would shadow the builtin in the
/// generated model and schema classes. SQL keywords (`order`, `group`, `user`) are not here:
/// `schema.sql` quotes every identifier and SQLAlchemy quotes the ones it needs to.
const PYTHON_RESERVED: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "false", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "none", "nonlocal", "not", "or", "pass", "raise", "return", "true", "try", "while",
    "with", "yield", "type",
];

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

/// Words of `text` joined with `-`, lowercase.
pub fn slug(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
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
        let mut entities = Vec::new();
        for (i, entity) in raw.entities.iter().enumerate() {
            if classes[..i].contains(&entity.name.as_str()) {
                return invalid(format!("entity {} is defined twice", entity.name));
            }
            let singular = snake(&entity.name);
            if singular == "user" && features.iter().any(|f| f == "auth") {
                return invalid(format!(
                    "entity name {} is reserved: the auth feature generates the users table; \
                     rename the entity or leave out auth",
                    entity.name
                ));
            }
            if PYTHON_RESERVED.contains(&singular.as_str()) {
                return invalid(format!(
                    "entity name {} is reserved: the generated Python cannot use {singular:?}",
                    entity.name
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
                if PYTHON_RESERVED.contains(&field.name.as_str()) {
                    return invalid(format!(
                        "{}.{} is reserved: the generated Python cannot use it as an attribute",
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
                table: plural(&singular),
                singular,
                fields,
            });
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
    fn names_that_would_break_the_generated_code_are_refused() {
        for input in [
            json!({"project_name": "x", "entities": [{"name": "A", "fields": [{"name": "class", "type": "string"}]}]}),
            json!({"project_name": "x", "entities": [{"name": "A", "fields": [{"name": "b", "type": "reference", "entity": "Nope"}]}]}),
            json!({"project_name": "x", "entities": [{"name": "User", "fields": []}], "features": ["auth"]}),
            json!({"project_name": "x", "entities": [], "features": ["roles"]}),
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
