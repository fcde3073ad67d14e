//! The public REST router: routes and their OpenAPI document come from the
//! same declarations, so the document cannot miss a route.

pub mod auth;
pub mod extract;
pub mod groups;
pub(crate) mod health;
pub mod media;
pub mod messages;
mod middleware;
mod openapi;
pub mod params;
#[cfg(test)]
mod proptests;
pub mod push;
mod socket;
pub mod users;

use crate::error::{ApiError, ErrorBody, ErrorCode, ErrorObject};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use groups::{channels, direct, group as group_routes, members};
use media::{download as media_download, upload as media_upload};
use messages::{history, message as message_routes, notifications, reactions, reads};
use messenger_platform::Config;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Messenger Backend API", description = "Public REST API of the messenger gateway."),
    components(schemas(ErrorBody, ErrorObject)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "Profiles and search"),
        (name = "groups", description = "Groups, their members, roles and bans"),
        (name = "channels", description = "Channels of a group and their members"),
        (name = "direct", description = "Direct conversations"),
        (name = "messages", description = "Messages, threads, reactions and read positions"),
        (name = "media", description = "Uploading and downloading files"),
        (name = "notifications", description = "Mentions, replies and direct messages for you"),
        (name = "push", description = "Web Push to your devices, and notification settings"),
        (name = "search", description = "Full-text search"),
        (name = "ops", description = "Health and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The `/api/v1` routes and their OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(users::create, users::search))
        .routes(routes!(users::me, users::update_me))
        .routes(routes!(users::get))
        .routes(routes!(
            group_routes::create_group,
            group_routes::list_groups
        ))
        .routes(routes!(
            group_routes::get_group,
            group_routes::update_group,
            group_routes::delete_group
        ))
        .routes(routes!(
            members::list_members,
            members::add_member,
            members::leave_group
        ))
        .routes(routes!(members::update_member, members::remove_member))
        .routes(routes!(members::ban_member, members::unban_member))
        .routes(routes!(channels::list_channels, channels::create_channel))
        .routes(routes!(
            channels::get_channel,
            channels::update_channel,
            channels::delete_channel
        ))
        .routes(routes!(
            channels::list_channel_members,
            channels::add_channel_member,
            channels::leave_channel
        ))
        .routes(routes!(channels::remove_channel_member))
        .routes(routes!(direct::open_direct))
        .routes(routes!(message_routes::send_message))
        .routes(routes!(
            message_routes::send_channel_message,
            history::list_channel_messages
        ))
        .routes(routes!(history::list_group_messages))
        .routes(routes!(
            message_routes::get_message,
            message_routes::edit_message,
            message_routes::delete_message
        ))
        .routes(routes!(message_routes::list_edits))
        .routes(routes!(history::list_thread))
        .routes(routes!(reactions::add_reaction))
        .routes(routes!(reactions::remove_reaction))
        .routes(routes!(reads::mark_read))
        .routes(routes!(reads::list_unread))
        .routes(routes!(reads::list_readers))
        .routes(routes!(notifications::list_notifications))
        .routes(routes!(notifications::mark_notifications_read))
        .routes(routes!(history::search_messages))
        .routes(routes!(media_upload::upload_media))
        .routes(routes!(
            media_download::download_media,
            media_upload::delete_media
        ))
        .routes(routes!(media_upload::get_media))
        .routes(routes!(media_download::download_thumbnail))
        .routes(routes!(push::vapid_key))
        .routes(routes!(
            push::list_subscriptions,
            push::register_subscription
        ))
        .routes(routes!(push::delete_subscription))
        .routes(routes!(push::get_settings, push::update_settings))
        .routes(routes!(
            push::get_channel_settings,
            push::update_channel_settings
        ))
        .routes(routes!(health::health))
        .routes(routes!(health::ready_public));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .routes(routes!(auth::jwks))
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    (router, doc)
}

pub fn router(state: AppState, config: &Config) -> Router {
    let (api, doc) = api();
    // Rendered once: the document is fixed for the life of the process.
    let doc: axum::body::Bytes = openapi::render(&doc).unwrap_or_default().into();
    let body_limit = state.body_limit();
    let upload_timeout = state.media_limits().upload_timeout;
    let app = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc,
                    )
                }
            }),
        )
        .route("/ws", get(socket::upgrade))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        // Only extractors that read the body whole (JSON, bytes) are held to
        // this; the upload route streams its raw `Body` and checks sizes
        // itself.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.guard().clone(),
            crate::ratelimit::limit,
        ))
        .with_state(state);
    middleware::apply(app, config, upload_timeout)
}
