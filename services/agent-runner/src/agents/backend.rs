//! The backend builders: PostgreSQL schema (db_schema), FastAPI + SQLAlchemy application
//! (backend_builder), CRUD routers with validation (api_builder), JWT auth (auth_builder), roles
//! (role_auth), transactional email (email_system) and Stripe webhooks (stripe_payment).
//!
//! Every builder reads the same [`Project`], so the files they write separately fit together:
//! `main.py` includes the routers api_builder writes, the routers import the models
//! backend_builder writes, and the tables match `database/schema.sql`. Modules that hold logic
//! (validation, security, roles, email, payments) use only the Python standard library, so the
//! generated unit tests run with plain pytest. The files' text is in their templates
//! (`templates/fullstack/backend/`, see [`super::templates`]).

use serde_json::{Value, json};

use super::project::Project;
use super::templates::{self, file, files};
use super::{AgentError, Context};

/// Writes `files` and describes them as the builder's output.
pub fn finish(
    ctx: &mut Context,
    builder: &str,
    files: Vec<(String, String)>,
    summary: String,
    extra: Value,
) -> Result<Value, AgentError> {
    let mut paths = Vec::with_capacity(files.len());
    for (path, content) in files {
        ctx.write(&path, content)?;
        paths.push(path);
    }
    let mut out = json!({"builder": builder, "files": paths, "summary": summary});
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    Ok(out)
}

/// Tables first, foreign keys after, so references may point either way (even in cycles).
/// Every identifier is quoted, so entities and fields named like SQL keywords (`Order` makes
/// `orders`, `Reference` makes `references`, a field `group`) are plain names; the generated
/// names are lowercase, so quoting does not change how they are spelled in queries.
pub fn db_schema(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let tables: Vec<&str> = p.entities.iter().map(|e| e.table.as_str()).collect();
    let summary = format!(
        "PostgreSQL schema with {} table(s)",
        tables.len() + usize::from(p.has("auth"))
    );
    finish(
        ctx,
        "db_schema",
        vec![file("database/schema.sql", json!({"p": p}))?],
        summary,
        json!({"tables": tables}),
    )
}

pub fn backend(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let context = json!({"p": p, "db": p.slug.replace('-', "_")});
    let files = files(
        &[
            "backend/requirements.txt",
            "backend/pytest.ini",
            "backend/app/__init__.py",
            "backend/app/database.py",
            "backend/app/models.py",
            "backend/app/main.py",
            "backend/app/routers/__init__.py",
        ],
        &context,
    )?;
    let summary = format!(
        "FastAPI + SQLAlchemy backend with {} model(s); it serves the routers in app/routers",
        p.entities.len(),
    );
    finish(
        ctx,
        "backend_builder",
        files,
        summary,
        json!({"provides": {"modules": ["app.database", "app.models", "app.main"]}}),
    )
}

/// The schemas, the validation and a CRUD router per entity. What a router imports is under a
/// `_` alias, so its route functions (`get_<entity>`, `list_<table>`) can never hide it,
/// whatever the entity is called.
pub fn api(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let mut files = Vec::new();
    let mut endpoints = Vec::new();
    for entity in &p.entities {
        let router = templates::render(
            "backend/app/routers/[table].py.j2",
            json!({"p": p, "entity": entity}),
        )?;
        files.push((format!("backend/app/routers/{}.py", entity.table), router));
        for (method, path) in [
            ("GET", ""),
            ("POST", ""),
            ("GET", "/{id}"),
            ("PATCH", "/{id}"),
            ("DELETE", "/{id}"),
        ] {
            endpoints.push(format!("{method} /api/{}{path}", entity.table));
        }
    }
    let context = json!({"p": p});
    files.push(file("backend/app/schemas.py", &context)?);
    files.push(file("backend/app/validation.py", &context)?);
    let summary = format!("{} REST endpoint(s) with validation", endpoints.len());
    finish(
        ctx,
        "api_builder",
        files,
        summary,
        json!({"endpoints": endpoints}),
    )
}

pub fn auth(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    if !p.has("auth") {
        return Err(AgentError::InvalidInput(
            "auth_builder needs the auth feature in features".to_owned(),
        ));
    }
    let files = files(
        &[
            "backend/app/security.py",
            "backend/app/deps.py",
            "backend/app/routers/auth.py",
        ],
        &json!({"p": p}),
    )?;
    finish(
        ctx,
        "auth_builder",
        files,
        "JWT (HS256) auth with PBKDF2 password hashing, register and login routes".to_owned(),
        json!({"endpoints": ["POST /api/auth/register", "POST /api/auth/login"]}),
    )
}

pub fn roles(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    if !p.has("roles") {
        return Err(AgentError::InvalidInput(
            "role_auth needs the roles feature in features".to_owned(),
        ));
    }
    let files = files(
        &["backend/app/roles.py", "backend/app/permissions.py"],
        &json!({"p": p}),
    )?;
    finish(
        ctx,
        "role_auth",
        files,
        "role-based access: admin, member, viewer".to_owned(),
        json!({"roles": ["admin", "member", "viewer"]}),
    )
}

pub fn email(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    finish(
        ctx,
        "email_system",
        vec![file("backend/app/email.py", json!({"p": p}))?],
        "email templates (welcome, password reset, notification) with SMTP delivery".to_owned(),
        json!({"templates": ["welcome", "password_reset", "notification"]}),
    )
}

pub fn payments(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let files = files(
        &["backend/app/payments.py", "backend/app/routers/payments.py"],
        &json!({"p": p}),
    )?;
    finish(
        ctx,
        "stripe_payment",
        files,
        "Stripe checkout parameters and verified webhooks".to_owned(),
        json!({"endpoints": ["POST /api/payments/webhook"], "live": false, "note": "no payment was made: set STRIPE_WEBHOOK_SECRET and Stripe keys to go live"}),
    )
}
