//! A customer's lifecycle, driven by events and by the clock, and at-least-once delivery with an
//! exactly-once effect.

use socialops_proto::profiles::v1::{Cause, Stage};
use socialops_proto::segmentation::v1::GetLifecycleFunnelRequest;

use crate::support::{Backend, DAY_US, T0_US, comment, order, spawn_app, stage_changes, ts};

async fn journey_from_potential_to_churned_and_back(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let day = |n: i64| T0_US + n * DAY_US;
    let reached = |from: Stage, to: Stage| {
        let changes = app.changes.clone();
        async move {
            changes
                .wait_for(&format!("{from:?} → {to:?}"), |all| {
                    let mine: Vec<_> = all.iter().filter(|c| c.user_id == "u1").cloned().collect();
                    stage_changes(&mine).contains(&(from, to))
                })
                .await;
        }
    };

    app.set_day(0);
    app.send(&[comment(&t, "e1", "u1", day(0), "好用吗")]).await;
    reached(Stage::Unspecified, Stage::Potential).await;

    app.set_day(1);
    app.send(&[order(&t, "e2", "u1", day(1), 12_900)]).await;
    reached(Stage::Potential, Stage::New).await;

    // Thirty days after the first order the customer is no longer new; no event says so.
    app.set_day(32);
    reached(Stage::New, Stage::Active).await;

    app.set_day(40);
    app.send(&[order(&t, "e3", "u1", day(40), 8_800)]).await;
    app.set_day(50);
    app.send(&[order(&t, "e4", "u1", day(50), 20_000)]).await;
    reached(Stage::Active, Stage::Loyal).await;

    // Ninety quiet days after the last order.
    app.set_day(140);
    reached(Stage::Loyal, Stage::Churned).await;

    app.set_day(200);
    app.send(&[comment(&t, "e5", "u1", day(200), "又来了")])
        .await;
    reached(Stage::Churned, Stage::Active).await;

    let mine = app.changes.of("u1");
    assert_eq!(
        stage_changes(&mine),
        [
            (Stage::Unspecified, Stage::Potential),
            (Stage::Potential, Stage::New),
            (Stage::New, Stage::Active),
            (Stage::Active, Stage::Loyal),
            (Stage::Loyal, Stage::Churned),
            (Stage::Churned, Stage::Active),
        ],
        "each transition published once"
    );
    let causes: Vec<Cause> = mine
        .iter()
        .filter(|c| {
            matches!(
                c.change,
                Some(socialops_proto::profiles::v1::profile_change::Change::StageChanged(_))
            )
        })
        .map(|c| c.cause())
        .collect();
    assert_eq!(
        causes,
        [
            Cause::Event,
            Cause::Event,
            Cause::Clock,
            Cause::Event,
            Cause::Clock,
            Cause::Event
        ]
    );
    for change in &mine {
        assert_eq!(change.tenant_id, t);
    }

    let mut client = app.client().await;
    let funnel = client
        .get_lifecycle_funnel(GetLifecycleFunnelRequest {
            from: Some(ts(day(0))),
            to: Some(ts(day(365))),
        })
        .await
        .unwrap()
        .into_inner();
    let active = funnel
        .stages
        .iter()
        .find(|s| s.stage() == Stage::Active)
        .unwrap();
    assert_eq!(active.profiles, 1);
    let churned_back = funnel
        .transitions
        .iter()
        .find(|c| c.from() == Stage::Churned && c.to() == Stage::Active)
        .unwrap();
    assert_eq!(churned_back.transitions, 1);
    assert_eq!(
        funnel
            .transitions
            .iter()
            .map(|c| c.transitions)
            .sum::<u64>(),
        6
    );
    app.stop().await;
}

#[tokio::test]
async fn journey_from_potential_to_churned_and_back_sqlite() {
    journey_from_potential_to_churned_and_back(Backend::Sqlite).await;
}

#[tokio::test]
async fn journey_from_potential_to_churned_and_back_postgres() {
    journey_from_potential_to_churned_and_back(Backend::Postgres).await;
}

async fn a_redelivered_order_counts_once(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    let t = app.tenant.clone();
    let mut client = app.client().await;
    let first = order(&t, "ord-1", "u1", T0_US, 29_900);
    // Published twice, as a relay that crashed between sending and marking sent would.
    app.send(&[first.clone(), first.clone()]).await;
    app.send(&[comment(&t, "marker-1", "u1", T0_US, "收到")])
        .await;
    let profile = app
        .wait_profile(&mut client, "u1", |p| p.counts.get("comment") == Some(&1))
        .await;
    assert_eq!(profile.orders_count, 1);
    assert_eq!(profile.orders_total_cents, 29_900);
    assert_eq!(profile.counts.get("order_placed"), Some(&1));

    // A new consumer group reads everything again from the start.
    app.restart_with_new_group().await;
    let mut client = app.client().await;
    app.send(&[comment(&t, "marker-2", "u1", T0_US, "再来")])
        .await;
    let profile = app
        .wait_profile(&mut client, "u1", |p| p.counts.get("comment") == Some(&2))
        .await;
    assert_eq!(profile.orders_count, 1, "{profile:#?}");
    assert_eq!(profile.orders_total_cents, 29_900);
    assert_eq!(profile.counts.get("order_placed"), Some(&1));
    let created = stage_changes(&app.changes.of("u1"));
    assert_eq!(
        created,
        [(Stage::Unspecified, Stage::New)],
        "a first order makes a new customer, and redelivery publishes nothing again"
    );

    // Something that is not an event goes to the dead-letter topic, with its reason, and the rest goes
    // on.
    app.send_raw(
        &app.topics.events,
        &format!("{t}:u1"),
        b"\xff\xffnot protobuf",
    )
    .await;
    app.send(&[comment(&t, "marker-3", "u1", T0_US, "三")])
        .await;
    app.wait_profile(&mut client, "u1", |p| p.counts.get("comment") == Some(&3))
        .await;
    let letters = app.dead_letters(1).await;
    assert!(
        letters[0]["dlq-reason"].starts_with("not a SocialEvent"),
        "{letters:?}"
    );
    assert_eq!(letters[0]["dlq-source-topic"], app.topics.events);
    app.stop().await;
}

#[tokio::test]
async fn a_redelivered_order_counts_once_sqlite() {
    a_redelivered_order_counts_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_redelivered_order_counts_once_postgres() {
    a_redelivered_order_counts_once(Backend::Postgres).await;
}
