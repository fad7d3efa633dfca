//! Every call is scoped to the tenant of the caller's token, and roles are enforced.

use socialops_auth::Role;
use socialops_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use socialops_proto::segmentation::v1::{
    CreateSegmentRequest, GetProfileRequest, GetSegmentRequest, ListProfilesRequest,
    get_profile_request,
};

use crate::support::{Backend, T0_US, comment, spawn_app};

fn by_user(user: &str) -> GetProfileRequest {
    GetProfileRequest {
        key: Some(get_profile_request::Key::UserId(user.into())),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_tenant_sees_only_its_own() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let (a, b) = (app.tenant.clone(), format!("{}-b", app.tenant));
    app.send(&[
        comment(&a, "a1", "alice", T0_US, "a"),
        comment(&b, "b1", "bob", T0_US, "b"),
    ])
    .await;
    let mut reader_a = app.client_for(&a, Role::Reader).await;
    let mut writer_b = app.client_for(&b, Role::Writer).await;
    app.wait_profile(&mut reader_a, "alice", |_| true).await;
    app.wait_profile(&mut writer_b, "bob", |_| true).await;

    let hidden = reader_a.get_profile(by_user("bob")).await.unwrap_err();
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    let other = reader_a
        .get_profile(GetProfileRequest {
            tenant_id: b.clone(),
            ..by_user("bob")
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::PermissionDenied);
    assert_eq!(other.message(), "token is scoped to another tenant");
    let listed = reader_a
        .list_profiles(ListProfilesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .profiles;
    assert_eq!(
        listed
            .iter()
            .map(|p| p.user_id.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    let denied = reader_a
        .list_profiles(ListProfilesRequest {
            tenant_id: b.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let segment_of_b = writer_b
        .create_segment(CreateSegmentRequest {
            name: "all".into(),
            rule: "count.comment >= 0".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(segment_of_b.size, 1, "bob only");
    let not_yours = reader_a
        .get_segment(GetSegmentRequest {
            segment_id: segment_of_b.segment_id,
        })
        .await
        .unwrap_err();
    assert_eq!(not_yours.code(), tonic::Code::NotFound);

    let read_only = reader_a
        .create_segment(CreateSegmentRequest {
            name: "x".into(),
            rule: "following = true".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(read_only.code(), tonic::Code::PermissionDenied);
    assert_eq!(read_only.message(), "requires the writer role");

    let channel = socialops_grpc::connect(&format!("http://{}", app.running().grpc_addr))
        .await
        .unwrap();
    let anonymous = SegmentationServiceClient::new(channel)
        .get_profile(by_user("alice"))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    app.stop().await;
}
