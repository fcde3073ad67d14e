//! The door of every gRPC server: the caller's service identity (from its
//! client certificate, see [`crate::mtls`]) is checked against
//! [`crate::callers::RULES`], then, for a user-scoped method, the user's
//! access token the caller forwarded (see [`crate::identity`]). The call is
//! served inside the verified user's scope.

use crate::callers::{self, Caller, Scope};
use crate::identity::{self, Rejected, UserTokens};
use crate::mtls::Peer;
use futures::future::{BoxFuture, Either};
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone)]
pub struct GateLayer {
    /// Check service identities (the transport is mutual TLS).
    enforce_callers: bool,
    /// Check user tokens; `None` only where `grpc.user_tokens` is off.
    users: Option<Arc<UserTokens>>,
}

impl GateLayer {
    pub fn new(enforce_callers: bool, users: Option<Arc<UserTokens>>) -> Self {
        GateLayer {
            enforce_callers,
            users,
        }
    }
}

impl<S> tower_layer::Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    layer: GateLayer,
}

type Answer<E> = Result<http::Response<tonic::body::Body>, E>;

impl<S, B> tower::Service<http::Request<B>> for Gate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Answer<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let caller = request
            .extensions()
            .get::<Peer>()
            .and_then(|peer| peer.caller);
        if self.layer.enforce_callers
            && let Err(refusal) = callers::check(&method, caller)
        {
            metrics::counter!("grpc_server_refusals_total", "caller" => caller.map_or("none", Caller::name))
                .increment(1);
            tracing::warn!(%refusal, "internal call refused");
            return refuse(refusal.status());
        }
        let Some(users) = &self.layer.users else {
            return Either::Left(self.inner.call(request));
        };
        let token = identity::bearer(request.headers()).map(str::to_owned);
        match callers::scope(&method) {
            Some(Scope::User) => {}
            Some(Scope::UserOrOwnWork(own))
                if token.is_none() && caller.is_some_and(|caller| own.contains(&caller)) =>
            {
                return Either::Left(self.inner.call(request));
            }
            Some(Scope::UserOrOwnWork(_)) => {}
            Some(Scope::NoUser) | None => return Either::Left(self.inner.call(request)),
        }
        let users = Arc::clone(users);
        // The clone that was made ready serves this call; a fresh clone
        // waits for the next (tower's usual dance for async middleware).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        Either::Right(Box::pin(async move {
            let verified = match token {
                Some(token) => users.authenticate(&token).await,
                None => Err(Rejected::Missing(method.clone())),
            };
            match verified {
                Ok(user) => identity::scope(Arc::new(user), inner.call(request)).await,
                Err(rejected) => {
                    UserTokens::note_refusal(&method, &rejected);
                    Ok(rejected.status().into_http())
                }
            }
        }))
    }
}

fn refuse<F, E: Send + 'static>(status: tonic::Status) -> Either<F, BoxFuture<'static, Answer<E>>> {
    let answer = status.into_http();
    Either::Right(Box::pin(async move { Ok(answer) }))
}
