//! `sankalpa market`: search the marketplace, publish chains and custom agents, install,
//! review and yank versions.

use clap::Subcommand;
use sankalpa_api::marketplace::{
    InstallItem, InstallsQuery, Item, ItemKind, PublishItem, ReviewItem, SearchQuery, SearchSort,
    Visibility, YankVersion,
};

use crate::context::Context;
use crate::exit::{self, Failure};
use crate::input;
use crate::output::when;
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Public items and the tenant's private ones, matching QUERY.
    #[command(
        after_help = "Example:\n  sankalpa market search \"api tests\" --kind chain --sort downloads"
    )]
    Search {
        query: Option<String>,
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// Only items with this tag.
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, value_enum)]
        sort: Option<Sort>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One item and its versions.
    Show { item: String },
    /// Installs an item into the tenant: ITEM (the latest version) or ITEM@VERSION.
    #[command(after_help = "Example:\n  sankalpa market install 0194...@1.2.0")]
    Install { item: String },
    /// Publishes FILE (a chain definition, or a custom agent definition with --kind agent) as a
    /// version of the item SLUG.
    #[command(
        after_help = "Example:\n  sankalpa market publish chain.json --slug build-and-test --name 'Build and test' --version 1.0.0 --public"
    )]
    Publish {
        /// The package: a JSON or YAML file (YAML when it ends .yaml or .yml), `-` for stdin.
        file: String,
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long, value_enum, default_value = "chain")]
        kind: Kind,
        #[arg(long, default_value = "")]
        description: String,
        /// A tag (repeat it).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Visible to every tenant (a new item is private otherwise).
        #[arg(long)]
        public: bool,
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Yanks a version (or with --undo brings it back).
    Yank {
        item: String,
        version: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        undo: bool,
    },
    /// Reviews an item, 1 to 5.
    Review {
        item: String,
        #[arg(long)]
        rating: u32,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// The tenant's installs.
    Installs {
        /// Only installs of this item.
        #[arg(long)]
        item: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Chain,
    Agent,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Sort {
    Relevance,
    Downloads,
    Rating,
    Newest,
}

fn kind(kind: Kind) -> ItemKind {
    match kind {
        Kind::Chain => ItemKind::Chain,
        Kind::Agent => ItemKind::Agent,
    }
}

/// An item for people: one line.
fn line(item: &Item) -> String {
    format!(
        "{} {} ({} {}, {}) {}",
        item.id,
        item.name,
        item.kind,
        item.latest_version.as_deref().unwrap_or("-"),
        item.visibility,
        item.description
    )
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    match command {
        Command::Search {
            query,
            kind: of_kind,
            tag,
            sort,
            page,
        } => {
            let sort = sort.map(|sort| match sort {
                Sort::Relevance => SearchSort::Relevance,
                Sort::Downloads => SearchSort::Downloads,
                Sort::Rating => SearchSort::Rating,
                Sort::Newest => SearchSort::Newest,
            });
            let mut list = page
                .fetch(
                    SearchQuery {
                        q: query,
                        kind: of_kind.map(kind),
                        tag,
                        sort,
                        ..Default::default()
                    },
                    async |query| client.search(query).await,
                )
                .await?;
            out.show(
                &list,
                |list| list.items.iter().map(|item| item.id.clone()).collect(),
                |list| {
                    let rows = list
                        .items
                        .iter()
                        .map(|item| {
                            vec![
                                item.id.clone(),
                                item.slug.clone(),
                                item.kind.clone(),
                                item.latest_version.clone().unwrap_or_else(|| "-".into()),
                                item.downloads.to_string(),
                                format!("{:.1} ({})", item.rating_average, item.rating_count),
                                item.name.clone(),
                            ]
                        })
                        .collect();
                    out.table(
                        &[
                            "id",
                            "slug",
                            "kind",
                            "latest",
                            "downloads",
                            "rating",
                            "name",
                        ],
                        rows,
                    )
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        Command::Show { item } => {
            let found = client.item(&item).await?;
            let versions = client.versions(&item).await?;
            if out.is_document() || out.quiet {
                out.show(&found, |item| vec![item.id.clone()], line)?;
            } else {
                let rows = versions
                    .versions
                    .iter()
                    .map(|version| {
                        vec![
                            version.version.clone(),
                            if version.yanked { "yanked" } else { "" }.to_owned(),
                            when(version.published_at),
                        ]
                    })
                    .collect();
                println!(
                    "{}\n\n{}",
                    line(&found),
                    out.table(&["version", "", "published"], rows)
                );
            }
        }
        Command::Install { item } => {
            let (id, version) = match item.split_once('@') {
                Some((id, version)) => (id.to_owned(), Some(version.to_owned())),
                None => (item, None),
            };
            let installed = client.install(&id, &InstallItem { version }).await?;
            out.show(
                &installed,
                |installed| {
                    installed
                        .install
                        .iter()
                        .map(|install| install.target.clone())
                        .collect()
                },
                |installed| match (&installed.install, installed.already_installed) {
                    (Some(install), false) => format!(
                        "installed {} {} as {}",
                        install.item_id, install.version, install.target
                    ),
                    (Some(install), true) => format!(
                        "{} {} was installed already",
                        install.item_id, install.version
                    ),
                    (None, _) => "installed".to_owned(),
                },
            )?;
        }
        Command::Publish {
            file,
            slug,
            name,
            version,
            kind: of_kind,
            description,
            tags,
            public,
            notes,
        } => {
            let package = input::file("FILE", &file)?;
            let body = PublishItem {
                slug,
                name,
                description,
                tags,
                kind: kind(of_kind),
                visibility: public.then_some(Visibility::Public),
                version,
                package,
                release_notes: notes,
            };
            let published = client.publish(&body).await?;
            out.show(
                &published,
                |published| published.item.iter().map(|item| item.id.clone()).collect(),
                |published| published.item.as_ref().map_or_else(String::new, line),
            )?;
        }
        Command::Yank {
            item,
            version,
            reason,
            undo,
        } => {
            let body = YankVersion {
                reason,
                unyank: undo,
            };
            let version = client.yank(&item, &version, &body).await?;
            out.show(
                &version,
                |version| vec![version.version.clone()],
                |version| {
                    format!(
                        "{} {}",
                        version.version,
                        if version.yanked {
                            "yanked"
                        } else {
                            "available"
                        }
                    )
                },
            )?;
        }
        Command::Review {
            item,
            rating,
            comment,
        } => {
            let review = client
                .review(&item, &ReviewItem { rating, comment })
                .await?;
            out.show(
                &review,
                |review| vec![review.id.clone()],
                |review| format!("reviewed {}: {} of 5", review.item_id, review.rating),
            )?;
        }
        Command::Installs { item, page } => {
            let mut list = page
                .fetch(
                    InstallsQuery {
                        item_id: item,
                        ..Default::default()
                    },
                    async |query| client.installs(query).await,
                )
                .await?;
            out.show(
                &list,
                |list| {
                    list.installs
                        .iter()
                        .map(|install| install.target.clone())
                        .collect()
                },
                |list| {
                    let rows = list
                        .installs
                        .iter()
                        .map(|install| {
                            vec![
                                install.item_id.clone(),
                                install.version.clone(),
                                install.target.clone(),
                                when(install.installed_at),
                            ]
                        })
                        .collect();
                    out.table(&["item", "version", "target", "installed"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
        }
    }
    Ok(exit::OK)
}
