//! Slash commands, one file each; [`all`] is the registry poise serves.

mod history;
mod ud;

use super::{Data, Error};

/// Every slash command the bot offers.
pub(super) fn all() -> Vec<poise::Command<Data, Error>> {
    vec![ud::ud(), history::history()]
}
