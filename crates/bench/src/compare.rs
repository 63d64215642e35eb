//! `sankalpa-bench compare --base <file>... --head <file>...` (results files or printed lines): the A/B of two revisions
//! whose runs `make bench-compare` interleaved (A B A B ...). For each scenario and
//! concurrency it pairs the rounds in order and prints one JSON line: the median throughput of
//! each side, the median of the rounds' head/base ratios and their spread (lowest, highest),
//! and the same for p99. A ratio above 1 is more throughput; a p99 ratio above 1 is slower.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::line::rounded;

type Key = (String, u64);

/// Each side's figures by scenario and concurrency, one per round, in round order.
#[derive(Default)]
struct Side(BTreeMap<Key, Vec<(f64, f64)>>);

impl Side {
    fn read(&mut self, path: &PathBuf) -> Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        // A results file (one document with `lines`), or the JSON lines a bench printed (an
        // older revision's bench writes no results file).
        let lines: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(document) if document["lines"].is_array() => {
                document["lines"].as_array().cloned().unwrap_or_default()
            }
            _ => text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .with_context(|| format!("{} is not bench output", path.display()))?,
        };
        for line in &lines {
            let (Some(scenario), Some(concurrency), Some(throughput), Some(p99)) = (
                line["scenario"].as_str(),
                line["concurrency"].as_u64(),
                line["throughput_rps"].as_f64(),
                line["p99_us"].as_f64(),
            ) else {
                continue;
            };
            self.0
                .entry((scenario.to_owned(), concurrency))
                .or_default()
                .push((throughput, p99));
        }
        Ok(())
    }
}

pub fn run(arguments: &[String]) -> Result<()> {
    let (mut base, mut head) = (Side::default(), Side::default());
    let mut side = None;
    for argument in arguments {
        match argument.as_str() {
            "--base" => side = Some(&mut base),
            "--head" => side = Some(&mut head),
            path => side
                .as_mut()
                .context("usage: sankalpa-bench compare --base <results>... --head <results>...")?
                .read(&PathBuf::from(path))?,
        }
    }
    if base.0.is_empty() || head.0.is_empty() {
        bail!("usage: sankalpa-bench compare --base <results>... --head <results>...");
    }
    for (key, base_rounds) in &base.0 {
        let Some(head_rounds) = head.0.get(key) else {
            continue;
        };
        let pairs = base_rounds.iter().zip(head_rounds);
        let throughput_ratios: Vec<f64> = pairs
            .clone()
            .filter(|((base, _), _)| *base > 0.0)
            .map(|((base, _), (head, _))| head / base)
            .collect();
        let p99_ratios: Vec<f64> = pairs
            .filter(|((_, base), _)| *base > 0.0)
            .map(|((_, base), (_, head))| head / base)
            .collect();
        let line = serde_json::json!({
            "scenario": key.0,
            "concurrency": key.1,
            "rounds": throughput_ratios.len(),
            "base_rps": rounded(median(base_rounds.iter().map(|r| r.0)), 1),
            "head_rps": rounded(median(head_rounds.iter().map(|r| r.0)), 1),
            "ratio": rounded(median(throughput_ratios.iter().copied()), 3),
            "ratio_min": rounded(fold(&throughput_ratios, f64::min), 3),
            "ratio_max": rounded(fold(&throughput_ratios, f64::max), 3),
            "p99_ratio": rounded(median(p99_ratios.iter().copied()), 3),
            "p99_ratio_min": rounded(fold(&p99_ratios, f64::min), 3),
            "p99_ratio_max": rounded(fold(&p99_ratios, f64::max), 3),
        });
        println!("{line}");
    }
    Ok(())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

fn fold(values: &[f64], pick: fn(f64, f64) -> f64) -> f64 {
    values.iter().copied().reduce(pick).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert_eq!(median([5.0, 1.0, 3.0].into_iter()), 3.0);
        assert!(median(std::iter::empty()).is_nan());
    }
}
