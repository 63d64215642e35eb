use sankalpa_memory::{Config, Memory};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().inspect_err(|err| eprintln!("bad configuration: {err:#}"))?;
    let _telemetry = sankalpa_kit::telemetry::init("memory")?;
    tracing::info!(?config, "starting memory");
    let pool = sankalpa_kit::postgres::connect(&config.infra.database_url).await?;
    let memory = Memory::build(config, pool).await?;
    sankalpa_kit::service::serve_until_signal("memory", memory).await
}
