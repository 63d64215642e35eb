//! What `sankalpa` prints: tables for people, the API's own JSON for scripts (`-o json`) or that
//! same document as YAML (`-o yaml`), or only ids (`-q`). Colour only on a terminal, and never
//! with `NO_COLOR` set. Errors go to stderr (see `main`), never here.

use std::io::IsTerminal;

use comfy_table::{Table, presets};
use serde::{Deserialize, Serialize};

use crate::exit::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Columns for people.
    Table,
    /// The API's JSON, as the gateway answered it.
    Json,
    /// The API's JSON rendered as YAML: the same keys in the same order.
    Yaml,
}

/// How this invocation prints.
pub struct Output {
    pub format: Format,
    /// Ids only, one a line.
    pub quiet: bool,
    color: bool,
}

impl Output {
    pub fn new(format: Format, quiet: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Self {
            format,
            quiet,
            color: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// Whether answers print as the API's document (JSON or YAML) rather than for people.
    pub fn is_document(&self) -> bool {
        matches!(self.format, Format::Json | Format::Yaml)
    }

    /// `value` in the document format asked for: pretty JSON, or YAML (`None` for a table).
    pub fn document<T: Serialize>(&self, value: &T) -> Result<Option<String>, Failure> {
        match self.format {
            Format::Table => Ok(None),
            Format::Json => json(value).map(Some),
            Format::Yaml => yaml(value).map(Some),
        }
    }

    /// Prints `value` as JSON or YAML when asked, else the ids `-q` wants, else what `human`
    /// draws.
    pub fn show<T: Serialize>(
        &self,
        value: &T,
        ids: impl FnOnce(&T) -> Vec<String>,
        human: impl FnOnce(&T) -> String,
    ) -> Result<(), Failure> {
        let text = if let Some(document) = self.document(value)? {
            document
        } else if self.quiet {
            ids(value).join("\n")
        } else {
            human(value)
        };
        if !text.is_empty() {
            println!("{text}");
        }
        Ok(())
    }

    /// A table of `rows` under `header`, its columns aligned with spaces, as kubectl prints.
    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) -> String {
        let mut table = Table::new();
        table.load_style(presets::NOTHING);
        table.set_header(header.iter().map(|name| name.to_uppercase()));
        for row in rows {
            table.add_row(row);
        }
        // The preset pads every cell by one space on each side; a line starting in column 0
        // reads better and greps cleaner.
        table
            .lines()
            .map(|line| line.trim().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A status word in the colour of what it means: green done, red failed, yellow in flight.
    pub fn status(&self, status: &str) -> String {
        if !self.color {
            return status.to_owned();
        }
        let colour = match status {
            "completed" | "serving" | "ok" => "32",
            "failed" | "not_serving" | "unreachable" | "degraded" => "31",
            "running" | "pending" | "waiting" => "33",
            _ => return status.to_owned(),
        };
        format!("\x1b[{colour}m{status}\x1b[0m")
    }
}

/// Pretty JSON, the shape the API answered.
fn json<T: Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map_err(|err| Failure::Failed(format!("cannot print the answer as JSON: {err}")))
}

/// The API's JSON as YAML. Through the JSON text, so that values passed through as written
/// (raw JSON) are YAML too, and into YAML's ordered value, so that keys keep the API's order.
pub fn yaml<T: Serialize>(value: &T) -> Result<String, Failure> {
    let failed = |err: &dyn std::fmt::Display| {
        Failure::Failed(format!("cannot print the answer as YAML: {err}"))
    };
    let text = serde_json::to_string(value).map_err(|err| failed(&err))?;
    let document: serde_norway::Value = serde_json::from_str(&text).map_err(|err| failed(&err))?;
    let yaml = serde_norway::to_string(&document).map_err(|err| failed(&err))?;
    Ok(yaml.trim_end().to_owned())
}

/// JSON text indented for people; as it is when it does not parse.
pub fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| json.to_owned())
}

/// A duration in milliseconds as people read it: `840 ms`, `12.3 s`, `4m05s`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// An optional instant as RFC 3339 to the second, or `-`.
pub fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    #[derive(serde::Serialize)]
    struct Answer {
        status: &'static str,
        output: Box<RawValue>,
        at: Option<u64>,
    }

    /// YAML 1.2: a string that reads as a number is quoted; `yes` is a string there (a YAML 1.1
    /// reader, PyYAML, takes it for true: docs/cli.md says so).
    #[test]
    fn yaml_keeps_the_api_keys_order_and_renders_raw_json_as_yaml() {
        let answer = Answer {
            status: "completed",
            output: RawValue::from_string(r#"{"z": 1, "a": ["yes", "1.50"]}"#.to_owned()).unwrap(),
            at: None,
        };
        assert_eq!(
            super::yaml(&answer).unwrap(),
            "status: completed\noutput:\n  z: 1\n  a:\n  - yes\n  - '1.50'\nat: null"
        );
    }
}
