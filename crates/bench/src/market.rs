//! The marketplace the search scenario reads: [`MARKET_ITEMS`] items written straight into a
//! fleet's database ([`seed`]), and the mix of searches asked of it ([`SearchMix`]): a few
//! hundred queries, filters and sorts, drawn by a Zipf distribution as a real search box's
//! queries are (a few popular, a long tail).

use std::process::Stdio;

use anyhow::{Context, Result, bail};
use rand::{Rng, SeedableRng};

/// Items seeded in the marketplace of a fleet the bench starts (issue 6: search over 10,000).
pub const MARKET_ITEMS: u32 = 10_000;

/// Words the seeded items' names, descriptions and tags are made of, so that searches match a
/// few dozen to a few hundred items each, as on a real marketplace.
const MARKET_WORDS: &str = "planner schema backend frontend auth deploy docker kubernetes test \
    lint docs api graphql rest postgres redis queue cache chat email invoice payment search \
    analytics report image resize translate summarize review security scan monitor alert billing \
    crm blog shop mobile react vue rust python go terraform ci release changelog seo marketing";

/// Writes [`MARKET_ITEMS`] items straight into the marketplace's tables (publishing each through
/// the API would take minutes and measure nothing the search reads): names, descriptions and
/// two tags each from [`MARKET_WORDS`], a quarter agents, a tenth private to one of 50
/// publisher tenants (none of them the bench user's), downloads and ratings spread out. Search
/// reads only `items` (and `item_search` and `item_terms`, which triggers fill), so no versions
/// or packages are made. `VACUUM ANALYZE` then gives the planner statistics (and the visibility
/// map index-only scans need), as a marketplace that has been running would have.
pub async fn seed(database_url: &str) -> Result<()> {
    let insert = format!(
        "WITH words AS (SELECT string_to_array('{words}', ' ') AS w) \
         INSERT INTO marketplace.items (id, publisher_tenant_id, slug, name, description, tags, \
             kind, visibility, author_id, author_name, latest_version, downloads, rating_sum, \
             rating_count, created_at, updated_at) \
         SELECT gen_random_uuid(), \
             ('00000000-0000-4000-8000-' || lpad((i % 50)::text, 12, '0'))::uuid, \
             'bench-' || i, \
             initcap(w[1 + i % n]) || ' ' || initcap(w[1 + (i / n) % n]) || ' ' || \
                 (CASE WHEN i % 4 = 0 THEN 'agent' ELSE 'chain' END) || ' ' || i, \
             'Builds the ' || w[1 + (i * 7) % n] || ' and ' || w[1 + (i * 13) % n] || \
                 ' of a ' || w[1 + (i * 17) % n] || ' project, with ' || w[1 + (i * 3) % n] || \
                 ' built in.', \
             ARRAY[w[1 + (i * 11) % n], w[1 + (i * 19) % n]], \
             CASE WHEN i % 4 = 0 THEN 'agent' ELSE 'chain' END, \
             CASE WHEN i % 10 = 8 THEN 'private' ELSE 'public' END, \
             'bench', 'Bench Publisher', '1.0.0', \
             (i * 7919) % 5000, \
             (i * 31) % 40 + (i * 7) % (4 * ((i * 31) % 40) + 1), \
             (i * 31) % 40, \
             now() - make_interval(mins => i), now() - make_interval(mins => i) \
         FROM generate_series(1, {MARKET_ITEMS}) AS i, words, \
             LATERAL (SELECT array_length(w, 1) AS n) AS size",
        words = MARKET_WORDS,
    );
    eprintln!("bench: seeding {MARKET_ITEMS} marketplace items");
    let output = tokio::process::Command::new("psql")
        .args([
            "-X",
            "-w",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database_url,
        ])
        .args([
            "-c",
            &insert,
            "-c",
            "VACUUM ANALYZE marketplace.items, marketplace.item_search, marketplace.item_terms",
        ])
        .env("PGOPTIONS", "--client-min-messages=warning")
        .stdin(Stdio::null())
        .output()
        .await
        .context("Failed to run psql to seed the marketplace")?;
    if !output.status.success() {
        bail!(
            "seeding the marketplace failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Distinct searches in the mix.
const DISTINCT_SEARCHES: usize = 320;
/// The Zipf exponent: about 1 for the queries of a search box.
const ZIPF_EXPONENT: f64 = 1.0;
/// Draws made up front and cycled, so a request costs an index, not a random draw.
const DRAWS: usize = 1 << 16;
/// The mix is the same in every run, so two runs (or two revisions) ask the same searches.
const SEED: u64 = 17;

/// The searches the marketplace scenario asks, as query strings, and the order it asks them in.
pub struct SearchMix {
    queries: Vec<String>,
    draws: Vec<u16>,
}

impl SearchMix {
    /// One- and two-word queries, queries matching nothing, kind and tag filters alone and
    /// with a query, each sort order, small pages and a second page, browsing without a query;
    /// shuffled, then ranked by a Zipf distribution.
    pub fn new() -> Self {
        let mut random = rand::rngs::StdRng::seed_from_u64(SEED);
        let words: Vec<&str> = MARKET_WORDS.split_whitespace().collect();
        let word = |random: &mut rand::rngs::StdRng| words[random.gen_range(0..words.len())];
        let mut queries: Vec<String> = Vec::with_capacity(DISTINCT_SEARCHES);
        // The kind of query by turn, not by count: a kind with few forms (sorts by kinds) runs
        // out of new ones, and the next turn must move on.
        for turn in 0.. {
            if queries.len() == DISTINCT_SEARCHES {
                break;
            }
            let query = match turn % 16 {
                0..=4 => format!("q={}", word(&mut random)),
                5..=8 => format!("q={}%20{}", word(&mut random), word(&mut random)),
                9 => format!(
                    "q={}&kind={}",
                    word(&mut random),
                    ["agent", "chain"][random.gen_range(0..2)]
                ),
                10 => format!("tag={}", word(&mut random)),
                11 => format!("q={}&tag={}", word(&mut random), word(&mut random)),
                12 => format!(
                    "q={}&sort={}",
                    word(&mut random),
                    ["downloads", "rating", "newest"][random.gen_range(0..3)]
                ),
                13 => format!(
                    "sort={}&kind={}",
                    ["downloads", "rating", "newest"][random.gen_range(0..3)],
                    ["agent", "chain"][random.gen_range(0..2)]
                ),
                14 => format!(
                    "q={}&page_size=10&page_token={}",
                    word(&mut random),
                    [10, 50][random.gen_range(0..2)]
                ),
                _ => format!("q=nothing{turn}matches"),
            };
            if !queries.contains(&query) {
                queries.push(query);
            }
        }
        queries.push(String::new());
        // Popularity must not follow the order of construction (every sixteenth query would be
        // a no-match): shuffle, then rank.
        for index in (1..queries.len()).rev() {
            queries.swap(index, random.gen_range(0..=index));
        }
        let weights: Vec<f64> = (1..=queries.len())
            .map(|rank| 1.0 / (rank as f64).powf(ZIPF_EXPONENT))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut sum = 0.0;
        for weight in weights {
            sum += weight / total;
            cumulative.push(sum);
        }
        let draws = (0..DRAWS)
            .map(|_| {
                let point: f64 = random.r#gen();
                cumulative
                    .partition_point(|&edge| edge < point)
                    .min(queries.len() - 1) as u16
            })
            .collect();
        Self { queries, draws }
    }

    /// The `n`th search's query string.
    pub fn query(&self, n: u64) -> &str {
        &self.queries[usize::from(self.draws[n as usize % DRAWS])]
    }
}

#[cfg(test)]
mod tests {
    use super::{DISTINCT_SEARCHES, SearchMix};

    #[test]
    fn the_mix_is_the_same_in_every_run_and_skewed_like_a_search_box() {
        let (mix, again) = (SearchMix::new(), SearchMix::new());
        assert!((0..1000).all(|n| mix.query(n) == again.query(n)));
        assert_eq!(mix.queries.len(), DISTINCT_SEARCHES + 1);

        let mut counts = vec![0usize; mix.queries.len()];
        for &draw in &mix.draws {
            counts[usize::from(draw)] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let share = |n: usize| counts[..n].iter().sum::<usize>() as f64 / mix.draws.len() as f64;
        // Zipf(1) over 321 queries: the first takes about 16%, the first ten about 47%, and the
        // tail is still asked.
        assert!(
            (0.12..0.20).contains(&share(1)),
            "top query share {}",
            share(1)
        );
        assert!(
            (0.40..0.55).contains(&share(10)),
            "top ten share {}",
            share(10)
        );
        assert!(counts.iter().filter(|&&count| count > 0).count() > 250);
    }
}
