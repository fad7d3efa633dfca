//! Crises end to end: a burst opens one, growth escalates it, every step is published on the alerts
//! topic and streamed live, redeliveries count once, and the response clock reminds on its own.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use socialops_auth::Role;
use socialops_bus::OutgoingMessage;
use socialops_proto::alerts::v1::{AlertKind, CrisisAlert, CrisisState, Severity};
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::sentiment::v1::{
    CrisisActionRequest, GetCrisisRequest, GetSentimentTimelineRequest, ListCrisesRequest,
    StreamAlertsRequest,
};
use tokio::sync::mpsc;
use tonic::Code;

use crate::support::{
    Backend, Client, EventText, HOUR_US, MINUTE_US, NEGATIVE, POSITIVE, TestApp, comment, kinds,
    mention, spawn_app, ts,
};

/// `n` negative comments about the product, 100 followers each, in the ten minutes before now.
fn negatives(app: &TestApp, tenant: &str, prefix: &str, n: usize) -> Vec<SocialEvent> {
    let now = app.clock_now();
    (0..n)
        .map(|i| {
            comment(
                tenant,
                &format!("{prefix}-{i}"),
                &format!("u-{prefix}-{i}"),
                NEGATIVE[i % NEGATIVE.len()],
                now - 10 * MINUTE_US + i as i64 * 10_000_000,
                100,
            )
        })
        .collect()
}

/// Collects a live `StreamAlerts` stream in the background.
async fn stream(client: &mut Client) -> mpsc::UnboundedReceiver<CrisisAlert> {
    let mut stream = client
        .stream_alerts(StreamAlertsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(alert)) = stream.message().await {
            if tx.send(alert).is_err() {
                break;
            }
        }
    });
    rx
}

async fn burst_opens_one_crisis_and_escalates(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let a = app.tenant.clone();
    let b = format!("{a}-other");
    let mut writer = app.writer().await;
    let mut other = app.client_for(&b, Role::Writer).await;
    let watchlist = app
        .watchlist(&mut writer, "积雪草精华", &["积雪草精华"])
        .await;
    app.watchlist(&mut other, "积雪草精华", &["积雪草精华"])
        .await;
    let mut live = stream(&mut app.reader().await).await;
    let mut other_live = stream(&mut app.client_for(&b, Role::Reader).await).await;

    // The other tenant only hears praise, at the same time.
    let praise: Vec<SocialEvent> = (0..6)
        .map(|i| {
            let at = app.clock_now() - 5 * MINUTE_US;
            comment(&b, &format!("p-{i}"), "fan", POSITIVE[i % 3], at, 10)
        })
        .collect();
    app.publish(&praise).await;

    app.publish(&negatives(&app, &a, "burst1", 12)).await;
    let opened = app.alerts.wait_for(&a, 1).await;
    assert_eq!(kinds(&opened), [AlertKind::Opened]);
    let crisis_id = opened[0].crisis_id.clone();
    assert_eq!(opened[0].severity, Severity::Low as i32, "{:?}", opened[0]);
    assert_eq!(opened[0].state, CrisisState::Detected as i32);
    assert_eq!(opened[0].watchlist_id, watchlist);
    assert_eq!(opened[0].watchlist_name, "积雪草精华");
    assert!(opened[0].num_negative >= 10, "{:?}", opened[0]);
    assert!(
        opened[0].reason.starts_with("negative volume spike"),
        "{}",
        opened[0].reason
    );
    assert_eq!(
        opened[0].respond_by.unwrap().seconds - opened[0].detected_at.unwrap().seconds,
        24 * 3600
    );

    app.publish(&negatives(&app, &a, "burst2", 8)).await;
    let alerts = app.alerts.wait_for(&a, 2).await;
    assert_eq!(alerts[1].kind, AlertKind::Escalated as i32);
    assert_eq!(
        alerts[1].severity,
        Severity::Medium as i32,
        "{:?}",
        alerts[1]
    );
    assert_eq!(alerts[1].previous_severity, Severity::Low as i32);

    app.publish(&negatives(&app, &a, "burst3", 15)).await;
    let alerts = app.alerts.wait_for(&a, 3).await;
    assert_eq!(alerts[2].severity, Severity::High as i32, "{:?}", alerts[2]);

    // Two widely followed accounts pick it up.
    let wide: Vec<SocialEvent> = (0..2)
        .map(|i| {
            let at = app.clock_now() - MINUTE_US;
            mention(
                &a,
                &format!("kol-{i}"),
                &format!("kol-{i}"),
                NEGATIVE[i],
                at,
                150_000,
            )
        })
        .collect();
    app.publish(&wide).await;
    let alerts = app.alerts.wait_for(&a, 4).await;
    assert_eq!(
        alerts[3].severity,
        Severity::Critical as i32,
        "{:?}",
        alerts[3]
    );
    app.wait_processed(&a, 37).await;
    app.wait_processed(&b, 6).await;

    assert_eq!(
        kinds(&alerts),
        [
            AlertKind::Opened,
            AlertKind::Escalated,
            AlertKind::Escalated,
            AlertKind::Escalated
        ]
    );
    assert!(alerts.iter().all(|alert| alert.crisis_id == crisis_id));
    let expected_key = Some(format!("{a}:{crisis_id}"));
    assert!(
        app.alerts.keys().iter().all(|key| key == &expected_key),
        "{:?}",
        app.alerts.keys()
    );
    let mut streamed = Vec::new();
    while streamed.len() < 4 {
        streamed.push(
            tokio::time::timeout(Duration::from_secs(30), live.recv())
                .await
                .expect("the live stream delivers every alert")
                .unwrap(),
        );
    }
    let ids = |alerts: &[CrisisAlert]| -> Vec<String> {
        alerts.iter().map(|a| a.alert_id.clone()).collect()
    };
    assert_eq!(ids(&streamed), ids(&alerts));

    let crises = writer
        .list_crises(ListCrisesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .crises;
    assert_eq!(crises.len(), 1, "exactly one crisis for one burst");
    let crisis = &crises[0];
    assert_eq!(crisis.severity, Severity::Critical as i32);
    assert_eq!((crisis.num_mentions, crisis.num_negative), (37, 37));
    assert_eq!(crisis.total_reach, 35 * 100 + 2 * 150_000);

    let detail = writer
        .get_crisis(GetCrisisRequest {
            tenant_id: String::new(),
            crisis_id: crisis_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.negative, 37);
    assert_eq!(detail.windows.iter().map(|w| w.negative).sum::<u64>(), 37);
    assert_eq!(detail.top_mentions[0].reach, 150_000);
    assert_eq!(detail.top_mentions[0].author, "author-kol-0");
    assert!(
        detail.top_mentions.iter().any(|m| m.risk),
        "risk words are flagged"
    );
    assert_eq!(
        detail.crisis.unwrap().steps.len(),
        4,
        "every published change is a step"
    );

    // The other tenant sees nothing of it, and cannot ask for it.
    assert!(
        other
            .list_crises(ListCrisesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .crises
            .is_empty()
    );
    let status = other
        .get_crisis(GetCrisisRequest {
            tenant_id: String::new(),
            crisis_id,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = other
        .list_crises(ListCrisesRequest {
            tenant_id: a.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(app.alerts.all().iter().all(|alert| alert.tenant_id == a));
    assert!(other_live.try_recv().is_err(), "no alert crosses tenants");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_opens_one_crisis_and_escalates_on_sqlite() {
    burst_opens_one_crisis_and_escalates(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_opens_one_crisis_and_escalates_on_postgres() {
    burst_opens_one_crisis_and_escalates(Backend::Postgres).await;
}

async fn redelivered_comments_count_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut writer = app.writer().await;
    app.watchlist(&mut writer, "积雪草精华", &["积雪草精华"])
        .await;
    // One author, so one partition: what comes later on it was handled after what came before.
    let now = app.clock_now();
    let nine: Vec<SocialEvent> = (0..9)
        .map(|i| {
            comment(
                &t,
                &format!("n-{i}"),
                "same-user",
                NEGATIVE[i % 5],
                now - i as i64 * MINUTE_US,
                10,
            )
        })
        .collect();
    let twice: Vec<SocialEvent> = nine.iter().chain(&nine).cloned().collect();
    app.publish(&twice).await;
    app.publish(&nine).await;
    let marker = comment(&t, "marker", "same-user", "今天天气不错", now, 0);
    app.publish(std::slice::from_ref(&marker)).await;
    app.wait_processed(&t, 10).await;

    let crises = writer
        .list_crises(ListCrisesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .crises;
    assert!(
        crises.is_empty(),
        "27 deliveries of 9 comments are 9 negatives, under the minimum"
    );
    let marker_negative = u64::from(
        crate::support::scorer().score(marker.text()).label == socialops_scorer::Label::Negative,
    );
    let timeline = writer
        .get_sentiment_timeline(GetSentimentTimelineRequest {
            from: Some(ts(now - HOUR_US)),
            to: Some(ts(now + HOUR_US)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let negative: u64 = timeline.hours.iter().map(|h| h.negative).sum();
    assert_eq!(negative, 9 + marker_negative);

    let tenth = comment(&t, "n-9", "same-user", NEGATIVE[0], now, 10);
    app.publish(&[tenth.clone(), tenth.clone()]).await;
    let alerts = app.alerts.wait_for(&t, 1).await;
    assert_eq!(alerts[0].num_negative, 10);
    assert_eq!(alerts[0].num_mentions, 10);
    app.publish(&nine).await;
    let marker = comment(&t, "marker-2", "same-user", "今天天气不错", now, 0);
    app.publish(std::slice::from_ref(&marker)).await;
    app.wait_processed(&t, 12).await;
    let crisis = &writer
        .list_crises(ListCrisesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .crises[0];
    assert_eq!(
        crisis.num_mentions, 10,
        "redelivered mentions do not attach twice"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_comments_count_once_on_sqlite() {
    redelivered_comments_count_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_comments_count_once_on_postgres() {
    redelivered_comments_count_once(Backend::Postgres).await;
}

fn action(crisis_id: &str, actor: &str, note: &str) -> CrisisActionRequest {
    CrisisActionRequest {
        tenant_id: String::new(),
        crisis_id: crisis_id.into(),
        note: note.into(),
        actor: actor.into(),
    }
}

async fn response_clock_and_lifecycle(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Tenant `ignored` lets the clock run; tenant `handled` acknowledges, resolves and reviews.
    let ignored = app.tenant.clone();
    let handled = format!("{ignored}-handled");
    let mut ignored_writer = app.writer().await;
    let mut handled_writer = app.client_for(&handled, Role::Writer).await;
    app.watchlist(&mut ignored_writer, "积雪草精华", &["积雪草精华"])
        .await;
    app.watchlist(&mut handled_writer, "积雪草精华", &["积雪草精华"])
        .await;
    let mut burst = negatives(&app, &ignored, "i", 12);
    burst.extend(negatives(&app, &handled, "h", 12));
    app.publish(&burst).await;
    let ignored_crisis = app.alerts.wait_for(&ignored, 1).await[0].crisis_id.clone();
    let handled_crisis = app.alerts.wait_for(&handled, 1).await[0].crisis_id.clone();
    let detected_at = app.clock_now();

    let status = handled_writer
        .review(action(&handled_crisis, "", ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("resolve it first"),
        "{}",
        status.message()
    );
    let status = app
        .client_for(&handled, Role::Reader)
        .await
        .acknowledge(action(&handled_crisis, "", ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let acknowledged = handled_writer
        .acknowledge(action(&handled_crisis, "王经理", "已联系质检部门"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.state, CrisisState::Acknowledged as i32);

    app.clock.advance(12 * HOUR_US);
    let alerts = app.alerts.wait_for(&ignored, 2).await;
    assert_eq!(alerts[1].kind, AlertKind::ReminderHalfTime as i32);
    assert_eq!(
        alerts[1].at.unwrap().seconds,
        (detected_at + 12 * HOUR_US) / 1_000_000
    );
    app.clock.advance(12 * HOUR_US);
    let alerts = app.alerts.wait_for(&ignored, 3).await;
    assert_eq!(
        kinds(&alerts),
        [
            AlertKind::Opened,
            AlertKind::ReminderHalfTime,
            AlertKind::Breached
        ]
    );
    let ignored_detail = ignored_writer
        .get_crisis(GetCrisisRequest {
            tenant_id: String::new(),
            crisis_id: ignored_crisis,
        })
        .await
        .unwrap()
        .into_inner()
        .crisis
        .unwrap();
    assert!(ignored_detail.half_time_reminded && ignored_detail.breached);

    let resolved_at = app.clock_now();
    handled_writer
        .resolve(action(&handled_crisis, "王经理", "已下架问题批次并公告"))
        .await
        .unwrap();
    app.clock.advance(HOUR_US);
    let reviewed = handled_writer
        .review(action(&handled_crisis, "", "复盘完成"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reviewed.state, CrisisState::Reviewed as i32);
    assert!(!reviewed.half_time_reminded && !reviewed.breached);
    let steps: Vec<(i32, String, String, i64)> = reviewed
        .steps
        .iter()
        .map(|s| {
            (
                s.kind,
                s.actor.clone(),
                s.note.clone(),
                s.at.unwrap().seconds,
            )
        })
        .collect();
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert_eq!(steps[0].0, AlertKind::Opened as i32);
    assert_eq!(steps[1].0, AlertKind::Acknowledged as i32);
    assert!(steps[1].1.starts_with("王经理 (tok_"), "{}", steps[1].1);
    assert_eq!(steps[1].2, "已联系质检部门");
    assert_eq!(steps[1].3, detected_at / 1_000_000);
    assert_eq!(steps[2].0, AlertKind::Resolved as i32);
    assert_eq!(steps[2].3, resolved_at / 1_000_000);
    assert_eq!(steps[3].0, AlertKind::Reviewed as i32);
    assert!(
        steps[3].1.starts_with("tok_"),
        "the token stands for an unnamed actor"
    );
    assert_eq!(steps[3].3, (resolved_at + HOUR_US) / 1_000_000);

    let handled_alerts = app.alerts.wait_for(&handled, 4).await;
    assert_eq!(
        kinds(&handled_alerts),
        [
            AlertKind::Opened,
            AlertKind::Acknowledged,
            AlertKind::Resolved,
            AlertKind::Reviewed
        ]
    );
    assert_eq!(handled_alerts[1].actor, steps[1].1);
    assert!(
        handled_writer
            .list_crises(ListCrisesRequest {
                open_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .crises
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_clock_and_lifecycle_on_sqlite() {
    response_clock_and_lifecycle(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_clock_and_lifecycle_on_postgres() {
    response_clock_and_lifecycle(Backend::Postgres).await;
}

/// A restarted service streams the alerts that come after it started, not the topic's history, and
/// no replica leaves a consumer group of its own behind on the broker.
#[tokio::test]
async fn a_restarted_service_streams_new_alerts_only_and_leaves_no_group_behind() {
    let Some(mut app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let tenant = app.tenant.clone();
    // More history than a live stream may fall behind by.
    let history: Vec<OutgoingMessage> = (0..5_000)
        .map(|i| {
            let alert = CrisisAlert {
                alert_id: format!("old-{i}:1"),
                tenant_id: tenant.clone(),
                crisis_id: format!("old-{i}"),
                kind: AlertKind::Opened as i32,
                ..CrisisAlert::default()
            };
            OutgoingMessage::encode(
                &app.topics.alerts,
                Some(format!("{tenant}:old-{i}")),
                &alert,
            )
        })
        .collect();
    app.producer.send_all(&history).await.unwrap();
    app.restart().await;

    let mut writer = app.writer().await;
    app.watchlist(&mut writer, "积雪草精华", &["积雪草精华"])
        .await;
    let mut live = stream(&mut app.reader().await).await;
    app.publish(&negatives(&app, &tenant, "after-restart", 12))
        .await;
    let first = tokio::time::timeout(Duration::from_secs(60), live.recv())
        .await
        .expect("an alert is streamed")
        .expect("the stream stays open");
    assert_eq!(first.kind, AlertKind::Opened as i32);
    assert!(!first.crisis_id.starts_with("old-"), "{first:?}");

    let consumer: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            socialops_storage::testing::required_env("SOCIALOPS_TEST_KAFKA").unwrap(),
        )
        .create()
        .unwrap();
    let groups = tokio::task::spawn_blocking(move || {
        consumer
            .fetch_group_list(None, Duration::from_secs(10))
            .unwrap()
            .groups()
            .iter()
            .map(|g| g.name().to_owned())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let ours: Vec<&String> = groups
        .iter()
        .filter(|g| g.starts_with(&app.config.consumer_group))
        .collect();
    assert!(
        ours.iter().all(|g| !g.contains("-stream")),
        "groups left behind: {ours:?}"
    );
    app.stop().await;
}

/// Crisis after crisis, one watchlist each, every Opened alert reaches the alerts topic and the live
/// stream: none is lost or held back behind the others.
#[tokio::test]
async fn consecutive_crises_each_reach_the_topic_and_the_stream() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let tenant = app.tenant.clone();
    let mut writer = app.writer().await;
    const CRISES: usize = 25;
    let mut watchlists = Vec::with_capacity(CRISES);
    for i in 0..CRISES {
        let product = format!("修护精华{i}号");
        watchlists.push(app.watchlist(&mut writer, &product, &[&product]).await);
    }
    let mut live = stream(&mut app.reader().await).await;
    for (i, watchlist) in watchlists.iter().enumerate() {
        let now = app.clock_now();
        let burst: Vec<SocialEvent> = (0..12)
            .map(|n| {
                comment(
                    &tenant,
                    &format!("crisis-{i}-{n}"),
                    &format!("u-{i}-{n}"),
                    &format!("修护精华{i}号用了三天就过敏，脸又红又痒，太差了"),
                    now - 10 * MINUTE_US + n as i64 * 10_000_000,
                    100,
                )
            })
            .collect();
        app.publish(&burst).await;
        let opened = app.alerts.wait_for(&tenant, i + 1).await;
        assert_eq!(
            opened.len(),
            i + 1,
            "one alert per crisis: {:?}",
            kinds(&opened)
        );
        assert_eq!(&opened[i].watchlist_id, watchlist, "crisis {i}");
        assert_eq!(opened[i].kind, AlertKind::Opened as i32, "crisis {i}");
    }
    let mut streamed = Vec::with_capacity(CRISES);
    while streamed.len() < CRISES {
        let alert = tokio::time::timeout(Duration::from_secs(60), live.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {CRISES} alerts streamed", streamed.len()))
            .expect("the stream stays open");
        streamed.push(alert.watchlist_id);
    }
    assert_eq!(streamed, watchlists);
    app.stop().await;
}
