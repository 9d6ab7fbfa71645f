//! `latch serve`: the web application until SIGTERM or Ctrl-C.

use std::io::Write;

use super::support::CliError;
use crate::app::App;
use crate::config::Config;

pub(super) async fn serve(config: Config) -> Result<(), CliError> {
    // Signal handlers first: a SIGTERM right after the address is printed stops gracefully.
    let stop = crate::app::shutdown_signal();
    let app = App::build(config)
        .await
        .map_err(|e| CliError::new(e.to_string()))?;
    let url = app.state().config.public_url.clone().unwrap_or_default();
    // Written with errors ignored: a closed stdout (`latch serve | head -1`) must not stop
    // the server.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "latch listening on http://{} (public URL {url})",
        app.local_addr()
    );
    let _ = writeln!(
        out,
        "Create the first admin with: latch user add <username> <email> --role admin"
    );
    if let Err(reason) = &app.state().relying_party {
        let _ = writeln!(out, "{reason}");
    }
    let _ = out.flush();
    drop(out);
    tracing::info!(addr = %app.local_addr(), "listening");
    app.run_until(stop)
        .await
        .map_err(|e| CliError::new(format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}
