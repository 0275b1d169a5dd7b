//! `dead-letters [--retry]`: list the increments a document refused for
//! good, or apply them again once the cause is fixed.

use anyhow::Context as _;

use super::connect;
use crate::config::{redact_uri, Settings};
use crate::durable::dead_letters::{DeadLetter, DeadLetters};
use crate::durable::op::Op;
use crate::store::Retried;

/// Lists the dead letters in `SPOOL_DIR`; with `retry`, applies each again
/// (at most once per document) and removes those that applied.
///
/// # Errors
/// The file cannot be read or rewritten, or MongoDB cannot be reached.
pub async fn dead_letters(settings: &Settings, retry: bool) -> anyhow::Result<()> {
    let file = DeadLetters::in_dir(&settings.spool.dir);
    let letters = file
        .read()
        .with_context(|| format!("cannot read {}", file.path().display()))?;
    if letters.is_empty() {
        println!("no dead letters in {}", file.path().display());
        return Ok(());
    }
    if !retry {
        for l in &letters {
            println!("{}", describe(l));
        }
        println!(
            "{} dead letters in {}; fix the documents, then run `study-tracker dead-letters --retry`",
            letters.len(),
            file.path().display()
        );
        return Ok(());
    }
    let store = connect(&settings.mongo).await?;
    let (mut applied, mut before, mut superseded) = (0, 0, 0);
    let (mut done, mut failing) = (Vec::new(), 0);
    for l in &letters {
        match store
            .apply_dead_letter(l.seq, &l.op, &l.collection, &l.document)
            .await
        {
            Ok(outcome) => {
                match outcome {
                    Retried::Applied => applied += 1,
                    Retried::AppliedBefore => before += 1,
                    Retried::Superseded => superseded += 1,
                }
                done.push(l.clone());
            }
            Err(e) => {
                failing += 1;
                println!(
                    "still failing: {}: {}",
                    describe(l),
                    redact_uri(&e.to_string())
                );
            }
        }
    }
    file.remove(&done)
        .with_context(|| format!("cannot rewrite {}", file.path().display()))?;
    println!(
        "re-applied {applied} dead letters ({before} had been applied by an earlier retry, {superseded} checkpoints were superseded by newer ones); {failing} still failing"
    );
    if failing > 0 {
        anyhow::bail!(
            "{failing} dead letters still fail; they stay in {}",
            file.path().display()
        );
    }
    Ok(())
}

/// One line for a letter: where, what, why.
fn describe(l: &DeadLetter) -> String {
    let what = match &l.op {
        Op::Voice {
            camera, from, to, ..
        } => format!(
            "voice {}s camera {}",
            crate::core::whole_secs(*from, *to),
            if *camera { "on" } else { "off" }
        ),
        Op::Message { day, count, .. } => format!("{count} message(s) on {day}"),
        Op::Adjust {
            what, amount, id, ..
        } => format!("correction {id}: {what} {amount:+}"),
        Op::Checkpoint { open, .. } => {
            format!(
                "checkpoint ({})",
                if open.is_some() { "open" } else { "closed" }
            )
        }
    };
    let m = l.op.member();
    format!(
        "seq {} guild {} user {}: {what} -> {}: {}",
        l.seq,
        m.guild,
        m.user,
        l.target(),
        l.error
    )
}
