//! gRPC transport: parses requests into domain types, calls the rules,
//! converts results. No rules here.

use crate::accounts::{Accounts, Registration};
use crate::domain::{Bio, DisplayName, Email, PageSize, Password, SearchQuery, UserId, Username};
use crate::error::Error;
use crate::repo::ProfileChanges;
use crate::sessions::{IssuedSession, Sessions};
use messenger_platform::auth::{KeyRing, Principal, TokenSigner};
use messenger_platform::identity::{ActorError, acting_user};
use messenger_proto::users::v1 as pb;
use messenger_proto::users::v1::users_service_server::UsersService;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub struct UsersGrpc {
    pub accounts: Accounts,
    pub sessions: Sessions,
    /// Signs the access tokens of sessions (rotated from Vault).
    pub signer: Arc<KeyRing<TokenSigner>>,
}

/// Most users a batch lookup may ask for.
const MAX_BATCH: usize = 500;

#[tonic::async_trait]
impl UsersService for UsersGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let registration = registration(request.into_inner())?;
        let user = self.accounts.register(registration).await?;
        Ok(Response::new(user.into()))
    }

    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::SignedIn>, Status> {
        let request = request.into_inner();
        let account = request
            .account
            .ok_or_else(|| Error::invalid("account", "is required"))?;
        let user = self.accounts.register(registration(account)?).await?;
        let session = self
            .sessions
            .create(UserId(user.id), &request.user_agent)
            .await?;
        Ok(Response::new(self.signed_in(user, session)?))
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignedIn>, Status> {
        let request = request.into_inner();
        let user = self
            .accounts
            .verify_password(&request.login, &request.password)
            .await?;
        let session = self
            .sessions
            .create(UserId(user.id), &request.user_agent)
            .await?;
        Ok(Response::new(self.signed_in(user, session)?))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let id = UserId::parse(&request.into_inner().id, "id")?;
        Ok(Response::new(self.accounts.get(id).await?.into()))
    }

    async fn get_users(
        &self,
        request: Request<pb::GetUsersRequest>,
    ) -> Result<Response<pb::GetUsersResponse>, Status> {
        let request = request.into_inner();
        if request.ids.len() > MAX_BATCH {
            return Err(Error::invalid("ids", format!("at most {MAX_BATCH} ids per call")).into());
        }
        let ids = request
            .ids
            .iter()
            .map(|id| UserId::parse(id, "ids"))
            .collect::<Result<Vec<_>, _>>()?;
        let users = self.accounts.get_many(&ids).await?;
        Ok(Response::new(pb::GetUsersResponse {
            users: users.into_iter().map(Into::into).collect(),
        }))
    }

    async fn resolve_usernames(
        &self,
        request: Request<pb::ResolveUsernamesRequest>,
    ) -> Result<Response<pb::GetUsersResponse>, Status> {
        let request = request.into_inner();
        if request.usernames.len() > MAX_BATCH {
            return Err(Error::invalid(
                "usernames",
                format!("at most {MAX_BATCH} usernames per call"),
            )
            .into());
        }
        let users = self.accounts.by_usernames(&request.usernames).await?;
        Ok(Response::new(pb::GetUsersResponse {
            users: users.into_iter().map(Into::into).collect(),
        }))
    }

    async fn search_users(
        &self,
        request: Request<pb::SearchUsersRequest>,
    ) -> Result<Response<pb::SearchUsersResponse>, Status> {
        let request = request.into_inner();
        let query = SearchQuery::parse(&request.query)?;
        let limit = PageSize::parse(request.limit)?;
        let page = self
            .accounts
            .search(&query, limit, &request.cursor, request.offset)
            .await?;
        Ok(Response::new(pb::SearchUsersResponse {
            users: page.users.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let request = request.into_inner();
        let id = UserId(acting_user(&request.id).map_err(|err| match err {
            ActorError::NotTheCaller => {
                Error::PermissionDenied("a profile is changed only by its owner")
            }
            ActorError::Invalid => Error::invalid("id", "must be a UUID"),
        })?);
        let avatar = match request.avatar_media_id.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(raw) => {
                Some(Some(Uuid::parse_str(raw).map_err(|_| {
                    Error::invalid("avatar_media_id", "must be a UUID")
                })?))
            }
        };
        let changes = ProfileChanges {
            display_name: request
                .display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()?,
            bio: request.bio.as_deref().map(Bio::parse).transpose()?,
            avatar_media_id: avatar,
        };
        Ok(Response::new(
            self.accounts.update_profile(id, changes).await?.into(),
        ))
    }

    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let session = self
            .sessions
            .refresh(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(self.session_message(session)?))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        let revoked = self
            .sessions
            .revoke(&request.into_inner().refresh_token)
            .await?;
        let (user_id, session_id) = revoked
            .map(|(user, session)| (user.to_string(), session.to_string()))
            .unwrap_or_default();
        Ok(Response::new(pb::RevokeSessionResponse {
            session_id,
            user_id,
        }))
    }

    async fn get_signing_keys(
        &self,
        _: Request<pb::GetSigningKeysRequest>,
    ) -> Result<Response<pb::SigningKeys>, Status> {
        let signer = self.signer.current();
        let keys = signer
            .public_keys()
            .iter()
            .map(|key| pb::PublicSigningKey {
                kid: key.kid.clone(),
                x: key.x.clone(),
            })
            .collect();
        Ok(Response::new(pb::SigningKeys { keys }))
    }
}

fn registration(request: pb::RegisterRequest) -> Result<Registration, Error> {
    Ok(Registration {
        username: Username::parse(&request.username)?,
        email: Email::parse(&request.email)?,
        display_name: DisplayName::parse(&request.display_name)?,
        password: Password::parse(&request.password)?,
    })
}

impl UsersGrpc {
    fn signed_in(
        &self,
        user: crate::repo::UserRow,
        session: IssuedSession,
    ) -> Result<pb::SignedIn, Error> {
        Ok(pb::SignedIn {
            user: Some(user.into()),
            session: Some(self.session_message(session)?),
        })
    }

    /// The session with a fresh access token for it.
    fn session_message(&self, session: IssuedSession) -> Result<pb::Session, Error> {
        let access = self
            .signer
            .current()
            .issue(Principal {
                user_id: session.user_id,
                session_id: session.family_id,
            })
            .map_err(|err| {
                Error::Internal(anyhow::anyhow!("cannot sign an access token: {err}"))
            })?;
        Ok(pb::Session {
            user_id: session.user_id.to_string(),
            session_id: session.family_id.to_string(),
            refresh_token: session.refresh_token,
            refresh_expires_at: Some(crate::convert::timestamp(session.expires_at)),
            access_token: access.token,
            access_expires_at: Some(crate::convert::timestamp(access.expires_at)),
        })
    }
}
