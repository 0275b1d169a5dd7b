//! A small opaque RGB canvas for the chart: filled rectangles, text in the
//! bundled fonts (laid out by `fonts`), PNG encoding. Opaque on purpose: the image looks the same on
//! Discord's dark and light themes.

use ab_glyph::{point, Font as _};

use super::chart::ChartError;
use super::fonts::{fonts, Fonts};

pub(super) type Rgb = [u8; 3];

/// Where text is anchored horizontally.
#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Center,
    Right,
}

pub(super) struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    fonts: &'static Fonts,
}

impl Canvas {
    pub(super) fn new(width: u32, height: u32, background: Rgb) -> Result<Canvas, ChartError> {
        let fonts = fonts().ok_or(ChartError::Font)?;
        let rgb = background.repeat(width as usize * height as usize);
        Ok(Canvas {
            width,
            height,
            rgb,
            fonts,
        })
    }

    /// Fills `[x0, x1) × [y0, y1)`, clipped to the canvas.
    pub(super) fn fill_rect(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, color: Rgb) {
        let (w, h) = (self.width_i32(), self.height_i32());
        for y in y0.clamp(0, h)..y1.clamp(0, h) {
            for x in x0.clamp(0, w)..x1.clamp(0, w) {
                let i = self.index(x, y);
                self.rgb[i..i + 3].copy_from_slice(&color);
            }
        }
    }

    /// Draws `text` of pixel size `size` with its baseline at `y`: laid out
    /// by [`Fonts::layout`] (bidi order, fallback fonts, shaping).
    pub(super) fn text(&mut self, text: &str, x: f32, y: f32, size: f32, align: Align, color: Rgb) {
        let line = self.fonts.layout(text, size);
        let x = match align {
            Align::Left => x,
            Align::Center => x - line.width / 2.0,
            Align::Right => x - line.width,
        };
        for placed in &line.glyphs {
            let (font, scale) = self.fonts.raster(placed.font, size);
            let glyph = placed
                .id
                .with_scale_and_position(scale, point(x + placed.x, y - placed.dy));
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            // Glyph bounds are whole pixels inside an 800×400 canvas.
            #[allow(clippy::cast_possible_truncation)]
            let (bx, by) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|gx, gy, coverage| {
                #[allow(clippy::cast_possible_wrap)] // glyph offsets are tiny
                self.blend(bx + gx as i32, by + gy as i32, color, coverage);
            });
        }
    }

    /// Width of `text` at pixel size `size`.
    pub(super) fn text_width(&self, text: &str, size: f32) -> f32 {
        self.fonts.layout(text, size).width
    }

    /// The image as an 8-bit RGB PNG.
    pub(super) fn encode_png(&self) -> Result<Vec<u8>, ChartError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| ChartError::Encode(e.to_string()))?;
        writer
            .write_image_data(&self.rgb)
            .map_err(|e| ChartError::Encode(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| ChartError::Encode(e.to_string()))?;
        Ok(out)
    }

    fn blend(&mut self, x: i32, y: i32, color: Rgb, coverage: f32) {
        if x < 0 || y < 0 || x >= self.width_i32() || y >= self.height_i32() {
            return;
        }
        let alpha = coverage.clamp(0.0, 1.0);
        let at = self.index(x, y);
        for (dst, src) in self.rgb[at..at + 3].iter_mut().zip(color) {
            // A weighted mean of two bytes is a byte.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let mixed = (f32::from(src) * alpha + f32::from(*dst) * (1.0 - alpha)).round() as u8;
            *dst = mixed;
        }
    }

    fn index(&self, x: i32, y: i32) -> usize {
        // Callers clip to the canvas first, so both are non-negative.
        #[allow(clippy::cast_sign_loss)]
        let (x, y) = (x as usize, y as usize);
        (y * self.width as usize + x) * 3
    }

    fn width_i32(&self) -> i32 {
        i32::try_from(self.width).unwrap_or(i32::MAX)
    }

    fn height_i32(&self) -> i32 {
        i32::try_from(self.height).unwrap_or(i32::MAX)
    }
}
