use sankalpa_agent_runner::{AgentRunner, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().inspect_err(|err| eprintln!("bad configuration: {err:#}"))?;
    let _telemetry = sankalpa_kit::telemetry::init("agent-runner")?;
    tracing::info!(?config, "starting agent-runner");
    let pool = sankalpa_kit::postgres::connect(&config.infra.database_url).await?;
    let runner = AgentRunner::build(config, pool).await?;
    sankalpa_kit::service::serve_until_signal("agent-runner", runner).await
}
