//! Pure renderers: what members and operators read. Each takes core values
//! and returns what to show; none does I/O.
//!
//! - [`text`]: the `/ud` answer as text.
//! - [`chart`]: the last days as a PNG chart (with `canvas`, its drawing surface).

mod canvas;
pub mod chart;
pub mod text;

pub use chart::{render_chart, ChartError};
pub use text::{format_duration, render_ud};
