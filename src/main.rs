use std::process::ExitCode;

use chirp::{Application, Config, app, telemetry};

/// jemalloc rather than the system allocator: glibc's malloc keeps an arena
/// per busy thread (tokio's workers, sqlx's SQLite threads, the blocking
/// pool), and the memory those arenas free stays with the process.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
