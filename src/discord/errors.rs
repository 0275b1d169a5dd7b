//! The one place a failed command becomes a polite reply.

use super::{Data, Error};
use crate::telemetry::cause_chain;

pub(super) async fn on_error(error: poise::FrameworkError<'_, Data, Error>) {
    match error {
        poise::FrameworkError::Command { error, ctx, .. } => {
            tracing::error!(command = %ctx.command().name, error = %cause_chain(error.as_ref()), "command failed");
            let reply = poise::CreateReply::default()
                .content(
                    "Sorry, something went wrong while answering. Please try again in a moment.",
                )
                .ephemeral(true);
            if let Err(e) = ctx.send(reply).await {
                tracing::warn!(
                    error = %cause_chain(&e),
                    "cannot tell the member the command failed"
                );
            }
        }
        poise::FrameworkError::CommandCheckFailed { ctx, .. } => {
            // A standby: the lease holder answers.
            tracing::debug!(command = %ctx.command().name, "not the lease holder; not answering");
        }
        poise::FrameworkError::Setup { error, .. } => {
            tracing::error!(error = %cause_chain(error.as_ref()), "start-up on Discord failed (registering /ud)");
        }
        other => {
            if let Err(e) = poise::builtins::on_error(other).await {
                tracing::error!(
                    error = %cause_chain(&e),
                    "error while handling an error"
                );
            }
        }
    }
}
