use sankalpa_triggers::{Config, Triggers};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().inspect_err(|err| eprintln!("bad configuration: {err:#}"))?;
    let _telemetry = sankalpa_kit::telemetry::init("triggers")?;
    tracing::info!(?config, "starting triggers");
    let pool = sankalpa_kit::postgres::connect(&config.infra.database_url).await?;
    let triggers = Triggers::build(config, pool).await?;
    sankalpa_kit::service::serve_until_signal("triggers", triggers).await
}
