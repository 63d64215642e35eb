//! `sankalpa triggers`: inbound webhook triggers, URLs that start a chain when a signed request
//! reaches them, with the run's input mapped from the request.

use clap::Subcommand;
use sankalpa_api::inbound::{
    CreateInboundTrigger, CreatedInboundTrigger, InboundSignature, InboundTrigger,
    UpdateInboundTrigger,
};
use sankalpa_api::paging::Page;

use crate::context::Context;
use crate::exit::{self, Failure};
use crate::output::when;
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The tenant's triggers, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Creates a trigger running a stored chain (--chain) or a template (--template); prints
    /// its URL and its signing secret, once.
    #[command(
        after_help = "Example:\n  sankalpa triggers create --template hello-sequence --signature github --mapping '{\"name\": \"${body.pusher.name}\"}'"
    )]
    Create {
        /// A stored chain's id.
        #[arg(
            long,
            required_unless_present = "template",
            conflicts_with = "template"
        )]
        chain: Option<String>,
        /// A template's name.
        #[arg(long)]
        template: Option<String>,
        #[arg(long, default_value = "")]
        name: String,
        /// The run's input, its strings `${body.a.b}`, `${headers.name}`, `${query.name}`
        /// replaced from the request: JSON or YAML inline, @file, or - for stdin
        /// (`{"body": "${body}"}` without it).
        #[arg(long)]
        mapping: Option<String>,
        /// How senders sign: Standard Webhooks headers, or GitHub's X-Hub-Signature-256.
        #[arg(long, value_enum, default_value_t = SignatureArg::Standard)]
        signature: SignatureArg,
    },
    /// One trigger.
    Show { id: String },
    /// Changes what is given; --disable makes its URL answer 404 until --enable.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        mapping: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Removes a trigger and revokes its API key; its URL answers 404 from then on.
    Delete { id: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SignatureArg {
    Standard,
    Github,
}

impl From<SignatureArg> for InboundSignature {
    fn from(arg: SignatureArg) -> Self {
        match arg {
            SignatureArg::Standard => Self::Standard,
            SignatureArg::Github => Self::Github,
        }
    }
}

fn signature_name(signature: InboundSignature) -> &'static str {
    match signature {
        InboundSignature::Standard => "standard",
        InboundSignature::Github => "github",
    }
}

/// What a trigger runs: its chain's id or its template's name.
fn runs(trigger: &InboundTrigger) -> String {
    trigger
        .chain_id
        .clone()
        .or_else(|| trigger.template.clone())
        .unwrap_or_default()
}

/// A trigger for people: one line.
fn line(trigger: &InboundTrigger) -> String {
    let state = if trigger.enabled {
        "enabled"
    } else {
        "disabled"
    };
    format!(
        "{} {} {} signature ({state})",
        trigger.id,
        runs(trigger),
        signature_name(trigger.signature)
    )
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    let shown = match command {
        Command::List { page } => {
            let mut list = page
                .fetch(Page::default(), async |query| client.triggers(query).await)
                .await?;
            out.show(
                &list,
                |list| list.triggers.iter().map(|t| t.id.clone()).collect(),
                |list| {
                    let rows = list
                        .triggers
                        .iter()
                        .map(|trigger| {
                            vec![
                                trigger.id.clone(),
                                trigger.name.clone(),
                                runs(trigger),
                                signature_name(trigger.signature).to_owned(),
                                if trigger.enabled { "yes" } else { "no" }.to_owned(),
                                when(trigger.created_at),
                            ]
                        })
                        .collect();
                    out.table(
                        &["id", "name", "runs", "signature", "enabled", "created"],
                        rows,
                    )
                },
            )?;
            page.tell_rest(out, &mut list);
            return Ok(exit::OK);
        }
        Command::Create {
            chain,
            template,
            name,
            mapping,
            signature,
        } => {
            let body = CreateInboundTrigger {
                name,
                chain_id: chain,
                template,
                input_mapping: crate::input::value("--mapping", mapping.as_deref())?,
                signature: Some(signature.into()),
            };
            let created = client.create_trigger(&body).await?;
            out.show(
                &created,
                |created| vec![created.trigger.id.clone()],
                |created| with_url_and_secret(&context.gateway, created),
            )?;
            return Ok(exit::OK);
        }
        Command::Show { id } => client.trigger(&id).await?,
        Command::Update {
            id,
            name,
            mapping,
            enable,
            disable,
        } => {
            let body = UpdateInboundTrigger {
                name,
                input_mapping: crate::input::value("--mapping", mapping.as_deref())?,
                enabled: (enable || disable).then_some(enable),
            };
            client.update_trigger(&id, &body).await?
        }
        Command::Delete { id } => {
            client.delete_trigger(&id).await?;
            if !out.quiet && !out.is_document() {
                println!("deleted {id}");
            }
            return Ok(exit::OK);
        }
    };
    out.show(&shown, |trigger| vec![trigger.id.clone()], line)?;
    Ok(exit::OK)
}

/// A new trigger for people: the line, where senders post, and the secret, not shown again.
fn with_url_and_secret(gateway: &str, created: &CreatedInboundTrigger) -> String {
    format!(
        "{}\nurl: {}/api/webhooks/in/{}\nsecret: {}  (shown this once)",
        line(&created.trigger),
        gateway.trim_end_matches('/'),
        created.trigger.id,
        created.secret
    )
}
