//! The `sankalpa` binary as a user runs it, against a real fleet (testkit): each test gets its
//! own fleet, tenant and home folder (`HOME`, `XDG_CONFIG_HOME`), so saved credentials and
//! profiles never leak between tests or from the machine's own config.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use sankalpa_api::chains::{ChainRun, RunsQuery};
use sankalpa_api::client::{Client, Credential};
use sankalpa_api::keys::CreateApiKey;
use sankalpa_api::memory::SaveEntry;
use sankalpa_api::sessions::{Login, RefreshToken};
use sankalpa_api::users::CreateUser;
use serde_json::Value;
use sqlx::PgPool;

/// A fleet, a signed-up admin of a new tenant, and a home folder for the CLI.
struct Setup {
    base: String,
    email: String,
    admin: Client,
    home: tempfile::TempDir,
    _fleet: sankalpa_testkit::Fleet,
    _leftovers: sankalpa_testkit::Leftovers,
}

impl Setup {
    async fn start(pool: PgPool) -> Self {
        Self::start_with(pool, false, |_| {}).await
    }

    /// A fleet with the marketplace and the triggers service too when `marketplace`, its auth
    /// configured further by `configure_auth`.
    async fn start_with(
        pool: PgPool,
        marketplace: bool,
        configure_auth: impl FnOnce(&mut sankalpa_auth::Config),
    ) -> Self {
        let name = sankalpa_testkit::unique_name();
        let infra = sankalpa_testkit::infra(&name);
        let objects = std::env::temp_dir().join(format!("sankalpa-{name}"));
        let leftovers = sankalpa_testkit::Leftovers::new(&infra, vec![objects.clone()]);
        // The rate limiter's first Redis call also connects; five fleets starting at once on two
        // cores can take longer than its 50 ms, which pauses sign-in (503) for that call.
        let patient = |config: &mut sankalpa_gateway::Config| {
            config.rate_limit.redis_timeout = std::time::Duration::from_secs(2);
        };
        let options = sankalpa_testkit::FleetOptions {
            configure_auth,
            configure_gateway: patient,
            marketplace,
            triggers: marketplace,
            llm: None,
        };
        let fleet =
            sankalpa_testkit::Fleet::start_with(pool, &infra, &objects.to_string_lossy(), options)
                .await
                .unwrap();
        let base = fleet.gateway.http_url();
        let email = format!("{name}@example.com");
        let token = sankalpa_testkit::sign_up_through_gateway(&base, &email).await;
        let admin = Client::new(&base)
            .unwrap()
            .with_credential(Credential::Bearer(token));
        Self {
            base,
            email,
            admin,
            home: tempfile::tempdir().unwrap(),
            _fleet: fleet,
            _leftovers: leftovers,
        }
    }

    /// Runs `sankalpa args` with `stdin`, the gateway given by SANKALPA_GATEWAY and `env` set
    /// over it, off the test's runtime (the fleet runs on it while the binary waits).
    async fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
        let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_sankalpa"));
        command
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("SANKALPA_GATEWAY", &self.base)
            .env("NO_COLOR", "1")
            .write_stdin(stdin.to_owned());
        // An empty value unsets the variable, as a user without it would run.
        for (name, value) in env {
            match value.is_empty() {
                true => command.env_remove(name),
                false => command.env(name, value),
            };
        }
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Signs the CLI in as the admin, with the password on stdin.
    async fn login(&self) {
        let login = self
            .run(
                &["login", "--email", &self.email, "--password-stdin"],
                &format!("{}\n", sankalpa_testkit::PASSWORD),
                &[],
            )
            .await;
        assert_eq!(login.status.code(), Some(0), "{}", text(&login.stderr));
    }

    /// Runs `sankalpa` with `args` in a pseudo-terminal (util-linux `script`), as a person at a
    /// terminal would. `exchange` is what the person does: for each pair, once the screen shows
    /// the first, types the second (a line ends with `\n`; `\x03` is Ctrl-C, which the terminal
    /// turns into SIGINT for the command). The screen is `script`'s log, flushed as written;
    /// each wait gives up after 30 s, and the whole command is killed after 120 s.
    async fn run_in_terminal(&self, args: &str, exchange: &[(&str, &str)]) -> Output {
        // exec: the command is the terminal's foreground process itself, so Ctrl-C signals it
        // alone, not a shell that would die of it in between.
        let line = format!("exec {} {args}", env!("CARGO_BIN_EXE_sankalpa"));
        let screen = self.home.path().join(format!(
            "screen-{}.log",
            SCREENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let person = r#"
            while [ $# -ge 2 ]; do
                tries=0
                until grep -qF -- "$1" "$screen" 2>/dev/null || [ $tries -ge 600 ]; do
                    sleep 0.05; tries=$((tries + 1))
                done
                sleep 0.2
                printf '%s' "$2"
                shift 2
            done"#;
        let mut command = std::process::Command::new("bash");
        command
            .arg("-c")
            .arg(format!(
                r#"screen=$1; line=$2; shift 2; ({person}) | timeout -s KILL 120 script -qfec "$line" "$screen""#
            ))
            .arg("bash")
            .arg(&screen)
            .arg(line)
            .args(exchange.iter().flat_map(|(shown, typed)| [shown, typed]))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TERM", "xterm")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("SANKALPA_GATEWAY", &self.base)
            .env("NO_COLOR", "1");
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    fn config_dir(&self) -> std::path::PathBuf {
        self.home.path().join("config").join("sankalpa")
    }
}

/// Numbers the screens of the terminals a test opens.
static SCREENS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: not JSON: {}", text(&output.stdout)))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[sqlx::test(migrations = false)]
async fn a_password_login_is_saved_privately_and_whoami_names_the_user(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let credentials = setup.config_dir().join("credentials.toml");
    assert_eq!(
        mode(&credentials),
        0o600,
        "only the owner may read the tokens"
    );

    let whoami = setup.run(&["whoami", "-o", "json"], "", &[]).await;
    assert_eq!(whoami.status.code(), Some(0), "{}", text(&whoami.stderr));
    let user = json(&whoami);
    assert_eq!(user["email"], setup.email.to_lowercase());
    assert_eq!(user["roles"], serde_json::json!(["admin"]));

    let logout = setup.run(&["logout"], "", &[]).await;
    assert_eq!(logout.status.code(), Some(0));
    let after = setup.run(&["whoami"], "", &[]).await;
    assert_eq!(after.status.code(), Some(4), "signed out is not signed in");
    assert!(text(&after.stderr).contains("sankalpa login"));
}

#[sqlx::test(migrations = false)]
async fn plan_turns_words_into_a_chain_and_runs_it(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let described = "a blog with posts and comments where users log in";
    let plan = setup.run(&["plan", described, "-o", "json"], "", &[]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    let plan = json(&plan);
    assert_eq!(plan["execution_ready"], true, "{plan}");
    let entities = plan["analysis"]["identified_entities"].to_string();
    assert!(
        entities.contains("Post") && entities.contains("Comment"),
        "{entities}"
    );

    let human = setup
        .run(&["plan", described, "--name", "quill"], "", &[])
        .await;
    assert_eq!(human.status.code(), Some(0), "{}", text(&human.stderr));
    let shown = text(&human.stdout);
    assert!(
        shown.contains("STEP") && shown.contains("db_schema"),
        "{shown}"
    );
    assert!(shown.contains("planned by the rules"), "{shown}");

    let ran = setup
        .run(&["plan", described, "--name", "quill", "--run"], "", &[])
        .await;
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran.stderr));
    assert!(
        text(&ran.stdout).contains("completed"),
        "{}",
        text(&ran.stdout)
    );

    let refused = setup.run(&["plan", "tell me a joke"], "", &[]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("command"),
        "{}",
        text(&refused.stderr)
    );
}

#[sqlx::test(migrations = false)]
async fn an_api_key_login_runs_hello_world_with_parseable_json(pool: PgPool) {
    let setup = Setup::start(pool).await;
    let key = setup
        .admin
        .create_key(&CreateApiKey {
            name: "cli".to_owned(),
            permissions: vec!["agents:*".to_owned()],
            expires_in_seconds: None,
        })
        .await
        .unwrap();
    let login = setup
        .run(&["login", "--api-key", &key.secret], "", &[])
        .await;
    assert_eq!(login.status.code(), Some(0), "{}", text(&login.stderr));

    // A key has no profile: whoami names the key, its tenant and what it may do, whether it
    // was saved by login or comes from the environment.
    let key_id = key.key.as_ref().unwrap().id.clone();
    let environment = [("SANKALPA_API_KEY", key.secret.as_str())];
    for env in [&[][..], &environment] {
        let whoami = setup.run(&["whoami", "-o", "json"], "", env).await;
        assert_eq!(whoami.status.code(), Some(0), "{}", text(&whoami.stderr));
        let principal = json(&whoami);
        assert_eq!(principal["kind"], "api_key", "{principal}");
        assert_eq!(principal["id"], key_id.as_str());
        assert_eq!(principal["permissions"], serde_json::json!(["agents:*"]));
    }
    let whoami = setup.run(&["whoami"], "", &[]).await;
    assert!(
        text(&whoami.stdout).starts_with(&format!("API key {key_id}\n")),
        "{}",
        text(&whoami.stdout)
    );
    let made_up = setup
        .run(
            &["--profile", "other", "login", "--api-key", "sk_not_a_key"],
            "",
            &[],
        )
        .await;
    assert_eq!(made_up.status.code(), Some(4), "{}", text(&made_up.stderr));

    let run = setup
        .run(&["agents", "run", "hello_world", "-o", "json"], "", &[])
        .await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let run = json(&run);
    assert_eq!(run["agent"], "hello_world");
    assert_eq!(run["status"], "completed");
    assert!(run["output"].is_object(), "{run}");

    let quiet = setup.run(&["agents", "list", "-q"], "", &[]).await;
    let names = text(&quiet.stdout);
    assert!(names.lines().any(|name| name == "hello_world"), "{names}");

    // For people: a header, then a row an agent, columns aligned, no colour off a terminal.
    let table = setup.run(&["agents", "list"], "", &[]).await;
    let table = text(&table.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CATEGORY", "VERSION", "ORIGIN", "DESCRIPTION"]
    );
    let hello = lines.find(|line| line.starts_with("hello_world ")).unwrap();
    let columns: Vec<&str> = hello.split_whitespace().take(4).collect();
    assert_eq!(columns[3], "builtin", "{hello}");
    assert_eq!(table.lines().count(), names.lines().count() + 1);
    assert!(
        !table.contains('\x1b'),
        "NO_COLOR and a pipe mean no escapes"
    );
}

#[sqlx::test(migrations = false)]
async fn chains_run_follow_draws_each_step_and_exits_by_how_the_run_ended(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let run = setup
        .run(
            &[
                "chains",
                "run",
                "hello-sequence",
                "--input",
                r#"{"name": "Ada"}"#,
                "--follow",
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let ended = json(&run);
    assert_eq!(ended["status"], "completed");
    let steps = ended["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    // The live lines go to stderr, leaving stdout to the run's JSON.
    let progress = text(&run.stderr);
    for step in steps {
        let id = step["id"].as_str().unwrap();
        assert!(
            progress.contains(&format!("{id} (hello_world) attempt 1 started")),
            "{progress}"
        );
        assert!(
            progress.contains(&format!("{id} completed in")),
            "{progress}"
        );
    }

    let events = setup
        .run(
            &[
                "runs",
                "events",
                ended["id"].as_str().unwrap(),
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(events.status.code(), Some(0), "{}", text(&events.stderr));
    let kinds: Vec<String> = text(&events.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("sankalpa.chains.run.started")
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("sankalpa.chains.run.completed")
    );

    // A definition whose only step fails: the command ends 1, as the run did.
    let failing = r#"{"steps": [{"id": "add", "agent": "custom_calculator", "input": {"expression": "1 / 0"}}]}"#;
    let definition = setup.home.path().join("failing.json");
    std::fs::write(&definition, failing).unwrap();
    let failed = setup
        .run(
            &["chains", "run", "--file", definition.to_str().unwrap()],
            "",
            &[],
        )
        .await;
    assert_eq!(
        failed.status.code(),
        Some(1),
        "{}{}",
        text(&failed.stdout),
        text(&failed.stderr)
    );
    assert!(
        text(&failed.stdout).contains("failed"),
        "{}",
        text(&failed.stdout)
    );
}

#[sqlx::test(migrations = false)]
async fn refusals_end_with_their_exit_code_and_one_line_naming_the_field(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;

    let missing = setup
        .run(&["agents", "show", "no_such_agent"], "", &[])
        .await;
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        text(&missing.stderr).starts_with("sankalpa: 404 Not Found"),
        "{}",
        text(&missing.stderr)
    );

    let bad = setup
        .run(
            &[
                "agents",
                "run",
                "custom_calculator",
                "--input",
                r#"{"expression": 42}"#,
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(bad.status.code(), Some(2));
    let line = text(&bad.stderr);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("400 Bad Request") && line.contains("input.expression"),
        "{line}"
    );

    let not_json = setup
        .run(
            &["agents", "run", "hello_world", "--input", "{oops"],
            "",
            &[],
        )
        .await;
    assert_eq!(not_json.status.code(), Some(2));
    assert!(text(&not_json.stderr).contains("--input: not JSON"));

    let usage = setup.run(&["agents", "frobnicate"], "", &[]).await;
    assert_eq!(usage.status.code(), Some(2));

    // A viewer may read, not run.
    let viewer_email = format!("viewer-{}", setup.email);
    setup
        .admin
        .create_user(&CreateUser {
            email: viewer_email.clone(),
            password: sankalpa_testkit::PASSWORD.to_owned(),
            display_name: String::new(),
            roles: vec!["viewer".to_owned()],
        })
        .await
        .unwrap();
    let viewer = setup
        .run(
            &[
                "--profile",
                "viewer",
                "login",
                "--email",
                &viewer_email,
                "--password-stdin",
            ],
            sankalpa_testkit::PASSWORD,
            &[],
        )
        .await;
    assert_eq!(viewer.status.code(), Some(0), "{}", text(&viewer.stderr));
    let listed = setup
        .run(&["--profile", "viewer", "agents", "list"], "", &[])
        .await;
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    let forbidden = setup
        .run(
            &["--profile", "viewer", "agents", "run", "hello_world"],
            "",
            &[],
        )
        .await;
    assert_eq!(forbidden.status.code(), Some(4));
    assert!(
        text(&forbidden.stderr).contains("403 Forbidden"),
        "{}",
        text(&forbidden.stderr)
    );
}

#[sqlx::test(migrations = false)]
async fn profiles_name_gateways_and_the_environment_overrides_them(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    // `login` remembered the gateway in the default profile; another profile names a gateway
    // where nothing listens.
    let config_path = setup.config_dir().join("config.toml");
    let mut config = std::fs::read_to_string(&config_path).unwrap();
    assert!(config.contains(&setup.base), "{config}");
    config.push_str("\n[profiles.nowhere]\ngateway = \"http://127.0.0.1:1\"\noutput = \"json\"\n");
    std::fs::write(&config_path, config).unwrap();

    let unset = [("SANKALPA_GATEWAY", "")];
    let status = setup.run(&["status"], "", &unset).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(text(&status.stdout).contains("chain-orchestrator"));

    let nowhere = setup
        .run(&["--profile", "nowhere", "status"], "", &unset)
        .await;
    assert_eq!(nowhere.status.code(), Some(6), "unreachable is unavailable");
    assert!(text(&nowhere.stderr).contains("could not reach the gateway at http://127.0.0.1:1"));

    // SANKALPA_GATEWAY wins over the profile, and the profile's output format still holds.
    let over = setup
        .run(&["--profile", "nowhere", "status"], "", &[])
        .await;
    assert_eq!(over.status.code(), Some(0), "{}", text(&over.stderr));
    let services = json(&over)["services"].to_string();
    assert!(services.contains("chain-orchestrator"), "{services}");

    // SANKALPA_API_KEY wins over the saved login: a key that is not one is refused.
    let keyed = setup
        .run(&["whoami"], "", &[("SANKALPA_API_KEY", "sk_not_a_key")])
        .await;
    assert_eq!(keyed.status.code(), Some(4), "{}", text(&keyed.stderr));
}

#[sqlx::test(migrations = false)]
async fn at_a_terminal_the_password_is_hidden_and_a_run_is_followed_live(pool: PgPool) {
    let setup = Setup::start(pool).await;
    let login = setup
        .run_in_terminal(
            &format!("login --email {}", setup.email),
            &[("Password:", &format!("{}\n", sankalpa_testkit::PASSWORD))],
        )
        .await;
    let screen = text(&login.stdout);
    assert_eq!(login.status.code(), Some(0), "{screen}");
    assert!(screen.contains("Password:"), "{screen}");
    assert!(screen.contains("Signed in"), "{screen}");
    assert!(
        !screen.contains(sankalpa_testkit::PASSWORD),
        "the password is echoed: {screen}"
    );

    // No --follow: on a terminal following is the default, a line per step as it ends.
    let run = setup
        .run_in_terminal(
            r#"chains run hello-sequence --input '{"name": "Ada"}'"#,
            &[],
        )
        .await;
    let screen = text(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{screen}");
    assert_eq!(
        screen.matches(" completed in ").count(),
        3,
        "two steps and the run: {screen}"
    );
    assert!(
        screen.contains("run ") && screen.contains(" of hello-sequence"),
        "{screen}"
    );
}

/// A definition whose run waits for an approval: it runs until someone decides.
const GATED: &str = r#"{"steps": [
    {"id": "approve", "approval": {"prompt": "Go?", "approvers": ["role:admin"]}},
    {"id": "greet", "agent": "hello_world", "needs": ["approve"]}]}"#;

/// Follows a run of [`GATED`] at a terminal, presses Ctrl-C once it waits, and answers the
/// prompt with `answer`: the screen, the command's output, and the run as the API says.
async fn interrupt_a_followed_run(setup: &Setup, answer: &str) -> (String, Output, ChainRun) {
    setup.login().await;
    let definition = setup.home.path().join("gated.json");
    std::fs::write(&definition, GATED).unwrap();
    let typed = format!("{answer}\n");
    let followed = setup
        .run_in_terminal(
            &format!("chains run --file {}", definition.display()),
            &[
                ("waiting for approval", "\x03"),
                ("[cancel/detach]", &typed),
            ],
        )
        .await;
    let screen = text(&followed.stdout);
    let runs = setup.admin.runs(&RunsQuery::default()).await.unwrap();
    assert_eq!(runs.runs.len(), 1, "{screen}");
    let run = setup.admin.run(&runs.runs[0].id).await.unwrap();
    (screen, followed, run)
}

#[sqlx::test(migrations = false)]
async fn ctrl_c_while_following_then_detach_leaves_the_run_going(pool: PgPool) {
    let setup = Setup::start(pool).await;
    let (screen, followed, run) = interrupt_a_followed_run(&setup, "detach").await;
    assert_eq!(followed.status.code(), Some(0), "{screen}");
    assert!(
        screen.contains(&format!("Run {} goes on without you", run.id)),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("detached: run {}", run.id)),
        "{screen}"
    );
    assert_eq!(run.status, "waiting", "still waiting for its approval");
}

#[sqlx::test(migrations = false)]
async fn ctrl_c_while_following_then_cancel_cancels_the_run_and_ends_1(pool: PgPool) {
    let setup = Setup::start(pool).await;
    let (screen, followed, run) = interrupt_a_followed_run(&setup, "cancel").await;
    assert_eq!(followed.status.code(), Some(1), "{screen}");
    assert_eq!(run.status, "cancelled");
    assert!(
        screen.contains(&format!("run {} cancelled", run.id)),
        "{screen}"
    );
}

#[sqlx::test(migrations = false)]
async fn agents_run_with_artifacts_unpacks_the_files_the_run_wrote(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let out = setup.home.path().join("shop");
    let input = r#"{"project_name": "shop", "entities": [
        {"name": "Product", "fields": [{"name": "title", "type": "string"}]}]}"#;
    let run = setup
        .run(
            &[
                "agents",
                "run",
                "db_schema",
                "--input",
                input,
                "--artifacts",
                out.to_str().unwrap(),
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let ended = json(&run);
    let artifacts = ended["artifacts"].as_array().unwrap();
    assert!(!artifacts.is_empty(), "{ended}");
    for artifact in artifacts {
        let path = out.join(artifact["path"].as_str().unwrap());
        let written = std::fs::read(&path).unwrap_or_else(|err| panic!("{path:?}: {err}"));
        assert_eq!(Some(written.len() as u64), artifact["size_bytes"].as_u64());
    }
    let unpacked = walk(&out);
    assert_eq!(unpacked.len(), artifacts.len(), "{unpacked:?}");
    assert!(
        text(&run.stderr).contains(&format!("{} files in {}", artifacts.len(), out.display())),
        "{}",
        text(&run.stderr)
    );
}

/// Every file under `dir`, at any depth.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[sqlx::test(migrations = false)]
async fn what_agents_list_and_show_print_for_people_is_as_reviewed(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    // Nothing here names an id or an instant today; these keep a snapshot stable should one
    // appear (a custom agent's creation, say).
    let filters = vec![
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[id]",
        ),
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
            "[time]",
        ),
    ];
    let list = setup.run(&["agents", "list"], "", &[]).await;
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));
    let show = setup.run(&["agents", "show", "hello_world"], "", &[]).await;
    assert_eq!(show.status.code(), Some(0), "{}", text(&show.stderr));
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("agents_list", text(&list.stdout));
        insta::assert_snapshot!("agents_show_hello_world", text(&show.stdout));
    });
}

#[sqlx::test(migrations = false)]
async fn memory_is_written_read_compared_and_restored(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let set = setup
        .run(
            &[
                "memory",
                "set",
                "run-42",
                "plan",
                r#"{"steps": ["design"]}"#,
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(set.status.code(), Some(0), "{}", text(&set.stderr));
    assert_eq!(text(&set.stdout).trim(), "plan is at version 1");

    let get = setup
        .run(&["memory", "get", "run-42", "plan", "-o", "json"], "", &[])
        .await;
    let entry = json(&get);
    assert_eq!(entry["value"], serde_json::json!({"steps": ["design"]}));
    assert_eq!(entry["version"], 1);

    // A compare-and-set that lost is a conflict, and says the version it found.
    let stale = setup
        .run(
            &[
                "memory",
                "set",
                "run-42",
                "plan",
                "1",
                "--expect-version",
                "0",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(stale.status.code(), Some(5), "{}", text(&stale.stderr));
    assert!(
        text(&stale.stderr).starts_with("sankalpa: 409 Conflict"),
        "{}",
        text(&stale.stderr)
    );

    let backup = setup
        .run(&["memory", "backup", "run-42", "-q"], "", &[])
        .await;
    assert_eq!(backup.status.code(), Some(0), "{}", text(&backup.stderr));
    let backup_id = text(&backup.stdout).trim().to_owned();
    let removed = setup.run(&["memory", "rm", "run-42"], "", &[]).await;
    assert_eq!(removed.status.code(), Some(0), "{}", text(&removed.stderr));
    let gone = setup
        .run(&["memory", "get", "run-42", "plan"], "", &[])
        .await;
    assert_eq!(gone.status.code(), Some(3));

    let restored = setup
        .run(
            &["memory", "restore", &backup_id, "--into", "run-43"],
            "",
            &[],
        )
        .await;
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{}",
        text(&restored.stderr)
    );
    let listed = setup.run(&["memory", "ls", "run-43", "-q"], "", &[]).await;
    assert_eq!(text(&listed.stdout).trim(), "plan");
}

#[sqlx::test(migrations = false)]
async fn a_detached_run_waits_for_approval_and_runs_approve_finishes_it(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let definition = setup.home.path().join("approval.json");
    std::fs::write(
        &definition,
        r#"{"steps": [
            {"id": "approve", "approval": {"prompt": "Go?", "approvers": ["role:admin"]}},
            {"id": "greet", "agent": "hello_world", "needs": ["approve"],
             "input": {"name": "${steps.approve.input.name}"}}]}"#,
    )
    .unwrap();
    let file = definition.to_str().unwrap();
    let valid = setup.run(&["chains", "validate", file], "", &[]).await;
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stderr));
    assert_eq!(text(&valid.stdout).trim(), "valid: 2 steps");

    // Stored with apply (twice: a new chain, then its second version), then run by id.
    let chain = setup.home.path().join("gated.json");
    let definition_text = std::fs::read_to_string(&definition).unwrap();
    std::fs::write(
        &chain,
        format!(r#"{{"name": "gated", "definition": {definition_text}}}"#),
    )
    .unwrap();
    let chain = chain.to_str().unwrap();
    let first = json(
        &setup
            .run(&["chains", "apply", chain, "-o", "json"], "", &[])
            .await,
    );
    let second = json(
        &setup
            .run(&["chains", "apply", chain, "-o", "json"], "", &[])
            .await,
    );
    assert_eq!(
        (first["version"].as_u64(), second["version"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(first["id"], second["id"]);
    let chain_id = second["id"].as_str().unwrap();

    let started = setup
        .run(&["chains", "run", chain_id, "--detach", "-q"], "", &[])
        .await;
    assert_eq!(started.status.code(), Some(0), "{}", text(&started.stderr));
    let run = text(&started.stdout).trim().to_owned();

    let mut status = String::new();
    for _ in 0..100 {
        let shown = setup
            .run(&["runs", "show", &run, "-o", "json"], "", &[])
            .await;
        status = json(&shown)["status"].as_str().unwrap().to_owned();
        if status == "waiting" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "waiting");
    let waiting = setup
        .run(&["runs", "list", "--status", "waiting", "-q"], "", &[])
        .await;
    assert_eq!(text(&waiting.stdout).trim(), run);

    let approved = setup
        .run(
            &[
                "runs",
                "approve",
                &run,
                "approve",
                "--input",
                r#"{"name": "Grace"}"#,
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(
        approved.status.code(),
        Some(0),
        "{}",
        text(&approved.stderr)
    );
    let events = setup
        .run(&["runs", "events", &run, "--follow", "-q"], "", &[])
        .await;
    assert_eq!(events.status.code(), Some(0), "{}", text(&events.stderr));
    let ended = json(
        &setup
            .run(&["runs", "show", &run, "-o", "json"], "", &[])
            .await,
    );
    assert_eq!(ended["status"], "completed");
    let greeting = ended["steps"][1]["output"].to_string();
    assert!(greeting.contains("Grace"), "{greeting}");

    // Deciding again is a conflict: the step is no longer waiting.
    let again = setup
        .run(&["runs", "reject", &run, "approve"], "", &[])
        .await;
    assert_eq!(again.status.code(), Some(5), "{}", text(&again.stderr));
}

/// What a YAML document printed on stdout holds, as JSON values compare.
fn yaml(output: &Output) -> Value {
    serde_norway::from_str(&text(&output.stdout))
        .unwrap_or_else(|err| panic!("{err}: not YAML: {}", text(&output.stdout)))
}

#[sqlx::test(migrations = false)]
async fn yaml_output_is_the_json_document_and_yaml_files_and_arguments_are_read(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    // Raw JSON passed through (the schemas, the definition) is YAML too, not a quoted string.
    for args in [
        &["agents", "show", "custom_calculator"][..],
        &["chains", "show", "hello-sequence"],
        &["agents", "list", "--category", "custom"],
    ] {
        let as_json = setup.run(&[args, &["-o", "json"]].concat(), "", &[]).await;
        let as_yaml = setup.run(&[args, &["-o", "yaml"]].concat(), "", &[]).await;
        assert_eq!(as_yaml.status.code(), Some(0), "{}", text(&as_yaml.stderr));
        assert_eq!(yaml(&as_yaml), json(&as_json), "{args:?}");
        assert!(!text(&as_yaml.stdout).trim_start().starts_with('{'));
    }

    // A definition in a .yaml file, its first step merged into the second through an anchor,
    // and the input as YAML inline: both reach the API as the JSON they mean.
    let chain = setup.home.path().join("greet.yaml");
    std::fs::write(
        &chain,
        "steps:\n\
         \x20 - &greet\n\
         \x20   id: first\n\
         \x20   agent: hello_world\n\
         \x20   input: {name: \"${input.name}\"}\n\
         \x20 - <<: *greet\n\
         \x20   id: second\n\
         \x20   needs: [first]\n",
    )
    .unwrap();
    let chain = chain.to_str().unwrap();
    let valid = setup.run(&["chains", "validate", chain], "", &[]).await;
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stdout));
    assert_eq!(text(&valid.stdout).trim(), "valid: 2 steps");
    let run = setup
        .run(
            &[
                "chains",
                "run",
                "--file",
                chain,
                "--input",
                "name: Ada",
                "--follow",
                "-o",
                "yaml",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let ended = yaml(&run);
    assert_eq!(ended["status"], "completed");
    assert_eq!(ended["steps"][1]["agent"], "hello_world");
    assert!(
        ended["steps"][1]["output"].to_string().contains("Ada"),
        "{ended}"
    );

    // Not JSON and not a YAML mapping: refused, naming the argument.
    let word = setup
        .run(&["agents", "run", "hello_world", "--input", "Ada"], "", &[])
        .await;
    assert_eq!(word.status.code(), Some(2));
    assert!(
        text(&word.stderr).contains("--input: not JSON (") && text(&word.stderr).contains("YAML"),
        "{}",
        text(&word.stderr)
    );
}

#[sqlx::test(migrations = false)]
async fn list_commands_page_as_asked_and_all_follows_every_page_within_its_bound(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    // One page: the API's document as it is, next_page_token included.
    let first = json(
        &setup
            .run(
                &["agents", "list", "--page-size", "1", "-o", "json"],
                "",
                &[],
            )
            .await,
    );
    assert_eq!(first["agents"].as_array().unwrap().len(), 1, "{first}");
    let token = first["next_page_token"].as_str().unwrap();
    let second = setup
        .run(
            &[
                "agents",
                "list",
                "--page-size",
                "1",
                "--page-token",
                token,
                "-q",
            ],
            "",
            &[],
        )
        .await;
    let second = text(&second.stdout);
    assert_eq!(second.lines().count(), 1, "{second}");
    assert_ne!(second.trim(), first["agents"][0]["name"].as_str().unwrap());
    // For people, a line on stderr says where the next page is.
    let table = setup
        .run(&["agents", "list", "--page-size", "1"], "", &[])
        .await;
    assert!(
        text(&table.stderr).contains("(more: --page-token "),
        "{}",
        text(&table.stderr)
    );

    // --all: one page of one agent at a time, to the last, is the whole catalog.
    let all = setup
        .run(
            &["agents", "list", "--page-size", "1", "--all", "-q"],
            "",
            &[],
        )
        .await;
    assert_eq!(all.status.code(), Some(0), "{}", text(&all.stderr));
    assert_eq!(text(&all.stderr), "", "nothing left to tell");
    let every = setup.run(&["agents", "list", "--all", "-q"], "", &[]).await;
    let names: Vec<String> = text(&all.stdout).lines().map(str::to_owned).collect();
    assert!(names.len() > 30, "{names:?}");
    assert_eq!(text(&every.stdout), text(&all.stdout));

    // Keys page by id: three keys, a page each, joined.
    for name in ["one", "two", "three"] {
        setup
            .admin
            .create_key(&CreateApiKey {
                name: name.to_owned(),
                permissions: vec!["agents:read".to_owned()],
                expires_in_seconds: None,
            })
            .await
            .unwrap();
    }
    let keys = json(
        &setup
            .run(
                &["keys", "list", "--page-size", "1", "--all", "-o", "json"],
                "",
                &[],
            )
            .await,
    );
    assert_eq!(keys["keys"].as_array().unwrap().len(), 3, "{keys}");
    assert_eq!(keys["next_page_token"], Value::Null);

    // Past its bound, --all stops, keeps the token to go on from and says so.
    for index in 0..101 {
        setup
            .admin
            .save(&SaveEntry {
                session_id: "many".to_owned(),
                key: format!("k{index:03}"),
                value: serde_json::value::to_raw_value(&index).unwrap(),
                expected_version: None,
                ttl_seconds: None,
            })
            .await
            .unwrap();
    }
    let bounded = setup
        .run(
            &[
                "memory",
                "ls",
                "many",
                "--page-size",
                "1",
                "--all",
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(bounded.status.code(), Some(0), "{}", text(&bounded.stderr));
    let entries = json(&bounded);
    assert_eq!(entries["entries"].as_array().unwrap().len(), 100);
    assert_eq!(entries["entries"][99]["key"], "k099");
    let rest = entries["next_page_token"].as_str().unwrap();
    assert!(
        text(&bounded.stderr).contains(&format!(
            "stopped after 100 pages (100 items); go on with --page-token {rest}"
        )),
        "{}",
        text(&bounded.stderr)
    );
    let last = setup
        .run(
            &["memory", "ls", "many", "--page-token", rest, "-q"],
            "",
            &[],
        )
        .await;
    assert_eq!(text(&last.stdout).trim(), "k100");
}

/// The saved credential of the default profile, as a TOML table.
fn saved_login(setup: &Setup) -> toml::Table {
    let credentials = std::fs::read_to_string(setup.config_dir().join("credentials.toml")).unwrap();
    let credentials: toml::Table = toml::from_str(&credentials).unwrap();
    credentials["profiles"]["default"]
        .as_table()
        .unwrap()
        .clone()
}

#[sqlx::test(migrations = false)]
async fn an_access_token_the_api_refuses_is_renewed_once_saved_and_the_call_sent_again(
    pool: PgPool,
) {
    // Access tokens live a second here.
    let setup = Setup::start_with(pool, false, |config| {
        config.access_token_ttl = std::time::Duration::from_secs(1);
    })
    .await;
    setup.login().await;
    // The saved expiry says an hour, so the CLI does not refresh ahead: only the API's 401,
    // once the token's second and the verifiers' leeway (5 s) are past, makes it renew.
    let path = setup.config_dir().join("credentials.toml");
    let saved = std::fs::read_to_string(&path).unwrap();
    let mut credentials: toml::Table = toml::from_str(&saved).unwrap();
    let later = chrono::Utc::now().timestamp() + 3600;
    credentials["profiles"]["default"]["expires_at"] = toml::Value::Integer(later);
    std::fs::write(&path, toml::to_string(&credentials).unwrap()).unwrap();
    let before = saved_login(&setup);
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;

    let whoami = setup.run(&["whoami", "-o", "json"], "", &[]).await;
    assert_eq!(whoami.status.code(), Some(0), "{}", text(&whoami.stderr));
    assert_eq!(json(&whoami)["email"], setup.email.to_lowercase());
    let after = saved_login(&setup);
    assert_ne!(after["access_token"], before["access_token"], "renewed");
    assert_ne!(after["refresh_token"], before["refresh_token"], "rotated");
    assert_ne!(after["expires_at"], before["expires_at"]);
    assert_eq!(mode(&path), 0o600);

    // The login revoked (by a fresh session: the admin's token has expired): the renewal is
    // refused too, and the call ends 4 with what to do.
    let fresh = Client::new(&setup.base)
        .unwrap()
        .login(&Login {
            email: setup.email.clone(),
            password: sankalpa_testkit::PASSWORD.to_owned(),
        })
        .await
        .unwrap();
    Client::new(&setup.base)
        .unwrap()
        .with_credential(Credential::Bearer(fresh.access_token))
        .logout(&RefreshToken {
            refresh_token: after["refresh_token"].as_str().unwrap().to_owned(),
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let refused = setup.run(&["agents", "list", "-q"], "", &[]).await;
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused.stderr));
    let line = text(&refused.stderr);
    assert!(
        line.starts_with("sankalpa: 401 Unauthorized") && line.contains("`sankalpa login`"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");
}

#[sqlx::test(migrations = false)]
async fn a_chain_is_published_found_installed_and_yanked_in_the_marketplace(pool: PgPool) {
    let setup = Setup::start_with(pool, true, |_| {}).await;
    setup.login().await;
    let package = setup.home.path().join("package.json");
    std::fs::write(
        &package,
        r#"{"agents": ["hello_world", "hello_world"], "mode": "sequential"}"#,
    )
    .unwrap();
    let published = setup
        .run(
            &[
                "market",
                "publish",
                package.to_str().unwrap(),
                "--slug",
                "greet-twice",
                "--name",
                "Greet twice",
                "--version",
                "1.0.0",
                "--tag",
                "hello",
                "-q",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(
        published.status.code(),
        Some(0),
        "{}",
        text(&published.stderr)
    );
    let item = text(&published.stdout).trim().to_owned();

    let found = setup
        .run(&["market", "search", "--tag", "hello", "-q"], "", &[])
        .await;
    assert_eq!(text(&found.stdout).trim(), item);

    let installed = setup
        .run(
            &["market", "install", &format!("{item}@1.0.0"), "-q"],
            "",
            &[],
        )
        .await;
    assert_eq!(
        installed.status.code(),
        Some(0),
        "{}",
        text(&installed.stderr)
    );
    let chain_id = text(&installed.stdout).trim().to_owned();
    let chain = json(
        &setup
            .run(&["chains", "show", &chain_id, "-o", "json"], "", &[])
            .await,
    );
    assert_eq!(chain["step_count"], 2);
    let installs = setup.run(&["market", "installs", "-q"], "", &[]).await;
    assert_eq!(text(&installs.stdout).trim(), chain_id);

    let yanked = setup
        .run(
            &["market", "yank", &item, "1.0.0", "--reason", "typo"],
            "",
            &[],
        )
        .await;
    assert_eq!(yanked.status.code(), Some(0), "{}", text(&yanked.stderr));
    assert_eq!(text(&yanked.stdout).trim(), "1.0.0 yanked");
    let missing = setup
        .run(
            &["market", "show", "0194c3a2-7c1e-7a4b-9f10-2b3c4d5e6f70"],
            "",
            &[],
        )
        .await;
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing.stderr));
}

#[test]
fn man_pages_and_completions_are_written_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let written = assert_cmd::Command::new(env!("CARGO_BIN_EXE_sankalpa"))
        .arg("manpages")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(written.status.code(), Some(0), "{}", text(&written.stderr));
    for page in [
        "sankalpa.1",
        "sankalpa-chains-run.1",
        "sankalpa-memory-set.1",
    ] {
        let man = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH"),
            "{page}: {man}"
        );
    }
    let bash = assert_cmd::Command::new(env!("CARGO_BIN_EXE_sankalpa"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = text(&bash.stdout);
    assert!(
        script.contains("complete -F") && script.contains("sankalpa__subcmd__chains__subcmd__run"),
        "{script}"
    );
}

#[sqlx::test(migrations = false)]
async fn a_webhook_endpoint_is_created_rotated_tested_and_deleted(pool: PgPool) {
    let setup = Setup::start_with(pool, true, |_| {}).await;
    setup.login().await;
    let created = setup
        .run(
            &[
                "webhooks",
                "create",
                "https://example.com/hooks",
                "--event",
                "sankalpa.chains.run.completed",
                "--event",
                "agents.*.failed",
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let created = json(&created);
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    assert!(first_secret.starts_with("whsec_"), "{created}");
    assert_eq!(
        created["endpoint"]["event_types"],
        serde_json::json!(["sankalpa.chains.run.completed", "agents.*.failed"])
    );

    let listed = setup.run(&["webhooks", "list", "-q"], "", &[]).await;
    assert_eq!(text(&listed.stdout).trim(), id);

    let rotated = setup
        .run(
            &["webhooks", "rotate", &id, "--overlap", "60", "-o", "json"],
            "",
            &[],
        )
        .await;
    let rotated = json(&rotated);
    assert_ne!(rotated["secret"].as_str().unwrap(), first_secret);
    assert!(rotated["endpoint"]["previous_secret_expires_at"].is_string());

    let test = setup.run(&["webhooks", "test", &id, "-q"], "", &[]).await;
    assert_eq!(test.status.code(), Some(0), "{}", text(&test.stderr));
    let delivery = text(&test.stdout).trim().to_owned();
    let detail = setup
        .run(
            &["webhooks", "delivery", &id, &delivery, "-o", "json"],
            "",
            &[],
        )
        .await;
    assert_eq!(
        json(&detail)["delivery"]["event_type"],
        "sankalpa.webhooks.test"
    );
    let listed = setup
        .run(&["webhooks", "deliveries", &id, "-q"], "", &[])
        .await;
    assert_eq!(text(&listed.stdout).trim(), delivery);

    let disabled = setup
        .run(
            &["webhooks", "update", &id, "--disable", "-o", "json"],
            "",
            &[],
        )
        .await;
    assert_eq!(json(&disabled)["enabled"], false);

    // A bad id is the API's 400 (exit 2); a replay needs --delivery or --since (usage, 2).
    let bad = setup.run(&["webhooks", "show", "not-an-id"], "", &[]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("id"), "{}", text(&bad.stderr));
    let usage = setup.run(&["webhooks", "replay", &id], "", &[]).await;
    assert_eq!(usage.status.code(), Some(2));

    let deleted = setup.run(&["webhooks", "delete", &id], "", &[]).await;
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted.stderr));
    let gone = setup.run(&["webhooks", "show", &id], "", &[]).await;
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone.stderr));
}

#[sqlx::test(migrations = false)]
async fn a_schedule_is_created_paused_resumed_and_deleted(pool: PgPool) {
    let setup = Setup::start_with(pool, true, |_| {}).await;
    setup.login().await;
    let created = setup
        .run(
            &[
                "schedules",
                "create",
                "--cron",
                "0 30 6 * * 1-5",
                "--tz",
                "Europe/Paris",
                "--template",
                "hello-sequence",
                "--input",
                "{\"name\": \"Ada\"}",
                "--overlap",
                "buffer-one",
                "--paused",
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let created = json(&created);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["time_zone"], "Europe/Paris");
    assert_eq!(created["overlap"], "buffer_one");
    assert_eq!(created["input"], serde_json::json!({"name": "Ada"}));
    assert_eq!(created["next"], serde_json::json!([]), "paused: {created}");

    let listed = setup.run(&["schedules", "list", "-q"], "", &[]).await;
    assert_eq!(text(&listed.stdout).trim(), id);
    let resumed = setup
        .run(&["schedules", "resume", &id, "-o", "json"], "", &[])
        .await;
    let resumed = json(&resumed);
    assert_eq!(resumed["paused"], false);
    assert_eq!(
        resumed["next"].as_array().map(Vec::len),
        Some(5),
        "{resumed}"
    );
    let paused = setup
        .run(&["schedules", "pause", &id, "-o", "json"], "", &[])
        .await;
    assert_eq!(json(&paused)["paused"], true);

    // A bad expression is the API's 400 (exit 2), naming the field.
    let bad = setup
        .run(
            &[
                "schedules",
                "create",
                "--cron",
                "61 * * * *",
                "--template",
                "t",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("cron"), "{}", text(&bad.stderr));

    let deleted = setup.run(&["schedules", "delete", &id], "", &[]).await;
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted.stderr));
    let gone = setup.run(&["schedules", "show", &id], "", &[]).await;
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone.stderr));
}

#[sqlx::test(migrations = false)]
async fn an_inbound_trigger_is_created_listed_changed_and_deleted(pool: PgPool) {
    let setup = Setup::start_with(pool, true, |_| {}).await;
    setup.login().await;
    let created = setup
        .run(
            &[
                "triggers",
                "create",
                "--template",
                "hello-sequence",
                "--name",
                "on push",
                "--signature",
                "github",
                "--mapping",
                "name: ${body.pusher.name}",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    // For people: the line, where senders post, and the secret, said to be shown once.
    let shown = text(&created.stdout);
    let id = shown.split_whitespace().next().unwrap().to_owned();
    assert!(
        shown.contains(&format!("url: {}/api/webhooks/in/{id}", setup.base)),
        "{shown}"
    );
    let secret_line = shown.lines().find(|l| l.starts_with("secret: ")).unwrap();
    assert!(secret_line.contains("whsec_"), "{shown}");
    assert!(secret_line.ends_with("(shown this once)"), "{shown}");

    let listed = setup.run(&["triggers", "list", "-q"], "", &[]).await;
    assert_eq!(text(&listed.stdout).trim(), id);
    let got = setup
        .run(&["triggers", "show", &id, "-o", "json"], "", &[])
        .await;
    let got = json(&got);
    assert_eq!(got["signature"], "github");
    assert_eq!(got["template"], "hello-sequence");
    assert_eq!(
        got["input_mapping"],
        serde_json::json!({"name": "${body.pusher.name}"})
    );
    assert!(got.get("secret").is_none(), "shown on create only: {got}");

    let changed = setup
        .run(
            &[
                "triggers",
                "update",
                &id,
                "--disable",
                "--mapping",
                "{\"who\": \"${headers.x-user}\"}",
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(changed.status.code(), Some(0), "{}", text(&changed.stderr));
    let changed = json(&changed);
    assert_eq!(changed["enabled"], false);
    assert_eq!(
        changed["input_mapping"],
        serde_json::json!({"who": "${headers.x-user}"})
    );
    assert_eq!(changed["name"], "on push", "unchanged when not given");

    // Bad input is the API's 400 (exit 2) naming the field; a missing target is usage (2).
    let bad = setup
        .run(&["triggers", "update", &id, "--mapping", "[1, 2]"], "", &[])
        .await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("input_mapping"),
        "{}",
        text(&bad.stderr)
    );
    let usage = setup.run(&["triggers", "create"], "", &[]).await;
    assert_eq!(usage.status.code(), Some(2));

    // Another tenant's trigger is not found (exit 3), and this tenant's is untouched by it.
    let other_token =
        sankalpa_testkit::sign_up_through_gateway(&setup.base, &format!("other-{}", setup.email))
            .await;
    let other = Client::new(&setup.base)
        .unwrap()
        .with_credential(Credential::Bearer(other_token));
    let theirs = other
        .create_trigger(&sankalpa_api::inbound::CreateInboundTrigger {
            template: Some("hello-sequence".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    for args in [
        vec!["triggers", "show", &theirs.trigger.id],
        vec!["triggers", "update", &theirs.trigger.id, "--enable"],
        vec!["triggers", "delete", &theirs.trigger.id],
    ] {
        let refused = setup.run(&args, "", &[]).await;
        assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    }
    assert!(other.trigger(&theirs.trigger.id).await.unwrap().enabled);

    let deleted = setup.run(&["triggers", "delete", &id], "", &[]).await;
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted.stderr));
    let gone = setup.run(&["triggers", "show", &id], "", &[]).await;
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone.stderr));
    other.delete_trigger(&theirs.trigger.id).await.unwrap();
}

/// `sankalpa models put local`: an OpenAI-compatible provider at `base_url` serving `model`.
async fn put_local_provider(setup: &Setup, base_url: &str, model: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "models",
        "put",
        "local",
        "--protocol",
        "openai",
        "--base-url",
        base_url,
        "--model",
        model,
    ];
    args.extend_from_slice(extra);
    setup.run(&args, "", &[]).await
}

#[sqlx::test(migrations = false)]
async fn models_put_list_default_test_and_delete_a_provider(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let server = sankalpa_testkit::llm::ProviderFake::start("sk-needed", "hi")
        .await
        .unwrap();
    let put = put_local_provider(&setup, &server.base_url, "llama3", &["-o", "json"]).await;
    assert_eq!(put.status.code(), Some(0), "{}", text(&put.stderr));
    assert_eq!(json(&put)["has_api_key"], false);
    let default = setup
        .run(&["models", "default", "local/llama3"], "", &[])
        .await;
    assert_eq!(default.status.code(), Some(0), "{}", text(&default.stderr));
    let list = setup.run(&["models", "list", "-o", "json"], "", &[]).await;
    let list = json(&list);
    assert_eq!(list["default_model"], "local/llama3", "{list}");
    assert_eq!(list["providers"][0]["models"][0], "llama3");
    // Without the key it wants, the provider refuses: the test says so and exits 1.
    let tested = setup.run(&["models", "test", "local"], "", &[]).await;
    assert_eq!(tested.status.code(), Some(1));
    assert!(
        text(&tested.stdout).contains("401"),
        "{}",
        text(&tested.stdout)
    );
    let deleted = setup.run(&["models", "delete", "local"], "", &[]).await;
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted.stderr));
    let missing = setup.run(&["models", "delete", "local"], "", &[]).await;
    assert_eq!(missing.status.code(), Some(3));

    let usage = setup
        .run(&["models", "usage", "--days", "7"], "", &[])
        .await;
    assert_eq!(usage.status.code(), Some(0), "{}", text(&usage.stderr));
    let shown = text(&usage.stdout);
    assert!(
        shown.contains("no LLM use") && shown.contains("limit:"),
        "{shown}"
    );
    let refused = setup
        .run(&["models", "usage", "--days", "91"], "", &[])
        .await;
    assert_eq!(refused.status.code(), Some(2), "a usage error");
}

#[sqlx::test(migrations = false)]
async fn agents_run_stream_prints_the_model_s_text_as_it_comes(pool: PgPool) {
    let setup = Setup::start(pool).await;
    setup.login().await;
    let pieces = ["Hola ", "a todo ", "el mundo"].map(str::to_owned).to_vec();
    let llm = sankalpa_testkit::llm::StreamingLlm::start(pieces, Duration::from_millis(100))
        .await
        .unwrap();
    let put = put_local_provider(&setup, &llm.base_url, "m1", &[]).await;
    assert_eq!(put.status.code(), Some(0), "{}", text(&put.stderr));
    let input = r#"{"text": "Hello to the whole world", "target_language": "es"}"#;
    let run = setup
        .run(
            &[
                "agents",
                "run",
                "text_translator",
                "--input",
                input,
                "--model",
                "local/m1",
                "--stream",
                "-o",
                "json",
            ],
            "",
            &[],
        )
        .await;
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(
        json(&run)["output"]["translated_text"],
        "Hola a todo el mundo"
    );
    assert_eq!(text(&run.stderr).trim(), "Hola a todo el mundo");
    let sent = llm.seen.requests.lock().unwrap()[0].clone();
    assert_eq!(sent["stream"], true, "the model was asked to stream");
}
