use std::collections::HashMap;
use std::time::Duration;

use socialops_auth::Role;
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::ingestion::v1::{
    EraseUserRequest, GetEventRequest, IngestEventsRequest, ListEventsRequest, Outcome,
};
use socialops_proto::privacy::v1::ErasureRequest;
use tonic::Code;

use crate::support::{Backend, comment, order, spawn_app};

async fn duplicate_is_reported_and_not_republished(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut client = app.writer().await;
    let t = app.tenant.clone();
    let first = IngestEventsRequest {
        events: vec![
            comment(&t, "e-1", "u-1", "好用"),
            comment(&t, "e-2", "u-2", "不错"),
        ],
    };
    let response = client.ingest_events(first).await.unwrap().into_inner();
    assert_eq!(
        (response.accepted, response.duplicate, response.rejected),
        (2, 0, 0)
    );

    let again = IngestEventsRequest {
        events: vec![
            comment(&t, "e-1", "u-1", "好用"),
            comment(&t, "e-1", "u-1", "好用"),
        ],
    };
    let response = client.ingest_events(again).await.unwrap().into_inner();
    assert_eq!(
        (response.accepted, response.duplicate, response.rejected),
        (0, 2, 0)
    );
    assert!(
        response
            .results
            .iter()
            .all(|r| r.outcome == Outcome::Duplicate as i32)
    );

    let published = app
        .read_topic(
            &app.topics.events,
            2,
            Duration::from_secs(3),
            Duration::from_secs(30),
        )
        .await;
    let mut ids: Vec<String> = published
        .iter()
        .map(|m| m.decode::<SocialEvent>().event_id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["e-1", "e-2"],
        "each accepted event published exactly once"
    );
    let first = &published[0];
    assert_eq!(
        first.key.as_deref(),
        Some(format!("{t}:{}", first.decode::<SocialEvent>().user_id).as_str())
    );
    assert_eq!(
        first.headers.get("content-type").map(String::as_str),
        Some("application/x-protobuf")
    );
    assert_eq!(
        first.headers.get("schema").map(String::as_str),
        Some("socialops.events.v1.SocialEvent")
    );
    assert!(first.decode::<SocialEvent>().received_at.is_some());
    app.stop().await;
}

#[tokio::test]
async fn duplicate_is_reported_and_not_republished_sqlite() {
    duplicate_is_reported_and_not_republished(Backend::Sqlite).await;
}

#[tokio::test]
async fn duplicate_is_reported_and_not_republished_postgres() {
    duplicate_is_reported_and_not_republished(Backend::Postgres).await;
}

#[tokio::test]
async fn one_bad_event_does_not_reject_its_batch() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let mut client = app.writer().await;
    let t = app.tenant.clone();
    let mut unknown_platform = comment(&t, "e-3", "u-1", "hi");
    unknown_platform.platform = 42;
    let events = vec![
        order(&t, "e-1", "u-1", 1_999),
        order(&t, "e-2", "u-1", -5),
        unknown_platform,
        comment(&t, "e-4", "u-2", "还行"),
    ];
    let response = client
        .ingest_events(IngestEventsRequest { events })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (response.accepted, response.duplicate, response.rejected),
        (2, 0, 2)
    );
    let by_index: HashMap<u64, _> = response.results.iter().map(|r| (r.index, r)).collect();
    assert_eq!(by_index[&1].outcome, Outcome::Rejected as i32);
    assert_eq!(
        by_index[&1].reason,
        "order_placed.amount_cents: must not be negative, got -5"
    );
    assert!(
        by_index[&2].reason.starts_with("platform:"),
        "{}",
        by_index[&2].reason
    );
    assert_eq!(by_index[&0].outcome, Outcome::Accepted as i32);
    assert_eq!(by_index[&3].outcome, Outcome::Accepted as i32);
    let found = client
        .get_event(GetEventRequest {
            tenant_id: String::new(),
            event_id: "e-4".into(),
        })
        .await
        .unwrap();
    assert_eq!(found.into_inner().event.unwrap().user_id, "u-2");
    let missing = client
        .get_event(GetEventRequest {
            tenant_id: String::new(),
            event_id: "e-2".into(),
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn oversized_batch_is_refused_whole() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut client = app.writer().await;
    let events = (0..1_001)
        .map(|i| comment(&app.tenant, &format!("e-{i}"), "u", "x"))
        .collect();
    let status = client
        .ingest_events(IngestEventsRequest { events })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("limit of 1000"),
        "{}",
        status.message()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_full_batch_of_large_events_fits_in_one_request() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut client = app.writer().await;
    let text = "很".repeat(2_000);
    let events: Vec<_> = (0..1_000)
        .map(|i| comment(&app.tenant, &format!("e-{i}"), "u", &text))
        .collect();
    let response = client
        .ingest_events(IngestEventsRequest { events })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.accepted, 1_000,
        "a 6 MB request is within the limits"
    );
    app.stop().await;
}

#[tokio::test]
async fn streaming_bulk_load_counts_everything() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let mut client = app.writer().await;
    let t = app.tenant.clone();
    let batches: Vec<IngestEventsRequest> = (0..5)
        .map(|b| IngestEventsRequest {
            // Batch 4 repeats batch 3's ids; event 0 of every batch is invalid.
            events: (0..500)
                .map(|i| {
                    let id = format!("e-{}-{i}", b.min(3));
                    if i == 0 {
                        order(&t, &id, "u", -1)
                    } else {
                        comment(&t, &id, &format!("u-{}", i % 7), "好")
                    }
                })
                .collect(),
        })
        .collect();
    let response = client
        .ingest_event_stream(futures::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (response.accepted, response.duplicate, response.rejected),
        (4 * 499, 499, 5)
    );
    assert!(
        response
            .results
            .iter()
            .all(|r| r.outcome != Outcome::Accepted as i32)
    );
    let rejected: Vec<u64> = response
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Rejected as i32)
        .map(|r| r.index)
        .collect();
    assert_eq!(rejected, [0, 500, 1000, 1500, 2000]);
    app.stop().await;
}

#[tokio::test]
async fn tenants_are_isolated() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let tenant_a = app.tenant.clone();
    let tenant_b = format!("{tenant_a}-b");
    let mut a = app.writer().await;
    a.ingest_events(IngestEventsRequest {
        events: vec![comment(&tenant_a, "e-a", "u-1", "secret")],
    })
    .await
    .unwrap();

    let mut b = app.client_for(&tenant_b, Role::Admin).await;
    let read_a = b
        .get_event(GetEventRequest {
            tenant_id: tenant_a.clone(),
            event_id: "e-a".into(),
        })
        .await;
    assert_eq!(read_a.unwrap_err().code(), Code::PermissionDenied);
    let list_a = b
        .list_events(ListEventsRequest {
            tenant_id: tenant_a.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(list_a.unwrap_err().code(), Code::PermissionDenied);
    let own = b
        .get_event(GetEventRequest {
            tenant_id: String::new(),
            event_id: "e-a".into(),
        })
        .await;
    assert_eq!(
        own.unwrap_err().code(),
        Code::NotFound,
        "B's own namespace has no e-a"
    );
    let listed = b
        .list_events(ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.events.is_empty());
    let erase_a = b
        .erase_user(EraseUserRequest {
            tenant_id: tenant_a.clone(),
            user_id: "u-1".into(),
        })
        .await;
    assert_eq!(erase_a.unwrap_err().code(), Code::PermissionDenied);

    let forged = b
        .ingest_events(IngestEventsRequest {
            events: vec![comment(&tenant_a, "e-f", "u-1", "x")],
        })
        .await;
    let forged = forged.unwrap().into_inner();
    assert_eq!(forged.rejected, 1);
    assert!(
        forged.results[0]
            .reason
            .contains("does not match the token's tenant")
    );

    let mut reader = app.client_for(&tenant_a, Role::Reader).await;
    let write = reader
        .ingest_events(IngestEventsRequest {
            events: vec![comment(&tenant_a, "e-r", "u", "x")],
        })
        .await;
    assert_eq!(write.unwrap_err().code(), Code::PermissionDenied);
    assert!(
        reader
            .get_event(GetEventRequest {
                tenant_id: String::new(),
                event_id: "e-a".into()
            })
            .await
            .is_ok()
    );

    let channel = socialops_grpc::connect(&format!("http://{}", app.running().grpc_addr))
        .await
        .unwrap();
    let mut anonymous =
        socialops_proto::ingestion::v1::ingestion_service_client::IngestionServiceClient::new(
            channel,
        );
    let status = anonymous
        .list_events(ListEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    app.stop().await;
}

#[tokio::test]
async fn erasing_a_user_removes_their_events_and_announces_it() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut client = app.writer().await;
    let t = app.tenant.clone();
    let events = vec![
        comment(&t, "e-1", "gone", "a"),
        comment(&t, "e-2", "gone", "b"),
        comment(&t, "e-3", "kept", "c"),
    ];
    client
        .ingest_events(IngestEventsRequest { events })
        .await
        .unwrap();

    let erased = client
        .erase_user(EraseUserRequest {
            tenant_id: String::new(),
            user_id: "gone".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(erased.events_erased, 2);
    let gone = client
        .get_event(GetEventRequest {
            tenant_id: String::new(),
            event_id: "e-1".into(),
        })
        .await;
    assert_eq!(gone.unwrap_err().code(), Code::NotFound);
    let listed = client
        .list_events(ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed
            .events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["e-3"]
    );

    let replay = client
        .ingest_events(IngestEventsRequest {
            events: vec![comment(&t, "e-1", "gone", "a")],
        })
        .await;
    assert_eq!(
        replay.unwrap().into_inner().duplicate,
        1,
        "an erased event replayed is not stored again"
    );

    let announced = app
        .read_topic(
            &app.topics.privacy,
            1,
            Duration::from_secs(1),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(announced.len(), 1);
    let request: ErasureRequest = prost::Message::decode(announced[0].payload.as_slice()).unwrap();
    assert_eq!(
        (request.tenant_id.as_str(), request.user_id.as_str()),
        (t.as_str(), "gone")
    );
    assert_eq!(request.request_id, erased.request_id);
    assert_eq!(
        announced[0].key.as_deref(),
        Some(format!("{t}:gone").as_str())
    );
    app.stop().await;
}

#[tokio::test]
async fn list_events_pages_by_user_and_time() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let mut client = app.writer().await;
    let t = app.tenant.clone();
    let events: Vec<_> = (0..25)
        .map(|i| {
            let mut event = comment(
                &t,
                &format!("e-{i:02}"),
                if i % 2 == 0 { "even" } else { "odd" },
                "x",
            );
            event.occurred_at.as_mut().unwrap().seconds -= 1_000 - i;
            event
        })
        .collect();
    let window_from = events[4].occurred_at;
    client
        .ingest_events(IngestEventsRequest { events })
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_events(ListEventsRequest {
                user_id: "even".into(),
                from: window_from,
                page_size: 3,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.events.len() <= 3);
        seen.extend(page.events.into_iter().map(|e| e.event_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let expected: Vec<String> = (4..25)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("e-{i:02}"))
        .collect();
    assert_eq!(seen, expected);
    let bad = client
        .list_events(ListEventsRequest {
            page_token: "nonsense!".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
    app.stop().await;
}
