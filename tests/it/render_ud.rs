//! `study-tracker render-ud`: the real binary reads a member from MongoDB and
//! writes the 14-day chart as a PNG that decodes.

use mongodb::bson::{doc, DateTime};
use study_tracker::app::now_millis;
use study_tracker::render::chart::{CAM_ON, HEIGHT, PLOT_BOTTOM, PLOT_TOP, WIDTH};

use crate::support::bot::run_cli;
use crate::support::db::fresh_db;

const GUILD: i64 = 1_500_000_000_000_000_001;
const USER: i64 = 1_500_000_000_000_000_002;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_ud_writes_a_png_chart_of_the_member() {
    let db = fresh_db().await;
    let now = now_millis();
    let end = now - 60_000;
    db.db()
        .collection("voice_segments")
        .insert_one(doc! {
            "_id": format!("{GUILD}:{USER}:{}", end - 7_200_000),
            "guild_id": GUILD, "user_id": USER, "camera": true,
            "start": DateTime::from_millis(end - 7_200_000), "end": DateTime::from_millis(end),
        })
        .await
        .unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    db.db()
        .collection("member_days")
        .insert_one(doc! {
            "_id": format!("{GUILD}:{USER}:{today}"),
            "guild_id": GUILD, "user_id": USER, "day": &today, "messages": 5_i64,
        })
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("card.png");
    let (status, stdout, stderr) = tokio::task::spawn_blocking({
        let (uri, name, out) = (db.uri.clone(), db.name.clone(), out.clone());
        move || {
            run_cli(
                &[
                    "render-ud",
                    "--guild",
                    &GUILD.to_string(),
                    "--user",
                    &USER.to_string(),
                    "--out",
                    out.to_str().unwrap(),
                ],
                &[
                    ("MONGODB_URI", &uri),
                    ("MONGODB_DB", &name),
                    ("TIMEZONE", "UTC"),
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "render-ud failed: {stderr}");
    assert!(stdout.contains("card.png"), "prints the path: {stdout}");

    let bytes = std::fs::read(&out).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes))
        .read_info()
        .unwrap();
    let mut img = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut img).unwrap();
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    // The two hours with the camera on are drawn as bars.
    let width = usize::try_from(WIDTH).unwrap();
    let rows = usize::try_from(PLOT_TOP).unwrap()..usize::try_from(PLOT_BOTTOM).unwrap();
    let bar_pixels = img[rows.start * width * 3..rows.end * width * 3]
        .chunks(3)
        .filter(|p| *p == CAM_ON)
        .count();
    assert!(bar_pixels > 1000, "camera-on bar pixels: {bar_pixels}");
}
