//! The one place a failed command becomes a polite reply.

use super::{Data, Error};

pub(super) async fn on_error(error: poise::FrameworkError<'_, Data, Error>) {
    match error {
        poise::FrameworkError::Command { error, ctx, .. } => {
            tracing::error!(command = %ctx.command().name, error = ?error, "command failed");
            let reply = poise::CreateReply::default()
                .content(
                    "Sorry, something went wrong while answering. Please try again in a moment.",
                )
                .ephemeral(true);
            if let Err(e) = ctx.send(reply).await {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "cannot tell the member the command failed"
                );
            }
        }
        poise::FrameworkError::Setup { error, .. } => {
            tracing::error!(error = ?error, "start-up on Discord failed (registering /ud)");
        }
        other => {
            if let Err(e) = poise::builtins::on_error(other).await {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    "error while handling an error"
                );
            }
        }
    }
}
