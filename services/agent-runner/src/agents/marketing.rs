//! The marketing agents: seo_optimizer (audits a page and writes its meta tags and robots.txt),
//! product_hunt_copywriter (launch copy within Product Hunt's limits) and pitch_deck_generator
//! (a ten-slide deck in Markdown, naming what is missing).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AgentError, Context, parse};

#[derive(Deserialize)]
struct SeoInput {
    content: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
}

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").expect("a valid pattern"));
static TITLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<title>(.*?)</title>").expect("a valid pattern"));
static META_DESCRIPTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)<meta\s+name=["']description["']\s+content=["']([^"']*)["']"#)
        .expect("a valid pattern")
});
static H1: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<h1[^>]*>(.*?)</h1>").expect("a valid pattern"));
static IMG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<img\b[^>]*>").expect("a valid pattern"));

fn text_of(html: &str) -> String {
    TAG.replace_all(html, " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` characters, cut at a word boundary.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > max.saturating_sub(1) {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('…');
    out
}

fn escape_attr(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

pub fn seo(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: SeoInput = parse(input)?;
    let body = text_of(&input.content);
    let words: Vec<String> = body
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let mut issues = Vec::new();
    let mut issue =
        |rule: &str, message: String| issues.push(json!({"rule": rule, "message": message}));
    let title = TITLE.captures(&input.content).map(|c| text_of(&c[1]));
    match &title {
        None => issue("missing_title", "the page has no <title>".to_owned()),
        Some(t) if !(30..=60).contains(&t.chars().count()) => issue(
            "title_length",
            format!(
                "the title is {} characters; 30 to 60 show fully in results",
                t.chars().count()
            ),
        ),
        Some(_) => {}
    }
    let description = META_DESCRIPTION
        .captures(&input.content)
        .map(|c| c[1].to_owned());
    match &description {
        None => issue(
            "missing_description",
            "the page has no meta description".to_owned(),
        ),
        Some(d) if !(70..=160).contains(&d.chars().count()) => issue(
            "description_length",
            format!(
                "the meta description is {} characters; aim for 70 to 160",
                d.chars().count()
            ),
        ),
        Some(_) => {}
    }
    let h1s = H1.find_iter(&input.content).count();
    if h1s != 1 {
        issue(
            "h1_count",
            format!("the page has {h1s} <h1> headings; it should have one"),
        );
    }
    let missing_alt = IMG
        .find_iter(&input.content)
        .filter(|m| !m.as_str().to_lowercase().contains("alt="))
        .count();
    if missing_alt > 0 {
        issue(
            "image_alt",
            format!("{missing_alt} image(s) have no alt text"),
        );
    }
    if words.len() < 300 {
        issue(
            "thin_content",
            format!("{} words; pages under 300 words rank poorly", words.len()),
        );
    }
    let mut density = BTreeMap::new();
    for keyword in &input.keywords {
        let parts: Vec<String> = keyword.split_whitespace().map(str::to_lowercase).collect();
        let hits = if parts.is_empty() {
            0
        } else {
            words
                .windows(parts.len())
                .filter(|w| *w == parts.as_slice())
                .count()
        };
        let percent = if words.is_empty() {
            0.0
        } else {
            (hits * parts.len()) as f64 * 100.0 / words.len() as f64
        };
        let percent = (percent * 100.0).round() / 100.0;
        if hits == 0 {
            issue(
                "keyword_missing",
                format!("the keyword {keyword:?} does not appear"),
            );
        } else if percent > 3.0 {
            issue(
                "keyword_stuffing",
                format!("the keyword {keyword:?} is {percent}% of the words; keep it under 3%"),
            );
        }
        density.insert(keyword.clone(), json!({"count": hits, "percent": percent}));
    }
    let score = 100usize.saturating_sub(issues.len() * 12);
    let first_keyword = input.keywords.first().cloned().unwrap_or_default();
    let suggested_title = clip(
        &title
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("{first_keyword} | {}", clip(&body, 40))),
        60,
    );
    let suggested_description = clip(&description.clone().unwrap_or_else(|| body.clone()), 155);
    let mut meta = format!(
        "<title>{t}</title>\n<meta name=\"description\" content=\"{d}\">\n<meta property=\"og:title\" content=\"{t}\">\n<meta property=\"og:description\" content=\"{d}\">\n<meta name=\"twitter:card\" content=\"summary_large_image\">\n",
        t = escape_attr(&suggested_title),
        d = escape_attr(&suggested_description)
    );
    if let Some(url) = &input.url {
        let _ = writeln!(
            meta,
            "<link rel=\"canonical\" href=\"{}\">\n<meta property=\"og:url\" content=\"{}\">",
            escape_attr(url),
            escape_attr(url)
        );
    }
    let origin = input.url.as_deref().and_then(|u| {
        let rest = u.split_once("://")?.1;
        Some(format!(
            "{}://{}",
            u.split_once("://")?.0,
            rest.split('/').next()?
        ))
    });
    let robots = match &origin {
        Some(origin) => format!("User-agent: *\nAllow: /\n\nSitemap: {origin}/sitemap.xml\n"),
        None => "User-agent: *\nAllow: /\n".to_owned(),
    };
    ctx.write("seo/meta.html", meta)?;
    ctx.write("seo/robots.txt", robots)?;
    Ok(json!({
        "score": score,
        "word_count": words.len(),
        "issues": issues,
        "keyword_density": density,
        "suggested": {"title": suggested_title, "description": suggested_description},
        "files": ["seo/meta.html", "seo/robots.txt"],
    }))
}

#[derive(Deserialize)]
struct LaunchInput {
    product_name: String,
    description: String,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    pricing: Option<String>,
}

/// Product Hunt topics and words that suggest them.
const TOPICS: &[(&str, &[&str])] = &[
    (
        "Developer Tools",
        &["api", "developer", "code", "cli", "sdk", "git"],
    ),
    (
        "Artificial Intelligence",
        &["ai", "llm", "agent", "gpt", "machine learning", "model"],
    ),
    (
        "Productivity",
        &[
            "productivity",
            "task",
            "workflow",
            "automate",
            "automation",
            "time",
        ],
    ),
    ("SaaS", &["saas", "subscription", "dashboard", "team"]),
    (
        "Open Source",
        &["open source", "self-hosted", "github", "self-hostable"],
    ),
    (
        "Marketing",
        &["marketing", "seo", "launch", "copy", "growth"],
    ),
    ("Design Tools", &["design", "ui", "figma", "prototype"]),
];

/// Product Hunt's limits on a tagline and a short description, in characters.
const TAGLINE_CHARS: usize = 60;
const SHORT_DESCRIPTION_CHARS: usize = 260;
/// The longest first comment taken from a model.
const FIRST_COMMENT_CHARS: usize = 4000;

/// Launch copy: a tagline, a short description and the first comment.
#[derive(Deserialize)]
struct LaunchCopy {
    tagline: String,
    short_description: String,
    first_comment: String,
}

impl LaunchCopy {
    /// The copy in `answer`, when it is the JSON asked for and within every limit.
    fn read(answer: &str) -> Result<Self, String> {
        let copy: Self = serde_json::from_str(super::unfenced(answer))
            .map_err(|err| format!("not the JSON object asked for: {err}"))?;
        if !fits(&copy.tagline, TAGLINE_CHARS)
            || !fits(&copy.short_description, SHORT_DESCRIPTION_CHARS)
            || !fits(&copy.first_comment, FIRST_COMMENT_CHARS)
        {
            return Err("a field is empty or past its limit".to_owned());
        }
        Ok(copy)
    }
}

/// Whether a model's `text` says something within `max` characters.
fn fits(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

/// The prompt asking a model for the copy of `input`.
fn copy_prompt(input: &LaunchInput) -> String {
    let mut prompt = format!(
        "Write the Product Hunt launch copy of {name}.\n\nDescription: {description}\n",
        name = input.product_name,
        description = input.description.trim()
    );
    if !input.features.is_empty() {
        let _ = writeln!(prompt, "Features: {}", input.features.join("; "));
    }
    if let Some(audience) = &input.audience {
        let _ = writeln!(prompt, "Audience: {audience}");
    }
    if let Some(pricing) = &input.pricing {
        let _ = writeln!(prompt, "Pricing: {pricing}");
    }
    let _ = write!(
        prompt,
        "\nAnswer with only a JSON object: {{\"tagline\": at most {TAGLINE_CHARS} characters, \
         \"short_description\": at most {SHORT_DESCRIPTION_CHARS} characters, \
         \"first_comment\": the maker's first comment, friendly and concrete}}."
    );
    prompt
}

/// The launch copy: from the model when this run has one and its answer fits the limits, else
/// from the description and features; `method` says which (`llm` or `template`).
pub async fn launch(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: LaunchInput = parse(input)?;
    let schema = json!({
        "type": "object",
        "properties": {
            "tagline": {"type": "string", "maxLength": TAGLINE_CHARS},
            "short_description": {"type": "string", "maxLength": SHORT_DESCRIPTION_CHARS},
            "first_comment": {"type": "string", "maxLength": FIRST_COMMENT_CHARS},
        },
        "required": ["tagline", "short_description", "first_comment"],
        "additionalProperties": false,
    });
    let written = ctx
        .ask_json(
            "You write product launch copy: clear, specific, no hype words.",
            copy_prompt(&input),
            ("launch_copy", &schema),
            LaunchCopy::read,
        )
        .await;
    let (copy, method) = match written {
        Some(written) => (written, "llm"),
        None => (template_copy(&input), "template"),
    };
    Ok(json!({
        "tagline": copy.tagline,
        "short_description": copy.short_description,
        "first_comment": copy.first_comment,
        "method": method,
        "topics": topics(&input),
        "limits": {"tagline": TAGLINE_CHARS, "short_description": SHORT_DESCRIPTION_CHARS},
        "checklist": [
            "Gallery: 3-5 images at 1270x760, the first showing the product in use",
            "A 30-60 second demo video",
            "Launch at 00:01 PT on a Tuesday to Thursday",
            "Reply to every comment on launch day",
        ],
    }))
}

/// The Product Hunt topics the description and features name, at most three.
fn topics(input: &LaunchInput) -> Vec<&'static str> {
    let lower = format!("{} {}", input.description, input.features.join(" ")).to_lowercase();
    TOPICS
        .iter()
        .filter(|(_, words)| {
            words.iter().any(|w| {
                lower
                    .split(|c: char| !c.is_alphanumeric() && c != '-')
                    .any(|t| t == *w)
                    || (w.contains(' ') && lower.contains(*w))
            })
        })
        .map(|(topic, _)| *topic)
        .take(3)
        .collect()
}

/// The launch copy written from the description and features alone.
fn template_copy(input: &LaunchInput) -> LaunchCopy {
    let first_sentence = input
        .description
        .split(['.', '!', '?'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let tagline = clip(&first_sentence, TAGLINE_CHARS);
    let audience = input.audience.clone().unwrap_or_else(|| "teams".to_owned());
    let mut short = format!(
        "{} {}",
        input.product_name,
        lowercase_first(&input.description)
    );
    if !input.features.is_empty() {
        short = format!(
            "{}: {}",
            input.product_name,
            input
                .features
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let short_description = clip(&short, SHORT_DESCRIPTION_CHARS);
    let mut comment = format!(
        "Hi Product Hunt! 👋\n\nWe built {name} because {audience} deserve better: {description}\n",
        name = input.product_name,
        description = input.description.trim()
    );
    if !input.features.is_empty() {
        comment.push_str("\nWhat you get:\n");
        for feature in &input.features {
            let _ = writeln!(comment, "• {feature}");
        }
    }
    if let Some(pricing) = &input.pricing {
        let _ = writeln!(comment, "\nPricing: {pricing}");
    }
    comment.push_str("\nWe'd love your feedback — what should we build next?");
    LaunchCopy {
        tagline,
        short_description,
        first_comment: comment,
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.trim().chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[derive(Deserialize)]
struct DeckInput {
    company: String,
    problem: String,
    solution: String,
    #[serde(default)]
    market: Option<String>,
    #[serde(default)]
    business_model: Option<String>,
    #[serde(default)]
    traction: Option<String>,
    #[serde(default)]
    competition: Option<String>,
    #[serde(default)]
    team: Vec<String>,
    #[serde(default)]
    ask: Option<String>,
}

/// Bullets a model may give one slide, and the characters of one.
const SLIDE_BULLETS: usize = 5;
const BULLET_CHARS: usize = 200;

impl DeckInput {
    /// The sections the input gives, by name: only these may a model reword.
    fn given(&self) -> Vec<(&'static str, &str)> {
        let mut given = vec![
            ("problem", self.problem.as_str()),
            ("solution", self.solution.as_str()),
        ];
        for (name, value) in [
            ("market", &self.market),
            ("business_model", &self.business_model),
            ("traction", &self.traction),
            ("competition", &self.competition),
            ("ask", &self.ask),
        ] {
            if let Some(value) = value {
                given.push((name, value.as_str()));
            }
        }
        given
    }
}

/// The prompt asking a model to put the given sections of `input` as slide bullets.
fn deck_prompt(input: &DeckInput) -> String {
    let mut prompt = format!(
        "Turn these sections of {}'s investor deck into slide bullets.\n\n",
        input.company
    );
    for (name, text) in input.given() {
        let _ = writeln!(prompt, "{name}: {}", text.trim());
    }
    let _ = write!(
        prompt,
        "\nAnswer with only a JSON object whose members are exactly those section names, each \
         1 to {SLIDE_BULLETS} bullets of at most {BULLET_CHARS} characters, using only facts \
         given above."
    );
    prompt
}

/// The bullets in a model's `answer`, when it is the JSON asked for: one member per given
/// section and no other, each within the bounds.
fn read_bullets(input: &DeckInput, answer: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let bullets: BTreeMap<String, Vec<String>> = serde_json::from_str(super::unfenced(answer))
        .map_err(|err| format!("not the JSON object asked for: {err}"))?;
    let given: Vec<&str> = input.given().into_iter().map(|(name, _)| name).collect();
    if bullets.len() != given.len() || !given.iter().all(|name| bullets.contains_key(*name)) {
        return Err(format!("the members must be exactly {}", given.join(", ")));
    }
    if bullets.values().any(|list| {
        list.is_empty()
            || list.len() > SLIDE_BULLETS
            || !list.iter().all(|bullet| fits(bullet, BULLET_CHARS))
    }) {
        return Err("a section's bullets are empty or past their bounds".to_owned());
    }
    Ok(bullets)
}

/// The deck: the sections the input gives, as written or (with a model) reworded into bullets
/// from those facts alone; the sections it lacks are left to fill and listed in `gaps`.
/// `method` says which wrote the sections (`llm` or `template`).
pub async fn deck(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: DeckInput = parse(input)?;
    let given: Vec<&str> = input.given().into_iter().map(|(name, _)| name).collect();
    let bullets = json!({"type": "array", "minItems": 1, "maxItems": SLIDE_BULLETS,
        "items": {"type": "string", "maxLength": BULLET_CHARS}});
    let schema = json!({
        "type": "object",
        "properties": given.iter().map(|name| (name.to_string(), bullets.clone())).collect::<serde_json::Map<_, _>>(),
        "required": given,
        "additionalProperties": false,
    });
    let worded = ctx
        .ask_json(
            "You write investor deck slides: short, concrete, never inventing facts.",
            deck_prompt(&input),
            ("deck_sections", &schema),
            |answer| read_bullets(&input, answer),
        )
        .await;
    let method = if worded.is_some() { "llm" } else { "template" };
    let worded = worded.unwrap_or_default();
    let body = |name: &str, given: &str| match worded.get(name) {
        Some(bullets) => bullets
            .iter()
            .map(|bullet| format!("- {}", bullet.trim()))
            .collect::<Vec<_>>()
            .join("\n"),
        None => given.to_owned(),
    };
    let given: BTreeMap<&str, String> = input
        .given()
        .into_iter()
        .map(|(name, text)| (name, body(name, text)))
        .collect();
    let mut gaps = Vec::new();
    let mut section = |name: &str| -> String {
        given.get(name).cloned().unwrap_or_else(|| {
            gaps.push(name.to_owned());
            format!("_To fill: {name}._")
        })
    };
    let team = if input.team.is_empty() {
        section("team")
    } else {
        input
            .team
            .iter()
            .map(|m| format!("- {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let slides = vec![
        (input.company.clone(), clip(&input.solution, 120)),
        ("The problem".to_owned(), section("problem")),
        ("Our solution".to_owned(), section("solution")),
        ("Market".to_owned(), section("market")),
        ("Business model".to_owned(), section("business_model")),
        ("Traction".to_owned(), section("traction")),
        ("Competition".to_owned(), section("competition")),
        ("Team".to_owned(), team),
        ("The ask".to_owned(), section("ask")),
        (
            "Thank you".to_owned(),
            format!("{} — let's talk.", input.company),
        ),
    ];
    let mut markdown = String::from("---\nmarp: true\npaginate: true\n---\n");
    for (i, (title, body)) in slides.iter().enumerate() {
        if i > 0 {
            markdown.push_str("\n---\n");
        }
        let _ = write!(markdown, "\n# {title}\n\n{body}\n");
    }
    ctx.write("pitch/deck.md", markdown)?;
    Ok(json!({
        "slides": slides.iter().map(|(title, body)| json!({"title": title, "body": body})).collect::<Vec<_>>(),
        "gaps": gaps,
        "method": method,
        "files": ["pitch/deck.md"],
    }))
}
