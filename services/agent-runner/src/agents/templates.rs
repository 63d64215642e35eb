//! The text of every file the project builders write (db_schema to deploy_executor): minijinja
//! templates under `services/agent-runner/templates/fullstack/`, at the path of the file they
//! make plus `.j2` (`[table]` stands for an entity's table in a path). They are compiled into
//! the binary, so it needs no file at run time, and changing a generated file is a diff of its
//! template.
//!
//! The builders compute every name and decision (tables, columns, what the workspace holds,
//! which references a test fills) in Rust and pass them as the context; templates only lay out
//! text, through the filters below. Undefined values are errors, so a misspelt name in a
//! template fails the test that renders every template rather than writing an empty string.

use std::sync::LazyLock;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use super::AgentError;
use super::project::{FieldType, comment_text, literal};

/// Each template's name and text, embedded at compile time.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/fullstack/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    ".github/workflows/ci.yml.j2",
    "README.md.j2",
    "backend/Dockerfile.j2",
    "backend/app/__init__.py.j2",
    "backend/app/database.py.j2",
    "backend/app/deps.py.j2",
    "backend/app/email.py.j2",
    "backend/app/main.py.j2",
    "backend/app/markdown.py.j2",
    "backend/app/models.py.j2",
    "backend/app/payments.py.j2",
    "backend/app/permissions.py.j2",
    "backend/app/roles.py.j2",
    "backend/app/routers/[table].py.j2",
    "backend/app/routers/__init__.py.j2",
    "backend/app/routers/auth.py.j2",
    "backend/app/routers/payments.py.j2",
    "backend/app/schemas.py.j2",
    "backend/app/security.py.j2",
    "backend/app/validation.py.j2",
    "backend/pytest.ini.j2",
    "backend/requirements.txt.j2",
    "backend/tests/conftest.py.j2",
    "backend/tests/test_api.py.j2",
    "backend/tests/test_email.py.j2",
    "backend/tests/test_markdown.py.j2",
    "backend/tests/test_payments.py.j2",
    "backend/tests/test_roles.py.j2",
    "backend/tests/test_security.py.j2",
    "backend/tests/test_validation.py.j2",
    "database/schema.sql.j2",
    "deploy/kubernetes.yaml.j2",
    "docker-compose.yml.j2",
    "docs/ARCHITECTURE.md.j2",
    "frontend/Dockerfile.j2",
    "frontend/app/[table]/page.tsx.j2",
    "frontend/app/globals.css.j2",
    "frontend/app/layout.tsx.j2",
    "frontend/app/page.tsx.j2",
    "frontend/components/MarkdownEditor.tsx.j2",
    "frontend/lib/api.ts.j2",
    "frontend/lib/markdown.ts.j2",
    "frontend/lib/types.ts.j2",
    "frontend/next-env.d.ts.j2",
    "frontend/next.config.js.j2",
    "frontend/package.json.j2",
    "frontend/postcss.config.js.j2",
    "frontend/tailwind.config.js.j2",
    "frontend/tsconfig.json.j2",
];

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // Generated files are code, not HTML: nothing is escaped unless a filter says how.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A `{% ... %}` line leaves no blank line behind, and files keep their final newline.
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are a valid syntax"),
    );
    env.add_filter("py_str", |text: &str| literal(text));
    env.add_filter("comment_text", |text: &str| comment_text(text));
    env.add_filter("jsx_text", |text: &str| jsx_text(text));
    env.add_filter("sql_ident", |name: &str| format!("\"{name}\""));
    env.add_filter("sql_type", |kind: Serde<FieldType>| kind.sql());
    env.add_filter("sqlalchemy_type", |kind: Serde<FieldType>| {
        kind.sqlalchemy()
    });
    env.add_filter("python_type", |kind: Serde<FieldType>| kind.python());
    env.add_filter("ts_type", |kind: Serde<FieldType>| kind.typescript());
    env.add_filter("validation_kind", |kind: Serde<FieldType>| kind.kind());
    env.add_filter("python_sample", |kind: Serde<FieldType>, n: usize| {
        kind.python_sample(n)
    });
    env.add_filter("python_wrong", |kind: Serde<FieldType>| kind.python_wrong());
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|err| panic!("template {name} does not parse: {err:#}"));
    }
    env
});

/// The file of template `name` (its path under `templates/fullstack/`) with `context`. A
/// failure is a template that does not fit the context the builder gave it: a bug, reported as
/// the agent failing with minijinja's reason.
pub fn render(name: &str, context: impl Serialize) -> Result<String, AgentError> {
    let failed = |err: minijinja::Error| {
        AgentError::Failed(format!("template {name} could not be rendered: {err:#}"))
    };
    ENVIRONMENT
        .get_template(name)
        .and_then(|template| template.render(Value::from(Serde(context))))
        .map_err(failed)
}

/// The file at `path` (in the generated project) from its template, `path` plus `.j2`.
pub fn file(path: &str, context: impl Serialize) -> Result<(String, String), AgentError> {
    Ok((path.to_owned(), render(&format!("{path}.j2"), context)?))
}

/// The files at `paths`, each from its template, all with the same `context`.
pub fn files(
    paths: &[&str],
    context: &impl Serialize,
) -> Result<Vec<(String, String)>, AgentError> {
    paths.iter().map(|path| file(path, context)).collect()
}

/// Text safe inside JSX: braces and angle brackets would be read as code.
fn jsx_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('{', "&#123;")
        .replace('}', "&#125;")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::agents::project::Project;

    /// A context with every name any template uses: a project with every feature, every field
    /// type and references, and what the builders add beside it.
    fn everything() -> serde_json::Value {
        let p = Project::from_input(&json!({
            "project_name": "Shop \"{x}\"",
            "description": "<Everything> & more",
            "features": ["auth", "roles", "email", "payments", "markdown"],
            "entities": [
                {"name": "Category", "fields": [
                    {"name": "title", "type": "string", "required": true, "unique": true},
                    {"name": "body", "type": "text"},
                    {"name": "count", "type": "integer"},
                    {"name": "price", "type": "number"},
                    {"name": "active", "type": "boolean", "required": true},
                    {"name": "due", "type": "date"},
                    {"name": "at", "type": "datetime"},
                    {"name": "contact", "type": "email"},
                    {"name": "site", "type": "url"},
                    {"name": "parent", "type": "reference", "entity": "Category"}
                ]},
                {"name": "Order", "fields": [
                    {"name": "category", "type": "reference", "entity": "Category", "required": true}
                ]}
            ]
        }))
        .expect("a valid project");
        let entity = &p.entities[1];
        json!({
            "p": p,
            "db": "shop_x",
            "overview": "A shop for small makers.",
            "entity": entity,
            "pages": [{"href": "/orders", "label": "Order"}],
            "table": "orders",
            "steps": ["project_architect", "db_schema"],
            "created": [{"entity": entity, "refs": [{"target": "categories", "column": "category_id"}]}],
            "first_table": "orders",
            "served": p.entities,
            "auth": true,
            "email": true,
            "payments": true,
            "payments_module": true,
            "frontend": true,
            "schema": true,
            "slug": "shop-x",
            "registry": "ghcr.io/example",
            "host": "shop.example.com",
            "replicas": 2,
            "components": [{"name": "backend", "port": 8000, "probe": "/health"}],
        })
    }

    #[test]
    fn every_template_renders_with_a_full_context() {
        let context = everything();
        for (name, _) in TEMPLATES {
            let text = render(name, &context).unwrap_or_else(|err| panic!("{err}"));
            assert!(text.ends_with('\n'), "{name} does not end its last line");
            assert!(
                !text.contains("\n\n\n\n"),
                "{name} has a run of blank lines"
            );
        }
    }

    #[test]
    fn a_name_missing_from_the_context_is_an_error_not_an_empty_string() {
        let err = render("backend/app/models.py.j2", json!({})).unwrap_err();
        assert!(
            err.to_string().contains("backend/app/models.py.j2"),
            "{err}"
        );
    }

    #[test]
    fn every_file_under_templates_is_compiled_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/fullstack");
        let mut found = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("the templates directory is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let name = path.strip_prefix(&root).expect("under the root");
                    found.push(name.to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        let mut listed: Vec<String> = TEMPLATES.iter().map(|(n, _)| (*n).to_owned()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }
}
