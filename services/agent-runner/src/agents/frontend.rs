//! The frontend builders: the Next.js (app router) + Tailwind application with a typed API client
//! (frontend_builder), a list page, table and form per entity (ui_generator), and a Markdown
//! editor with a safe renderer, in TypeScript for the browser and Python for the server
//! (markdown_editor).

use std::fmt::Write;

use serde_json::{Value, json};

use super::backend::finish;
use super::project::{Entity, Project, literal};
use super::{AgentError, Context};

/// The API's resources as TypeScript types: what a client sends (`<Entity>Input`) and what it
/// gets back (`<Entity>`). They name no global type, so an entity called `Date`, `String` or
/// `Omit` hides nothing they need, and field names are quoted, so `new` or `delete` are plain.
fn types_ts(p: &Project) -> String {
    let mut out = String::from(
        "// The API's resources, as the backend's schemas (backend/app/schemas.py) define them.\n",
    );
    for entity in &p.entities {
        let _ = writeln!(out, "\nexport interface {}Input {{", entity.class);
        for field in &entity.fields {
            let optional = if field.required { "" } else { "?" };
            let nullable = if field.required { "" } else { " | null" };
            let _ = writeln!(
                out,
                "  \"{}\"{optional}: {}{nullable};",
                field.column,
                field.kind.typescript()
            );
        }
        let _ = writeln!(
            out,
            "}}\n\nexport interface {c} extends {c}Input {{\n  id: number;\n  created_at: string;\n  updated_at: string;\n}}",
            c = entity.class
        );
    }
    out
}

pub fn app(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let package = json!({
        "name": p.slug,
        "version": "0.1.0",
        "private": true,
        "scripts": {"dev": "next dev", "build": "next build", "start": "next start", "lint": "next lint"},
        "dependencies": {"next": "14.2.5", "react": "18.3.1", "react-dom": "18.3.1"},
        "devDependencies": {"typescript": "5.5.4", "@types/react": "18.3.3", "@types/node": "20.14.12", "tailwindcss": "3.4.7", "postcss": "8.4.40", "autoprefixer": "10.4.19"}
    });
    let tsconfig = json!({
        "compilerOptions": {"target": "ES2020", "lib": ["dom", "dom.iterable", "esnext"], "allowJs": false, "skipLibCheck": true, "strict": true, "noEmit": true, "esModuleInterop": true, "module": "esnext", "moduleResolution": "bundler", "resolveJsonModule": true, "isolatedModules": true, "jsx": "preserve", "incremental": true, "plugins": [{"name": "next"}], "paths": {"@/*": ["./*"]}},
        "include": ["next-env.d.ts", "**/*.ts", "**/*.tsx"],
        "exclude": ["node_modules"]
    });
    let mut api = String::from(
        "// A typed client of the backend; NEXT_PUBLIC_API_URL points at it. One entry per entity\n// in `api`, so no entity's name can hide a name this module uses.\nimport type * as T from \"./types\";\n\nconst BASE = process.env.NEXT_PUBLIC_API_URL ?? \"http://localhost:8000\";\n\nasync function request<R>(path: string, init: RequestInit = {}): Promise<R> {\n  const token = typeof window === \"undefined\" ? null : window.localStorage.getItem(\"token\");\n  const headers: Record<string, string> = { \"Content-Type\": \"application/json\" };\n  if (token) headers.Authorization = `Bearer ${token}`;\n  const response = await fetch(`${BASE}${path}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });\n  if (!response.ok) throw new Error(`${init.method ?? \"GET\"} ${path}: ${response.status} ${await response.text()}`);\n  return (response.status === 204 ? undefined : await response.json()) as R;\n}\n",
    );
    api.push_str("\nexport const api = {\n");
    for entity in &p.entities {
        let _ = write!(
            api,
            "  {t}: {{\n    list: (params: Record<string, string> = {{}}) => request<T.{c}[]>(`/api/{t}?${{new URLSearchParams(params)}}`),\n    get: (id: number) => request<T.{c}>(`/api/{t}/${{id}}`),\n    create: (body: T.{c}Input) => request<T.{c}>(\"/api/{t}\", {{ method: \"POST\", body: JSON.stringify(body) }}),\n    update: (id: number, body: Partial<T.{c}Input>) => request<T.{c}>(`/api/{t}/${{id}}`, {{ method: \"PATCH\", body: JSON.stringify(body) }}),\n    remove: (id: number) => request<void>(`/api/{t}/${{id}}`, {{ method: \"DELETE\" }}),\n  }},\n",
            t = entity.table,
            c = entity.class
        );
    }
    api.push_str("};\n");
    if p.has("auth") {
        api.push_str("\nexport async function login(email: string, password: string): Promise<void> {\n  const { access_token } = await request<{ access_token: string }>(\"/api/auth/login\", { method: \"POST\", body: JSON.stringify({ email, password }) });\n  window.localStorage.setItem(\"token\", access_token);\n}\n");
    }
    let page = home_page(&p, &[]);
    let layout = format!(
        "import \"./globals.css\";\nimport type {{ ReactNode }} from \"react\";\n\nexport const metadata = {{ title: {name}, description: {description} }};\n\nexport default function RootLayout({{ children }}: {{ children: ReactNode }}) {{\n  return (\n    <html lang=\"en\">\n      <body className=\"min-h-screen bg-white text-gray-900\">{{children}}</body>\n    </html>\n  );\n}}\n",
        name = literal(&p.name),
        description = literal(&p.description)
    );
    let files = vec![
        ("frontend/package.json".to_owned(), format!("{:#}\n", package)),
        ("frontend/tsconfig.json".to_owned(), format!("{:#}\n", tsconfig)),
        ("frontend/next-env.d.ts".to_owned(), "/// <reference types=\"next\" />\n/// <reference types=\"next/image-types/global\" />\n".to_owned()),
        ("frontend/next.config.js".to_owned(), "/** @type {import('next').NextConfig} */\nmodule.exports = { reactStrictMode: true };\n".to_owned()),
        ("frontend/tailwind.config.js".to_owned(), "/** @type {import('tailwindcss').Config} */\nmodule.exports = {\n  content: [\"./app/**/*.{ts,tsx}\", \"./components/**/*.{ts,tsx}\"],\n  theme: { extend: {} },\n  plugins: [],\n};\n".to_owned()),
        ("frontend/postcss.config.js".to_owned(), "module.exports = { plugins: { tailwindcss: {}, autoprefixer: {} } };\n".to_owned()),
        ("frontend/app/globals.css".to_owned(), "@tailwind base;\n@tailwind components;\n@tailwind utilities;\n".to_owned()),
        ("frontend/app/layout.tsx".to_owned(), layout),
        ("frontend/app/page.tsx".to_owned(), page),
        ("frontend/lib/types.ts".to_owned(), types_ts(&p)),
        ("frontend/lib/api.ts".to_owned(), api),
    ];
    finish(
        ctx,
        "frontend_builder",
        files,
        "Next.js 14 + Tailwind frontend with a typed API client".to_owned(),
        json!({"framework": "next", "styling": "tailwind"}),
    )
}

/// The home page: the project's name and description, and a link to each page in `pages`
/// (path, label). frontend_builder writes it without links; ui_generator, which writes the
/// pages, writes it again with theirs.
fn home_page(p: &Project, pages: &[(String, String)]) -> String {
    let links: String = pages
        .iter()
        .map(|(href, label)| format!("          <li><Link className=\"block rounded-lg border p-4 hover:bg-gray-50\" href=\"{href}\">{}</Link></li>\n", html_text(label)))
        .collect();
    let list = if links.is_empty() {
        String::new()
    } else {
        format!("      <ul className=\"mt-8 grid grid-cols-2 gap-4\">\n{links}      </ul>\n")
    };
    let import = if links.is_empty() {
        ""
    } else {
        "import Link from \"next/link\";\n\n"
    };
    format!(
        "{import}export default function Home() {{\n  return (\n    <main className=\"mx-auto max-w-4xl p-8\">\n      <h1 className=\"text-3xl font-bold\">{name}</h1>\n      <p className=\"mt-2 text-gray-600\">{description}</p>\n{list}    </main>\n  );\n}}\n",
        name = html_text(&p.name),
        description = html_text(&p.description)
    )
}

/// Text safe inside JSX: braces and angle brackets would be read as code.
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('{', "&#123;")
        .replace('}', "&#125;")
}

/// The page of one entity: its rows, a form that creates one or edits the row chosen, and a
/// delete button per row. Types come from `@/lib/types` as `T.<Entity>`, so an entity named
/// like a global (`String`, `Date`) hides nothing the page uses.
fn entity_page(entity: &Entity) -> String {
    let headers: String = entity
        .fields
        .iter()
        .map(|f| format!("<th className=\"px-3 py-2 text-left\">{}</th>", f.column))
        .collect();
    let cells: String = entity
        .fields
        .iter()
        .map(|f| {
            format!(
                "<td className=\"px-3 py-2\">{{String(row.{} ?? \"\")}}</td>",
                f.column
            )
        })
        .collect();
    let inputs: String = entity
        .fields
        .iter()
        .map(|f| {
            let c = &f.column;
            let (kind, value, shown) = match f.kind.typescript() {
                "number" => (
                    "number",
                    "event.target.value === \"\" ? undefined : Number(event.target.value)",
                    format!("value={{String(form.{c} ?? \"\")}}"),
                ),
                "boolean" => (
                    "checkbox",
                    "event.target.checked",
                    format!("checked={{Boolean(form.{c})}}"),
                ),
                _ => (
                    "text",
                    "event.target.value",
                    format!("value={{String(form.{c} ?? \"\")}}"),
                ),
            };
            let required = f.required && kind != "checkbox";
            format!(
                "        <label className=\"block\">\n          <span className=\"text-sm text-gray-700\">{c}</span>\n          <input className=\"mt-1 w-full rounded border px-2 py-1\" type=\"{kind}\" required={{{required}}} {shown} onChange={{(event) => setForm({{ ...form, {c}: {value} }})}} />\n        </label>\n"
            )
        })
        .collect();
    format!(
        r#""use client";

import {{ useEffect, useState }} from "react";
import {{ api }} from "@/lib/api";
import type * as T from "@/lib/types";

export default function {c}Page() {{
  const [rows, setRows] = useState<T.{c}[]>([]);
  const [form, setForm] = useState<Partial<T.{c}Input>>({{}});
  const [editing, setEditing] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  const reload = () =>
    api.{t}
      .list()
      .then(setRows)
      .catch((e: Error) => setError(e.message));
  useEffect(() => {{
    reload();
  }}, []);

  async function submit(event: React.FormEvent) {{
    event.preventDefault();
    try {{
      if (editing === null) await api.{t}.create(form as T.{c}Input);
      else await api.{t}.update(editing, form);
      setForm({{}});
      setEditing(null);
      setError(null);
      await reload();
    }} catch (e) {{
      setError((e as Error).message);
    }}
  }}

  return (
    <main className="mx-auto max-w-4xl p-8">
      <h1 className="text-2xl font-bold">{c}</h1>
      {{error && <p role="alert" className="mt-4 rounded bg-red-50 p-3 text-red-700">{{error}}</p>}}
      <form onSubmit={{submit}} className="mt-6 space-y-3 rounded-lg border p-4">
{inputs}        <button className="rounded bg-blue-600 px-4 py-2 text-white" type="submit">{{editing === null ? "Add" : "Save"}}</button>
      </form>
      <table className="mt-8 w-full border-collapse">
        <thead><tr><th className="px-3 py-2 text-left">id</th>{headers}<th /></tr></thead>
        <tbody>
          {{rows.map((row) => (
            <tr key={{row.id}} className="border-t">
              <td className="px-3 py-2">{{row.id}}</td>{cells}
              <td>
                <button className="text-blue-600" onClick={{() => {{ setEditing(row.id); setForm(row); }}}}>Edit</button>{{" "}}
                <button className="text-red-600" onClick={{() => api.{t}.remove(row.id).then(reload)}}>Delete</button>
              </td>
            </tr>
          ))}}
        </tbody>
      </table>
    </main>
  );
}}
"#,
        t = entity.table,
        c = entity.class,
    )
}

pub fn ui(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let mut files: Vec<(String, String)> = p
        .entities
        .iter()
        .map(|e| (format!("frontend/app/{}/page.tsx", e.table), entity_page(e)))
        .collect();
    let pages: Vec<String> = p.entities.iter().map(|e| format!("/{}", e.table)).collect();
    let links: Vec<(String, String)> = p
        .entities
        .iter()
        .map(|e| (format!("/{}", e.table), e.class.clone()))
        .collect();
    files.push(("frontend/app/page.tsx".to_owned(), home_page(&p, &links)));
    finish(
        ctx,
        "ui_generator",
        files,
        format!("{} list-and-form page(s)", pages.len()),
        json!({"pages": pages}),
    )
}

const MARKDOWN_PY: &str = r#""""A small, safe Markdown renderer: headings, paragraphs, lists, emphasis, code and links.
HTML in the source is escaped, and only http(s) and relative links are kept."""
import html
import re

INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\*([^*]+)\*"), r"<em>\1</em>"),
]
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _link(match):
    text, url = match.group(1), match.group(2)
    if not url.startswith(("http://", "https://", "/")):
        return text
    return '<a href="%s">%s</a>' % (url, text)


def _inline(text):
    text = html.escape(text, quote=False)
    for pattern, replacement in INLINE:
        text = pattern.sub(replacement, text)
    return LINK.sub(_link, text)


def render(source):
    out, items = [], []
    for block in re.split(r"\n\s*\n", source.strip()):
        lines = block.splitlines()
        if all(line.lstrip().startswith(("- ", "* ")) for line in lines):
            items = "".join("<li>%s</li>" % _inline(line.lstrip()[2:]) for line in lines)
            out.append("<ul>%s</ul>" % items)
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", block)
        if heading and len(lines) == 1:
            level = len(heading.group(1))
            out.append("<h%d>%s</h%d>" % (level, _inline(heading.group(2)), level))
        else:
            out.append("<p>%s</p>" % _inline(" ".join(lines)))
    return "\n".join(out)
"#;

const MARKDOWN_TS: &str = r#"// The browser twin of backend/app/markdown.py: the same rules, the same escaping.
const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function inline(text: string): string {
  return escape(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/\*([^*]+)\*/g, "<em>$1</em>")
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_m, label: string, url: string) =>
      /^(https?:\/\/|\/)/.test(url) ? `<a href="${url}">${label}</a>` : label,
    );
}

export function render(source: string): string {
  return source
    .trim()
    .split(/\n\s*\n/)
    .map((block) => {
      const lines = block.split("\n");
      if (lines.every((line) => /^\s*[-*] /.test(line))) {
        return `<ul>${lines.map((line) => `<li>${inline(line.trim().slice(2))}</li>`).join("")}</ul>`;
      }
      const heading = /^(#{1,6})\s+(.*)$/.exec(block);
      if (heading && lines.length === 1) return `<h${heading[1].length}>${inline(heading[2])}</h${heading[1].length}>`;
      return `<p>${inline(lines.join(" "))}</p>`;
    })
    .join("\n");
}
"#;

const EDITOR_TSX: &str = r#""use client";

import { useState } from "react";
import { render } from "@/lib/markdown";

export default function MarkdownEditor({ initial = "", onChange }: { initial?: string; onChange?: (value: string) => void }) {
  const [value, setValue] = useState(initial);
  return (
    <div className="grid grid-cols-2 gap-4">
      <textarea
        className="h-64 w-full rounded border p-2 font-mono text-sm"
        value={value}
        onChange={(event) => {
          setValue(event.target.value);
          onChange?.(event.target.value);
        }}
      />
      <div className="prose h-64 overflow-auto rounded border p-2" dangerouslySetInnerHTML={{ __html: render(value) }} />
    </div>
  );
}
"#;

pub fn markdown(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    Project::from_input(input)?;
    let files = vec![
        ("backend/app/markdown.py".to_owned(), MARKDOWN_PY.to_owned()),
        (
            "frontend/lib/markdown.ts".to_owned(),
            MARKDOWN_TS.to_owned(),
        ),
        (
            "frontend/components/MarkdownEditor.tsx".to_owned(),
            EDITOR_TSX.to_owned(),
        ),
    ];
    finish(
        ctx,
        "markdown_editor",
        files,
        "Markdown editor with live preview and a safe renderer (browser and server)".to_owned(),
        json!({"component": "frontend/components/MarkdownEditor.tsx"}),
    )
}
