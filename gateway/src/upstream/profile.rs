//! Profile as the gateway calls it: the personal data, the education, the directories.

use super::{As, Calls};
use crate::error::{ApiError, ApiResult};
use examreg_proto::profile::v1::{self as pb, profile_service_client::ProfileServiceClient};
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Profile {
    client: ProfileServiceClient<Channel>,
    channel: Channel,
    calls: Calls,
}

fn written(profile: Option<pb::Profile>) -> ApiResult<pb::Profile> {
    profile.ok_or_else(|| ApiError::internal(&"profile answered without a profile"))
}

impl Profile {
    pub(crate) fn new(channel: Channel, calls: Calls) -> Self {
        Self {
            client: ProfileServiceClient::new(channel.clone()),
            channel,
            calls,
        }
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The profile of the applicant whose token this is.
    pub async fn profile(&self, token: &str) -> ApiResult<pb::Profile> {
        let message = pb::GetProfileRequest::default();
        let answer = call!(self, As::Bearer(token), message => get_profile).await?;
        written(answer.profile)
    }

    pub async fn update_name(
        &self,
        token: &str,
        name: pb::UpdateNameRequest,
    ) -> ApiResult<pb::Profile> {
        let answer = call!(self, As::Bearer(token), name => update_name).await?;
        written(answer.profile)
    }

    pub async fn update_details(
        &self,
        token: &str,
        details: pb::UpdateDetailsRequest,
    ) -> ApiResult<pb::Profile> {
        let answer = call!(self, As::Bearer(token), details => update_details).await?;
        written(answer.profile)
    }

    pub async fn update_education(
        &self,
        token: &str,
        education: pb::UpdateEducationRequest,
    ) -> ApiResult<pb::Profile> {
        let answer = call!(self, As::Bearer(token), education => update_education).await?;
        written(answer.profile)
    }

    /// Locks name, birth date and sex (idempotent); what is missing when it cannot.
    pub async fn lock(&self, token: &str) -> ApiResult<pb::LockProfileResponse> {
        call!(self, As::Bearer(token), pb::LockProfileRequest {} => lock_profile).await
    }

    pub async fn regions(&self) -> ApiResult<Vec<pb::Region>> {
        let answer = call!(self, As::Gateway, pb::ListRegionsRequest {} => list_regions).await?;
        Ok(answer.regions)
    }

    /// The categories an applicant can choose (with institutions of their kind); with
    /// `include_empty` every category, to name the one an applicant chose whatever happened
    /// to its directory since.
    pub async fn contingents(&self, include_empty: bool) -> ApiResult<Vec<pb::Contingent>> {
        let message = pb::ListContingentsRequest { include_empty };
        let answer = call!(self, As::Gateway, message => list_contingents).await?;
        Ok(answer.contingents)
    }

    pub async fn search_institutions(
        &self,
        search: pb::SearchInstitutionsRequest,
    ) -> ApiResult<pb::SearchInstitutionsResponse> {
        call!(self, As::Gateway, search => search_institutions).await
    }
}
