//! The custom agents' template language: `{{ field.path }}` substituted from the input, with an
//! optional filter (`upper`, `lower`, `slug`, `json`), and nothing else — a template cannot read
//! files, run code or reach the network. Parsed once when a definition is compiled; rendered
//! within a byte budget ([`Rendering`]), since a template can repeat an input field any number of
//! times.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::artifacts::slug;
use sankalpa_kit::bounded_json;
use sankalpa_kit::schema::Violation;

/// One piece of a parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field {
        path: Vec<String>,
        filter: Option<Filter>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Upper,
    Lower,
    Slug,
    Json,
}

#[derive(Debug, Clone)]
pub struct Text(Vec<Piece>);

/// A template's `output`, parsed once: the JSON to produce, with text to render in it.
#[derive(Debug)]
pub enum Output {
    Text(Text),
    List(Vec<Output>),
    Fields(Vec<(String, Output)>),
    Literal(Value),
}

pub fn parse_text(
    source: &str,
    at: &str,
    fields: &[String],
    problems: &mut Vec<Violation>,
) -> Text {
    let mut pieces = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_owned()));
        }
        let Some(close) = rest[open..].find("}}") else {
            problems.push(Violation::new(at, "a {{ is never closed"));
            return Text(pieces);
        };
        let inner = rest[open + 2..open + close].trim();
        let (path, filter) = match inner.split_once('|') {
            Some((path, filter)) => (path.trim(), Some(filter.trim())),
            None => (inner, None),
        };
        let filter = match filter {
            None => None,
            Some("upper") => Some(Filter::Upper),
            Some("lower") => Some(Filter::Lower),
            Some("slug") => Some(Filter::Slug),
            Some("json") => Some(Filter::Json),
            Some(other) => {
                problems.push(Violation::new(
                    at,
                    format!("unknown filter {other:?}: use upper, lower, slug or json"),
                ));
                None
            }
        };
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            problems.push(Violation::new(
                at,
                format!("{{{{ {inner} }}}} is not a field path"),
            ));
        } else if !fields.contains(&segments[0]) {
            problems.push(Violation::new(
                at,
                format!("{:?} is not a field of the input schema", segments[0]),
            ));
        }
        pieces.push(Piece::Field {
            path: segments,
            filter,
        });
        rest = &rest[open + close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Text(pieces)
}

fn lookup<'a>(input: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(input, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Rendering went past the run's bound.
#[derive(Debug)]
pub struct TooLarge;

/// The input a run renders from, and the bytes it may still render.
pub struct Rendering<'a> {
    input: &'a Value,
    room: usize,
}

impl<'a> Rendering<'a> {
    pub fn new(input: &'a Value, max_bytes: usize) -> Self {
        Self {
            input,
            room: max_bytes,
        }
    }

    fn fits(&self, bytes: usize) -> Result<(), TooLarge> {
        if bytes <= self.room {
            Ok(())
        } else {
            Err(TooLarge)
        }
    }

    fn take(&mut self, bytes: usize) -> Result<(), TooLarge> {
        self.fits(bytes)?;
        self.room -= bytes;
        Ok(())
    }

    /// Appends `value` as JSON to `out`, if it fits.
    fn push_json(&mut self, out: &mut String, value: &Value) -> Result<(), TooLarge> {
        let before = out.len();
        if !bounded_json::append_within(out, value, self.room) {
            return Err(TooLarge);
        }
        self.room -= out.len() - before;
        Ok(())
    }

    /// Appends `text` through `filter` to `out`, if it fits. A filter changes a text's length
    /// by a small factor at most, so the text must fit before and its result after.
    fn push_filtered(
        &mut self,
        out: &mut String,
        text: &str,
        filter: Option<Filter>,
    ) -> Result<(), TooLarge> {
        self.fits(text.len())?;
        let filtered = match filter {
            Some(Filter::Upper) => Cow::Owned(text.to_uppercase()),
            Some(Filter::Lower) => Cow::Owned(text.to_lowercase()),
            Some(Filter::Slug) => Cow::Owned(slug(text)),
            Some(Filter::Json) | None => Cow::Borrowed(text),
        };
        self.take(filtered.len())?;
        out.push_str(&filtered);
        Ok(())
    }
}

impl Text {
    pub fn render(&self, rendering: &mut Rendering<'_>) -> Result<String, TooLarge> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => {
                    rendering.take(text.len())?;
                    out.push_str(text);
                }
                Piece::Field { path, filter } => match (lookup(rendering.input, path), filter) {
                    (value, Some(Filter::Json)) => {
                        rendering.push_json(&mut out, value.unwrap_or(&Value::Null))?;
                    }
                    (None | Some(Value::Null), _) => {}
                    (Some(Value::String(text)), filter) => {
                        rendering.push_filtered(&mut out, text, *filter)?;
                    }
                    (Some(other), filter) => {
                        let mut text = String::new();
                        if !bounded_json::append_within(&mut text, other, rendering.room) {
                            return Err(TooLarge);
                        }
                        rendering.push_filtered(&mut out, &text, *filter)?;
                    }
                },
            }
        }
        Ok(out)
    }

    /// A lone `{{ field }}` keeps the field's JSON type (a number stays a number).
    fn render_value(&self, rendering: &mut Rendering<'_>) -> Result<Value, TooLarge> {
        match self.0.as_slice() {
            [Piece::Field { path, filter: None }] => match lookup(rendering.input, path) {
                Some(value) => {
                    let size = bounded_json::len_within(value, rendering.room).ok_or(TooLarge)?;
                    rendering.take(size)?;
                    Ok(value.clone())
                }
                None => Ok(Value::Null),
            },
            _ => self.render(rendering).map(Value::String),
        }
    }

    /// The text with every placeholder filled by `x`: what a path looks like at its most benign.
    pub fn skeleton(&self) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Field { .. } => "x",
            })
            .collect()
    }
}

impl Output {
    pub fn render(&self, rendering: &mut Rendering<'_>) -> Result<Value, TooLarge> {
        match self {
            Self::Text(text) => text.render_value(rendering),
            Self::List(items) => items
                .iter()
                .map(|item| item.render(rendering))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Self::Fields(fields) => {
                let mut rendered = Map::new();
                for (name, field) in fields {
                    rendering.take(name.len())?;
                    rendered.insert(name.clone(), field.render(rendering)?);
                }
                Ok(Value::Object(rendered))
            }
            Self::Literal(value) => {
                let size = bounded_json::len_within(value, rendering.room).ok_or(TooLarge)?;
                rendering.take(size)?;
                Ok(value.clone())
            }
        }
    }
}

/// A template's `output` parsed: text anywhere in it is a template string.
pub fn compile_output(
    template: &Value,
    at: &str,
    fields: &[String],
    problems: &mut Vec<Violation>,
) -> Output {
    match template {
        Value::String(source) => Output::Text(parse_text(source, at, fields, problems)),
        Value::Array(items) => Output::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_output(v, &format!("{at}[{i}]"), fields, problems))
                .collect(),
        ),
        Value::Object(map) => Output::Fields(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        compile_output(v, &format!("{at}.{k}"), fields, problems),
                    )
                })
                .collect(),
        ),
        other => Output::Literal(other.clone()),
    }
}
