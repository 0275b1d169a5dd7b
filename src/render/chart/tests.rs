use super::*;

fn day(date: &str, on_h: f64, off_h: f64, messages: i64) -> DayTotals {
    #[allow(clippy::cast_possible_truncation)]
    let secs = |h: f64| (h * 3600.0) as i64;
    DayTotals {
        date: NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        cam_on_secs: secs(on_h),
        cam_off_secs: secs(off_h),
        messages,
    }
}

fn fortnight() -> Vec<DayTotals> {
    (0..14)
        .map(|i| {
            let date = format!("2026-11-{:02}", 13 + i);
            match i {
                5 => day(&date, 2.0, 1.0, 7), // the day under test
                13 => day(&date, 0.5, 1.5, 42),
                _ => day(
                    &date,
                    0.25 * f64::from(i % 4),
                    0.1 * f64::from(i % 3),
                    i64::from(i),
                ),
            }
        })
        .collect()
}

/// The decoded RGB image.
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        info.color_type,
        png::ColorType::Rgb,
        "opaque on every theme"
    );
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Pixels of `colour` in columns `x0..x1`, rows `PLOT_TOP..PLOT_BOTTOM`.
fn count(img: &[u8], x0: i32, x1: i32, colour: Rgb) -> usize {
    let mut n = 0;
    for y in PLOT_TOP..PLOT_BOTTOM {
        for x in x0..x1 {
            let i = usize::try_from((y * 800 + x) * 3).unwrap();
            if img[i..i + 3] == colour {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn the_png_decodes_at_the_stated_size_and_bars_are_in_proportion() {
    let days = fortnight();
    let png_bytes = render_chart(&days, "Alice — last 14 days").unwrap();
    let (w, h, img) = decode(&png_bytes);
    assert_eq!((w, h), (WIDTH, HEIGHT));

    let (x0, x1) = bar_span(5, days.len());
    let width = usize::try_from(x1 - x0).unwrap();
    let on = count(&img, x0, x1, CAM_ON) / width;
    let off = count(&img, x0, x1, CAM_OFF) / width;
    assert!(on > 50, "a visible bar: {on} px");
    assert!(
        (on as f64 - 2.0 * off as f64).abs() <= 2.0,
        "2 h : 1 h, got {on} px : {off} px"
    );
    // Every bar pixel of the column is one of the two colours, stacked.
    assert_eq!(count(&img, x0, x1, CAM_ON) % width, 0);
    // The 3 h stack reaches the top of a 3 h scale.
    assert_eq!(on + off, usize::try_from(PLOT_BOTTOM - PLOT_TOP).unwrap());
}

#[test]
fn empty_days_draw_no_bars_and_no_days_is_an_error() {
    let days: Vec<DayTotals> = (0..14)
        .map(|i| day(&format!("2026-11-{:02}", 13 + i), 0.0, 0.0, 0))
        .collect();
    let (_, _, img) = decode(&render_chart(&days, "nobody").unwrap());
    assert_eq!(count(&img, PLOT_LEFT, PLOT_RIGHT, CAM_ON), 0);
    assert!(matches!(render_chart(&[], "x"), Err(ChartError::NoDays)));
}

#[test]
fn a_long_title_is_cut_short_before_the_legend() {
    let title = "user 1700000000000000002 in guild 1700000000000000001: last 14 days (UTC)";
    let (_, _, img) = decode(&render_chart(&fortnight(), title).unwrap());
    let at = |x: i32, y: i32| {
        let i = usize::try_from((y * 800 + x) * 3).unwrap();
        [img[i], img[i + 1], img[i + 2]]
    };
    // The legend's first square (camera on) starts at its left edge.
    let legend = (0..800).find(|x| at(*x, 27) == CAM_ON).unwrap();
    // Nothing is drawn in the title's rows just left of it.
    for y in 10..40 {
        for x in legend - 12..legend {
            assert_eq!(at(x, y), BACKGROUND, "title pixel at ({x}, {y})");
        }
    }
}

#[test]
fn the_scale_has_round_steps_above_the_longest_day() {
    let s = HourScale::for_max(3 * 3600);
    assert_eq!((s.top_hours, s.step), (3, 1));
    let s = HourScale::for_max(9 * 3600 + 1);
    assert_eq!((s.top_hours, s.step), (10, 2));
    let s = HourScale::for_max(25 * 3600);
    assert_eq!((s.top_hours, s.step), (30, 6));
    let s = HourScale::for_max(0);
    assert_eq!((s.top_hours, s.step), (1, 1));
}

#[test]
fn day_labels_are_two_letter_weekdays_and_the_day() {
    assert_eq!(
        day_label(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()),
        "Mo 23"
    );
}

/// WCAG relative luminance of an sRGB colour.
fn luminance(c: Rgb) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
}

fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[test]
fn bars_and_text_stand_out_on_the_card_and_the_card_on_both_themes() {
    for c in [CAM_ON, CAM_OFF, MESSAGES, TEXT, MUTED] {
        assert!(
            contrast(c, BACKGROUND) >= 4.5,
            "{c:?}: {}",
            contrast(c, BACKGROUND)
        );
    }
    // The two bar colours are told apart by more than lightness alone.
    assert_ne!(CAM_ON, CAM_OFF);
    // The opaque card is visible on white and, darker, on Discord's dark grey.
    assert!(contrast(BACKGROUND, [0xFF, 0xFF, 0xFF]) > 10.0);
    assert!(contrast(BACKGROUND, [0x31, 0x33, 0x38]) > 1.2);
}

/// Cutting a long title never splits a grapheme: here flags, each two
/// regional indicators, at every width.
#[test]
fn a_cut_title_keeps_whole_graphemes() {
    let c = Canvas::new(WIDTH, HEIGHT, BACKGROUND).unwrap();
    let flags = "🇫🇷🇯🇵🇧🇷".repeat(10);
    for width in (40..400).step_by(3) {
        #[allow(clippy::cast_precision_loss)]
        let cut = fit(&c, &flags, TITLE_SIZE, width as f32);
        let kept = cut.trim_end_matches('…');
        assert_eq!(
            kept.chars().count() % 2,
            0,
            "half a flag at width {width}: {cut:?}"
        );
    }
}

/// Names in the scripts the bundled fonts cover are in the PNG's title; a
/// name with a character no font has is left out rather than drawn as a box
/// (the embed shows it).
#[test]
fn the_chart_title_names_only_what_the_fonts_can_draw() {
    for name in [
        "Ada",
        "Zoë Ångström",
        "Дмитрий",
        "李明",
        "김민준",
        "สมชาย",
        "देवनागरी",
        "👩‍💻 Ada",
        "🔥",
        "محمد",
        "שלום",
    ] {
        assert_eq!(chart_title(name), format!("{name}: last 14 days"));
    }
    assert_eq!(chart_title("Ada \u{1FAE0}"), "Last 14 days");
}

/// A title in every covered script draws: the chart renders, and the
/// title's rows have text pixels across the name.
#[test]
fn an_international_title_renders() {
    let title = chart_title("学习者 공부 นักเรียน विद्यार्थी طالب תלמיד 📚🔥");
    let (_, _, img) = decode(&render_chart(&fortnight(), &title).unwrap());
    let lit = (14..40)
        .flat_map(|y| (20..300).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let i = usize::try_from((y * 800 + x) * 3).unwrap();
            img[i..i + 3] != BACKGROUND
        })
        .count();
    assert!(lit > 500, "{lit} title pixels");
}
