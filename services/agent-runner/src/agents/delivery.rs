//! Planning and delivering the project: project_architect (the plan and layout every builder
//! follows), ci_generator (GitHub Actions), readme_writer, deploy_executor (Dockerfiles, Compose
//! and Kubernetes manifests) and domain_linker (DNS records).
//!
//! ci_generator and readme_writer describe what the workspace holds ([`Context::exists`]): a
//! job for the frontend only where there is one, a route in the README only where its router is.
//!
//! Nothing here touches the outside world: deploy_executor and domain_linker produce exactly
//! what the action needs and say plainly in their output that nothing was deployed or changed.
//!
//! The project files' text is in their templates (`templates/fullstack/`, see
//! [`super::templates`]); domain_linker's zone file is a table of the records it returns, so
//! it is formatted here.

use std::fmt::Write;

use serde::Deserialize;
use serde_json::{Value, json};

use super::backend::finish;
use super::planning::depends_on;
use super::project::{Entity, Project};
use super::templates::{file, files};
use super::{AgentError, Context, parse};

/// The builders of a project in the order a chain runs them, with the feature each needs.
const BUILD_ORDER: &[(&str, Option<&str>)] = &[
    ("project_architect", None),
    ("db_schema", None),
    ("backend_builder", None),
    ("api_builder", None),
    ("auth_builder", Some("auth")),
    ("role_auth", Some("roles")),
    ("email_system", Some("email")),
    ("stripe_payment", Some("payments")),
    ("frontend_builder", None),
    ("ui_generator", None),
    ("markdown_editor", Some("markdown")),
    ("test_suite", None),
    ("integration_test", None),
    ("ci_generator", None),
    ("readme_writer", None),
    ("deploy_executor", None),
];

pub fn architect(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let steps: Vec<&str> = BUILD_ORDER
        .iter()
        .filter(|(_, feature)| feature.is_none_or(|f| p.has(f)))
        .map(|(name, _)| *name)
        .collect();
    let chain: Vec<Value> = steps
        .iter()
        .map(|step| {
            let needs: Vec<&str> = depends_on(step)
                .iter()
                .copied()
                .filter(|d| steps.contains(d))
                .collect();
            json!({"id": step, "agent": step, "needs": needs})
        })
        .collect();
    let spec =
        json!({"project_name": p.name, "slug": p.slug, "features": p.features, "input": input});
    let files = vec![
        file("docs/ARCHITECTURE.md", json!({"p": p, "steps": steps}))?,
        // The input as it came, for replaying the build: data, so serialised rather than laid
        // out by a template.
        ("sankalpa.project.json".to_owned(), format!("{spec:#}\n")),
    ];
    finish(
        ctx,
        "project_architect",
        files,
        format!(
            "plan of {} build step(s) for {} entit(ies)",
            steps.len(),
            p.entities.len()
        ),
        json!({"steps": steps, "chain": {"steps": chain}, "layout": ["frontend/", "backend/", "database/", "docs/", ".github/workflows/", "deploy/"]}),
    )
}

pub fn ci(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let frontend = ctx.exists("frontend/package.json");
    let workflow = file(
        ".github/workflows/ci.yml",
        json!({
            "db": p.slug.replace('-', "_"),
            "schema": ctx.exists("database/schema.sql"),
            "frontend": frontend,
        }),
    )?;
    let jobs: Vec<&str> = if frontend {
        vec!["backend", "frontend"]
    } else {
        vec!["backend"]
    };
    finish(
        ctx,
        "ci_generator",
        vec![workflow],
        format!("GitHub Actions: {}", jobs.join(", ")),
        json!({"jobs": jobs}),
    )
}

/// The longest overview taken from the model.
const OVERVIEW_CHARS: usize = 800;

/// The model's overview of `p`: a few plain sentences for the top of the README; refused when
/// empty, too long, or carrying Markdown structure (headings, code, tables) that would break the
/// README's own.
fn read_overview(answer: &str) -> Result<String, String> {
    let overview = answer.trim();
    if overview.is_empty() || overview.chars().count() > OVERVIEW_CHARS {
        return Err(format!(
            "the overview must be 1 to {OVERVIEW_CHARS} characters"
        ));
    }
    let structured = overview.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with('#') || line.starts_with("```") || line.starts_with('|')
    });
    if structured {
        return Err(
            "the overview must be plain sentences, without headings, code or tables".to_owned(),
        );
    }
    Ok(overview.to_owned())
}

/// The README: its sections from the template and what the workspace holds; with a model, an
/// overview of the project under its description (`method` says whether the model wrote one:
/// `llm`, or `template`).
pub async fn readme(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let entities: Vec<String> = p
        .entities
        .iter()
        .map(|e| {
            let fields: Vec<&str> = e.fields.iter().map(|f| f.column.as_str()).collect();
            format!("{} ({})", e.class, fields.join(", "))
        })
        .collect();
    let prompt = format!(
        "Project: {}\nDescription: {}\nEntities: {}\nFeatures: {}\n\nWrite the overview \
         paragraph of its README: two to four plain sentences, at most {OVERVIEW_CHARS} \
         characters, saying what the project does and for whom. No headings, lists or code.",
        p.name,
        p.description,
        entities.join("; "),
        p.features.join(", "),
    );
    let overview = ctx
        .ask_for(
            "You write clear, factual READMEs. Say only what the project description supports.",
            prompt,
            read_overview,
        )
        .await;
    let method = if overview.is_some() {
        "llm"
    } else {
        "template"
    };
    let served: Vec<&Entity> = p
        .entities
        .iter()
        .filter(|e| ctx.exists(&format!("backend/app/routers/{}.py", e.table)))
        .collect();
    let context = json!({
        "p": p,
        "overview": overview,
        "db": p.slug.replace('-', "_"),
        "served": served,
        "auth": ctx.exists("backend/app/routers/auth.py"),
        "frontend": ctx.exists("frontend/package.json"),
        "payments": ctx.exists("backend/app/routers/payments.py"),
        "payments_module": ctx.exists("backend/app/payments.py"),
        "email": ctx.exists("backend/app/email.py"),
    });
    finish(
        ctx,
        "readme_writer",
        vec![file("README.md", context)?],
        "README with setup, tests, API and configuration".to_owned(),
        json!({"sections": ["Stack", "Run it", "Test", "API", "Configuration", "Features"],
            "method": method}),
    )
}

#[derive(Deserialize)]
struct DeployOptions {
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    replicas: Option<u32>,
}

pub fn deploy(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let options: DeployOptions = parse(input.get("deploy").unwrap_or(&json!({})))?;
    let registry = options
        .registry
        .unwrap_or_else(|| "ghcr.io/example".to_owned());
    let host = options
        .domain
        .unwrap_or_else(|| format!("{}.example.com", p.slug));
    let replicas = options.replicas.unwrap_or(2);
    let slug = &p.slug;
    let context = json!({
        "slug": slug,
        "db": slug.replace('-', "_"),
        "registry": registry,
        "host": host,
        "replicas": replicas,
        "components": [
            {"name": "backend", "port": 8000, "probe": "/health"},
            {"name": "frontend", "port": 3000, "probe": "/"},
        ],
    });
    let files = files(
        &[
            "backend/Dockerfile",
            "frontend/Dockerfile",
            "docker-compose.yml",
            "deploy/kubernetes.yaml",
        ],
        &context,
    )?;
    finish(
        ctx,
        "deploy_executor",
        files,
        format!("Dockerfiles, Compose and Kubernetes manifests for {host}"),
        json!({
            "deployed": false,
            "note": "nothing was deployed: no cluster target is configured; apply deploy/kubernetes.yaml (after creating the secret) or run docker compose up",
            "commands": [
                format!("docker build -t {registry}/{slug}-backend:0.1.0 backend"),
                format!("docker build -t {registry}/{slug}-frontend:0.1.0 frontend"),
                format!("kubectl create secret generic {slug}-env --from-literal=DATABASE_URL=... --from-literal=JWT_SECRET=..."),
                "kubectl apply -f deploy/kubernetes.yaml".to_owned(),
            ],
        }),
    )
}

#[derive(Deserialize)]
struct DomainInput {
    domain: String,
    target: String,
    #[serde(default)]
    subdomains: Vec<String>,
    #[serde(default)]
    email_provider: Option<String>,
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn valid_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(valid_label)
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()))
}

pub fn domain(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: DomainInput = parse(input)?;
    let domain = input.domain.trim_end_matches('.').to_lowercase();
    if !valid_domain(&domain) {
        return Err(AgentError::InvalidInput(format!(
            "{domain:?} is not a valid domain name"
        )));
    }
    let target = input.target.trim().to_lowercase();
    let (kind, value) = if let Ok(ip) = target.parse::<std::net::IpAddr>() {
        (if ip.is_ipv4() { "A" } else { "AAAA" }, ip.to_string())
    } else if valid_domain(target.trim_end_matches('.')) {
        ("CNAME", format!("{}.", target.trim_end_matches('.')))
    } else {
        return Err(AgentError::InvalidInput(format!(
            "target {target:?} is neither an IP address nor a host name"
        )));
    };
    let mut records = Vec::new();
    // A CNAME may not sit at the zone apex: the apex gets an ALIAS-style record instead.
    let apex_kind = if kind == "CNAME" { "ALIAS" } else { kind };
    records.push(json!({"name": "@", "type": apex_kind, "value": value, "ttl": 3600}));
    records
        .push(json!({"name": "www", "type": "CNAME", "value": format!("{domain}."), "ttl": 3600}));
    for sub in &input.subdomains {
        if !valid_label(sub) {
            return Err(AgentError::InvalidInput(format!(
                "subdomain {sub:?} is not a valid DNS label"
            )));
        }
        records.push(json!({"name": sub, "type": kind, "value": value, "ttl": 3600}));
    }
    records.push(
        json!({"name": "@", "type": "CAA", "value": "0 issue \"letsencrypt.org\"", "ttl": 3600}),
    );
    let token = hex::encode(&sha2_digest(domain.as_bytes())[..16]);
    records.push(json!({"name": "_sankalpa-verification", "type": "TXT", "value": format!("sankalpa-verify={token}"), "ttl": 300}));
    if let Some(provider) = &input.email_provider {
        let (mx, spf) = match provider.to_lowercase().as_str() {
            "google" => ("1 smtp.google.com.", "v=spf1 include:_spf.google.com ~all"),
            "microsoft" => (
                "0 {domain}.mail.protection.outlook.com.",
                "v=spf1 include:spf.protection.outlook.com -all",
            ),
            other => {
                return Err(AgentError::InvalidInput(format!(
                    "unknown email provider {other:?}: use google or microsoft"
                )));
            }
        };
        records.push(json!({"name": "@", "type": "MX", "value": mx.replace("{domain}", &domain.replace('.', "-")), "ttl": 3600}));
        records.push(json!({"name": "@", "type": "TXT", "value": spf, "ttl": 3600}));
        records.push(json!({"name": "_dmarc", "type": "TXT", "value": format!("v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}"), "ttl": 3600}));
    }
    let mut zone = format!("$ORIGIN {domain}.\n$TTL 3600\n");
    for record in &records {
        let kind = record["type"].as_str().unwrap_or_default();
        let value = record["value"].as_str().unwrap_or_default();
        let value = if kind == "TXT" {
            format!("\"{value}\"")
        } else {
            value.to_owned()
        };
        let _ = writeln!(
            zone,
            "{:<24} {:<6} IN {:<6} {}",
            record["name"].as_str().unwrap_or_default(),
            record["ttl"],
            kind,
            value
        );
    }
    let files = vec![(format!("dns/{domain}.zone"), zone)];
    finish(
        ctx,
        "domain_linker",
        files,
        format!("{} DNS record(s) for {domain}", records.len()),
        json!({
            "domain": domain,
            "records": records,
            "applied": false,
            "note": "no DNS record was changed: no DNS provider is configured; create these records at your provider (ALIAS may be called ANAME or CNAME flattening there)",
        }),
    )
}

fn sha2_digest(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
