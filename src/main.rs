use std::process::ExitCode;

use chirp::{Application, Config, app, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::load();
    telemetry::init(&config);
    let result = async { Application::build(config).await?.run_until(app::shutdown_signal()).await }.await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "chirp failed");
            eprintln!("chirp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
