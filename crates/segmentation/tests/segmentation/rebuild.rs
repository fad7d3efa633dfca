//! A segment's membership is built whatever happens to the call that created it or changed its rule:
//! the call cancelled or the service killed part-way through, the membership is complete in the end
//! and every member's enter is announced once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use socialops_proto::profiles::v1::profile_change::Change;
use socialops_proto::profiles::v1::{Cause, ProfileChange};
use socialops_proto::segmentation::v1::{CreateSegmentRequest, GetSegmentRequest};
use socialops_segmentation::store::segments::{
    SegmentRow, finish_rebuild, memberships, pending_rebuilds,
};
use socialops_segmentation::update::{REEVALUATE_PAGE, Updater, rebuild};
use socialops_storage::{Db, Row};
use tokio_util::sync::CancellationToken;

use crate::store::{TENANT, open_config};
use crate::support::{Backend, T0_US, TestApp, comment, database, poll, spawn_app};

/// Enough profiles for the rebuild to take three pages.
const NUM_PROFILES: usize = 2 * REEVALUATE_PAGE + REEVALUATE_PAGE / 2;
const RULE: &str = "count.comment >= 1";

fn user(i: usize) -> String {
    format!("u{i:05}")
}

/// One comment from each of [`NUM_PROFILES`] users (and a second from every tenth), folded in as
/// the consumer would, a batch at a time.
async fn populate(updater: &Updater, tenant: &str) {
    let mut events = Vec::new();
    for i in 0..NUM_PROFILES {
        events.push(comment(tenant, &format!("c{i}"), &user(i), T0_US, "不错"));
        if i % 10 == 0 {
            events.push(comment(tenant, &format!("d{i}"), &user(i), T0_US, "很好"));
        }
    }
    for batch in events.chunks(500) {
        updater.apply_events(batch).await.unwrap();
    }
}

/// Holds a rebuild at its second page: until [`Gate::lift`], the database refuses the membership of
/// that page's first profile, so the page fails and rolls back every time it is tried.
struct Gate {
    db: Db,
}

impl Gate {
    async fn close(db: Db) -> Self {
        let held = user(REEVALUATE_PAGE);
        let statements = match db.backend() {
            socialops_storage::Backend::Postgres => vec![
                "CREATE FUNCTION hold_member() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'held by the test'; END $$"
                    .to_owned(),
                format!(
                    "CREATE TRIGGER hold_member BEFORE INSERT ON segment_members FOR EACH ROW \
                     WHEN (NEW.profile_id = '{held}') EXECUTE FUNCTION hold_member()"
                ),
            ],
            socialops_storage::Backend::Sqlite => vec![format!(
                "CREATE TRIGGER hold_member BEFORE INSERT ON segment_members \
                 WHEN NEW.profile_id = '{held}' BEGIN SELECT RAISE(ABORT, 'held by the test'); END"
            )],
        };
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(db.pool())
                .await
                .unwrap();
        }
        Self { db }
    }

    async fn lift(self) {
        let statement = match self.db.backend() {
            socialops_storage::Backend::Postgres => "DROP TRIGGER hold_member ON segment_members",
            socialops_storage::Backend::Sqlite => "DROP TRIGGER hold_member",
        };
        sqlx::query(statement)
            .execute(self.db.pool())
            .await
            .unwrap();
    }
}

/// Waits until the tenant's segment called `name` has `size` members; returns its id.
async fn wait_size(db: &Db, tenant: &str, name: &str, size: usize) -> String {
    let found = poll(
        || async {
            sqlx::query("SELECT segment_id, size FROM segments WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name)
                .fetch_optional(db.pool())
                .await
                .unwrap()
                .map(|row| {
                    (
                        row.try_get::<String, _>(0).unwrap(),
                        row.try_get::<i64, _>(1).unwrap(),
                    )
                })
        },
        |found| found.as_ref().is_some_and(|(_, n)| *n == size as i64),
    )
    .await;
    match found {
        Some(Some((segment_id, _))) => segment_id,
        _ => panic!("segment `{name}` never had {size} members"),
    }
}

/// How many times each user's entering the segment was announced.
fn enters(changes: &[ProfileChange], segment_id: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for change in changes {
        if let Some(Change::SegmentEntered(entered)) = &change.change
            && entered.segment_id == segment_id
        {
            assert_eq!(change.cause(), Cause::SegmentDefinition, "{change:?}");
            *counts.entry(change.user_id.clone()).or_insert(0) += 1;
        }
    }
    counts
}

/// Every profile's enter reaches `socialops.profiles.v1`, and none twice.
async fn every_profile_entered_once(app: &TestApp, segment_id: &str) {
    app.changes
        .wait_for("every profile's enter", |all| {
            enters(all, segment_id).len() == NUM_PROFILES
        })
        .await;
    // Give a second announcement time to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = enters(&app.changes.all(), segment_id);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "announced more than once: {twice:?}");
    assert_eq!(counts.len(), NUM_PROFILES);
}

async fn complete_segment(app: &TestApp, segment_id: &str) {
    let segment = app
        .client()
        .await
        .get_segment(GetSegmentRequest {
            segment_id: segment_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(segment.size, NUM_PROFILES as u64);
    assert!(!segment.rebuilding);
}

async fn a_cancelled_call_does_not_stop_the_rebuild(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    populate(&app.running().updater, &app.tenant).await;
    let db = app.db().await;
    let gate = Gate::close(db.clone()).await;
    let mut client = app.client().await;
    let call = tokio::spawn(async move {
        client
            .create_segment(CreateSegmentRequest {
                name: "talkers".into(),
                rule: RULE.into(),
                ..Default::default()
            })
            .await
    });
    let segment_id = wait_size(&db, &app.tenant, "talkers", REEVALUATE_PAGE).await;
    if call.is_finished() {
        panic!("the call did not wait for the rebuild: {:?}", call.await);
    }
    // Dropping the call's future cancels it.
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());

    gate.lift().await;
    every_profile_entered_once(&app, &segment_id).await;
    complete_segment(&app, &segment_id).await;
    app.stop().await;
}

#[tokio::test]
async fn a_cancelled_call_does_not_stop_the_rebuild_sqlite() {
    a_cancelled_call_does_not_stop_the_rebuild(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_cancelled_call_does_not_stop_the_rebuild_postgres() {
    a_cancelled_call_does_not_stop_the_rebuild(Backend::Postgres).await;
}

async fn a_killed_service_finishes_the_rebuild_after_restart(backend: Backend) {
    let Some(mut app) = spawn_app(backend).await else {
        return;
    };
    populate(&app.running().updater, &app.tenant).await;
    let db = app.db().await;
    let gate = Gate::close(db.clone()).await;
    let mut request = tonic::Request::new(CreateSegmentRequest {
        name: "talkers".into(),
        rule: RULE.into(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(5));
    let segment = app
        .client()
        .await
        .create_segment(request)
        .await
        .expect("the call answers before its deadline")
        .into_inner();
    assert!(segment.rebuilding, "{segment:?}");
    assert_eq!(segment.size, REEVALUATE_PAGE as u64, "one page is done");
    let segment_id = segment.segment_id;
    // The first page's enters are on the topic, so that none is in flight to the broker when the
    // service dies: the relay may publish a message twice if it dies between sending and deleting.
    app.changes
        .wait_for("the first page's enters", |all| {
            enters(all, &segment_id).len() == REEVALUATE_PAGE
        })
        .await;

    app.kill();
    gate.lift().await;
    let pending = {
        let mut conn = db.pool().acquire().await.unwrap();
        pending_rebuilds(&mut conn).await.unwrap()
    };
    assert_eq!(
        pending.len(),
        1,
        "the rebuild is still recorded: {pending:?}"
    );
    app.restart().await;
    every_profile_entered_once(&app, &segment_id).await;
    complete_segment(&app, &segment_id).await;
    app.stop().await;
}

#[tokio::test]
async fn a_killed_service_finishes_the_rebuild_after_restart_sqlite() {
    a_killed_service_finishes_the_rebuild_after_restart(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_killed_service_finishes_the_rebuild_after_restart_postgres() {
    a_killed_service_finishes_the_rebuild_after_restart(Backend::Postgres).await;
}

fn talkers(rule: &str) -> SegmentRow {
    SegmentRow {
        tenant_id: TENANT.into(),
        segment_id: "s1".into(),
        name: "talkers".into(),
        description: String::new(),
        rule: rule.into(),
        size: 0,
        created_at_us: T0_US,
        updated_at_us: T0_US,
    }
}

/// Every segment enter queued in the outbox, counted per user.
async fn queued_enters(db: &Db) -> HashMap<String, usize> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let changes: Vec<ProfileChange> = payloads
        .iter()
        .map(|p| ProfileChange::decode(p.as_slice()).unwrap())
        .collect();
    enters(&changes, "s1")
}

async fn assert_complete(updater: &Updater) {
    let ids: Vec<String> = (0..NUM_PROFILES).map(user).collect();
    let members = {
        let mut conn = updater.store().conn().await.unwrap();
        memberships(&mut conn, TENANT, &ids).await.unwrap()
    };
    assert_eq!(members.len(), NUM_PROFILES, "every profile is a member");
    let enters = queued_enters(updater.store().db()).await;
    assert_eq!(enters.len(), NUM_PROFILES);
    let twice: Vec<_> = enters.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "queued more than once: {twice:?}");
}

/// A process that recorded a rebuild and did one page of it stops; the next one's rebuild loop, with
/// nothing to wake it but its interval, finds the rebuild still recorded and finishes it without
/// queueing the first page's enters again.
async fn a_pending_rebuild_outlives_its_process(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = database(backend, dir.path()).await else {
        return;
    };
    let (updater, _clock) = open_config(&config).await;
    populate(&updater, TENANT).await;
    updater.create_segment(&talkers(RULE)).await.unwrap();
    let mismatched = updater
        .store()
        .membership_mismatches(
            TENANT,
            "s1",
            &socialops_segmentation::domain::parse(RULE).unwrap(),
            T0_US,
        )
        .await
        .unwrap();
    assert_eq!(mismatched.len(), NUM_PROFILES);
    updater
        .reevaluate(
            TENANT,
            &mismatched[..REEVALUATE_PAGE],
            Cause::SegmentDefinition,
        )
        .await
        .unwrap();
    updater.store().db().close().await;
    drop(updater);

    let (updater, _clock) = open_config(&config).await;
    let updater = Arc::new(updater);
    let pending = {
        let mut conn = updater.store().conn().await.unwrap();
        pending_rebuilds(&mut conn).await.unwrap()
    };
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].segment_id, "s1");
    let shutdown = CancellationToken::new();
    let rebuilding = tokio::spawn(rebuild::run(
        updater.clone(),
        Duration::from_millis(50),
        shutdown.clone(),
    ));
    let finished = poll(
        || async {
            let mut conn = updater.store().conn().await.unwrap();
            pending_rebuilds(&mut conn).await.unwrap()
        },
        Vec::is_empty,
    )
    .await;
    assert!(
        finished.is_some(),
        "the rebuild loop never finished the rebuild"
    );
    shutdown.cancel();
    rebuilding.await.unwrap().unwrap();
    assert_complete(&updater).await;
}

#[tokio::test]
async fn a_pending_rebuild_outlives_its_process_sqlite() {
    a_pending_rebuild_outlives_its_process(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_pending_rebuild_outlives_its_process_postgres() {
    a_pending_rebuild_outlives_its_process(Backend::Postgres).await;
}

/// A rule change while a rebuild under the old rule is under way: that rebuild's end leaves the newer
/// request pending, and the next pass builds the membership of the new rule.
async fn a_rule_change_keeps_its_own_rebuild(backend: Backend) {
    let Some((updater, _clock, _dir)) = crate::store::open(backend).await else {
        return;
    };
    populate(&updater, TENANT).await;
    let mut segment = talkers(RULE);
    updater.create_segment(&segment).await.unwrap();
    let first = {
        let mut conn = updater.store().conn().await.unwrap();
        pending_rebuilds(&mut conn).await.unwrap().remove(0)
    };
    segment.rule = "count.comment >= 2".into();
    segment.updated_at_us = T0_US + 1;
    assert!(updater.update_segment(&segment, true).await.unwrap());
    let mut conn = updater.store().conn().await.unwrap();
    assert!(
        !finish_rebuild(&mut conn, TENANT, "s1", &first.request_id)
            .await
            .unwrap(),
        "the rebuild under the old rule does not end the newer one"
    );
    let second = pending_rebuilds(&mut conn).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].request_id, first.request_id);
    assert_eq!(second[0].rule, "count.comment >= 2");
    assert_eq!(
        second[0].requested_at_us, T0_US,
        "it keeps its place in the queue"
    );
    drop(conn);

    let finished = updater
        .rebuild_pending(&CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(finished, 1);
    let ids: Vec<String> = (0..NUM_PROFILES).map(user).collect();
    let members = {
        let mut conn = updater.store().conn().await.unwrap();
        memberships(&mut conn, TENANT, &ids).await.unwrap()
    };
    let expected: BTreeSet<String> = (0..NUM_PROFILES).step_by(10).map(user).collect();
    assert_eq!(members.keys().cloned().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn a_rule_change_keeps_its_own_rebuild_sqlite() {
    a_rule_change_keeps_its_own_rebuild(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_rule_change_keeps_its_own_rebuild_postgres() {
    a_rule_change_keeps_its_own_rebuild(Backend::Postgres).await;
}

/// Two replicas passing over the same rebuild at once, without the rebuild lock: the row locks of the
/// page transactions keep every enter queued once, and one of them ends the rebuild.
#[tokio::test]
async fn overlapping_rebuilds_queue_each_enter_once_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = database(Backend::Postgres, dir.path()).await else {
        return;
    };
    let (one, _clock_one) = open_config(&config).await;
    let (other, _clock_other) = open_config(&config).await;
    populate(&one, TENANT).await;
    one.create_segment(&talkers(RULE)).await.unwrap();
    let shutdown = CancellationToken::new();
    let (by_one, by_other) = tokio::join!(
        one.rebuild_pending(&shutdown),
        other.rebuild_pending(&shutdown)
    );
    assert_eq!(by_one.unwrap() + by_other.unwrap(), 1);
    assert_complete(&one).await;
}
