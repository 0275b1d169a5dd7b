//! The `/ud` chart: the last local days as stacked bars (camera on below,
//! camera off on top, in hours) with day labels, and the messages per day in
//! a strip panel under them. A PNG of [`WIDTH`] × [`HEIGHT`] on an opaque
//! dark card, so it reads the same on Discord's dark (#313338) and light
//! (#FFFFFF) themes. Pure CPU work: the bot calls it from `spawn_blocking`.

// Pixel geometry, seconds in a day and message counts are far below 2^23:
// converting them to floats loses nothing that shows.
#![allow(clippy::cast_precision_loss)]

use chrono::NaiveDate;

use unicode_segmentation::UnicodeSegmentation as _;

use super::canvas::{Align, Canvas, Rgb};
use super::fonts::missing_glyphs;
use crate::core::daily::DayTotals;

/// How many days the chart shows.
pub const CHART_DAYS: usize = 14;
/// Image width in pixels.
pub const WIDTH: u32 = 800;
/// Image height in pixels.
pub const HEIGHT: u32 = 400;
/// The card's background (every pixel not drawn on).
pub const BACKGROUND: Rgb = [0x1E, 0x1F, 0x22];
/// Bars: time with the camera on.
pub const CAM_ON: Rgb = [0x57, 0xF2, 0x87];
/// Bars: time with the camera off.
pub const CAM_OFF: Rgb = [0x5D, 0xAD, 0xEC];
/// The messages panel's bars.
pub const MESSAGES: Rgb = [0xFE, 0xE7, 0x5C];
/// The rows the voice bars may occupy (`PLOT_TOP..PLOT_BOTTOM`).
pub const PLOT_TOP: i32 = 60;
pub const PLOT_BOTTOM: i32 = 290;

const TEXT: Rgb = [0xF2, 0xF3, 0xF5];
const MUTED: Rgb = [0xB5, 0xBA, 0xC1];
const GRID: Rgb = [0x3A, 0x3C, 0x42];
const TITLE_X: f32 = 20.0;
const TITLE_SIZE: f32 = 18.0;
const PLOT_LEFT: i32 = 56;
const PLOT_RIGHT: i32 = 784;
const DAY_LABEL_Y: f32 = 308.0;
const MSG_TOP: i32 = 320;
const MSG_BOTTOM: i32 = 370;
const MSG_BAR_MAX: i32 = 30;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("no days to draw")]
    NoDays,
    #[error("a bundled font does not parse")]
    Font,
    #[error("cannot encode the PNG: {0}")]
    Encode(String),
}

/// Draws `days` (oldest first) under `title` as a PNG.
///
/// # Errors
/// `days` is empty, or encoding failed.
pub fn render_chart(days: &[DayTotals], title: &str) -> Result<Vec<u8>, ChartError> {
    if days.is_empty() {
        return Err(ChartError::NoDays);
    }
    let mut c = Canvas::new(WIDTH, HEIGHT, BACKGROUND)?;
    let legend_left = legend(&mut c);
    let title = fit(&c, title, TITLE_SIZE, legend_left - TITLE_X - 16.0);
    c.text(&title, TITLE_X, 32.0, TITLE_SIZE, Align::Left, TEXT);

    let scale = HourScale::for_max(days.iter().map(DayTotals::voice_secs).max().unwrap_or(0));
    let plot_h = f64::from(PLOT_BOTTOM - PLOT_TOP);
    let px = |secs: i64| to_px(secs as f64 * plot_h / f64::from(scale.top_secs()));
    for k in 0..=scale.top_hours / scale.step {
        let y = PLOT_BOTTOM - px(i64::from(k * scale.step) * 3600);
        c.fill_rect(PLOT_LEFT, y, PLOT_RIGHT, y + 1, GRID);
        let label = format!("{}h", k * scale.step);
        c.text(
            &label,
            (PLOT_LEFT - 8) as f32,
            y as f32 + 4.0,
            12.0,
            Align::Right,
            MUTED,
        );
    }
    c.text(
        "msgs",
        (PLOT_LEFT - 8) as f32,
        (MSG_BOTTOM - 4) as f32,
        11.0,
        Align::Right,
        MUTED,
    );

    let max_messages = days.iter().map(|d| d.messages).max().unwrap_or(0).max(1);
    for (i, day) in days.iter().enumerate() {
        let (x0, x1) = bar_span(i, days.len());
        let centre = (x0 + x1) as f32 / 2.0;
        // Camera on at the bottom, camera off stacked on it; the total is
        // rounded once so the stack is as tall as the day's voice time.
        let total = px(day.voice_secs());
        let on = px(day.cam_on_secs).min(total);
        c.fill_rect(x0, PLOT_BOTTOM - on, x1, PLOT_BOTTOM, CAM_ON);
        c.fill_rect(x0, PLOT_BOTTOM - total, x1, PLOT_BOTTOM - on, CAM_OFF);

        let colour = if i + 1 == days.len() { TEXT } else { MUTED };
        c.text(
            &day_label(day.date),
            centre,
            DAY_LABEL_Y,
            12.0,
            Align::Center,
            colour,
        );

        let h = to_px(day.messages as f64 * f64::from(MSG_BAR_MAX) / max_messages as f64);
        let (m0, m1) = (x0 + (x1 - x0) / 4, x1 - (x1 - x0) / 4);
        c.fill_rect(m0, MSG_BOTTOM - h, m1, MSG_BOTTOM, MESSAGES);
        c.text(
            &day.messages.to_string(),
            centre,
            (MSG_BOTTOM + 16) as f32,
            12.0,
            Align::Center,
            TEXT,
        );
    }
    c.fill_rect(PLOT_LEFT, MSG_TOP - 6, PLOT_RIGHT, MSG_TOP - 5, GRID);
    c.encode_png()
}

/// The hour axis: gridlines every `step` hours up to `top_hours`.
struct HourScale {
    top_hours: u32,
    step: u32,
}

impl HourScale {
    /// At most six gridline steps of a round number of hours, above `max_secs`.
    fn for_max(max_secs: i64) -> HourScale {
        let hours = u32::try_from((max_secs.max(1) + 3599) / 3600).unwrap_or(u32::MAX / 2);
        let step = [1, 2, 3, 4, 6, 8, 12]
            .into_iter()
            .find(|s| hours.div_ceil(*s) <= 6)
            .unwrap_or_else(|| hours.div_ceil(6));
        HourScale {
            top_hours: step * hours.div_ceil(step),
            step,
        }
    }

    fn top_secs(&self) -> u32 {
        self.top_hours.saturating_mul(3600)
    }
}

/// The columns `[x0, x1)` of day `i`'s bar among `n` days.
fn bar_span(i: usize, n: usize) -> (i32, i32) {
    let column = f64::from(PLOT_RIGHT - PLOT_LEFT) / n as f64;
    let centre = f64::from(PLOT_LEFT) + column * (i as f64 + 0.5);
    let half = column * 0.3;
    (to_px(centre - half), to_px(centre + half))
}

/// "Mo 23".
fn day_label(date: NaiveDate) -> String {
    let weekday: String = date.format("%a").to_string().chars().take(2).collect();
    format!("{weekday} {}", date.format("%d"))
}

/// `text`, cut short with "…" to be at most `max_width` wide at `size`.
fn fit(c: &Canvas, text: &str, size: f32, max_width: f32) -> String {
    if c.text_width(text, size) <= max_width {
        return text.to_owned();
    }
    // Whole graphemes only: a flag, an emoji sequence or a letter with its
    // accents is never cut in half.
    let mut graphemes: Vec<&str> = text.graphemes(true).collect();
    while !graphemes.is_empty() {
        graphemes.pop();
        let cut = format!("{}…", graphemes.concat().trim_end());
        if c.text_width(&cut, size) <= max_width {
            return cut;
        }
    }
    String::new()
}

/// Draws the legend at the top right; returns its left edge.
fn legend(c: &mut Canvas) -> f32 {
    let items = [
        (CAM_ON, "camera on"),
        (CAM_OFF, "camera off"),
        (MESSAGES, "messages"),
    ];
    let width: f32 = items
        .iter()
        .map(|(_, l)| 12.0 + 6.0 + c.text_width(l, 12.0) + 16.0)
        .sum();
    let mut x = WIDTH as f32 - 20.0 - width + 16.0;
    let left = x;
    for (colour, label) in items {
        let x0 = to_px(f64::from(x));
        c.fill_rect(x0, 21, x0 + 12, 33, colour);
        c.text(label, x + 18.0, 32.0, 12.0, Align::Left, MUTED);
        x += 12.0 + 6.0 + c.text_width(label, 12.0) + 16.0;
    }
    left
}

/// A pixel coordinate or length: rounded, and small by construction.
#[allow(clippy::cast_possible_truncation)]
fn to_px(v: f64) -> i32 {
    v.round().clamp(-1e6, 1e6) as i32
}

#[cfg(test)]
mod tests;

/// The chart's title for the member called `name`: "{name}: last 14 days",
/// or "Last 14 days" when a character of the name is in no bundled font
/// (a script the chain does not cover, an emoji newer than Symbola): it
/// would draw as a box. The embed around the chart shows the name either way.
#[must_use]
pub fn chart_title(name: &str) -> String {
    if missing_glyphs(name).is_empty() {
        format!("{name}: last {CHART_DAYS} days")
    } else {
        format!("Last {CHART_DAYS} days")
    }
}
