//! Who the CLI calls as, and the fleet it calls: `login`, `logout`, `whoami`, `status`, and the
//! tenant's API keys (`keys`) and users (`users`).

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};
use sankalpa_api::client::{Client, Credential};
use sankalpa_api::keys::CreateApiKey;
use sankalpa_api::paging::Page;
use sankalpa_api::sessions::{Login, RefreshToken};
use sankalpa_api::users::{CreateUser, SetRoles, User};

use crate::config::Saved;
use crate::context::{self, Context};
use crate::exit::{self, Failure};
use crate::output::when;
use crate::paging::PageArgs;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Signs in and saves the credential for the profile.
    #[command(after_help = "Examples:
  sankalpa login --email ada@example.com          (asks for the password, hidden)
  echo \"$PASSWORD\" | sankalpa login --email ada@example.com --password-stdin
  sankalpa login --api-key sk_...                 (a key made with `sankalpa keys create`)
  sankalpa --profile prod --gateway https://sankalpa.example.com login --email ada@example.com")]
    Login(LoginArgs),
    /// Signs out: revokes the login's tokens and forgets the profile's credential.
    Logout,
    /// Who the profile's credential is.
    Whoami,
    /// The fleet's health: the gateway's version and each service (needs no login).
    Status,
    /// API keys of the tenant (admins): create, list, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Users of the tenant (admins): list, add, roles, rm.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account's email; asked for when neither it nor --api-key is given.
    #[arg(long, conflicts_with = "api_key")]
    email: Option<String>,
    /// Read the password from the first line of stdin instead of a hidden prompt.
    #[arg(long, requires = "email")]
    password_stdin: bool,
    /// Sign in with an API key instead of a password.
    #[arg(long)]
    api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a key; its secret is printed this once.
    #[command(
        after_help = "Example:\n  sankalpa keys create ci --permission agents:execute --expires-in 86400"
    )]
    Create {
        name: String,
        /// A permission of the key (repeat it); each one the caller holds.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Lifetime in seconds; the server's longest (90 days) when absent.
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// The tenant's keys.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revokes a key by id: the tokens made from it stop working at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// The tenant's users.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Adds a user; the password is asked for (hidden), or read from stdin.
    #[command(after_help = "Example:\n  sankalpa users add grace@example.com --role developer")]
    Add {
        email: String,
        /// A role (repeat it): admin, developer or viewer; developer when none.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password from the first line of stdin instead of a hidden prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replaces a user's roles.
    #[command(after_help = "Example:\n  sankalpa users roles 0194... viewer")]
    Roles {
        id: String,
        #[arg(required = true)]
        roles: Vec<String>,
    },
    /// Removes a user from the tenant.
    Rm { id: String },
}

pub async fn run(context: &Context, command: Command) -> Result<u8, Failure> {
    match command {
        Command::Login(args) => login(context, args).await,
        Command::Logout => logout(context).await,
        Command::Whoami => whoami(context).await,
        Command::Status => status(context).await,
        Command::Keys(command) => keys(context, command).await,
        Command::Users(command) => users(context, command).await,
    }
}

async fn login(context: &Context, args: LoginArgs) -> Result<u8, Failure> {
    let client = context.anonymous()?;
    if let Some(key) = args.api_key {
        // Checked before it is saved: 401 for a key that is not one.
        client
            .with_credential(Credential::ApiKey(key.clone()))
            .principal()
            .await?;
        context.save(Some(Saved {
            api_key: Some(key),
            ..Saved::default()
        }))?;
        remember_gateway(context)?;
        eprintln!(
            "Signed in to {} with an API key (profile {}).",
            context.gateway, context.profile
        );
        return Ok(exit::OK);
    }
    let email = match args.email {
        Some(email) => email,
        None => prompt_line("Email: ")?,
    };
    let password = password(args.password_stdin)?;
    let pair = client.login(&Login { email, password }).await?;
    context.save(Some(context::from_pair(&pair)))?;
    remember_gateway(context)?;
    let who = pair
        .user
        .map_or_else(String::new, |user| format!(" as {}", user.email));
    eprintln!(
        "Signed in to {}{who} (profile {}).",
        context.gateway, context.profile
    );
    Ok(exit::OK)
}

/// Puts the gateway in the profile on its first login, so later commands need no --gateway.
fn remember_gateway(context: &Context) -> Result<(), Failure> {
    let mut config = context.dir.config()?;
    let profile = config.profiles.entry(context.profile.clone()).or_default();
    if profile.gateway.as_deref() == Some(context.gateway.as_str()) {
        return Ok(());
    }
    profile.gateway = Some(context.gateway.clone());
    context.dir.save_config(&config)
}

/// A password from stdin, or asked for on the terminal without echoing it.
fn password(from_stdin: bool) -> Result<String, Failure> {
    if from_stdin {
        read_stdin_line()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")
            .map_err(|err| Failure::Usage(format!("cannot read the password: {err}")))
    } else {
        Err(Failure::Usage(
            "no terminal to ask the password on: pass --password-stdin".into(),
        ))
    }
}

fn prompt_line(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    read_stdin_line()
}

fn read_stdin_line() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| Failure::Usage(format!("cannot read stdin: {err}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn logout(context: &Context) -> Result<u8, Failure> {
    let Some(saved) = context.saved()? else {
        eprintln!("Profile {} was not signed in.", context.profile);
        return Ok(exit::OK);
    };
    if let Some(refresh_token) = saved.refresh_token {
        // Forgotten here whatever the gateway says: an expired token is as good as revoked.
        if let Err(error) = context
            .anonymous()?
            .logout(&RefreshToken { refresh_token })
            .await
        {
            eprintln!("sankalpa: the gateway did not revoke the login ({error}); forgotten here");
        }
    }
    context.save(None)?;
    eprintln!("Signed out of profile {}.", context.profile);
    Ok(exit::OK)
}

/// A user's profile (`/api/users/me`); an API key, which has none, as its principal.
async fn whoami(context: &Context) -> Result<u8, Failure> {
    let client = context.client().await?;
    let principal = client.principal().await?;
    if principal.kind == "user" {
        let user = client.me().await?;
        context.out.show(
            &user,
            |user| vec![user.id.clone()],
            |user| {
                format!(
                    "{} ({})\ntenant  {}\nroles   {}\ngateway {}",
                    user.email,
                    user.display_name,
                    user.tenant_id,
                    user.roles.join(", "),
                    client.base()
                )
            },
        )?;
    } else {
        context.out.show(
            &principal,
            |principal| vec![principal.id.clone()],
            |principal| {
                format!(
                    "API key {}\ntenant      {}\npermissions {}\ngateway     {}",
                    principal.id,
                    principal.tenant_id,
                    principal.permissions.join(", "),
                    client.base()
                )
            },
        )?;
    }
    Ok(exit::OK)
}

async fn status(context: &Context) -> Result<u8, Failure> {
    let status = Client::new(&context.gateway)?.status().await?;
    let out = &context.out;
    out.show(
        &status,
        |status| {
            status
                .services
                .iter()
                .map(|service| service.name.clone())
                .collect()
        },
        |status| {
            let rows = status
                .services
                .iter()
                .map(|service| vec![service.name.clone(), out.status(&service.status)])
                .collect();
            format!(
                "{} {} (version {}, up {} s)\n\n{}",
                context.gateway,
                out.status(&status.status),
                status.version,
                status.uptime_seconds,
                out.table(&["service", "status"], rows)
            )
        },
    )?;
    Ok(exit::OK)
}

async fn keys(context: &Context, command: KeysCommand) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    match command {
        KeysCommand::Create {
            name,
            permissions,
            expires_in,
        } => {
            let body = CreateApiKey {
                name,
                permissions,
                expires_in_seconds: expires_in,
            };
            let created = client.create_key(&body).await?;
            out.show(
                &created,
                |created| vec![created.secret.clone()],
                |created| format!("{}\n(shown this once: keep it now)", created.secret),
            )?;
        }
        KeysCommand::List { page } => {
            let mut list = page
                .fetch(Page::default(), async |page| client.keys(page).await)
                .await?;
            out.show(
                &list,
                |list| list.keys.iter().map(|key| key.id.clone()).collect(),
                |list| {
                    let rows = list
                        .keys
                        .iter()
                        .map(|key| {
                            vec![
                                key.id.clone(),
                                key.name.clone(),
                                key.prefix.clone(),
                                key.permissions.join(","),
                                when(key.expires_at),
                                when(key.revoked_at),
                            ]
                        })
                        .collect();
                    out.table(
                        &["id", "name", "prefix", "permissions", "expires", "revoked"],
                        rows,
                    )
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        KeysCommand::Revoke { id } => {
            let key = client.revoke_key(&id).await?;
            out.show(
                &key,
                |key| vec![key.id.clone()],
                |key| format!("revoked {} ({})", key.id, key.name),
            )?;
        }
    }
    Ok(exit::OK)
}

async fn users(context: &Context, command: UsersCommand) -> Result<u8, Failure> {
    let client = context.client().await?;
    let out = &context.out;
    let describe = |user: &User| format!("{} {} ({})", user.id, user.email, user.roles.join(", "));
    match command {
        UsersCommand::List { page } => {
            let mut list = page
                .fetch(Page::default(), async |page| client.users(page).await)
                .await?;
            out.show(
                &list,
                |list| list.users.iter().map(|user| user.id.clone()).collect(),
                |list| {
                    let rows = list
                        .users
                        .iter()
                        .map(|user| {
                            vec![
                                user.id.clone(),
                                user.email.clone(),
                                user.display_name.clone(),
                                user.roles.join(","),
                                when(user.created_at),
                            ]
                        })
                        .collect();
                    out.table(&["id", "email", "name", "roles", "created"], rows)
                },
            )?;
            page.tell_rest(out, &mut list);
        }
        UsersCommand::Add {
            email,
            roles,
            display_name,
            password_stdin,
        } => {
            let body = CreateUser {
                email,
                password: password(password_stdin)?,
                display_name,
                roles,
            };
            let user = client.create_user(&body).await?;
            out.show(&user, |user| vec![user.id.clone()], describe)?;
        }
        UsersCommand::Roles { id, roles } => {
            let user = client.set_roles(&id, &SetRoles { roles }).await?;
            out.show(&user, |user| vec![user.id.clone()], describe)?;
        }
        UsersCommand::Rm { id } => {
            client.delete_user(&id).await?;
            eprintln!("removed {id}");
        }
    }
    Ok(exit::OK)
}
