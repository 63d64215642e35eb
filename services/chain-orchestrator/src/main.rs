use sankalpa_chain_orchestrator::{Config, Orchestrator};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().inspect_err(|err| eprintln!("bad configuration: {err:#}"))?;
    let _telemetry = sankalpa_kit::telemetry::init("chain-orchestrator")?;
    tracing::info!(?config, "starting chain-orchestrator");
    let pool = sankalpa_kit::postgres::connect(&config.infra.database_url).await?;
    let orchestrator = Orchestrator::build(config, pool).await?;
    sankalpa_kit::service::serve_until_signal("chain-orchestrator", orchestrator).await
}
