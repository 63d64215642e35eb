//! The gateway process: configuration from the environment, telemetry, then serve until
//! SIGTERM or Ctrl-C.

use sankalpa_gateway::{Config, Gateway};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before tracing exists, so a bad setting is reported where the operator looks.
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sankalpa-gateway: invalid configuration: {err:#}");
            std::process::exit(2);
        }
    };
    let _telemetry = sankalpa_kit::telemetry::init("gateway")?;
    tracing::info!(?config, "starting the gateway");
    let gateway = Gateway::build(config).await?;
    sankalpa_kit::service::serve_until_signal("gateway", gateway).await
}
