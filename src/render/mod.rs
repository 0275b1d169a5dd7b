//! Pure renderers: what members and operators read. Each takes core values
//! and returns what to show; none does I/O.
//!
//! - [`card`]: the `/ud` card (embed content) as plain data.
//! - [`text`]: the `/ud` answer as text (the CLI, and the fallback).
//! - [`history`]: the `/history` answer and the `history` table.
//! - [`leaderboard`]: the `/leaderboard` page and the `leaderboard` table.
//! - [`audit`]: the audit log (`/audit`, `audit`).
//! - [`adjust`]: what a correction did (`/adjust`, `adjust`).
//! - [`settings`]: a server's settings (`/settings show`, `settings --json`).
//! - [`chart`]: the last days as a PNG chart (with `canvas`, its drawing
//!   surface, and `fonts`, the bundled fonts and the text layout).

pub mod adjust;
pub mod audit;
mod canvas;
pub mod card;
pub mod chart;
mod fonts;
pub mod history;
pub mod leaderboard;
pub mod settings;
pub mod text;

pub use card::{render_card, Card, CardField, CHART_FILE};
pub use chart::{render_chart, ChartError};
pub use history::{render_history, render_history_table};
pub use leaderboard::{render_leaderboard, render_leaderboard_table, Board};
pub use text::{format_duration, freshness_note, render_ud};
