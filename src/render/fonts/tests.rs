use super::*;

fn chain() -> &'static Fonts {
    fonts().expect("the bundled fonts parse")
}

/// Names from the scripts a study server is likely to see, in the title as
/// the chart draws it: every character has a glyph in some bundled font.
#[test]
fn international_names_have_no_missing_glyph() {
    let mut boxes = Vec::new();
    for name in [
        "学习者",
        "공부",
        "นักเรียน",
        "विद्यार्थी",
        "طالب",
        "תלמיד",
        "📚🔥",
        "👩‍💻 Ada",
        "李明 さくら",
        "Zoë Дмитрий",
    ] {
        let missing = missing_glyphs(&format!("{name}: last 14 days"));
        if !missing.is_empty() {
            boxes.push((name, missing));
        }
    }
    assert!(boxes.is_empty(), "drawn as boxes: {boxes:?}");
}

#[test]
fn a_character_in_no_font_is_reported() {
    // U+1FAE0 (Unicode 14) is newer than every bundled font.
    assert_eq!(missing_glyphs("Ada \u{1FAE0}"), vec!['\u{1FAE0}']);
}

/// The x of the first glyph that came from byte `cluster` of the text.
fn x_of(line: &Line, cluster: usize) -> f32 {
    line.glyphs.iter().find(|g| g.cluster == cluster).unwrap().x
}

/// A right-to-left name reads right to left inside the left-to-right title:
/// its first letter is its rightmost glyph, and the colon after it in the
/// text comes after it on the line.
#[test]
fn hebrew_and_arabic_names_run_right_to_left() {
    let fonts = chain();
    for name in ["תלמיד", "طالب"] {
        let title = format!("{name}: last 14 days");
        let line = fonts.layout(&title, 18.0);
        let letters: Vec<usize> = name.char_indices().map(|(i, _)| i).collect();
        for pair in letters.windows(2) {
            assert!(
                x_of(&line, pair[0]) > x_of(&line, pair[1]),
                "{name}: byte {} drawn left of byte {}",
                pair[0],
                pair[1]
            );
        }
        assert!(
            x_of(&line, name.len()) > x_of(&line, 0),
            "{name}: the colon"
        );
    }
}

/// Arabic letters take their joined forms: the shaped glyphs of "طالب" are
/// not the isolated forms a one-glyph-per-character canvas draws.
#[test]
fn arabic_letters_join() {
    let fonts = chain();
    let line = fonts.layout("طالب", 18.0);
    let font = &fonts.fonts[line.glyphs[0].font];
    let isolated: Vec<u16> = "طالب"
        .chars()
        .map(|c| font.shaper.glyph_index(c).unwrap().0)
        .collect();
    let mut shaped: Vec<u16> = line.glyphs.iter().map(|g| g.id.0).collect();
    shaped.reverse(); // visual to logical order
    assert_eq!(shaped.len(), isolated.len());
    assert_ne!(shaped[0], isolated[0], "ط takes its initial form");
    assert_ne!(shaped[3], isolated[3], "ب takes its final form");
}

/// Devanagari is shaped: conjuncts and the reph take fewer glyphs than
/// characters, and the vowel sign ि is drawn before the consonant it follows.
#[test]
fn devanagari_is_shaped() {
    let fonts = chain();
    let name = "विद्यार्थी";
    let line = fonts.layout(name, 18.0);
    assert!(
        line.glyphs.len() < name.chars().count(),
        "{}",
        line.glyphs.len()
    );
    let font = &fonts.fonts[line.glyphs[0].font];
    let va = font.shaper.glyph_index('व').unwrap().0;
    assert_ne!(line.glyphs[0].id.0, va, "ि comes first");
    assert_eq!(line.glyphs[1].id.0, va);
}
