//! `sankalpa-bench report [results folder] [charts folder]` (`make bench-report`): the latest
//! runs' results files drawn as one PNG per scenario — throughput and p99 against concurrency,
//! a line per run — for the docs' benchmark page. Text is drawn with a TrueType font from the
//! system (`SANKALPA_BENCH_FONT`, default Debian's DejaVu Sans, which `make setup` installs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use serde_json::Value;

/// Runs drawn, the latest first.
const RUNS: usize = 5;
const SIZE: (u32, u32) = (960, 360);
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One run's figures of one scenario: its label and (concurrency, throughput, p99 in ms).
type Series = (String, Vec<(u64, f64, f64)>);

pub fn run(arguments: &[String]) -> Result<()> {
    let results = PathBuf::from(arguments.first().map_or("bench-results", String::as_str));
    let charts = PathBuf::from(arguments.get(1).map_or("docs/benchmarks", String::as_str));
    register_font()?;
    let runs = latest_runs(&results)?;
    if runs.is_empty() {
        bail!(
            "no results in {} (run `make bench` first)",
            results.display()
        );
    }
    let mut scenarios: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for (label, lines) in &runs {
        let mut figures: BTreeMap<String, Vec<(u64, f64, f64)>> = BTreeMap::new();
        for line in lines {
            if let (Some(scenario), Some(concurrency), Some(throughput), Some(p99)) = (
                line["scenario"].as_str(),
                line["concurrency"].as_u64(),
                line["throughput_rps"].as_f64(),
                line["p99_us"].as_f64(),
            ) {
                figures.entry(scenario.to_owned()).or_default().push((
                    concurrency,
                    throughput,
                    p99 / 1000.0,
                ));
            }
        }
        for (scenario, mut points) in figures {
            points.sort_by_key(|point| point.0);
            scenarios
                .entry(scenario)
                .or_default()
                .push((label.clone(), points));
        }
    }
    std::fs::create_dir_all(&charts)
        .with_context(|| format!("Failed to create {}", charts.display()))?;
    for (scenario, series) in &scenarios {
        let path = charts.join(format!("{}.png", slug(scenario)));
        draw(scenario, series, &path)?;
        eprintln!("bench-report: {}", path.display());
    }
    Ok(())
}

fn register_font() -> Result<()> {
    let path = crate::env_or("SANKALPA_BENCH_FONT", FONT);
    let bytes = std::fs::read(&path)
        .with_context(|| format!("Failed to read the font {path} (make setup installs it)"))?;
    // plotters keeps fonts for the life of the process, which this one is.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a TrueType font"))
}

/// The latest [`RUNS`] results files of `folder`, oldest first, each as (label, lines).
fn latest_runs(folder: &Path) -> Result<Vec<(String, Vec<Value>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("Failed to read {}", folder.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    // Named `<time>-<revision>.json`: the name orders them by time.
    files.sort();
    let latest = files.split_off(files.len().saturating_sub(RUNS));
    latest
        .iter()
        .map(|path| {
            let document: Value = serde_json::from_slice(&std::fs::read(path)?)
                .with_context(|| format!("{} is not a results file", path.display()))?;
            let label = format!(
                "{} {}",
                document["revision"].as_str().unwrap_or("?"),
                document["started_at"]
                    .as_str()
                    .and_then(|time| time.get(..16))
                    .unwrap_or("")
            );
            let lines = document["lines"].as_array().cloned().unwrap_or_default();
            Ok((label, lines))
        })
        .collect()
}

/// A file name for a scenario: lowercase letters and digits, runs of anything else one `-`.
fn slug(scenario: &str) -> String {
    let mut slug = String::new();
    for character in scenario.chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').chars().take(80).collect()
}

/// Throughput (left) and p99 (right) against concurrency, a line per run.
fn draw(scenario: &str, series: &[Series], path: &Path) -> Result<()> {
    let mut pixels = vec![255u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        let (title, body) = root.split_vertically(36);
        title
            .titled(scenario, ("sans-serif", 18))
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let (left, right) = body.split_horizontally(SIZE.0 / 2);
        panel(&left, series, "throughput (per s)", |point| point.1)?;
        panel(&right, series, "p99 (ms)", |point| point.2)?;
        root.present().map_err(|err| anyhow::anyhow!("{err}"))?;
    }
    let file = std::fs::File::create(path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), SIZE.0, SIZE.1);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    series: &[Series],
    measure: &str,
    value: fn(&(u64, f64, f64)) -> f64,
) -> Result<()> {
    let points = series.iter().flat_map(|(_, points)| points);
    let max_x = points
        .clone()
        .map(|point| point.0)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_y = points.map(value).fold(0.0, f64::max).max(1e-9) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0u64..max_x + max_x / 10 + 1, 0.0..max_y)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    chart
        .configure_mesh()
        // Without the fine grid a chart compresses to a tenth of the bytes.
        .light_line_style(TRANSPARENT)
        .x_desc("concurrency")
        .y_desc(measure)
        .draw()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    for (index, (label, points)) in series.iter().enumerate() {
        let colour = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|point| (point.0, value(point))),
                colour.stroke_width(2),
            ))
            .map_err(|err| anyhow::anyhow!("{err}"))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|point| Circle::new((point.0, value(point)), 3, colour.filled())),
            )
            .map_err(|err| anyhow::anyhow!("{err}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn a_scenario_slug_is_a_file_name() {
        assert_eq!(
            slug("GET /api/marketplace?q=... (10,000 items, Zipf mix)"),
            "get-api-marketplace-q-10-000-items-zipf-mix"
        );
        assert_eq!(
            slug("floor: JSON echo (axum, HTTP/1.1)"),
            "floor-json-echo-axum-http-1-1"
        );
    }
}
