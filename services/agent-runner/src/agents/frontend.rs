//! The frontend builders: the Next.js (app router) + Tailwind application with a typed API client
//! (frontend_builder), a list page, table and form per entity (ui_generator), and a Markdown
//! editor with a safe renderer, in TypeScript for the browser and Python for the server
//! (markdown_editor).

use std::fmt::Write;

use serde_json::{Value, json};

use super::backend::finish;
use super::project::{Entity, Project};
use super::{AgentError, Context};

fn types_ts(p: &Project) -> String {
    let mut out = String::from("// The API's resources, as the backend's schemas define them.\n");
    for entity in &p.entities {
        let _ = writeln!(out, "\nexport interface {} {{\n  id: number;", entity.class);
        for field in &entity.fields {
            let optional = if field.required { "" } else { "?" };
            let _ = writeln!(
                out,
                "  {}{optional}: {};",
                field.column,
                field.kind.typescript()
            );
        }
        out.push_str("  created_at: string;\n  updated_at: string;\n}\n");
        let _ = writeln!(
            out,
            "\nexport type {c}Input = Omit<{c}, \"id\" | \"created_at\" | \"updated_at\">;",
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
        "// A typed client of the backend; NEXT_PUBLIC_API_URL points at it.\nimport type * as T from \"./types\";\n\nconst BASE = process.env.NEXT_PUBLIC_API_URL ?? \"http://localhost:8000\";\n\nasync function request<R>(path: string, init: RequestInit = {}): Promise<R> {\n  const token = typeof window === \"undefined\" ? null : window.localStorage.getItem(\"token\");\n  const headers: Record<string, string> = { \"Content-Type\": \"application/json\" };\n  if (token) headers.Authorization = `Bearer ${token}`;\n  const response = await fetch(`${BASE}${path}`, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });\n  if (!response.ok) throw new Error(`${init.method ?? \"GET\"} ${path}: ${response.status} ${await response.text()}`);\n  return (response.status === 204 ? undefined : await response.json()) as R;\n}\n",
    );
    for entity in &p.entities {
        let _ = write!(
            api,
            "\nexport const {t} = {{\n  list: () => request<T.{c}[]>(\"/api/{t}\"),\n  get: (id: number) => request<T.{c}>(`/api/{t}/${{id}}`),\n  create: (body: T.{c}Input) => request<T.{c}>(\"/api/{t}\", {{ method: \"POST\", body: JSON.stringify(body) }}),\n  update: (id: number, body: Partial<T.{c}Input>) => request<T.{c}>(`/api/{t}/${{id}}`, {{ method: \"PATCH\", body: JSON.stringify(body) }}),\n  remove: (id: number) => request<void>(`/api/{t}/${{id}}`, {{ method: \"DELETE\" }}),\n}};\n",
            t = entity.table,
            c = entity.class
        );
    }
    if p.has("auth") {
        api.push_str("\nexport async function login(email: string, password: string): Promise<void> {\n  const { access_token } = await request<{ access_token: string }>(\"/api/auth/login\", { method: \"POST\", body: JSON.stringify({ email, password }) });\n  window.localStorage.setItem(\"token\", access_token);\n}\n");
    }
    let links: String = p
        .entities
        .iter()
        .map(|e| format!("          <li><Link className=\"block rounded-lg border p-4 hover:bg-gray-50\" href=\"/{t}\">{c}</Link></li>\n", t = e.table, c = e.class))
        .collect();
    let page = format!(
        "import Link from \"next/link\";\n\nexport default function Home() {{\n  return (\n    <main className=\"mx-auto max-w-4xl p-8\">\n      <h1 className=\"text-3xl font-bold\">{name}</h1>\n      <p className=\"mt-2 text-gray-600\">{description}</p>\n      <ul className=\"mt-8 grid grid-cols-2 gap-4\">\n{links}      </ul>\n    </main>\n  );\n}}\n",
        name = html_text(&p.name),
        description = html_text(&p.description)
    );
    let layout = format!(
        "import \"./globals.css\";\nimport type {{ ReactNode }} from \"react\";\n\nexport const metadata = {{ title: {name:?}, description: {description:?} }};\n\nexport default function RootLayout({{ children }}: {{ children: ReactNode }}) {{\n  return (\n    <html lang=\"en\">\n      <body className=\"min-h-screen bg-white text-gray-900\">{{children}}</body>\n    </html>\n  );\n}}\n",
        name = p.name,
        description = p.description
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

/// Text safe inside JSX: braces and angle brackets would be read as code.
fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('{', "&#123;")
        .replace('}', "&#125;")
}

fn entity_page(entity: &Entity) -> String {
    let columns: Vec<&str> = entity.fields.iter().map(|f| f.column.as_str()).collect();
    let headers: String = columns
        .iter()
        .map(|c| format!("<th className=\"px-3 py-2 text-left\">{c}</th>"))
        .collect();
    let cells: String = columns
        .iter()
        .map(|c| format!("<td className=\"px-3 py-2\">{{String(row.{c} ?? \"\")}}</td>"))
        .collect();
    let inputs: String = entity
        .fields
        .iter()
        .map(|f| {
            let kind = match f.kind.typescript() {
                "number" => "number",
                "boolean" => "checkbox",
                _ => "text",
            };
            let value = match kind {
                "number" => "Number(event.target.value)".to_owned(),
                "checkbox" => "event.target.checked".to_owned(),
                _ => "event.target.value".to_owned(),
            };
            format!(
                "      <label className=\"block\">\n        <span className=\"text-sm text-gray-700\">{c}</span>\n        <input className=\"mt-1 w-full rounded border px-2 py-1\" type=\"{kind}\" required={{{req}}} onChange={{(event) => setForm({{ ...form, {c}: {value} }})}} />\n      </label>\n",
                c = f.column,
                req = f.required
            )
        })
        .collect();
    format!(
        "\"use client\";\n\nimport {{ useEffect, useState }} from \"react\";\nimport {{ {t} }} from \"@/lib/api\";\nimport type {{ {c}, {c}Input }} from \"@/lib/types\";\n\nexport default function {c}Page() {{\n  const [rows, setRows] = useState<{c}[]>([]);\n  const [form, setForm] = useState<Partial<{c}Input>>({{}});\n  const [error, setError] = useState<string | null>(null);\n\n  const reload = () => {t}.list().then(setRows).catch((e: Error) => setError(e.message));\n  useEffect(() => {{\n    reload();\n  }}, []);\n\n  async function submit(event: React.FormEvent) {{\n    event.preventDefault();\n    try {{\n      await {t}.create(form as {c}Input);\n      setForm({{}});\n      await reload();\n    }} catch (e) {{\n      setError((e as Error).message);\n    }}\n  }}\n\n  return (\n    <main className=\"mx-auto max-w-4xl p-8\">\n      <h1 className=\"text-2xl font-bold\">{c}</h1>\n      {{error && <p className=\"mt-4 rounded bg-red-50 p-3 text-red-700\">{{error}}</p>}}\n      <form onSubmit={{submit}} className=\"mt-6 space-y-3 rounded-lg border p-4\">\n{inputs}        <button className=\"rounded bg-blue-600 px-4 py-2 text-white\" type=\"submit\">Add</button>\n      </form>\n      <table className=\"mt-8 w-full border-collapse\">\n        <thead><tr>{headers}<th /></tr></thead>\n        <tbody>\n          {{rows.map((row) => (\n            <tr key={{row.id}} className=\"border-t\">\n              {cells}\n              <td><button className=\"text-red-600\" onClick={{() => {t}.remove(row.id).then(reload)}}>Delete</button></td>\n            </tr>\n          ))}}\n        </tbody>\n      </table>\n    </main>\n  );\n}}\n",
        t = entity.table,
        c = entity.class,
    )
}

pub fn ui(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let files: Vec<(String, String)> = p
        .entities
        .iter()
        .map(|e| (format!("frontend/app/{}/page.tsx", e.table), entity_page(e)))
        .collect();
    let pages: Vec<String> = p.entities.iter().map(|e| format!("/{}", e.table)).collect();
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
