//! The store conformance suite: the same scenarios on SQLite and PostgreSQL, through the updater
//! and the store without Kafka or gRPC.

use std::collections::BTreeSet;
use std::sync::Arc;

use prost::Message as _;
use socialops_bus::{BatchHandler, ReceivedMessage};
use socialops_proto::events::v1::social_event::Payload;
use socialops_proto::events::v1::{ContentClick, OrderRefunded, Platform, Unfollow};
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::profiles::v1::{Cause, ProfileChange};
use socialops_segmentation::config::TenantDirectory;
use socialops_segmentation::consume::EventHandler;
use socialops_segmentation::domain::{RfmValues, Stage, parse};
use socialops_segmentation::store::segments::{
    SegmentRow, add_members, insert_segment, memberships, segments_for_evaluation,
};
use socialops_segmentation::store::tags::{TagRuleRow, insert_tag_rule};
use socialops_segmentation::store::{ProfileQuery, ProfileStore};
use socialops_segmentation::sweep::{SWEEP_LOCK, Sweeper, recompute_rfm};
use socialops_segmentation::update::{Updater, matches};
use socialops_segmentation::{ManualClock, SegmentationConfig, SegmentationError};
use socialops_storage::{DatabaseConfig, Db, Row};
use tokio::sync::Notify;

use crate::support::{
    Backend, DAY_US, T0_US, comment, database, event, follow, identify_phone, order,
};

pub const TENANT: &str = "acme";

pub async fn open(backend: Backend) -> Option<(Updater, ManualClock, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let config = database(backend, dir.path()).await?;
    let (updater, clock) = open_config(&config).await;
    Some((updater, clock, dir))
}

pub async fn open_config(config: &DatabaseConfig) -> (Updater, ManualClock) {
    let store = ProfileStore::open(Db::connect(config).await.unwrap())
        .await
        .unwrap();
    let clock = ManualClock::new(T0_US);
    let tenants = TenantDirectory::from_config(&SegmentationConfig::default()).unwrap();
    let updater = Updater::new(
        store,
        tenants,
        Arc::new(clock.clone()),
        "profiles".into(),
        Arc::new(Notify::new()),
    );
    (updater, clock)
}

/// Sixty users with a spread of orders, refunds, comments, clicks, follows and platforms.
fn population() -> Vec<socialops_proto::events::v1::SocialEvent> {
    let mut events = Vec::new();
    for i in 0..60_i64 {
        let user = format!("u{i:02}");
        let at = T0_US - (i % 7) * 20 * DAY_US;
        let mut e = comment(
            TENANT,
            &format!("c-{i}"),
            &user,
            at,
            if i % 5 == 0 { "敏感肌" } else { "不错" },
        );
        e.platform = [Platform::Wechat, Platform::Douyin, Platform::Weibo][(i % 3) as usize] as i32;
        events.push(e);
        for n in 0..(i % 4) {
            events.push(order(
                TENANT,
                &format!("o-{i}-{n}"),
                &user,
                at + n * DAY_US,
                1_000 * (i + n),
            ));
        }
        if i % 6 == 1 {
            events.push(event(
                TENANT,
                &format!("r-{i}"),
                &user,
                at + 2 * DAY_US,
                Payload::OrderRefunded(OrderRefunded {
                    order_id: format!("o-o-{i}-0"),
                    amount_cents: 500,
                    ..Default::default()
                }),
            ));
        }
        if i % 4 == 2 {
            events.push(follow(TENANT, &format!("f-{i}"), &user, at));
        }
        if i % 8 == 3 {
            events.push(follow(TENANT, &format!("f-{i}"), &user, at));
            events.push(event(
                TENANT,
                &format!("uf-{i}"),
                &user,
                at + 1,
                Payload::Unfollow(Unfollow::default()),
            ));
        }
        if i % 3 == 0 {
            events.push(event(
                TENANT,
                &format!("k-{i}"),
                &user,
                at,
                Payload::ContentClick(ContentClick {
                    content_id: "p".into(),
                    category: "makeup".into(),
                    ..Default::default()
                }),
            ));
        }
    }
    events
}

const RULES: &[&str] = &[
    "stage = potential",
    "stage in [new, active, loyal]",
    "not stage = churned",
    "tier = high_value or tier = potential_high_value",
    "r >= 4 and m >= 3",
    "not r >= 4",
    "f in [1, 2]",
    "count.comment >= 1 and count.order_placed >= 2",
    "count.follow = 1 and following = false",
    "following = true",
    "orders_total_cents > 20000 or refunded_cents > 0",
    "last_order_at within 30d",
    "not last_order_at within 30d",
    "first_seen_at before 60d",
    "last_interaction_at within 2w and has platform douyin",
    r#"has tag "need:sensitive-skin""#,
    r#"has tag "clicked:makeup" and not has platform weibo"#,
    "orders_count = 0 or (r = 5 and not f = 1)",
];

async fn conformance(backend: Backend) {
    let Some((updater, clock, _dir)) = open(backend).await else {
        return;
    };
    let store = updater.store().clone();
    {
        let mut conn = store.conn().await.unwrap();
        insert_tag_rule(
            &mut conn,
            TENANT,
            &TagRuleRow {
                rule_id: "r1".into(),
                pattern: "敏感肌".into(),
                tag: "need:sensitive-skin".into(),
                created_at_us: T0_US,
            },
        )
        .await
        .unwrap();
    }
    let events = population();
    // Delivered in two overlapping batches: the overlap counts once.
    let half = events.len() / 2;
    updater.apply_events(&events[..half + 10]).await.unwrap();
    updater.apply_events(&events[half..]).await.unwrap();
    updater.apply_events(&events[..5]).await.unwrap();
    assert_eq!(store.count_profiles(TENANT).await.unwrap(), 60);
    let run = recompute_rfm(&updater, TENANT).await.unwrap();
    assert_eq!(run.buyers, 45);
    assert!(run.edges.is_some());

    let all = store
        .list_profiles(&ProfileQuery {
            tenant_id: TENANT,
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 60);
    let u07 = all
        .iter()
        .find(|p| p.state.profile.user_id == "u07")
        .unwrap();
    assert_eq!(u07.state.profile.orders_count, 3);
    assert_eq!(u07.state.profile.count("comment"), 1);
    assert_eq!(
        u07.state.profile.refunded_cents, 500,
        "one refund of the first order"
    );
    assert!(u07.state.profile.platforms.contains("douyin"));

    // Every rule means the same in the database as in the domain.
    let now = clock_now(&clock);
    for src in RULES {
        let rule = parse(src).unwrap();
        let expected: Vec<&str> = all
            .iter()
            .filter(|p| matches(&rule, p, now))
            .map(|p| p.state.profile.user_id.as_str())
            .collect();
        let preview = store.preview(TENANT, &rule, now, 100).await.unwrap();
        assert_eq!(preview.evaluated, 60, "{src}");
        let got: Vec<String> = preview
            .sample
            .iter()
            .map(|p| p.state.profile.user_id.clone())
            .collect();
        assert_eq!(got, expected, "{src}");
        assert_eq!(preview.count, expected.len() as u64, "{src}");
    }

    // RFM inputs from the database match the domain's computation over the loaded orders.
    let mut from_db = Vec::new();
    store
        .buyer_values(TENANT, 365, now, |b| {
            from_db.push((b.profile_id.to_owned(), b.values))
        })
        .await
        .unwrap();
    assert_eq!(from_db.len(), 45);
    let ids: Vec<String> = from_db.iter().map(|(id, _)| id.clone()).collect();
    let loaded = {
        let mut tx = store.db().begin().await.unwrap();
        socialops_segmentation::store::profiles::load_profiles(&mut tx, TENANT, &ids)
            .await
            .unwrap()
    };
    for (id, values) in &from_db {
        let p = &loaded[id].state.profile;
        let expected = RfmValues::compute(&p.orders, p.last_order_at_us, &Default::default(), now);
        assert_eq!(Some(*values), expected, "{id}");
    }

    // A new segment: the database finds who should be in it; reconciling puts them in.
    let rule_src = "count.order_placed >= 2 and last_order_at within 70d";
    let rule = parse(rule_src).unwrap();
    {
        let mut conn = store.conn().await.unwrap();
        insert_segment(
            &mut conn,
            &SegmentRow {
                tenant_id: TENANT.into(),
                segment_id: "s1".into(),
                name: "repeat".into(),
                description: String::new(),
                rule: rule_src.into(),
                size: 0,
                created_at_us: now,
                updated_at_us: now,
            },
        )
        .await
        .unwrap();
    }
    let should: BTreeSet<String> = all
        .iter()
        .filter(|p| matches(&rule, p, now))
        .map(|p| p.state.profile.user_id.clone())
        .collect();
    assert!(!should.is_empty());
    let mismatched = store
        .membership_mismatches(TENANT, "s1", &rule, now)
        .await
        .unwrap();
    assert_eq!(mismatched.iter().cloned().collect::<BTreeSet<_>>(), should);
    let reevaluated = updater
        .reconcile_segment(TENANT, "s1", Cause::SegmentDefinition)
        .await
        .unwrap();
    assert_eq!(reevaluated, should.len());
    assert!(
        store
            .membership_mismatches(TENANT, "s1", &rule, now)
            .await
            .unwrap()
            .is_empty()
    );
    let ids: Vec<String> = should.iter().cloned().collect();
    let members = {
        let mut conn = store.conn().await.unwrap();
        memberships(&mut conn, TENANT, &ids).await.unwrap()
    };
    assert_eq!(members.len(), should.len());
    let outbox: i64 = sqlx::query("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.db().pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert!(
        outbox >= should.len() as i64,
        "every enter is queued for publishing"
    );

    // Time passes: the clock alone takes members out.
    clock.set(now + 80 * DAY_US);
    let later = clock_now(&clock);
    let leaving = store
        .membership_mismatches(TENANT, "s1", &rule, later)
        .await
        .unwrap();
    assert_eq!(leaving.iter().cloned().collect::<BTreeSet<_>>(), should);

    // Erasure removes the profile and its traces, and a redelivered request changes nothing.
    let victim = ids[0].clone();
    assert!(updater.erase(TENANT, &victim, later).await.unwrap());
    assert!(!updater.erase(TENANT, &victim, later).await.unwrap());
    for table in [
        "profiles",
        "orders",
        "profile_tags",
        "segment_members",
        "aliases",
    ] {
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND profile_id = $2"
        )))
        .bind(TENANT)
        .bind(victim.as_str())
        .fetch_one(store.db().pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let old = comment(TENANT, "late", &victim, T0_US, "before the erasure");
    updater.apply_events(&[old]).await.unwrap();
    assert!(
        store
            .profile_by_alias(TENANT, &format!("user:{victim}"))
            .await
            .unwrap()
            .is_none(),
        "an event from before the erasure does not bring the profile back"
    );
}

fn clock_now(clock: &ManualClock) -> i64 {
    socialops_segmentation::Clock::now_us(clock)
}

#[tokio::test]
async fn store_conformance_sqlite() {
    conformance(Backend::Sqlite).await;
}

#[tokio::test]
async fn store_conformance_postgres() {
    conformance(Backend::Postgres).await;
}

/// Two replicas on one PostgreSQL store: while one holds the sweep lock the other's tick does
/// nothing, and once it is free the other sweeps and the clock's change is made.
#[tokio::test]
async fn one_replica_sweeps_at_a_time_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = database(Backend::Postgres, dir.path()).await else {
        return;
    };
    let (updater, clock) = open_config(&config).await;
    let updater = Arc::new(updater);
    updater
        .apply_events(&[order(TENANT, "o-1", "quiet", T0_US, 9_900)])
        .await
        .unwrap();
    clock.set(T0_US + 200 * DAY_US);
    let stage = |updater: Arc<Updater>| async move {
        updater
            .store()
            .profile_by_alias(TENANT, "user:quiet")
            .await
            .unwrap()
            .expect("profile")
            .state
            .profile
            .stage
    };
    let sweeper = Sweeper {
        updater: updater.clone(),
        batch: 100,
        rfm_interval: std::time::Duration::from_secs(86_400),
        dedup_window: std::time::Duration::from_secs(14 * 86_400),
    };

    let other_replica = Db::connect(&config).await.unwrap();
    let (class, key) = SWEEP_LOCK;
    let sweeping = other_replica.try_exclusive(class, key).await.unwrap();
    assert!(sweeping.is_some());
    assert!(
        !sweeper.tick_exclusive().await.unwrap(),
        "the tick is skipped"
    );
    assert_eq!(stage(updater.clone()).await, Stage::New);

    drop(sweeping);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sweeper.tick_exclusive().await.unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stage(updater.clone()).await, Stage::Churned);
}

/// The sweep deletes the keys of events processed longer ago than the deduplication window and
/// keeps the younger ones, which still stop a redelivered event from counting twice.
async fn sweep_forgets_old_event_keys(backend: Backend) {
    let Some((updater, clock, _dir)) = open(backend).await else {
        return;
    };
    let updater = Arc::new(updater);
    let window = std::time::Duration::from_secs(14 * 86_400);
    let sweeper = Sweeper {
        updater: updater.clone(),
        batch: 100,
        rfm_interval: std::time::Duration::from_secs(86_400),
        dedup_window: window,
    };
    let old = comment(TENANT, "c-old", "ann", T0_US, "hello");
    updater.apply_events(&[old]).await.unwrap();
    clock.set(T0_US + 10 * DAY_US);
    let young = comment(TENANT, "c-young", "ann", T0_US + 10 * DAY_US, "again");
    updater
        .apply_events(std::slice::from_ref(&young))
        .await
        .unwrap();
    let keys = |updater: Arc<Updater>| async move {
        let rows = sqlx::query("SELECT event_id FROM processed_events ORDER BY event_id")
            .fetch_all(updater.store().db().pool())
            .await
            .unwrap();
        rows.iter()
            .map(|row| row.try_get::<String, _>(0).unwrap())
            .collect::<Vec<_>>()
    };

    sweeper.tick_exclusive().await.unwrap();
    assert_eq!(keys(updater.clone()).await, ["c-old", "c-young"]);
    clock.set(T0_US + 15 * DAY_US);
    sweeper.tick_exclusive().await.unwrap();
    assert_eq!(keys(updater.clone()).await, ["c-young"], "the old key went");

    updater.apply_events(&[young]).await.unwrap();
    let comments = updater
        .store()
        .profile_by_alias(TENANT, "user:ann")
        .await
        .unwrap()
        .expect("profile")
        .state
        .profile
        .count("comment");
    assert_eq!(comments, 2, "a redelivery inside the window counts once");
}

#[tokio::test]
async fn sweep_forgets_old_event_keys_sqlite() {
    sweep_forgets_old_event_keys(Backend::Sqlite).await;
}

#[tokio::test]
async fn sweep_forgets_old_event_keys_postgres() {
    sweep_forgets_old_event_keys(Backend::Postgres).await;
}

/// Two transactions each link the same phone, unknown to both when they looked, to a different new
/// user (two replicas, or two consumer lanes). The second to commit must not take the alias over:
/// it fails with a conflict, and its retry merges the two users.
#[tokio::test]
async fn a_concurrently_linked_alias_merges_on_retry_on_postgres() {
    let Some((updater, _clock, _dir)) = open(Backend::Postgres).await else {
        return;
    };
    let updater = Arc::new(updater);
    updater
        .apply_events(&[comment(TENANT, "seed", "seed", T0_US, "hi")])
        .await
        .unwrap();
    // Holding the tenant's daily counter row keeps the first transaction open after it has
    // written its aliases, so the second meets them uncommitted.
    let db = updater.store().db().clone();
    let mut blocker = db.begin().await.unwrap();
    sqlx::query("SELECT day FROM audience_daily WHERE tenant_id = $1 FOR UPDATE")
        .bind(TENANT)
        .fetch_all(&mut *blocker)
        .await
        .unwrap();
    let ann = identify_phone(TENANT, "ann-id", "ann", T0_US, "phone-hash");
    let bob = identify_phone(TENANT, "bob-id", "bob", T0_US, "phone-hash");
    let first = tokio::spawn({
        let (updater, ann) = (updater.clone(), ann.clone());
        async move { updater.apply_events(&[ann]).await }
    });
    // Both wait: the first for the counter row, the second for the first's alias.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let waiting = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap()
    };
    while waiting().await < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let second = tokio::spawn({
        let (updater, bob) = (updater.clone(), bob.clone());
        async move { updater.apply_events(&[bob]).await }
    });
    while waiting().await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    blocker.commit().await.unwrap();
    first.await.unwrap().unwrap();
    let outcome = second.await.unwrap();
    assert!(
        matches!(outcome, Err(SegmentationError::Conflict(_))),
        "the second transaction must not take the alias over: {outcome:?}"
    );

    updater.apply_events(&[bob]).await.unwrap();
    let merged = updater
        .store()
        .profile_by_alias(TENANT, "user:bob")
        .await
        .unwrap()
        .expect("bob's profile");
    assert_eq!(merged.state.profile.user_id, "ann");
    assert_eq!(merged.state.merged_user_ids, ["bob"]);
}

/// A batch split by user into concurrent lanes has the same effect as one transaction: the same
/// profiles, counts, orders and merges, a redelivered batch counting once. A lane that meets a
/// conflict fails the batch, which is retried as the consumer would.
#[tokio::test]
async fn lanes_change_nothing_but_speed_on_postgres() {
    let Some((one, _clock_one, _dir_one)) = open(Backend::Postgres).await else {
        return;
    };
    let Some((four, _clock_four, _dir_four)) = open(Backend::Postgres).await else {
        return;
    };
    let mut events = population();
    // Pairs of users who turn out to share a phone.
    for i in 0..10 {
        for user in [format!("u{i:02}"), format!("u{:02}", i + 30)] {
            events.push(identify_phone(
                TENANT,
                &format!("id-{user}"),
                &user,
                T0_US,
                &format!("phone-{i}"),
            ));
        }
    }
    let messages: Vec<ReceivedMessage> = events
        .iter()
        .enumerate()
        .map(|(offset, e)| ReceivedMessage {
            topic: "events".into(),
            partition: 0,
            offset: offset as i64,
            key: None,
            payload: Some(e.encode_to_vec()),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect();
    let mut results = Vec::new();
    for (updater, lanes) in [(one, 1), (four, 4)] {
        let updater = Arc::new(updater);
        let handler = EventHandler::new(updater.clone(), lanes);
        for delivery in 0..2 {
            let mut attempts = 0;
            while let Err(error) = handler.handle(&messages).await {
                attempts += 1;
                assert!(attempts < 10, "delivery {delivery} keeps failing: {error}");
            }
        }
        let mut groups = BTreeSet::new();
        for i in 0..60 {
            let p = updater
                .store()
                .profile_by_alias(TENANT, &format!("user:u{i:02}"))
                .await
                .unwrap()
                .expect("profile");
            let mut users: Vec<String> = p.state.merged_user_ids.clone();
            users.push(p.state.profile.user_id.clone());
            users.sort();
            let profile = &p.state.profile;
            groups.insert((
                users,
                format!("{:?}", profile.counts),
                profile.orders_count,
                profile.orders_total_cents,
                profile.refunded_cents,
                format!("{:?}", profile.tags),
            ));
        }
        assert_eq!(groups.len(), 50, "ten pairs merged, {lanes} lane(s)");
        results.push(groups);
    }
    assert_eq!(results[0], results[1], "four lanes against one");
}

async fn talkers_segment(store: &ProfileStore, segment_id: &str) {
    let mut conn = store.conn().await.unwrap();
    insert_segment(
        &mut conn,
        &SegmentRow {
            tenant_id: TENANT.into(),
            segment_id: segment_id.into(),
            name: format!("talkers {segment_id}"),
            description: String::new(),
            rule: "count.comment >= 1".into(),
            size: 0,
            created_at_us: T0_US,
            updated_at_us: T0_US,
        },
    )
    .await
    .unwrap();
}

/// A segment deleted while a transaction is evaluating profiles against it: the deletion waits for
/// that transaction and takes the member it added with it, announcing the leave; and events evaluated
/// while a deletion is under way wait for it and do not enter the deleted segment. (PostgreSQL; SQLite
/// runs one writer at a time.)
#[tokio::test]
async fn segment_deletion_and_evaluations_wait_for_each_other_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = database(Backend::Postgres, dir.path()).await else {
        return;
    };
    let (updater, _clock) = open_config(&config).await;
    let updater = Arc::new(updater);
    let store = updater.store();
    talkers_segment(store, "s1").await;

    // An evaluation in flight: it has read the segment and is adding a member.
    let mut evaluation = store.db().begin_write().await.unwrap();
    let seen = segments_for_evaluation(&mut evaluation, TENANT)
        .await
        .unwrap();
    assert_eq!(seen.len(), 1);
    add_members(
        &mut evaluation,
        TENANT,
        &[("s1".into(), "u1".into())],
        T0_US,
    )
    .await
    .unwrap();

    let deleting = tokio::spawn({
        let updater = updater.clone();
        async move { updater.delete_segment(TENANT, "s1").await.unwrap() }
    });
    socialops_storage::testing::wait_for_lock_waiters(store.db(), 1).await;
    assert!(
        !deleting.is_finished(),
        "the deletion waits for the evaluation"
    );
    evaluation.commit().await.unwrap();
    assert!(deleting.await.unwrap(), "the segment existed");

    let left: i64 = sqlx::query("SELECT COUNT(*) FROM segment_members WHERE tenant_id = $1")
        .bind(TENANT)
        .fetch_one(store.db().pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(left, 0, "no member outlives its segment");
    let leaves: i64 = sqlx::query("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.db().pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(leaves, 1, "the member's leave is queued");

    // Events evaluated while a deletion is under way wait for it and no longer see the segment.
    talkers_segment(store, "s2").await;
    let mut deletion = store.db().begin_write().await.unwrap();
    assert!(
        socialops_segmentation::store::segments::delete_segment(&mut deletion, TENANT, "s2")
            .await
            .unwrap()
            .is_some()
    );
    let applying = tokio::spawn({
        let updater = updater.clone();
        async move {
            updater
                .apply_events(&[comment(TENANT, "c-2", "u2", T0_US, "hello")])
                .await
                .unwrap();
        }
    });
    socialops_storage::testing::wait_for_lock_waiters(store.db(), 1).await;
    assert!(
        !applying.is_finished(),
        "the evaluation waits for the deletion"
    );
    deletion.commit().await.unwrap();
    applying.await.unwrap();
    let members = {
        let mut conn = store.conn().await.unwrap();
        memberships(&mut conn, TENANT, &["u2".to_owned()])
            .await
            .unwrap()
    };
    assert!(members.is_empty(), "{members:?}");
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox")
        .fetch_all(store.db().pool())
        .await
        .unwrap();
    let entered: Vec<String> = payloads
        .iter()
        .filter_map(
            |p| match ProfileChange::decode(p.as_slice()).unwrap().change {
                Some(Change::SegmentEntered(e)) => Some(e.segment_id),
                _ => None,
            },
        )
        .collect();
    assert!(entered.is_empty(), "entered a deleted segment: {entered:?}");
}
