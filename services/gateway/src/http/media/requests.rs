//! Query parameters of the media routes.

use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file's name; may instead come from a `Content-Disposition:
    /// attachment; filename="…"` header.
    pub filename: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailParams {
    /// The limit of the thumbnail's longer side: `64` or `320`.
    #[param(schema_with = thumbnail_sizes, required = true)]
    pub size: Option<String>,
}

/// Kept as text in the struct so a wrong value gets our own 400 naming the
/// allowed sizes, while the document still lists them.
fn thumbnail_sizes() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .enum_values(Some([64, 320]))
        .build()
}
