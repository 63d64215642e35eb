use sankalpa_auth::{Auth, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().inspect_err(|err| eprintln!("bad configuration: {err:#}"))?;
    let _telemetry = sankalpa_kit::telemetry::init("auth")?;
    tracing::info!(?config, "starting auth");
    let pool = sankalpa_kit::postgres::connect(&config.infra.database_url).await?;
    let auth = Auth::build(config, pool).await?;
    sankalpa_kit::service::serve_until_signal("auth", auth).await
}
