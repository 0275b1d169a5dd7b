//! The chart's bundled fonts and its one-line text layout: bidi order
//! (`unicode-bidi`), a per-grapheme fallback chain (the first font that has
//! every character of the grapheme) and shaping of each same-font piece
//! (`rustybuzz`: Arabic joining, Devanagari conjuncts and vowel signs, Thai
//! marks, kerning). The canvas rasterises the glyphs with `ab_glyph`.
//!
//! No system font or library is used: the fonts are compiled in, licences
//! in `assets/fonts/LICENSE-*.txt`.

use std::ops::Range;
use std::sync::OnceLock;

use ab_glyph::{Font as _, FontRef, GlyphId, PxScale};
use rustybuzz::{Direction, UnicodeBuffer};
use unicode_bidi::{BidiInfo, Level};
use unicode_segmentation::UnicodeSegmentation as _;

/// One bundled font: its bytes, and the characters it is preferred for even
/// when an earlier font has them too (`DejaVu` has Arabic and Hebrew letters,
/// but Noto's shape and look better).
struct Bundled {
    bytes: &'static [u8],
    claims: fn(char) -> bool,
}

/// The fallback chain, in order. `DejaVu` Sans first (Latin, Greek,
/// Cyrillic, symbols; every other text on the chart), then the scripts it
/// lacks or draws poorly, then CJK and Hangul, then monochrome emoji.
const CHAIN: [Bundled; 7] = [
    Bundled {
        bytes: include_bytes!("../../assets/fonts/DejaVuSans.ttf"),
        claims: |_| false,
    },
    Bundled {
        bytes: include_bytes!("../../assets/fonts/NotoSansArabic-Regular.ttf"),
        claims: |c| matches!(c, '\u{0600}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}'),
    },
    Bundled {
        bytes: include_bytes!("../../assets/fonts/NotoSansHebrew-Regular.ttf"),
        claims: |c| matches!(c, '\u{0590}'..='\u{05FF}' | '\u{FB1D}'..='\u{FB4F}'),
    },
    Bundled {
        bytes: include_bytes!("../../assets/fonts/NotoSansDevanagari-Regular.ttf"),
        claims: |_| false,
    },
    Bundled {
        bytes: include_bytes!("../../assets/fonts/NotoSansThai-Regular.ttf"),
        claims: |_| false,
    },
    Bundled {
        bytes: include_bytes!("../../assets/fonts/DroidSansFallback.ttf"),
        claims: |_| false,
    },
    Bundled {
        bytes: include_bytes!("../../assets/fonts/Symbola.ttf"),
        claims: |_| false,
    },
];

struct Font {
    raster: FontRef<'static>,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
    claims: fn(char) -> bool,
}

pub(super) struct Fonts {
    fonts: Vec<Font>,
    /// Pixels per em for each pixel of `size`: the primary font's, so text in
    /// `DejaVu` is as large as `ab_glyph`'s `PxScale::from(size)` draws it.
    em_per_size: f32,
}

/// A glyph placed on a line: `x` from the line's start, `dy` up from the
/// baseline, `cluster` the byte offset in the text it came from.
pub(super) struct Placed {
    pub font: usize,
    pub id: GlyphId,
    pub x: f32,
    pub dy: f32,
    #[cfg_attr(not(test), allow(dead_code))] // the tests check the visual order
    pub cluster: usize,
}

/// A laid-out line.
#[derive(Default)]
pub(super) struct Line {
    /// In visual order, left to right.
    pub glyphs: Vec<Placed>,
    pub width: f32,
    /// Characters no bundled font has a glyph for (each drawn as a box).
    pub missing: Vec<char>,
}

/// The parsed fonts, parsed once per process; `None` if one does not parse.
pub(super) fn fonts() -> Option<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS.get_or_init(Fonts::parse).as_ref()
}

/// The characters of `text` that no bundled font can draw (all of them if
/// the fonts do not parse).
pub(super) fn missing_glyphs(text: &str) -> Vec<char> {
    match fonts() {
        Some(f) => f.layout(text, 16.0).missing,
        None => text.chars().collect(),
    }
}

impl Fonts {
    fn parse() -> Option<Fonts> {
        let fonts = CHAIN
            .iter()
            .map(|b| {
                let raster = FontRef::try_from_slice(b.bytes).ok()?;
                let shaper = rustybuzz::Face::from_slice(b.bytes, 0)?;
                Some(Font {
                    units_per_em: f32::from(rustybuzz::ttf_parser::Face::units_per_em(&shaper)),
                    raster,
                    shaper,
                    claims: b.claims,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let primary = fonts.first()?;
        let em_per_size = primary.units_per_em / primary.raster.height_unscaled();
        Some(Fonts { fonts, em_per_size })
    }

    /// The rasteriser of font `font` and the scale that gives it the em of
    /// the other fonts at `size`.
    pub(super) fn raster(&self, font: usize, size: f32) -> (&FontRef<'static>, PxScale) {
        let f = &self.fonts[font];
        let em = size * self.em_per_size;
        (
            &f.raster,
            PxScale::from(em / f.units_per_em * f.raster.height_unscaled()),
        )
    }

    /// Lays `text` out on one line at pixel size `size`. The paragraph is
    /// left to right (the chart's own words are English); right-to-left
    /// runs inside it (an Arabic or Hebrew name) are reversed as a whole.
    pub(super) fn layout(&self, text: &str, size: f32) -> Line {
        let em = size * self.em_per_size;
        let mut line = Line::default();
        let bidi = BidiInfo::new(text, Some(Level::ltr()));
        for para in &bidi.paragraphs {
            let (levels, runs) = bidi.visual_runs(para, para.range.clone());
            for run in runs {
                let rtl = levels[run.start].is_rtl();
                let mut pieces = self.font_runs(text, run);
                if rtl {
                    pieces.reverse();
                }
                for (font, range) in pieces {
                    self.shape(&mut line, font, text, range, rtl, em);
                }
            }
        }
        line.missing.dedup();
        line
    }

    /// `run` of `text` cut where the font changes, in logical order.
    fn font_runs(&self, text: &str, run: Range<usize>) -> Vec<(usize, Range<usize>)> {
        let mut out: Vec<(usize, Range<usize>)> = Vec::new();
        for (i, g) in text[run.clone()].grapheme_indices(true) {
            let font = self.font_for(g);
            let at = run.start + i..run.start + i + g.len();
            match out.last_mut() {
                Some((f, r)) if *f == font => r.end = at.end,
                _ => out.push((font, at)),
            }
        }
        out
    }

    /// The font for one grapheme: one that claims its first character and has
    /// them all, else the first that has them all, else the primary (which
    /// draws a box; the layout reports it missing).
    fn font_for(&self, grapheme: &str) -> usize {
        let has_all = |f: &Font| {
            grapheme
                .chars()
                .filter(|c| !is_ignorable(*c))
                .all(|c| f.shaper.glyph_index(c).is_some_and(|g| g.0 != 0))
        };
        let first = grapheme.chars().next().unwrap_or(' ');
        self.fonts
            .iter()
            .position(|f| (f.claims)(first) && has_all(f))
            .or_else(|| self.fonts.iter().position(has_all))
            .unwrap_or(0)
    }

    fn shape(
        &self,
        line: &mut Line,
        font: usize,
        text: &str,
        range: Range<usize>,
        rtl: bool,
        em: f32,
    ) {
        let f = &self.fonts[font];
        let piece = &text[range.clone()];
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(piece);
        buffer.set_direction(if rtl {
            Direction::RightToLeft
        } else {
            Direction::LeftToRight
        });
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&f.shaper, &[], buffer);
        let k = em / f.units_per_em;
        for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
            let cluster = info.cluster as usize;
            if info.glyph_id == 0 {
                line.missing.extend(piece[cluster..].chars().next());
            }
            #[allow(clippy::cast_precision_loss)] // font units are small
            let (dx, dy, advance) = (
                pos.x_offset as f32,
                pos.y_offset as f32,
                pos.x_advance as f32,
            );
            line.glyphs.push(Placed {
                font,
                id: GlyphId(u16::try_from(info.glyph_id).unwrap_or(0)),
                x: line.width + dx * k,
                dy: dy * k,
                cluster: range.start + cluster,
            });
            line.width += advance * k;
        }
    }
}

/// Characters that draw nothing and that fonts need not have (joiners,
/// variation selectors, bidi controls, tags): the shaper hides them.
fn is_ignorable(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{E0000}'..='\u{E0FFF}')
}

#[cfg(test)]
mod tests;
