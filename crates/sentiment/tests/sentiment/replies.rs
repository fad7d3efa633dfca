//! Replies: the brand's answers matched to users' comments (by the comment they name) and direct
//! messages (by conversation), whichever arrives first; reply times per platform; the unanswered queue;
//! and erasure of a user's messages and mentions.

use std::time::Duration;

use prost::Message;
use socialops_bus::{OutgoingMessage, headers};
use socialops_proto::events::v1::Platform;
use socialops_proto::privacy::v1::ErasureRequest;
use socialops_proto::sentiment::v1::{GetReplyStatsRequest, Label, ListUnansweredRequest};

use crate::support::{
    Backend, MINUTE_US, NEGATIVE, POSITIVE, TestApp, brand_comment, comment, direct_message,
    spawn_app_with, tenant_settings,
};

async fn queue(app: &TestApp) -> Vec<(String, i32, u64)> {
    app.reader()
        .await
        .list_unanswered(ListUnansweredRequest::default())
        .await
        .unwrap()
        .into_inner()
        .messages
        .into_iter()
        .map(|m| (m.message_id, m.label, m.waiting_seconds))
        .collect()
}

async fn replies_are_matched_timed_and_queued(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.defaults = tenant_settings(Duration::from_secs(3_600));
    })
    .await
    else {
        return;
    };
    let t = app.tenant.clone();
    let mut writer = app.writer().await;
    app.watchlist(&mut writer, "积雪草精华", &["积雪草精华"])
        .await;
    let now = app.clock_now();
    let at = |minutes_ago: i64| now - minutes_ago * MINUTE_US;

    // The answer to c2 is handled before c2 itself.
    app.publish_and_wait(&t, &[brand_comment(&t, "r2", "c-c2", at(230))])
        .await;
    let users = [
        comment(&t, "c1", "u1", NEGATIVE[0], at(300), 50),
        comment(&t, "c2", "u2", POSITIVE[0], at(240), 10),
        comment(&t, "c3", "u3", NEGATIVE[1], at(180), 10),
        comment(&t, "c4", "u4", POSITIVE[1], at(120), 5_000),
        comment(&t, "c5", "u5", NEGATIVE[2], at(30), 900),
        comment(&t, "c6", "u6", NEGATIVE[3], at(90), 20),
        direct_message(
            &t,
            "d1",
            "u7",
            "conv-1",
            "请问积雪草精华孕妇能用吗",
            at(360),
            false,
        ),
        direct_message(&t, "d2", "u7", "conv-1", "在吗？", at(350), false),
        direct_message(&t, "d3", "u8", "conv-2", POSITIVE[2], at(120), false),
    ];
    app.publish_and_wait(&t, &users).await;
    let brand = [
        brand_comment(&t, "r1", "c-c1", at(240)),
        direct_message(
            &t,
            "d9",
            "brand_official",
            "conv-1",
            "您好，可以使用",
            at(300),
            true,
        ),
    ];
    app.publish_and_wait(&t, &brand).await;

    // Past the one-hour target and unanswered: negative first, then by reach. c5 is too recent.
    let waiting = queue(&app).await;
    let ids: Vec<&str> = waiting.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(ids, ["c-c6", "c-c3", "c-c4", "d-d3"], "{waiting:?}");
    assert_eq!(waiting[0].1, Label::Negative as i32);
    assert_eq!(waiting[0].2, 90 * 60);

    let stats = writer
        .get_reply_stats(GetReplyStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .platforms;
    let xhs = stats
        .iter()
        .find(|p| p.platform == Platform::Xiaohongshu as i32)
        .unwrap();
    // c1 answered after 60 minutes, c2 after 10.
    assert_eq!(xhs.num_replies, 2);
    assert_eq!(xhs.median_seconds, 2_100.0);
    assert!((xhs.p90_seconds - 3_300.0).abs() < 1e-6, "{xhs:?}");
    let wechat = stats
        .iter()
        .find(|p| p.platform == Platform::Wechat as i32)
        .unwrap();
    // One brand message answers both waiting messages of the conversation: 60 and 50 minutes.
    assert_eq!(wechat.num_replies, 2);
    assert_eq!(wechat.median_seconds, 3_300.0);

    // A late answer takes c3 out of the queue.
    app.publish_and_wait(&t, &[brand_comment(&t, "r3", "c-c3", now)])
        .await;
    let ids: Vec<String> = queue(&app).await.into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, ["c-c6", "c-c4", "d-d3"]);

    // Erasure removes u6's waiting comment and mention.
    let mentions_before = mention_count(&app).await;
    let erasure = ErasureRequest {
        request_id: "er-1".into(),
        tenant_id: t.clone(),
        user_id: "u6".into(),
        requested_at: None,
    };
    app.producer
        .send(
            &OutgoingMessage::new(
                &app.topics.privacy,
                Some(format!("{t}:u6")),
                erasure.encode_to_vec(),
            )
            .header(headers::CONTENT_TYPE, headers::CONTENT_TYPE_PROTOBUF),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while queue(&app).await.iter().any(|(id, ..)| id == "c-c6") {
        assert!(std::time::Instant::now() < deadline, "erasure not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mention_count(&app).await, mentions_before - 1);
    let ids: Vec<String> = queue(&app).await.into_iter().map(|(id, ..)| id).collect();
    assert_eq!(ids, ["c-c4", "d-d3"]);
    app.stop().await;
}

async fn mention_count(app: &TestApp) -> u64 {
    let mut conn = app.running().monitor.store().conn().await.unwrap();
    socialops_sentiment::store::mentions::count_for_tenant(&mut conn, &app.tenant)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_matched_timed_and_queued_on_sqlite() {
    replies_are_matched_timed_and_queued(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_matched_timed_and_queued_on_postgres() {
    replies_are_matched_timed_and_queued(Backend::Postgres).await;
}
