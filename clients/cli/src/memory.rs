//! `sankalpa memory`: a tenant's sessions of key -> JSON entries, and their backups.

use clap::Subcommand;
use sankalpa_api::memory::{
    AllQuery, BackupsQuery, CreateBackup, DeleteKeyQuery, Entry, LoadEntry, Restore, SaveEntry,
};
use sankalpa_api::paging::Page;

use crate::context::Context;
use crate::exit::{self, Failure};
use crate::input;
use crate::output::when;
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The tenant's sessions, newest first.
    Sessions {
        #[command(flatten)]
        page: PageArgs,
    },
    /// A session's entries, by key.
    #[command(after_help = "Example:\n  sankalpa memory ls run-42 --prefix plan")]
    Ls {
        session: String,
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One entry's value.
    Get { session: String, key: String },
    /// Writes an entry (creating the session on its first write).
    #[command(after_help = "Examples:
  sankalpa memory set run-42 plan '{\"steps\": [\"design\"]}'
  sankalpa memory set run-42 plan @plan.json --expect-version 3 --ttl 3600")]
    Set {
        session: String,
        key: String,
        /// Any JSON value (or a YAML mapping or list), `@file`, or `-` for stdin.
        value: String,
        /// Write only if the key is at this version now (0: only if it is absent); exits 5
        /// otherwise.
        #[arg(long)]
        expect_version: Option<u64>,
        /// The entry expires this many seconds after the write.
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Deletes one key, or with no key the whole session.
    Rm {
        session: String,
        key: Option<String>,
        /// Delete the key only if it is at this version now.
        #[arg(long, requires = "key")]
        expect_version: Option<u64>,
    },
    /// Backs a session up; prints the backup's id.
    Backup {
        session: String,
        /// A note for people, e.g. "before migration".
        #[arg(long, default_value = "")]
        label: String,
    },
    /// The tenant's backups (of one session when named).
    Backups {
        session: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Restores a backup, into its own session or another.
    Restore {
        backup: String,
        /// The session to restore into (created if absent).
        #[arg(long)]
        into: Option<String>,
    },
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    let entry_row = |entry: &Entry| {
        vec![
            entry.key.clone(),
            entry.version.to_string(),
            when(entry.updated_at),
            entry.value.get().chars().take(60).collect(),
        ]
    };
    match command {
        Command::Sessions { page } => {
            let mut list = page
                .fetch(Page::default(), async |page| {
                    client.memory_sessions(page).await
                })
                .await?;
            out.show(
                &list,
                |list| {
                    list.sessions
                        .iter()
                        .map(|session| session.id.clone())
                        .collect()
                },
                |list| {
                    let rows = list
                        .sessions
                        .iter()
                        .map(|session| {
                            vec![
                                session.id.clone(),
                                session.entry_count.to_string(),
                                when(session.updated_at),
                            ]
                        })
                        .collect();
                    out.table(&["session", "entries", "updated"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        Command::Ls {
            session,
            prefix,
            page,
        } => {
            let mut list = page
                .fetch(
                    AllQuery {
                        session_id: session,
                        key_prefix: prefix,
                        ..Default::default()
                    },
                    async |query| client.entries(query).await,
                )
                .await?;
            out.show(
                &list,
                |list| list.entries.iter().map(|entry| entry.key.clone()).collect(),
                |list| {
                    let rows = list.entries.iter().map(entry_row).collect();
                    out.table(&["key", "version", "updated", "value"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        Command::Get { session, key } => {
            let entry = client
                .load(&LoadEntry {
                    session_id: session,
                    key,
                })
                .await?;
            out.show(
                &entry,
                |entry| vec![entry.key.clone()],
                |entry| entry.value.get().to_owned(),
            )?;
        }
        Command::Set {
            session,
            key,
            value,
            expect_version,
            ttl,
        } => {
            let body = SaveEntry {
                session_id: session,
                key,
                value: input::document("VALUE", &value)?,
                expected_version: expect_version,
                ttl_seconds: ttl,
            };
            let entry = client.save(&body).await?;
            out.show(
                &entry,
                |entry| vec![entry.key.clone()],
                |entry| format!("{} is at version {}", entry.key, entry.version),
            )?;
        }
        Command::Rm {
            session,
            key: Some(key),
            expect_version,
        } => {
            let query = DeleteKeyQuery {
                expected_version: expect_version,
            };
            let deleted = client.delete_key(&session, &key, &query).await?;
            out.show(
                &deleted,
                |_| Vec::new(),
                |deleted| match deleted.deleted {
                    true => format!("deleted {key}"),
                    false => format!("{key} was absent"),
                },
            )?;
        }
        Command::Rm {
            session, key: None, ..
        } => {
            let deleted = client.delete_session(&session).await?;
            out.show(
                &deleted,
                |_| Vec::new(),
                |deleted| format!("deleted {session} ({} entries)", deleted.deleted_entries),
            )?;
        }
        Command::Backup { session, label } => {
            let backup = client
                .backup(&CreateBackup {
                    session_id: session,
                    label,
                })
                .await?;
            out.show(
                &backup,
                |backup| vec![backup.id.clone()],
                |backup| {
                    format!(
                        "backup {} of {} ({} entries)",
                        backup.id, backup.session_id, backup.entry_count
                    )
                },
            )?;
        }
        Command::Backups { session, page } => {
            let mut list = page
                .fetch(
                    BackupsQuery {
                        session_id: session,
                        ..Default::default()
                    },
                    async |query| client.backups(query).await,
                )
                .await?;
            out.show(
                &list,
                |list| {
                    list.backups
                        .iter()
                        .map(|backup| backup.id.clone())
                        .collect()
                },
                |list| {
                    let rows = list
                        .backups
                        .iter()
                        .map(|backup| {
                            vec![
                                backup.id.clone(),
                                backup.session_id.clone(),
                                backup.entry_count.to_string(),
                                backup.label.clone(),
                                when(backup.created_at),
                            ]
                        })
                        .collect();
                    out.table(&["id", "session", "entries", "label", "created"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        Command::Restore { backup, into } => {
            let restored = client
                .restore(&Restore {
                    backup_id: backup,
                    target_session_id: into,
                })
                .await?;
            out.show(
                &restored,
                |_| Vec::new(),
                |restored| format!("restored {} entries", restored.restored_entries),
            )?;
        }
    }
    Ok(exit::OK)
}
