//! A launch's audience, read from the segmentation service with the caller's own token.

use socialops_proto::segmentation::v1::ListMembersRequest;
use socialops_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::CampaignError;

const PAGE_SIZE: u32 = 5_000;

#[derive(Clone)]
pub struct SegmentMembers {
    channel: Channel,
}

impl SegmentMembers {
    /// A lazily connected client of the segmentation service at `url`.
    pub fn new(url: &str) -> Result<Self, CampaignError> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| {
            CampaignError::Config(format!("campaign.segmentation_url {url:?}: {e}"))
        })?;
        Ok(Self {
            channel: endpoint.connect_lazy(),
        })
    }

    /// Every member of the segment, asked as `bearer` (the `authorization` value of the request
    /// that started the launch).
    pub async fn members(
        &self,
        segment_id: &str,
        bearer: &str,
    ) -> Result<Vec<String>, CampaignError> {
        let mut client = SegmentationServiceClient::new(self.channel.clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        let mut request = tonic::Request::new(ListMembersRequest {
            segment_id: segment_id.to_owned(),
            page_size: PAGE_SIZE,
            page_token: String::new(),
            max_pages: 0,
        });
        let value = bearer
            .parse()
            .map_err(|_| CampaignError::InvalidArgument("authorization: not ASCII".into()))?;
        request.metadata_mut().insert("authorization", value);
        let unavailable = |status: tonic::Status| match status.code() {
            tonic::Code::NotFound => CampaignError::Precondition(format!(
                "segment {segment_id}: not found in segmentation"
            )),
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                CampaignError::Precondition(format!(
                    "segmentation refused to list segment {segment_id}: {}",
                    status.message()
                ))
            }
            _ => CampaignError::Runtime(format!(
                "segmentation listing segment {segment_id}: {}",
                status.message()
            )),
        };
        let mut stream = client
            .list_members(request)
            .await
            .map_err(unavailable)?
            .into_inner();
        let mut members = Vec::new();
        while let Some(page) = stream.message().await.map_err(unavailable)? {
            members.extend(page.members.into_iter().map(|m| m.user_id));
        }
        Ok(members)
    }
}
