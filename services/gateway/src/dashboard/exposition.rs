//! Reading the Prometheus text exposition format (what every service's `/metrics` serves), as
//! far as the sampler needs: samples of the metrics it asks for, with their labels.

use std::collections::HashMap;

/// A sample's labels, sorted by name, so equal label sets compare equal.
pub type Labels = Vec<(String, String)>;

/// The samples of one scrape: by metric name, each label set's value.
#[derive(Debug, Default)]
pub struct Samples {
    by_name: HashMap<String, HashMap<Labels, f64>>,
}

impl Samples {
    /// Parses `text`, keeping only the samples whose name `wanted` accepts. Lines that do not
    /// parse are skipped: one odd line must not cost the whole scrape.
    pub fn parse(text: &str, wanted: impl Fn(&str) -> bool) -> Self {
        let mut by_name: HashMap<String, HashMap<Labels, f64>> = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name_end = line
                .find(|c: char| c == '{' || c.is_whitespace())
                .unwrap_or(line.len());
            let name = &line[..name_end];
            if !wanted(name) {
                continue;
            }
            if let Some((labels, value)) = parse_rest(&line[name_end..]) {
                by_name
                    .entry(name.to_owned())
                    .or_default()
                    .insert(labels, value);
            }
        }
        Self { by_name }
    }

    /// Every label set of `name`, with its value.
    pub fn of(&self, name: &str) -> impl Iterator<Item = (&Labels, f64)> {
        self.by_name
            .get(name)
            .into_iter()
            .flat_map(|samples| samples.iter().map(|(labels, value)| (labels, *value)))
    }

    /// The value of `name` with exactly `labels`.
    pub fn get(&self, name: &str, labels: &Labels) -> Option<f64> {
        self.by_name.get(name)?.get(labels).copied()
    }
}

/// The labels (`{a="1",b="2"}`, optional) and value after a sample's name; a trailing timestamp
/// is ignored.
fn parse_rest(rest: &str) -> Option<(Labels, f64)> {
    let mut labels = Labels::new();
    let mut rest = rest.trim_start();
    if let Some(mut inside) = rest.strip_prefix('{') {
        loop {
            inside = inside.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
            if let Some(after) = inside.strip_prefix('}') {
                rest = after;
                break;
            }
            // A label name, `=`, then a quoted value with `\\`, `\"` and `\n` escapes.
            let (name, after) = inside.split_once('=')?;
            let mut chars = after.trim_start().strip_prefix('"')?.char_indices();
            let mut value = String::new();
            let mut escaped = false;
            let close = loop {
                let (offset, c) = chars.next()?;
                if escaped {
                    value.push(if c == 'n' { '\n' } else { c });
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    break offset;
                } else {
                    value.push(c);
                }
            };
            labels.push((name.trim().to_owned(), value));
            inside = &after.trim_start()[1 + close + 1..];
        }
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    labels.sort();
    Some((labels, value))
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels_and_unwanted_ones_skipped() {
        let text = "# HELP x_total Things.\n# TYPE x_total counter\n\
            x_total{route=\"/a\",method=\"GET\"} 3\n\
            x_total{method=\"POST\", route=\"/b \\\"q\\\" ,}\"} 4.5 1700000000\n\
            y_bucket{le=\"+Inf\"} 7\n\
            plain 1e3\n\
            broken{le=\"1\" 2\n";
        let samples = Samples::parse(text, |name| name != "plain");
        let a = vec![
            ("method".to_owned(), "GET".to_owned()),
            ("route".to_owned(), "/a".to_owned()),
        ];
        assert_eq!(samples.get("x_total", &a), Some(3.0));
        let b = vec![
            ("method".to_owned(), "POST".to_owned()),
            ("route".to_owned(), "/b \"q\" ,}".to_owned()),
        ];
        assert_eq!(samples.get("x_total", &b), Some(4.5));
        let inf = vec![("le".to_owned(), "+Inf".to_owned())];
        assert_eq!(samples.get("y_bucket", &inf), Some(7.0));
        assert_eq!(samples.of("plain").count(), 0);
        assert_eq!(samples.of("broken").count(), 0);
    }
}
