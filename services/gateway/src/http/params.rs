//! Body and query fields that many resources share: page sizes and
//! cursors, and fields whose `null` means "remove".

use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Deserializer};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page size from the query: absent means the service's default (0).
pub fn page_limit(limit: Option<u32>) -> ApiResult<u32> {
    match limit {
        None => Ok(0),
        Some(limit @ 1..=100) => Ok(limit),
        Some(_) => Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 100",
        )),
    }
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one left out
/// (`None`, via `#[serde(default)]`).
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
