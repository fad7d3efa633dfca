//! An ordinary week: quiet nights, a working day and a busy evening with a steady quarter of
//! complaints. The evening's dozen negative mentions per window would be a spike against the day's
//! average; against earlier evenings they are normal, and no crisis opens. The same number at night is
//! a crisis.

use socialops_proto::alerts::v1::AlertKind;
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::sentiment::v1::{GetSentimentTimelineRequest, ListCrisesRequest};

use crate::support::{
    Backend, DAY_US, DAY0_US, HOUR_US, MINUTE_US, NEGATIVE, NEUTRAL, POSITIVE, comment, kinds,
    spawn_app, ts,
};

const TODAY: i64 = 7;

fn per_hour(hour: i64) -> i64 {
    match hour {
        0..=7 => 2,
        19..=22 => 120,
        _ => 10,
    }
}

/// The mentions written in `[from_us, to_us)`, spread evenly over each hour; every fourth is negative.
fn mentions(tenant: &str, from_us: i64, to_us: i64) -> Vec<SocialEvent> {
    let mut events = Vec::new();
    let first_hour = (from_us - DAY0_US) / HOUR_US;
    let last_hour = (to_us - DAY0_US + HOUR_US - 1) / HOUR_US;
    for hour in first_hour..last_hour {
        let n = per_hour(hour % 24);
        for i in 0..n {
            let at = DAY0_US + hour * HOUR_US + i * HOUR_US / n;
            if at < from_us || at >= to_us {
                continue;
            }
            let text = match i % 4 {
                0 => NEGATIVE[(i / 4) as usize % NEGATIVE.len()],
                2 => NEUTRAL[0],
                _ => POSITIVE[i as usize % POSITIVE.len()],
            };
            events.push(comment(
                tenant,
                &format!("r-{hour}-{i}"),
                &format!("u-{}", i % 17),
                text,
                at,
                50,
            ));
        }
    }
    events
}

async fn an_ordinary_week_opens_no_crisis(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut writer = app.writer().await;
    let watchlist = app
        .watchlist(&mut writer, "积雪草精华", &["积雪草精华"])
        .await;
    let today = DAY0_US + TODAY * DAY_US;

    // The week so far, up to this evening, arrives at once: it only builds the baseline.
    app.clock.set(today + 18 * HOUR_US);
    let history = mentions(&t, DAY0_US, today + 18 * HOUR_US);
    app.publish_and_wait(&t, &history).await;

    // The evening arrives as it happens, a quarter of an hour at a time.
    let mut slot = today + 18 * HOUR_US;
    while slot < today + DAY_US {
        let next = slot + 15 * MINUTE_US;
        app.clock.set(next);
        app.publish_and_wait(&t, &mentions(&t, slot, next)).await;
        slot = next;
    }
    let crises = writer
        .list_crises(ListCrisesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .crises;
    assert!(crises.is_empty(), "an ordinary evening opened {crises:?}");

    let evening = writer
        .get_sentiment_timeline(GetSentimentTimelineRequest {
            tenant_id: String::new(),
            from: Some(ts(today + 18 * HOUR_US)),
            to: Some(ts(today + DAY_US)),
            watchlist_id: watchlist,
        })
        .await
        .unwrap()
        .into_inner();
    let peak = evening
        .hours
        .iter()
        .find(|h| h.hour.unwrap().seconds == (today + 20 * HOUR_US) / 1_000_000)
        .unwrap();
    assert_eq!(peak.negative + peak.neutral + peak.positive, 120);
    assert_eq!(peak.negative, 30);

    // Twelve complaints in ten minutes after midnight, when two mentions an hour is usual.
    let night = today + DAY_US + 30 * MINUTE_US;
    app.clock.set(night);
    let burst: Vec<SocialEvent> = (0..12)
        .map(|i| {
            comment(
                &t,
                &format!("night-{i}"),
                &format!("n-{i}"),
                NEGATIVE[i % NEGATIVE.len()],
                night - 10 * MINUTE_US + i as i64 * 30_000_000,
                50,
            )
        })
        .collect();
    app.publish(&burst).await;
    let alerts = app.alerts.wait_for(&t, 1).await;
    assert_eq!(kinds(&alerts), [AlertKind::Opened]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_week_opens_no_crisis_on_sqlite() {
    an_ordinary_week_opens_no_crisis(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_week_opens_no_crisis_on_postgres() {
    an_ordinary_week_opens_no_crisis(Backend::Postgres).await;
}
