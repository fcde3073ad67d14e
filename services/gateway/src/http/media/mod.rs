//! Uploading files, reading their records, downloading them and their
//! thumbnails (with ranges and validators).

pub mod download;
pub mod headers;
pub mod requests;
pub mod upload;

use crate::backends::call;
use crate::error::ApiResult;
use crate::state::AppState;
use messenger_proto::media::v1 as pb;
use uuid::Uuid;

/// Before a profile or a group names `avatar`, claims it as used if it is
/// one of `owner`'s uploads, so the media service's sweeper of unattached
/// uploads keeps it. Any other id is left alone (an avatar may name any
/// id); a media service that cannot answer fails the request (503), so no
/// avatar is ever set unclaimed.
pub async fn claim_avatar(state: &AppState, owner: Uuid, avatar: Option<Uuid>) -> ApiResult<()> {
    let Some(avatar) = avatar else {
        return Ok(());
    };
    let request = pb::ClaimMediaRequest {
        owner_id: owner.to_string(),
        media_ids: vec![avatar.to_string()],
    };
    match call("media.ClaimMedia", state.media().claim_media(request)).await {
        Ok(_) => Ok(()),
        // A media replica of a release without ClaimMedia (a rolling
        // upgrade): the retry will likely reach a newer one.
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            Err(tonic::Status::unavailable("the media service is being upgraded; retry").into())
        }
        Err(status) => Err(status.into()),
    }
}
