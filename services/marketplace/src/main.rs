use sankalpa_marketplace::{Config, Marketplace};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().inspect_err(|err| eprintln!("bad configuration: {err:#}"))?;
    let _telemetry = sankalpa_kit::telemetry::init("marketplace")?;
    tracing::info!(?config, "starting marketplace");
    let pool = sankalpa_kit::postgres::connect(&config.infra.database_url).await?;
    let marketplace = Marketplace::build(config, pool).await?;
    sankalpa_kit::service::serve_until_signal("marketplace", marketplace).await
}
