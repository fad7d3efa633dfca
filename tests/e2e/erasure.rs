//! A user's erasure, asked of ingestion, reaches every service through the privacy topic; the
//! tenant's other users stay as they were.

use socialops_proto::ingestion::v1::{EraseUserRequest, IngestEventsRequest};
use tonic::Code;

use crate::story::{TENANT, USER, play};
use crate::support::{Backend, Stack, ago, comment, eventually};

const NEIGHBOUR: &str = "xhs_u_77c0d2e1";

async fn an_erased_user_is_gone_from_every_service(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let story = play(&stack).await;
    let clients = &story.clients;
    let neighbours_comment = comment(
        TENANT,
        "xhs-cmt-n1",
        NEIGHBOUR,
        ago(200),
        "积雪草精华吸收快，效果不错，推荐",
    );
    clients
        .ingestion
        .clone()
        .ingest_events(IngestEventsRequest {
            events: vec![neighbours_comment.clone()],
        })
        .await
        .unwrap();
    eventually("segmentation and sentiment see the neighbour", || async {
        let profile = clients.profile(NEIGHBOUR).await;
        let waiting = clients.unanswered().await.map_err(|e| e.to_string())?;
        let of = |user: &str| waiting.iter().filter(|m| m.user_id == user).count();
        match (&profile, of(USER), of(NEIGHBOUR)) {
            (Ok(_), 2, 1) => Ok(()),
            _ => Err(format!("{profile:?}, {waiting:#?}")),
        }
    })
    .await;
    assert_eq!(clients.members(&story.segment_id).await.unwrap(), [USER]);

    let erased = clients
        .ingestion
        .clone()
        .erase_user(EraseUserRequest {
            user_id: USER.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.events_erased, 4);

    let announced = stack
        .erasures
        .wait_until("the erasure request on the privacy topic", |r| {
            r.value.request_id == erased.request_id
        })
        .await;
    assert_eq!(announced.key.as_deref(), Some(&*format!("{TENANT}:{USER}")));
    assert_eq!(
        (
            announced.value.tenant_id.as_str(),
            announced.value.user_id.as_str()
        ),
        (TENANT, USER)
    );

    eventually("segmentation forgets the profile", || async {
        match clients.profile(USER).await {
            Err(status) if status.code() == Code::NotFound => Ok(()),
            other => Err(format!("{other:#?}")),
        }
    })
    .await;
    assert_eq!(
        clients.members(&story.segment_id).await.unwrap(),
        Vec::<String>::new(),
        "the erased user left the segment"
    );
    eventually("sentiment no longer lists the user's comments", || async {
        let waiting = clients.unanswered().await.map_err(|e| e.to_string())?;
        match waiting.iter().any(|m| m.user_id == USER) {
            false => Ok(()),
            true => Err(format!("{waiting:#?}")),
        }
    })
    .await;
    for event_id in story.event_ids() {
        let status = clients.event(&event_id).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{event_id}: {status:?}");
    }
    assert!(clients.events_of(USER).await.unwrap().is_empty());

    assert!(clients.profile(NEIGHBOUR).await.is_ok(), "neighbours stay");
    assert!(
        clients
            .unanswered()
            .await
            .unwrap()
            .iter()
            .any(|m| m.event_id == neighbours_comment.event_id)
    );
    assert_eq!(clients.events_of(NEIGHBOUR).await.unwrap().len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_user_is_gone_from_every_service_postgres() {
    an_erased_user_is_gone_from_every_service(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_user_is_gone_from_every_service_sqlite() {
    an_erased_user_is_gone_from_every_service(Backend::Sqlite).await;
}
