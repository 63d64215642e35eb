//! `sankalpa models`: the tenant's model providers (OpenAI-compatible or Anthropic endpoints),
//! their connection test, and the default model runs ask. An API key is read from standard
//! input, never from the command line (where shell history and `ps` would keep it).

use std::io::BufRead;

use clap::Subcommand;
use sankalpa_api::models::{
    DefaultModel, MAX_USAGE_DAYS, ModelProtocol, ModelProvider, ModelUsage, PutModelProvider,
    TestModelProvider, UsageQuery,
};

use crate::context::Context;
use crate::exit::{self, Failure};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The tenant's providers and its default model.
    List,
    /// Adds a provider, or replaces the one of that name (keeping its key unless
    /// --api-key-stdin or --no-api-key).
    #[command(after_help = "Examples:
  printf %s \"$OPENAI_API_KEY\" | sankalpa models put openai --protocol openai --base-url https://api.openai.com/v1 --model gpt-4o-mini --api-key-stdin
  sankalpa models put local --protocol openai --base-url http://localhost:11434/v1 --model llama3.2")]
    Put {
        name: String,
        #[arg(long, value_enum)]
        protocol: Protocol,
        /// `/chat/completions` (openai) or `/messages` (anthropic) is appended.
        #[arg(long)]
        base_url: String,
        /// A model runs may name as `<name>/<model>`; repeat for more (1 to 50).
        #[arg(long = "model", required = true)]
        models: Vec<String>,
        /// Reads the API key from the first line of standard input.
        #[arg(long, conflicts_with = "no_api_key")]
        api_key_stdin: bool,
        /// Removes the stored API key.
        #[arg(long)]
        no_api_key: bool,
    },
    /// Asks the provider a one-word question; exits 1 when it does not answer.
    Test {
        name: String,
        /// The model to ask; the provider's first when absent.
        #[arg(long)]
        model: Option<String>,
    },
    /// Sets the default model, `provider/model`; `--clear` removes it (the fleet's LLM then
    /// answers).
    Default {
        #[arg(required_unless_present = "clear")]
        model: Option<String>,
        #[arg(long, conflicts_with = "model")]
        clear: bool,
    },
    /// Removes a provider (and the default model when it names it).
    Delete { name: String },
    /// The tenant's LLM use per UTC day: tokens, and their cost at the operator's prices.
    Usage {
        /// The last DAYS days, today included (1 to 90).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_USAGE_DAYS)))]
        days: u32,
    },
}

/// The tenant's use for people: one line a day, then the daily limit.
fn usage_lines(usage: &ModelUsage) -> String {
    let mut lines: Vec<String> = usage
        .days
        .iter()
        .map(|day| {
            let cost = if usage.priced {
                format!("  ${:.4}", day.cost_usd)
            } else {
                String::new()
            };
            format!("{}  {:>12} tokens{cost}", day.day, day.tokens)
        })
        .collect();
    if lines.is_empty() {
        lines.push("no LLM use in these days".to_owned());
    }
    if !usage.priced {
        lines.push("(no prices set: the operator's SANKALPA_LLM_PRICES)".to_owned());
    }
    match usage.tokens_per_day {
        Some(limit) => lines.push(format!("limit: {limit} tokens a day")),
        None => lines.push("limit: none".to_owned()),
    }
    lines.join("\n")
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Protocol {
    Openai,
    Anthropic,
}

/// A provider for people: one line.
fn line(provider: &ModelProvider) -> String {
    let protocol = match provider.protocol {
        ModelProtocol::Openai => "openai",
        ModelProtocol::Anthropic => "anthropic",
    };
    let key = if provider.has_api_key {
        "key stored"
    } else {
        "no key"
    };
    format!(
        "{} {protocol} {} [{}] ({key})",
        provider.name,
        provider.base_url,
        provider.models.join(", ")
    )
}

fn key_from_stdin() -> Result<String, Failure> {
    let mut key = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut key)
        .map_err(|err| Failure::Usage(format!("--api-key-stdin: {err}")))?;
    let key = key.trim_end_matches(['\r', '\n']).to_owned();
    if key.is_empty() {
        return Err(Failure::Usage(
            "--api-key-stdin: standard input holds no key".to_owned(),
        ));
    }
    Ok(key)
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    match command {
        Command::List => {
            let list = client.model_providers().await?;
            out.show(
                &list,
                |list| list.providers.iter().map(|p| p.name.clone()).collect(),
                |list| {
                    let mut text = list
                        .providers
                        .iter()
                        .map(line)
                        .collect::<Vec<_>>()
                        .join("\n");
                    let default = list.default_model.as_deref().unwrap_or("(the fleet's)");
                    text.push_str(&format!("\ndefault model: {default}"));
                    text
                },
            )?;
        }
        Command::Put {
            name,
            protocol,
            base_url,
            models,
            api_key_stdin,
            no_api_key,
        } => {
            let api_key = if api_key_stdin {
                Some(key_from_stdin()?)
            } else {
                no_api_key.then(String::new)
            };
            let body = PutModelProvider {
                protocol: match protocol {
                    Protocol::Openai => ModelProtocol::Openai,
                    Protocol::Anthropic => ModelProtocol::Anthropic,
                },
                base_url,
                api_key,
                models,
            };
            let provider = client.put_model_provider(&name, &body).await?;
            out.show(&provider, |p| vec![p.name.clone()], line)?;
        }
        Command::Test { name, model } => {
            let answer = client
                .test_model_provider(&name, &TestModelProvider { model })
                .await?;
            out.show(
                &answer,
                |answer| vec![answer.ok.to_string()],
                |answer| match &answer.error {
                    None => format!("ok: {} answered in {} ms", answer.model, answer.latency_ms),
                    Some(error) => format!("failed after {} ms: {error}", answer.latency_ms),
                },
            )?;
            if !answer.ok {
                return Ok(exit::FAILED);
            }
        }
        Command::Default { model, clear } => {
            let body = DefaultModel {
                model: if clear { None } else { model },
            };
            let set = client.set_default_model(&body).await?;
            out.show(
                &set,
                |set| set.model.iter().cloned().collect(),
                |set| {
                    format!(
                        "default model: {}",
                        set.model.as_deref().unwrap_or("(the fleet's)")
                    )
                },
            )?;
        }
        Command::Usage { days } => {
            let usage = client.model_usage(&UsageQuery { days: Some(days) }).await?;
            out.show(
                &usage,
                |usage| usage.days.iter().map(|day| day.day.clone()).collect(),
                usage_lines,
            )?;
        }
        Command::Delete { name } => {
            client.delete_model_provider(&name).await?;
            if !out.quiet && !out.is_document() {
                println!("deleted {name}");
            }
        }
    }
    Ok(exit::OK)
}
