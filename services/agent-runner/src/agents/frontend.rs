//! The frontend builders: the Next.js (app router) + Tailwind application with a typed API client
//! (frontend_builder), a list page, table and form per entity (ui_generator), and a Markdown
//! editor with a safe renderer, in TypeScript for the browser and Python for the server
//! (markdown_editor). The files' text is in their templates (`templates/fullstack/frontend/`
//! and, for the renderer, `backend/app/markdown.py.j2`; see [`super::templates`]).

use serde_json::{Value, json};

use super::backend::finish;
use super::project::Project;
use super::templates::{self, file, files};
use super::{AgentError, Context};

pub fn app(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let context = json!({"p": p, "pages": []});
    let files = files(
        &[
            "frontend/package.json",
            "frontend/tsconfig.json",
            "frontend/next-env.d.ts",
            "frontend/next.config.js",
            "frontend/tailwind.config.js",
            "frontend/postcss.config.js",
            "frontend/app/globals.css",
            "frontend/app/layout.tsx",
            "frontend/app/page.tsx",
            "frontend/lib/types.ts",
            "frontend/lib/api.ts",
        ],
        &context,
    )?;
    finish(
        ctx,
        "frontend_builder",
        files,
        "Next.js 14 + Tailwind frontend with a typed API client".to_owned(),
        json!({"framework": "next", "styling": "tailwind"}),
    )
}

pub fn ui(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let mut files = Vec::new();
    for entity in &p.entities {
        let page = templates::render(
            "frontend/app/[table]/page.tsx.j2",
            json!({"entity": entity}),
        )?;
        files.push((format!("frontend/app/{}/page.tsx", entity.table), page));
    }
    let pages: Vec<String> = p.entities.iter().map(|e| format!("/{}", e.table)).collect();
    let links: Vec<Value> = p
        .entities
        .iter()
        .map(|e| json!({"href": format!("/{}", e.table), "label": e.class}))
        .collect();
    // The home page again, now with a link to each page.
    files.push(file(
        "frontend/app/page.tsx",
        json!({"p": p, "pages": links}),
    )?);
    finish(
        ctx,
        "ui_generator",
        files,
        format!("{} list-and-form page(s)", pages.len()),
        json!({"pages": pages}),
    )
}

pub fn markdown(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let files = files(
        &[
            "backend/app/markdown.py",
            "frontend/lib/markdown.ts",
            "frontend/components/MarkdownEditor.tsx",
        ],
        &json!({"p": p}),
    )?;
    finish(
        ctx,
        "markdown_editor",
        files,
        "Markdown editor with live preview and a safe renderer (browser and server)".to_owned(),
        json!({"component": "frontend/components/MarkdownEditor.tsx"}),
    )
}
