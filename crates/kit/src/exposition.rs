//! Reading the Prometheus text exposition format (what every service's `/metrics` serves): the
//! samples of the metrics a reader asks for, with their labels (the gateway's dashboard), and
//! whole families with their type and help (the OTLP metrics export, `metrics_export.rs`).

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
            let Some((name, rest)) = sample_name(line) else {
                continue;
            };
            if !wanted(name) {
                continue;
            }
            if let Some((labels, value)) = parse_rest(rest) {
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

/// What a `# TYPE` line says a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// A metric family: its name, help and type, and its samples (a histogram's are named
/// `<name>_bucket`, `_sum` and `_count`).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<(String, Labels, f64)>,
}

/// Every family of `text`, in the order they come. A sample belongs to the family whose
/// `# TYPE` came last before it, when its name is that family's or a suffix of it; a sample of
/// no declared family makes an untyped family of its own. Lines that do not parse are skipped.
pub fn families(text: &str) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    let mut helps: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), help) => {
                    helps.insert(name, help.unwrap_or_default());
                }
                (Some("TYPE"), Some(name), Some(kind)) => families.push(Family {
                    name: name.to_owned(),
                    help: String::new(),
                    kind: match kind.trim() {
                        "counter" => Kind::Counter,
                        "gauge" => Kind::Gauge,
                        "histogram" => Kind::Histogram,
                        "summary" => Kind::Summary,
                        _ => Kind::Untyped,
                    },
                    samples: Vec::new(),
                }),
                _ => {}
            }
            continue;
        }
        let Some((name, rest)) = sample_name(line) else {
            continue;
        };
        let Some((labels, value)) = parse_rest(rest) else {
            continue;
        };
        let belongs = families.last().is_some_and(|family| {
            name.strip_prefix(family.name.as_str())
                .is_some_and(|suffix| ["", "_bucket", "_sum", "_count"].contains(&suffix))
        });
        if !belongs {
            families.push(Family {
                name: name.to_owned(),
                help: String::new(),
                kind: Kind::Untyped,
                samples: Vec::new(),
            });
        }
        if let Some(family) = families.last_mut() {
            family.samples.push((name.to_owned(), labels, value));
        }
    }
    for family in &mut families {
        if let Some(help) = helps.get(family.name.as_str()) {
            family.help = unescape_help(help);
        }
    }
    families
}

fn unescape_help(help: &str) -> String {
    help.replace("\\n", "\n").replace("\\\\", "\\")
}

/// A sample line's metric name and what follows it; None for a comment or a blank line.
fn sample_name(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    Some((&line[..name_end], &line[name_end..]))
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

    #[test]
    fn families_gather_their_samples_type_and_help() {
        let text = "# HELP req_total Requests served.\n# TYPE req_total counter\n\
            req_total{code=\"0\"} 3\n\
            # TYPE lat_seconds histogram\n\
            lat_seconds_bucket{le=\"0.1\"} 1\n\
            lat_seconds_bucket{le=\"+Inf\"} 2\n\
            lat_seconds_sum 0.3\n\
            lat_seconds_count 2\n\
            loose 7\n";
        let families = families(text);
        let names: Vec<(&str, Kind, usize)> = families
            .iter()
            .map(|family| (family.name.as_str(), family.kind, family.samples.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("req_total", Kind::Counter, 1),
                ("lat_seconds", Kind::Histogram, 4),
                ("loose", Kind::Untyped, 1)
            ]
        );
        assert_eq!(families[0].help, "Requests served.");
        assert_eq!(families[1].samples[2].0, "lat_seconds_sum");
        assert_eq!(
            families[1].samples[1].1,
            vec![("le".to_owned(), "+Inf".to_owned())]
        );
    }
}
