//! A message the store refuses for good goes to the dead-letter topic with its reason, and the rest
//! of the partition takes effect.

use prost::Message as _;
use socialops_bus::headers;
use socialops_proto::events::v1::SocialEvent;
use socialops_testkit::dead_letters;

use crate::support::{Backend, DAY0_US, HOUR_US, comment, spawn_app};

#[tokio::test]
async fn postgres_dead_letters_a_comment_holding_a_nul_and_handles_the_good_ones_behind_it() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let tenant = app.tenant.clone();
    let at = DAY0_US + 19 * HOUR_US;
    // One user, so every event lands on one partition, in this order.
    let events: Vec<SocialEvent> = (0..6)
        .map(|i| {
            let text = match i {
                2 => "质量太差了 \u{0} 退货".to_owned(),
                _ => format!("第{i}条评论，还不错"),
            };
            comment(&tenant, &format!("e{i}"), "u1", &text, at + i, 10)
        })
        .collect();
    app.publish(&events).await;
    app.wait_processed(&tenant, 5).await;

    let letters = dead_letters(&app.kafka, &app.topics, 1).await;
    let poison = SocialEvent::decode(letters[0].payload.as_slice()).unwrap();
    assert_eq!(poison.event_id, "e2");
    let reason = letters[0].header(headers::DLQ_REASON);
    assert!(reason.starts_with("permanent failure:"), "reason: {reason}");
    assert_eq!(app.processed(&tenant).await, 5, "the poison took no effect");
    app.stop().await;
}
