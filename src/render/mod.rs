//! Pure renderers: what members and operators read. Each takes core values
//! and returns what to show; none does I/O.

pub mod text;

pub use text::{format_duration, render_ud};
