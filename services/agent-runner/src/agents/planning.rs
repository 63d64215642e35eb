//! The planner: a project request in words ("a shop with products, orders and customers, with
//! login and payments") read for its entities, its features and its name, and turned into the
//! agents that build it, ordered by their data dependencies, and into a chain definition (the
//! orchestrator's DAG form) with the input to run it with.
//!
//! Here the rules read the request (a model may read it instead: [`super::model_planner`]
//! checks the model's reading and assembles it here). Words are matched against [`INTENTS`]
//! (features and the agents they call for), entities are the nouns the request lists ("with X, Y and Z", "X/Y/Z") or that
//! [`KNOWN_ENTITIES`] knows, and relations come from "X belong to Y", "Y have many X" or the
//! usual parents of [`KNOWN_ENTITIES`] when both are named. Every bound is a constant below.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::project::{FEATURES, RESERVED_FIELDS};
use super::{AgentError, parse};
use crate::artifacts::slug;

/// The most entities a plan holds: a request naming more is a data model, not a sentence, and
/// every builder's output grows with each entity.
pub const MAX_ENTITIES: usize = 20;
/// The longest project name derived from a request (a given one may be up to 100 characters,
/// the builders' limit).
const MAX_SLUG_CHARS: usize = 40;
const MAX_PROJECT_NAME_CHARS: usize = 100;
/// The longest word taken for an entity: its name, and `<name>_id` in the entities that refer
/// to it, stay within the builders' 63 characters.
const MAX_NOUN_CHARS: usize = 40;
/// The builders take a description of at most this many characters.
const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A feature, the words of a request that ask for it, and the agents that build it.
struct Intent {
    feature: &'static str,
    triggers: &'static [&'static str],
    agents: &'static [&'static str],
}

const PROJECT_AGENTS: &[&str] = &[
    "project_architect",
    "db_schema",
    "backend_builder",
    "api_builder",
    "frontend_builder",
    "ui_generator",
    "test_suite",
];

const INTENTS: &[Intent] = &[
    Intent {
        feature: "app",
        triggers: &[
            "app",
            "apps",
            "application",
            "project",
            "saas",
            "platform",
            "full-stack",
            "fullstack",
            "shop",
            "store",
            "marketplace",
            "crm",
            "tracker",
            "system",
            "portal",
            "service",
            "software",
            "tool",
            "forum",
            "cms",
        ],
        agents: PROJECT_AGENTS,
    },
    Intent {
        feature: "database",
        triggers: &[
            "database",
            "schema",
            "sql",
            "tables",
            "postgres",
            "postgresql",
        ],
        agents: &["db_schema"],
    },
    Intent {
        feature: "api",
        triggers: &["api", "backend", "server", "rest", "crud", "endpoints"],
        agents: &["db_schema", "backend_builder", "api_builder"],
    },
    Intent {
        feature: "frontend",
        triggers: &[
            "frontend",
            "ui",
            "website",
            "web",
            "dashboard",
            "pages",
            "site",
            "landing",
        ],
        agents: &["frontend_builder", "ui_generator"],
    },
    Intent {
        feature: "auth",
        triggers: &[
            "login",
            "logins",
            "auth",
            "authentication",
            "accounts",
            "users",
            "signup",
            "sign-up",
            "sign in",
            "sign up",
            "log in",
            "jwt",
        ],
        agents: &["auth_builder"],
    },
    Intent {
        feature: "roles",
        triggers: &["roles", "permissions", "rbac", "admin", "admins"],
        agents: &["auth_builder", "role_auth"],
    },
    Intent {
        feature: "email",
        triggers: &["email", "emails", "newsletter", "smtp", "notifications"],
        agents: &["email_system"],
    },
    Intent {
        feature: "payments",
        triggers: &[
            "payments",
            "payment",
            "stripe",
            "billing",
            "checkout",
            "subscriptions",
            "subscription",
            "pay",
        ],
        agents: &["stripe_payment"],
    },
    Intent {
        feature: "markdown",
        triggers: &["markdown", "editor", "blog", "notes", "wiki"],
        agents: &["markdown_editor"],
    },
    Intent {
        feature: "tests",
        triggers: &["test", "tests", "testing", "tested", "quality", "pytest"],
        agents: &["test_suite", "integration_test"],
    },
    Intent {
        feature: "security",
        triggers: &["secure", "security", "audit", "vulnerabilities"],
        agents: &["security_scanner"],
    },
    Intent {
        feature: "review",
        triggers: &["review", "reviewed", "refactor", "critique", "code review"],
        agents: &["critic"],
    },
    Intent {
        feature: "ci",
        triggers: &[
            "ci",
            "pipeline",
            "github",
            "actions",
            "continuous integration",
        ],
        agents: &["ci_generator"],
    },
    Intent {
        feature: "deploy",
        triggers: &[
            "deploy",
            "deployed",
            "deployment",
            "kubernetes",
            "docker",
            "host",
            "hosted",
            "hosting",
        ],
        agents: &["deploy_executor"],
    },
    Intent {
        feature: "domain",
        triggers: &["domain", "dns"],
        agents: &["domain_linker"],
    },
    Intent {
        feature: "readme",
        triggers: &["readme", "docs", "documentation", "documented"],
        agents: &["readme_writer"],
    },
    Intent {
        feature: "seo",
        triggers: &["seo", "search engine", "search engines"],
        agents: &["seo_optimizer"],
    },
    Intent {
        feature: "launch",
        triggers: &["launch", "product hunt", "producthunt"],
        agents: &["product_hunt_copywriter"],
    },
    Intent {
        feature: "pitch_deck",
        triggers: &["pitch", "investors", "fundraising", "deck"],
        agents: &["pitch_deck_generator"],
    },
];

/// Every feature a request may ask for, in the order the rules look for them.
pub(super) fn known_features() -> impl Iterator<Item = &'static str> {
    INTENTS.iter().map(|intent| intent.feature)
}

/// The order agents run in when several are planned.
pub(super) const ORDER: &[&str] = &[
    "project_architect",
    "db_schema",
    "backend_builder",
    "api_builder",
    "auth_builder",
    "role_auth",
    "email_system",
    "stripe_payment",
    "frontend_builder",
    "ui_generator",
    "markdown_editor",
    "test_suite",
    "integration_test",
    "security_scanner",
    "critic",
    "ci_generator",
    "readme_writer",
    "deploy_executor",
    "domain_linker",
    "seo_optimizer",
    "product_hunt_copywriter",
    "pitch_deck_generator",
];

/// What an agent must run after, when both are planned.
pub fn depends_on(agent: &str) -> &'static [&'static str] {
    match agent {
        "db_schema" | "frontend_builder" => &["project_architect"],
        "backend_builder" => &["project_architect", "db_schema"],
        "api_builder" | "auth_builder" | "email_system" | "stripe_payment" => &["backend_builder"],
        "role_auth" => &["auth_builder"],
        "ui_generator" | "markdown_editor" => &["frontend_builder"],
        "test_suite" | "integration_test" => &[
            "api_builder",
            "auth_builder",
            "role_auth",
            "email_system",
            "stripe_payment",
            "markdown_editor",
        ],
        "ci_generator" => &["test_suite", "integration_test"],
        "readme_writer" => &["api_builder", "frontend_builder"],
        "deploy_executor" => &["backend_builder", "frontend_builder", "ci_generator"],
        "domain_linker" => &["deploy_executor"],
        "seo_optimizer" | "product_hunt_copywriter" | "pitch_deck_generator" => &["readme_writer"],
        _ => &[],
    }
}

/// The planned agents `agent` runs after: its dependencies, and where one is not planned, what
/// that one would have run after, so the order holds through agents left out.
fn planned_needs(agent: &str, chosen: &[&'static str]) -> Vec<&'static str> {
    let mut needs = Vec::new();
    let mut pending: Vec<&'static str> = depends_on(agent).to_vec();
    let mut seen = BTreeSet::new();
    while let Some(dependency) = pending.pop() {
        if !seen.insert(dependency) {
            continue;
        }
        if chosen.contains(&dependency) {
            needs.push(dependency);
        } else {
            pending.extend(depends_on(dependency));
        }
    }
    // A need another need already waits on adds nothing but edges to draw.
    let implied: BTreeSet<&str> = needs.iter().flat_map(|n| ancestors(n)).collect();
    needs.retain(|n| !implied.contains(n));
    needs.sort_by_key(|a| position(a));
    needs
}

/// Every agent `agent` runs after, directly or not.
fn ancestors(agent: &str) -> BTreeSet<&'static str> {
    let mut found = BTreeSet::new();
    let mut pending: Vec<&'static str> = depends_on(agent).to_vec();
    while let Some(dependency) = pending.pop() {
        if found.insert(dependency) {
            pending.extend(depends_on(dependency));
        }
    }
    found
}

fn position(agent: &str) -> usize {
    ORDER.iter().position(|o| *o == agent).unwrap_or(usize::MAX)
}

/// Nouns the planner knows, with the fields such an entity plausibly has and the entities it
/// usually belongs to (a reference is added when the parent is planned too).
struct KnownEntity {
    singular: &'static str,
    fields: &'static [(&'static str, &'static str)],
    parents: &'static [&'static str],
}

// One row a line: a table reads better than rustfmt's one item a line.
#[rustfmt::skip]
const KNOWN_ENTITIES: &[KnownEntity] = &[
    known("product", &[("title", "string"), ("description", "text"), ("price", "number"), ("stock", "integer")], &["category"]),
    known("order", &[("status", "string"), ("total", "number"), ("ordered_on", "datetime")], &["customer", "member"]),
    known("customer", &[("name", "string"), ("email", "email"), ("phone", "string")], &[]),
    known("category", &[("name", "string"), ("description", "text")], &[]),
    known("post", &[("title", "string"), ("body", "text"), ("published", "boolean"), ("published_on", "datetime")], &["author"]),
    known("comment", &[("body", "text"), ("author_name", "string")], &["post", "article", "task", "ticket"]),
    known("article", &[("title", "string"), ("body", "text"), ("published_on", "datetime")], &["author"]),
    known("tag", &[("name", "string")], &[]),
    known("user", &[("name", "string"), ("email", "email")], &[]),
    known("author", &[("name", "string"), ("bio", "text")], &[]),
    known("book", &[("title", "string"), ("isbn", "string"), ("published_on", "date")], &["author"]),
    known("loan", &[("borrowed_on", "date"), ("due_on", "date"), ("returned_on", "date")], &["book", "member"]),
    known("member", &[("name", "string"), ("email", "email"), ("joined_on", "date")], &[]),
    known("todo", &[("title", "string"), ("done", "boolean"), ("due_on", "date")], &[]),
    known("task", &[("title", "string"), ("description", "text"), ("done", "boolean"), ("due_on", "date")], &["project"]),
    known("project", &[("name", "string"), ("description", "text")], &[]),
    known("invoice", &[("number", "string"), ("amount", "number"), ("issued_on", "date"), ("paid", "boolean")], &["customer", "client"]),
    known("client", &[("name", "string"), ("email", "email"), ("company", "string")], &[]),
    known("event", &[("title", "string"), ("starts_at", "datetime"), ("location", "string")], &[]),
    known("ticket", &[("title", "string"), ("description", "text"), ("status", "string"), ("priority", "integer")], &["event"]),
    known("message", &[("body", "text"), ("sent_at", "datetime")], &["conversation", "channel"]),
    known("conversation", &[("title", "string")], &[]),
    known("channel", &[("name", "string"), ("topic", "string")], &[]),
    known("note", &[("title", "string"), ("body", "text")], &[]),
    known("review", &[("rating", "integer"), ("body", "text")], &["product", "book", "recipe"]),
    known("employee", &[("name", "string"), ("email", "email"), ("position", "string"), ("hired_on", "date")], &["department"]),
    known("department", &[("name", "string")], &[]),
    known("course", &[("title", "string"), ("description", "text")], &[]),
    known("lesson", &[("title", "string"), ("body", "text"), ("position", "integer")], &["course"]),
    known("student", &[("name", "string"), ("email", "email")], &[]),
    known("recipe", &[("title", "string"), ("instructions", "text"), ("servings", "integer")], &[]),
    known("ingredient", &[("name", "string"), ("quantity", "string")], &["recipe"]),
    known("appointment", &[("starts_at", "datetime"), ("reason", "text")], &["patient", "doctor"]),
    known("patient", &[("name", "string"), ("born_on", "date"), ("email", "email")], &[]),
    known("doctor", &[("name", "string"), ("specialty", "string")], &[]),
    known("booking", &[("starts_on", "date"), ("ends_on", "date"), ("guests", "integer")], &["room", "customer"]),
    known("room", &[("number", "string"), ("capacity", "integer"), ("price", "number")], &[]),
    known("contact", &[("name", "string"), ("email", "email"), ("phone", "string")], &["company"]),
    known("company", &[("name", "string"), ("website", "url")], &[]),
    known("deal", &[("title", "string"), ("amount", "number"), ("stage", "string")], &["contact", "company"]),
    known("subscriber", &[("email", "email"), ("subscribed_on", "date")], &[]),
    known("expense", &[("description", "string"), ("amount", "number"), ("spent_on", "date")], &["category"]),
    known("habit", &[("name", "string"), ("target_per_week", "integer")], &[]),
    known("workout", &[("name", "string"), ("duration_minutes", "integer"), ("done_on", "date")], &[]),
    known("job", &[("title", "string"), ("description", "text"), ("salary", "number")], &["company"]),
    known("candidate", &[("name", "string"), ("email", "email"), ("resume_url", "url")], &["job"]),
    known("photo", &[("title", "string"), ("url", "url"), ("taken_on", "date")], &["album"]),
    known("album", &[("title", "string"), ("description", "text")], &[]),
    known("song", &[("title", "string"), ("duration_seconds", "integer")], &["album", "artist", "playlist"]),
    known("artist", &[("name", "string"), ("bio", "text")], &[]),
    known("playlist", &[("name", "string"), ("description", "text")], &[]),
    known("movie", &[("title", "string"), ("released_on", "date"), ("rating", "number")], &[]),
    known("property", &[("address", "string"), ("price", "number"), ("bedrooms", "integer")], &[]),
    known("vehicle", &[("make", "string"), ("model_name", "string"), ("year", "integer")], &[]),
    known("question", &[("title", "string"), ("body", "text")], &[]),
    known("answer", &[("body", "text"), ("accepted", "boolean")], &["question"]),
    known("item", &[("name", "string"), ("description", "text"), ("price", "number")], &[]),
];

const fn known(
    singular: &'static str,
    fields: &'static [(&'static str, &'static str)],
    parents: &'static [&'static str],
) -> KnownEntity {
    KnownEntity {
        singular,
        fields,
        parents,
    }
}

/// The fields of an entity the planner does not know.
const GENERIC_FIELDS: &[(&str, &str)] = &[("name", "string"), ("description", "text")];

/// Words that open a list of entities ("a shop with products, orders and customers").
const LIST_OPENERS: &[&str] = &[
    "with", "of", "for", "manage", "manages", "managing", "track", "tracks", "tracking", "storing",
    "listing", "has", "have", "having",
];

/// Words a list of entities goes on across.
const LIST_JOINERS: &[&str] = &["and", "or", "&", "plus", "also"];

/// Words that are never entities, though they may sit in a list of them.
// One row a line: a table reads better than rustfmt's one item a line.
#[rustfmt::skip]
const NOT_ENTITIES: &[&str] = &[
    "a", "an", "the", "my", "our", "your", "their", "its", "some", "all", "each", "every", "many",
    "multiple", "several", "simple", "basic", "small", "new", "modern", "nice", "clean", "full",
    "real", "online", "own", "to", "in", "on", "by", "at", "from", "into", "that", "which", "who",
    "where", "when", "so", "as", "it", "them", "they", "is", "are", "be", "can", "should", "will",
    "me", "us", "i", "we", "you", "please", "build", "create", "make", "generate", "write", "want",
    "need", "needs", "like", "support", "supports", "features", "feature", "things", "stuff",
    "data", "info", "information", "details", "way", "ways", "one", "two", "three", "lot", "lots",
    "people", "everything", "anything", "other", "others", "more", "up", "out", "page", "pages",
    "form", "forms", "service", "services", "system", "systems", "tool", "tools", "mobile",
    "react", "next", "nextjs", "python", "fastapi", "rust", "node", "vue", "tailwind",
    "typescript", "javascript", "dark", "mode", "theme", "responsive", "fast", "easy", "good",
    "great", "home", "landing", "homepage", "belong", "belongs", "per", "using", "via", "web",
    "very", "only", "just", "then", "plus", "there", "here", "this",
];

/// The largest number of words a list may hold before it is taken for prose, not a list.
const MAX_LIST_WORDS: usize = 30;

#[derive(Deserialize)]
pub(super) struct PlanInput {
    pub goal: String,
    #[serde(default)]
    pub project_name: Option<String>,
}

/// An entity as the builders take it.
pub(super) struct Entity {
    pub name: String,
    pub singular: String,
    pub fields: Vec<Value>,
}

/// What a plan is made of: the features the request asks for, the agents chosen with why, and
/// the entities, read from the request by rules or proposed by a model
/// ([`model_planner`](super::model_planner)).
pub(super) struct Reading {
    pub features: Vec<&'static str>,
    pub chosen: Vec<&'static str>,
    pub reasons: Reasons,
    pub entities: Vec<Entity>,
    /// Whether the request (or the model) named the entities, rather than one standing in.
    pub named: bool,
}

/// The planner's input, checked.
pub(super) fn plan_input(input: &Value) -> Result<PlanInput, AgentError> {
    parse(input)
}

pub fn plan(input: &Value) -> Result<Value, AgentError> {
    let input = plan_input(input)?;
    let reading = read(&input.goal)?;
    Ok(assemble(&input, reading, "rules"))
}

/// The request read by the rules.
fn read(goal: &str) -> Result<Reading, AgentError> {
    let goal = goal.to_lowercase();
    let words = words_of(&goal);
    let (features, mut chosen, mut reasons) = intents(&goal, &words);
    let builder_features = builder_features(&features);
    let (entities, named) = entities(&words, &builder_features);
    // Entities to store, or a feature the project builders write, make a project: when the
    // request asks for no database or backend, the whole app is planned around them.
    let stores_data = ["db_schema", "backend_builder"]
        .iter()
        .any(|a| chosen.contains(a));
    if !stores_data && (named || !builder_features.is_empty()) {
        let why = if named {
            "the goal names entities to store: an app is planned around them"
        } else {
            "the goal asks for features the app's backend carries"
        };
        for agent in PROJECT_AGENTS {
            if !chosen.contains(agent) {
                chosen.push(agent);
                reasons.insert(agent, why.to_owned());
            }
        }
    }
    if chosen.is_empty() {
        return Err(AgentError::InvalidInput("the goal names nothing this platform builds: mention an app, API, frontend, tests, deployment, docs or launch".to_owned()));
    }
    Ok(Reading {
        features,
        chosen,
        reasons,
        entities,
        named,
    })
}

/// The features among `features` the project builders write.
pub(super) fn builder_features(features: &[&str]) -> Vec<&'static str> {
    FEATURES
        .iter()
        .copied()
        .filter(|f| features.contains(f))
        .collect()
}

/// The plan of `reading`: the agents in order with their needs, the chain running them, its
/// input and the analysis; `planned_by` says whose reading it is (`rules` or `model`).
pub(super) fn assemble(input: &PlanInput, reading: Reading, planned_by: &str) -> Value {
    let Reading {
        features,
        mut chosen,
        reasons,
        entities,
        named,
    } = reading;
    chosen.sort_by_key(|a| position(a));
    let builder_features = builder_features(&features);
    let lowered = input.goal.to_lowercase();
    let words = words_of(&lowered);
    let project_name = match input.project_name.as_deref().map(str::trim) {
        Some(given) if !given.is_empty() => given.chars().take(MAX_PROJECT_NAME_CHARS).collect(),
        _ => project_slug(&words),
    };
    let description: String = input
        .goal
        .trim()
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    let entities_json: Vec<Value> = entities
        .iter()
        .map(|e| json!({"name": e.name, "fields": e.fields}))
        .collect();
    let steps: Vec<Value> = chosen
        .iter()
        .map(|agent| {
            json!({"id": agent, "agent": agent, "needs": planned_needs(agent, &chosen), "why": reasons[*agent]})
        })
        .collect();
    let domain = words.iter().find(|w| looks_like_domain(w)).copied();
    // A page about the project is found by its name and by the things it holds.
    let keywords: Vec<String> = entities
        .iter()
        .filter(|_| named)
        .map(|e| e.singular.clone())
        .chain([project_name.clone()])
        .collect();
    let (chain, unchained) = chain(&chosen, &project_name, &keywords, domain);
    let analysis = json!({
        "agent_count": chain["steps"].as_array().map_or(0, Vec::len),
        "chain_type": chain_type(&chain),
        "estimated_complexity": complexity(chosen.len(), entities.len(), &builder_features),
        "identified_entities": entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        "identified_requirements": features,
    });
    json!({
        "goal": input.goal,
        "steps": steps,
        "agents": chosen.len(),
        "project_name": project_name,
        "entities": entities_json,
        "features": features,
        "analysis": analysis,
        "chain": chain,
        "input": {
            "project_name": project_name,
            "description": description,
            "entities": entities_json,
            "features": builder_features,
        },
        "not_in_chain": unchained,
        "planned_by": planned_by,
    })
}

fn words_of(goal: &str) -> Vec<&str> {
    goal.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')' | '!' | '?' | '"' | '/')
    })
    .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
    .filter(|w| !w.is_empty())
    .collect()
}

pub(super) type Reasons = BTreeMap<&'static str, String>;

/// The features a request asks for and the agents they call for, each with why.
fn intents(goal: &str, words: &[&str]) -> (Vec<&'static str>, Vec<&'static str>, Reasons) {
    let mut features = Vec::new();
    let mut chosen: Vec<&'static str> = Vec::new();
    let mut reasons = Reasons::new();
    for intent in INTENTS {
        let hit = intent.triggers.iter().find(|t| {
            if t.contains(' ') {
                goal.contains(*t)
            } else {
                words.contains(t)
            }
        });
        if let Some(trigger) = hit {
            features.push(intent.feature);
            for agent in intent.agents {
                if !chosen.contains(agent) {
                    chosen.push(agent);
                    reasons.insert(*agent, format!("the goal mentions {trigger:?}"));
                }
            }
        }
    }
    // Roles are checked against the users auth creates: the builders refuse roles without auth.
    if features.contains(&"roles") && !features.contains(&"auth") {
        features.push("auth");
    }
    (features, chosen, reasons)
}

/// The entities a request names, with their fields and relations: at most [`MAX_ENTITIES`],
/// and always one, as the builders need one; and whether the request named any.
fn entities(words: &[&str], features: &[&str]) -> (Vec<Entity>, bool) {
    let mut found: Vec<Entity> = Vec::new();
    let said = said_relations(words);
    let mut candidates = nouns(words);
    for (child, parent) in &said {
        candidates.extend([*parent, *child]);
    }
    for noun in candidates {
        let Some(singular) = singular(noun) else {
            continue;
        };
        // Auth writes the users table and payments the payments routes: the builders refuse
        // entities of those names beside those features.
        if (singular == "user" && features.contains(&"auth"))
            || (singular == "payment" && features.contains(&"payments"))
        {
            continue;
        }
        if found.len() == MAX_ENTITIES || found.iter().any(|e| e.singular == singular) {
            continue;
        }
        let fields = fields_of(&singular);
        found.push(Entity {
            name: pascal(&singular),
            singular,
            fields,
        });
    }
    let named = !found.is_empty();
    if !named {
        found.push(Entity {
            name: "Item".to_owned(),
            singular: "item".to_owned(),
            fields: fields_of("item"),
        });
    }
    let mut relations: Vec<(String, String)> = said
        .iter()
        .filter_map(|(child, parent)| Some((singular(child)?, singular(parent)?)))
        .collect();
    for entity in &found {
        if let Some(known) = KNOWN_ENTITIES
            .iter()
            .find(|k| k.singular == entity.singular)
        {
            for parent in known.parents {
                relations.push((entity.singular.clone(), (*parent).to_owned()));
            }
        }
    }
    for (child, parent) in relations {
        if child == parent || !found.iter().any(|e| e.singular == parent) {
            continue;
        }
        let column = format!("{parent}_id");
        // `model_id` would clash with the names the generated models keep for themselves.
        if column.starts_with("model_") || RESERVED_FIELDS.contains(&column.as_str()) {
            continue;
        }
        let parent_name = pascal(&parent);
        if let Some(entity) = found.iter_mut().find(|e| e.singular == child)
            && !entity.fields.iter().any(|f| f["name"] == column)
        {
            entity
                .fields
                .push(json!({"name": column, "type": "reference", "entity": parent_name}));
        }
    }
    (found, named)
}

/// The fields an entity of this name gets: the known ones, else [`GENERIC_FIELDS`].
fn fields_of(singular: &str) -> Vec<Value> {
    KNOWN_ENTITIES
        .iter()
        .find(|k| k.singular == singular)
        .map_or(GENERIC_FIELDS, |k| k.fields)
        .iter()
        .map(|(name, kind)| json!({"name": name, "type": kind}))
        .collect()
}

/// Candidate nouns: the words of lists ("with X, Y and Z", "X/Y/Z") and known nouns anywhere.
fn nouns<'a>(words: &[&'a str]) -> Vec<&'a str> {
    let mut nouns = Vec::new();
    let mut in_list = 0;
    for (i, word) in words.iter().enumerate() {
        if LIST_OPENERS.contains(word) {
            in_list = MAX_LIST_WORDS;
            continue;
        }
        let known = singular(word).is_some_and(|s| KNOWN_ENTITIES.iter().any(|k| k.singular == s));
        // A known noun counts anywhere, but not where it is a verb or an idiom ("in order to",
        // "post a message"): it must be plural, or name the thing the request builds.
        let plural_or_subject = word.ends_with('s')
            || words.get(i + 1).is_some_and(|next| {
                matches!(
                    *next,
                    "app"
                        | "tracker"
                        | "manager"
                        | "list"
                        | "api"
                        | "board"
                        | "shop"
                        | "store"
                        | "site"
                        | "catalog"
                        | "catalogue"
                        | "system"
                        | "platform"
                )
            });
        let listed = in_list > 0 && plural_looking(word);
        let trigger = INTENTS.iter().any(|i| i.triggers.contains(word));
        if (known && (plural_or_subject || (in_list > 0 && !trigger))) || listed {
            nouns.push(*word);
        }
        if in_list > 0 && !LIST_JOINERS.contains(word) {
            in_list -= 1;
        }
    }
    nouns
}

/// Whether an unknown word in a list may be an entity: a plural noun that is no feature word.
fn plural_looking(word: &str) -> bool {
    word.len() > 3
        && word.ends_with('s')
        && !word.ends_with("ss")
        && word.chars().all(|c| c.is_ascii_alphabetic())
        && !NOT_ENTITIES.contains(&word)
        && !INTENTS.iter().any(|i| i.triggers.contains(&word))
}

/// Relations the request states, as (child, parent) words: "comments belong to posts",
/// "posts have many comments".
fn said_relations<'a>(words: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut relations = Vec::new();
    for i in 1..words.len().saturating_sub(2) {
        let (before, link, after) = (words[i - 1], (words[i], words[i + 1]), words[i + 2]);
        match link {
            ("belong" | "belongs", "to") => relations.push((before, after)),
            ("have" | "has", "many") => relations.push((after, before)),
            _ => {}
        }
    }
    relations
}

/// The singular of an English noun, lowercase, if the word can name an entity.
fn singular(word: &str) -> Option<String> {
    let word = word.to_ascii_lowercase();
    if word.len() < 2
        || word.len() > MAX_NOUN_CHARS
        || !word.starts_with(|c: char| c.is_ascii_alphabetic())
        || !word.chars().all(|c| c.is_ascii_alphanumeric())
        || NOT_ENTITIES.contains(&word.as_str())
    {
        return None;
    }
    let irregular = match word.as_str() {
        "people" => Some("person"),
        "children" => Some("child"),
        "men" => Some("man"),
        "women" => Some("woman"),
        "categories" => Some("category"),
        "properties" => Some("property"),
        "companies" => Some("company"),
        "todos" => Some("todo"),
        "status" | "news" | "series" | "address" | "class" | "business" => Some(word.as_str()),
        _ => None,
    };
    if let Some(found) = irregular {
        return Some(found.to_owned());
    }
    let stem = if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if ["sses", "xes", "ches", "shes", "zes"]
        .iter()
        .any(|s| word.ends_with(s))
    {
        word[..word.len() - 2].to_owned()
    } else if word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
    {
        word[..word.len() - 1].to_owned()
    } else {
        word
    };
    Some(stem)
}

fn pascal(singular: &str) -> String {
    let mut chars = singular.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// A short name from the words before the first list: "a todo app with CI" -> "todo-app".
fn project_slug(words: &[&str]) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for word in words {
        if LIST_OPENERS.contains(word) || matches!(*word, "that" | "which" | "where" | "to" | "so")
        {
            if parts.is_empty() {
                continue;
            }
            break;
        }
        let filler = NOT_ENTITIES.contains(word) || LIST_JOINERS.contains(word) || *word == "set";
        if filler && !matches!(*word, "landing" | "page" | "web") {
            continue;
        }
        if parts.len() == 3 {
            break;
        }
        parts.push(word);
    }
    let mut name = slug(&parts.join(" "));
    name.truncate(MAX_SLUG_CHARS);
    let name = name.trim_end_matches('-').to_owned();
    if name.is_empty() {
        "project".to_owned()
    } else {
        name
    }
}

/// Whether a word is a domain name ("shop.example.com"), not a file or a framework ("next.js").
fn looks_like_domain(word: &str) -> bool {
    const NOT_TLDS: &[&str] = &[
        "js", "ts", "py", "rs", "md", "json", "yaml", "yml", "toml", "txt", "sh", "sql",
    ];
    let labels: Vec<&str> = word.split('.').collect();
    labels.len() >= 2
        && labels.last().is_some_and(|tld| !NOT_TLDS.contains(tld))
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

/// A host name label for the project: its slug, at most 63 characters, "app" when none is left.
fn host_label(project_name: &str) -> String {
    let mut label = slug(project_name);
    label.truncate(63);
    let label = label.trim_end_matches('-');
    if label.is_empty() {
        "app".to_owned()
    } else {
        label.to_owned()
    }
}

/// The chain running the planned agents, each given what it takes, and the agents left out
/// with why: the reviewers take code the request does not hold, the domain linker a domain.
fn chain(
    chosen: &[&'static str],
    project_name: &str,
    keywords: &[String],
    domain: Option<&str>,
) -> (Value, Vec<Value>) {
    let mut unchained = Vec::new();
    let runnable: Vec<&'static str> = chosen
        .iter()
        .copied()
        .filter(|agent| {
            let reason = match *agent {
                "critic" | "security_scanner" => Some(
                    "it reviews code given to it: run it on the generated files once they exist",
                ),
                "domain_linker" if domain.is_none() => Some(
                    "it needs the domain to link: name it in the request (e.g. shop.example.com)",
                ),
                _ => None,
            };
            if let Some(reason) = reason {
                unchained.push(json!({"agent": agent, "why": reason}));
            }
            reason.is_none()
        })
        .collect();
    let project = json!({
        "project_name": "${input.project_name}",
        "description": "${input.description}",
        "entities": "${input.entities}",
        "features": "${input.features}",
    });
    let steps: Vec<Value> = runnable
        .iter()
        .map(|agent| {
            let input = match *agent {
                "domain_linker" => json!({
                    "domain": domain.unwrap_or_default(),
                    "target": format!("{}.{}", host_label(project_name), domain.unwrap_or_default()),
                }),
                "seo_optimizer" => json!({
                    "content": "${input.description}",
                    "keywords": keywords,
                }),
                "product_hunt_copywriter" => json!({
                    "product_name": "${input.project_name}",
                    "description": "${input.description}",
                }),
                "pitch_deck_generator" => json!({
                    "company": "${input.project_name}",
                    "problem": format!("People who need {project_name} have no simple tool for it."),
                    "solution": "${input.description}",
                }),
                _ => project.clone(),
            };
            json!({
                "id": agent,
                "agent": agent,
                "needs": planned_needs(agent, &runnable),
                "input": input,
            })
        })
        .collect();
    let chain = json!({
        "name": format!("{project_name} plan").chars().take(100).collect::<String>(),
        "description": "Planned from a request by the planner agent.",
        "steps": steps,
    });
    (chain, unchained)
}

/// `sequential` when each step needs only the one before it, `parallel` when none needs
/// another, `dag` otherwise.
fn chain_type(chain: &Value) -> &'static str {
    let steps = chain["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let needs: Vec<Vec<&str>> = steps
        .iter()
        .map(|s| {
            s["needs"]
                .as_array()
                .map(|n| n.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        })
        .collect();
    if needs.iter().all(Vec::is_empty) {
        return if steps.len() > 1 {
            "parallel"
        } else {
            "sequential"
        };
    }
    let line = steps.iter().enumerate().all(|(i, _)| match i {
        0 => needs[0].is_empty(),
        _ => needs[i].len() == 1 && Some(needs[i][0]) == steps[i - 1]["id"].as_str(),
    });
    if line { "sequential" } else { "dag" }
}

/// `low` up to 4 agents and 3 entities with no auth or payments; `high` from 12 agents, 8
/// entities, or auth and payments together; `medium` between.
fn complexity(agents: usize, entities: usize, features: &[&str]) -> &'static str {
    let sensitive = features
        .iter()
        .filter(|f| matches!(**f, "auth" | "payments"))
        .count();
    if agents >= 12 || entities >= 8 || sensitive == 2 {
        "high"
    } else if agents <= 4 && entities <= 3 && sensitive == 0 {
        "low"
    } else {
        "medium"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sankalpa_chain_orchestrator::definition;
    use sankalpa_kit::schema::Schema;

    const CATALOG: &str = include_str!("../../../../catalog/agents.json");

    fn catalog_entry(agent: &str) -> Value {
        let catalog: Value = serde_json::from_str(CATALOG).expect("the catalog is JSON");
        catalog["agents"]
            .as_array()
            .expect("the catalog lists agents")
            .iter()
            .find(|a| a["name"] == agent)
            .cloned()
            .unwrap_or_else(|| panic!("{agent} is not in catalog/agents.json"))
    }

    fn schema_problems(schema: &Value, document: &Value) -> Vec<String> {
        Schema::compile(schema, "schema")
            .expect("the catalog's schemas compile")
            .validate(document, "input")
            .into_iter()
            .map(|v| v.to_string())
            .collect()
    }

    /// The plan of `goal`, checked as the platform would: the output against the planner's
    /// output schema, the chain by the orchestrator's parser, each step's agent in the catalog
    /// and each step's input, rendered by the orchestrator from the plan's input, against that
    /// agent's input schema.
    fn checked_plan(goal: &str) -> Value {
        checked(
            goal,
            plan(&json!({"goal": goal})).unwrap_or_else(|e| panic!("{goal}: {e}")),
        )
    }

    /// `plan` (of `goal`), checked as [`checked_plan`] says.
    fn checked(goal: &str, plan: Value) -> Value {
        let problems = schema_problems(&catalog_entry("planner")["output_schema"], &plan);
        assert!(problems.is_empty(), "{goal}: {problems:?}");
        let chain = definition::parse(&plan["chain"].to_string()).unwrap_or_else(|problems| {
            panic!("{goal}: the orchestrator refuses the chain: {problems:?}")
        });
        let scope = json!({"input": plan["input"], "steps": {}});
        for step in &chain.steps {
            let agent = step.agent().expect("every planned step runs an agent");
            let mapping = &plan["chain"]["steps"]
                .as_array()
                .and_then(|steps| steps.iter().find(|s| s["id"] == step.id.as_str()))
                .expect("the step is in the plan")["input"];
            let Ok(input) = definition::render_mapping(mapping, &scope, 1 << 20) else {
                panic!("{goal}: {agent}'s mapping does not render");
            };
            let problems = schema_problems(&catalog_entry(agent)["input_schema"], &input);
            assert!(
                problems.is_empty(),
                "{goal}: {agent} would refuse {input}: {problems:?}"
            );
        }
        assert_eq!(plan["analysis"]["agent_count"], chain.steps.len());
        plan
    }

    #[test]
    fn a_model_s_checked_reading_becomes_a_plan_the_platform_takes() {
        let input = PlanInput {
            goal: "somewhere to book live music nights, with login".to_owned(),
            project_name: Some("Gig Night".to_owned()),
        };
        let answer = r#"{"agents": [{"agent": "frontend_builder"}, {"agent": "db_schema"},
            {"agent": "auth_builder"}, {"agent": "test_suite"}, {"agent": "readme_writer"}],
          "features": ["app", "auth"],
          "entities": [{"name": "Venue", "fields": [{"name": "title", "type": "string"}]},
            {"name": "Gig", "fields": [{"name": "venue", "type": "reference", "entity": "Venue"},
              {"name": "price", "type": "number"}, {"name": "starts_at", "type": "datetime"}]}]}"#;
        let Ok(reading) = super::super::model_planner::reading(&input, answer) else {
            panic!("the answer is refused");
        };
        let plan = checked(&input.goal, assemble(&input, reading, "model"));
        assert_eq!(
            agents_of(&plan),
            [
                "db_schema",
                "auth_builder",
                "frontend_builder",
                "test_suite",
                "readme_writer"
            ]
        );
        assert_eq!(plan["input"]["features"], json!(["auth"]));
        assert_eq!(plan["planned_by"], "model");
    }

    fn agents_of(plan: &Value) -> Vec<&str> {
        plan["chain"]["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["agent"].as_str())
            .collect()
    }

    fn entity<'a>(plan: &'a Value, name: &str) -> &'a Value {
        plan["entities"]
            .as_array()
            .and_then(|all| all.iter().find(|e| e["name"] == name))
            .unwrap_or_else(|| panic!("no {name} in {}", plan["entities"]))
    }

    fn assert_has_field(plan: &Value, name: &str, field: Value) {
        let fields = &entity(plan, name)["fields"];
        assert!(
            fields.as_array().is_some_and(|all| all.contains(&field)),
            "{name} has no {field}: {fields}"
        );
    }

    #[test]
    fn varied_requests_become_valid_plans_with_the_agents_and_entities_they_imply() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "A shop with products, orders and customers",
                &[
                    "project_architect",
                    "db_schema",
                    "backend_builder",
                    "api_builder",
                    "frontend_builder",
                ],
                &["Product", "Order", "Customer"],
            ),
            (
                "A blog with posts and comments and login",
                &["auth_builder", "markdown_editor", "db_schema"],
                &["Post", "Comment"],
            ),
            (
                "A todo app with CI and deploy",
                &[
                    "project_architect",
                    "ci_generator",
                    "deploy_executor",
                    "test_suite",
                ],
                &["Todo"],
            ),
            (
                "A SaaS with payments and email for teams and projects",
                &["stripe_payment", "email_system", "backend_builder"],
                &["Team", "Project"],
            ),
            (
                "A REST API for a library with books/authors/loans",
                &["db_schema", "backend_builder", "api_builder"],
                &["Book", "Author", "Loan"],
            ),
            (
                "A landing page website with SEO and a pitch deck for investors",
                &["frontend_builder", "seo_optimizer", "pitch_deck_generator"],
                &[],
            ),
            (
                "Build a CRM to manage contacts, companies and deals, with admin roles",
                &["auth_builder", "role_auth", "api_builder"],
                &["Contact", "Company", "Deal"],
            ),
            (
                "An expense tracker app with categories and expenses, tested with pytest",
                &["test_suite", "integration_test", "db_schema"],
                &["Category", "Expense"],
            ),
            (
                "A recipe site with recipes, ingredients and reviews, plus a README",
                &["frontend_builder", "readme_writer"],
                &["Recipe", "Ingredient", "Review"],
            ),
            (
                "Backend for a clinic: patients, doctors and appointments, deployed with Docker",
                &["backend_builder", "api_builder", "deploy_executor"],
                &["Patient", "Doctor", "Appointment"],
            ),
            (
                "A hotel booking platform with rooms, bookings and guests, Stripe checkout and email confirmations",
                &["stripe_payment", "email_system", "frontend_builder"],
                &["Room", "Booking", "Guest"],
            ),
            (
                "An online course platform with courses, lessons and students; users sign up and log in",
                &["auth_builder", "ui_generator"],
                &["Course", "Lesson", "Student"],
            ),
            (
                "A project management app with projects and tasks, GitHub Actions CI and a Product Hunt launch",
                &["ci_generator", "product_hunt_copywriter"],
                &["Project", "Task"],
            ),
            (
                "A job board with jobs, candidates and companies, deployed to Kubernetes at jobs.example.com domain",
                &["deploy_executor", "domain_linker"],
                &["Job", "Candidate", "Company"],
            ),
            (
                "A notes app with markdown notes and tags",
                &["markdown_editor", "frontend_builder"],
                &["Note", "Tag"],
            ),
            (
                "A newsletter service with subscribers and issues, sending emails",
                &["email_system"],
                &["Subscriber", "Issue"],
            ),
            (
                "A PostgreSQL database schema for an inventory of warehouses and items",
                &["db_schema"],
                &["Warehouse", "Item"],
            ),
            (
                "A music app with artists, albums, songs and playlists, with a dashboard",
                &["frontend_builder", "ui_generator", "api_builder"],
                &["Artist", "Album", "Song", "Playlist"],
            ),
            (
                "A Q&A forum app where questions have many answers, with accounts and permissions",
                &["auth_builder", "role_auth"],
                &["Question", "Answer"],
            ),
            (
                "An event ticketing app with events and tickets, billing via Stripe, tests, CI, docs and deployment",
                &[
                    "stripe_payment",
                    "test_suite",
                    "ci_generator",
                    "readme_writer",
                    "deploy_executor",
                ],
                &["Event", "Ticket"],
            ),
            (
                "A fitness tracker with workouts and habits, a web dashboard and a pitch deck",
                &["frontend_builder", "pitch_deck_generator"],
                &["Workout", "Habit"],
            ),
            (
                "An HR app for employees and departments with secure login",
                &["auth_builder", "project_architect"],
                &["Employee", "Department"],
            ),
        ];
        for (goal, agents, entities) in cases {
            let plan = checked_plan(goal);
            let planned = agents_of(&plan);
            for agent in *agents {
                assert!(
                    planned.contains(agent),
                    "{goal}: {agent} missing from {planned:?}"
                );
            }
            let named: Vec<&str> = plan["analysis"]["identified_entities"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for name in *entities {
                assert!(
                    named.contains(name),
                    "{goal}: {name} missing from {named:?}"
                );
            }
        }
    }

    #[test]
    fn known_entities_get_plausible_fields_and_unknown_ones_generic_fields() {
        let plan = checked_plan("A shop with products, orders and customers");
        assert_has_field(&plan, "Product", json!({"name": "price", "type": "number"}));
        assert_eq!(
            entity(&plan, "Order")["fields"].as_array().unwrap().last(),
            Some(&json!({"name": "customer_id", "type": "reference", "entity": "Customer"}))
        );
        let plan = checked_plan("An app to track gadgets and widgets");
        assert_eq!(
            entity(&plan, "Gadget")["fields"],
            json!([{"name": "name", "type": "string"}, {"name": "description", "type": "text"}])
        );
        assert_eq!(entity(&plan, "Widget")["name"], "Widget");
    }

    #[test]
    fn stated_relations_become_references() {
        let plan = checked_plan("A forum app with threads and replies; replies belong to threads");
        assert_has_field(
            &plan,
            "Reply",
            json!({"name": "thread_id", "type": "reference", "entity": "Thread"}),
        );
        let plan = checked_plan("A blog app with posts and comments");
        assert_has_field(
            &plan,
            "Comment",
            json!({"name": "post_id", "type": "reference", "entity": "Post"}),
        );
        let plan = checked_plan("An app where galleries have many pictures");
        assert_has_field(
            &plan,
            "Picture",
            json!({"name": "gallery_id", "type": "reference", "entity": "Gallery"}),
        );
    }

    #[test]
    fn entities_are_singular_pascal_case_deduplicated_and_bounded() {
        let plan =
            checked_plan("An app with categories, boxes, Categories, category and addresses");
        assert_eq!(
            plan["analysis"]["identified_entities"],
            json!(["Category", "Box", "Address"])
        );
        let many: Vec<String> = (0..30)
            .map(|i| format!("things{}s", "x".repeat(i % 5 + 1) + &"y".repeat(i / 5)))
            .collect();
        let plan = checked_plan(&format!("An app with {}", many.join(", ")));
        assert_eq!(plan["entities"].as_array().unwrap().len(), MAX_ENTITIES);
        let long = format!("{}s", "w".repeat(MAX_NOUN_CHARS));
        let plan = checked_plan(&format!(
            "An app with {long} and models; parts belong to models"
        ));
        assert_eq!(
            plan["analysis"]["identified_entities"],
            json!(["Model", "Part"]),
            "a word too long for a name is no entity"
        );
        assert_eq!(
            entity(&plan, "Part")["fields"],
            json!([{"name": "name", "type": "string"}, {"name": "description", "type": "text"}]),
            "model_id would clash with the generated models' names"
        );
    }

    #[test]
    fn features_leave_out_entities_their_builders_generate() {
        let plan = checked_plan("A shop with users, products and payments, with login");
        let named = &plan["analysis"]["identified_entities"];
        assert_eq!(
            named,
            &json!(["Product"]),
            "auth writes users, payments its routes"
        );
        assert_eq!(plan["input"]["features"], json!(["auth", "payments"]));
        let plan = checked_plan("An admin dashboard with roles for products");
        assert_eq!(plan["input"]["features"], json!(["auth", "roles"]));
    }

    #[test]
    fn a_request_naming_no_entity_still_gets_one_to_build() {
        let plan = checked_plan("A SaaS with payments and email");
        assert_eq!(plan["analysis"]["identified_entities"], json!(["Item"]));
    }

    #[test]
    fn the_project_name_is_a_short_slug_of_the_request_unless_given() {
        assert_eq!(
            checked_plan("A todo app with CI")["project_name"],
            "todo-app"
        );
        assert_eq!(
            checked_plan("Build me a pet shop with pets")["project_name"],
            "pet-shop"
        );
        let plan = plan(&json!({"goal": "A todo app", "project_name": "Chores"})).unwrap();
        assert_eq!(plan["project_name"], "Chores");
        assert_eq!(plan["input"]["project_name"], "Chores");
    }

    #[test]
    fn steps_need_what_they_read_even_through_agents_left_out() {
        let plan = checked_plan("A REST API with tests");
        let tests = plan["chain"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["agent"] == "test_suite")
            .unwrap();
        assert_eq!(tests["needs"], json!(["api_builder"]));
        let plan = checked_plan("Deploy the docs with SEO");
        assert_eq!(
            plan["chain"]["steps"],
            json!([
                {"id": "readme_writer", "agent": "readme_writer", "needs": [], "input": {"project_name": "${input.project_name}", "description": "${input.description}", "entities": "${input.entities}", "features": "${input.features}"}},
                {"id": "deploy_executor", "agent": "deploy_executor", "needs": [], "input": {"project_name": "${input.project_name}", "description": "${input.description}", "entities": "${input.entities}", "features": "${input.features}"}},
                {"id": "seo_optimizer", "agent": "seo_optimizer", "needs": ["readme_writer"], "input": {"content": "${input.description}", "keywords": ["deploy-docs"]}}
            ])
        );
        assert_eq!(plan["analysis"]["chain_type"], "dag");
    }

    #[test]
    fn reviewers_and_a_domain_linker_without_a_domain_stay_out_of_the_chain_with_why() {
        let plan = checked_plan("A secure API, reviewed, on its own domain");
        let planned = agents_of(&plan);
        assert!(!planned.contains(&"critic") && !planned.contains(&"security_scanner"));
        assert!(!planned.contains(&"domain_linker"));
        let left: Vec<&Value> = plan["not_in_chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["agent"])
            .collect();
        assert_eq!(
            left,
            [
                &json!("security_scanner"),
                &json!("critic"),
                &json!("domain_linker")
            ]
        );
        assert!(agents_of(&plan).contains(&"api_builder"));
    }

    #[test]
    fn a_domain_in_the_request_is_linked_to_the_deployment() {
        let plan = plan(&json!({
            "goal": "Deploy a shop with products on shop.example.com, with its domain and DNS",
            "project_name": "My Shop",
        }))
        .unwrap();
        let linker = plan["chain"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["agent"] == "domain_linker")
            .unwrap_or_else(|| panic!("no domain_linker in {}", plan["chain"]));
        assert_eq!(
            linker["input"],
            json!({"domain": "shop.example.com", "target": "my-shop.shop.example.com"})
        );
        assert_eq!(linker["needs"], json!(["deploy_executor"]));
        let plan = checked_plan("Deploy my next.js app to my domain");
        assert!(
            !agents_of(&plan).contains(&"domain_linker"),
            "next.js is no domain"
        );
    }

    #[test]
    fn chain_type_and_complexity_follow_their_documented_rules() {
        let plan = checked_plan("Write a README");
        assert_eq!(plan["analysis"]["chain_type"], "sequential");
        assert_eq!(plan["analysis"]["estimated_complexity"], "low");
        let plan = checked_plan("A README and a pitch deck");
        assert_eq!(plan["analysis"]["chain_type"], "sequential");
        let plan = checked_plan("Investors pitch and a Product Hunt launch");
        assert_eq!(plan["analysis"]["chain_type"], "parallel");
        let plan = checked_plan("A shop with products, with login and Stripe payments");
        assert_eq!(plan["analysis"]["chain_type"], "dag");
        assert_eq!(plan["analysis"]["estimated_complexity"], "high");
        let plan = checked_plan("A blog with posts");
        assert_eq!(plan["analysis"]["estimated_complexity"], "medium");
    }

    #[test]
    fn a_request_naming_nothing_buildable_is_refused() {
        assert!(matches!(
            plan(&json!({"goal": "hello there"})),
            Err(AgentError::InvalidInput(_))
        ));
    }
}
