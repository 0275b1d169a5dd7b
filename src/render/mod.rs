//! Pure renderers: what members and operators read. Each takes core values
//! and returns what to show; none does I/O.
//!
//! - [`text`]: the `/ud` answer as text.
//! - [`history`]: the `/history` answer and the `history` table.
//! - [`chart`]: the last days as a PNG chart (with `canvas`, its drawing surface).

mod canvas;
pub mod chart;
pub mod history;
pub mod text;

pub use chart::{render_chart, ChartError};
pub use history::{render_history, render_history_table};
pub use text::{format_duration, render_ud};
