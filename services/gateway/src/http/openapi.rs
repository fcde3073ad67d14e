//! The answers every route can give besides its own, added to the generated
//! document in one place so no route can forget them: 400 for malformed
//! input, 401 without a valid token, 408 when the request took too long,
//! 413/415 for bodies, 429 with `Retry-After` and `RateLimit-*` where the
//! rate limiter counts the route, and 503/504 when a backend is down or
//! slow. utoipa's model has no `components.headers` and no
//! `required` on headers, so this works on the rendered JSON.

use crate::ratelimit::classify;
use axum::http::Method;
use serde_json::{Map, Value, json};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];
const RATE_LIMIT_HEADERS: &[&str] = &["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"];

/// The document as served: `doc` with the common answers.
pub fn render(doc: &utoipa::openapi::OpenApi) -> serde_json::Result<Vec<u8>> {
    let mut value = serde_json::to_value(doc)?;
    complete(&mut value);
    serde_json::to_vec(&value)
}

fn complete(doc: &mut Value) {
    let components = object(doc, "components");
    object_in(components, "headers").extend(headers());
    object_in(components, "responses").extend(responses());
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(operation) = item.get_mut(*method).and_then(Value::as_object_mut) else {
                continue;
            };
            complete_operation(method, path, operation);
        }
    }
}

fn complete_operation(method: &str, path: &str, operation: &mut Map<String, Value>) {
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| !requirements.is_empty());
    let has_params = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|params| !params.is_empty());
    let json_body = operation
        .get("requestBody")
        .and_then(|body| body.get("content"))
        .and_then(Value::as_object)
        .is_some_and(|content| content.contains_key("application/json"));
    let has_body = operation.contains_key("requestBody");
    let limited = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .ok()
        .and_then(|method| classify(&method, path))
        .is_some();
    // Health and readiness answer from the gateway alone.
    let backend = limited;

    let mut common: Vec<(&str, &str)> = Vec::new();
    if has_params || has_body {
        common.push(("400", "BadRequest"));
    }
    if secured {
        common.push(("401", "Unauthorized"));
    }
    common.push(("408", "RequestTimeout"));
    if has_body {
        common.push(("413", "PayloadTooLarge"));
    }
    if json_body {
        common.push(("415", "UnsupportedMediaType"));
    }
    if limited {
        common.push(("429", "RateLimited"));
    }
    if backend {
        common.push(("503", "Unavailable"));
        common.push(("504", "GatewayTimeout"));
    }
    let responses = object_in(operation, "responses");
    for (status, name) in common {
        responses
            .entry(status)
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
    }
    if limited {
        // Every answer of a counted route says how much allowance is left
        // (when the rate limiter is on).
        for (status, response) in responses.iter_mut() {
            if status == "429" || response.get("$ref").is_some() {
                continue;
            }
            if let Some(response) = response.as_object_mut() {
                let headers = object_in(response, "headers");
                for name in RATE_LIMIT_HEADERS {
                    headers
                        .entry(*name)
                        .or_insert_with(|| json!({"$ref": format!("#/components/headers/{name}")}));
                }
            }
        }
    }
}

fn headers() -> Map<String, Value> {
    let seconds = json!({"type": "integer", "format": "int64", "minimum": 0});
    let mut headers = Map::new();
    headers.insert(
        "RateLimit-Limit".into(),
        json!({"description": "Requests this route class allows per minute (sent while rate limiting is on).",
               "schema": seconds}),
    );
    headers.insert(
        "RateLimit-Remaining".into(),
        json!({"description": "Requests left in the caller's bucket (sent while rate limiting is on).",
               "schema": seconds}),
    );
    headers.insert(
        "RateLimit-Reset".into(),
        json!({"description": "Seconds until the bucket is full again (sent while rate limiting is on).",
               "schema": seconds}),
    );
    headers
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn responses() -> Map<String, Value> {
    let mut responses = Map::new();
    let mut add = |name: &str, value: Value| {
        responses.insert(name.to_owned(), value);
    };
    add(
        "BadRequest",
        error(
            "Malformed input: `invalid_argument` (with `details.field`), `invalid_json`, `invalid_query` or `invalid_path`",
        ),
    );
    add(
        "Unauthorized",
        error("No valid bearer token: `unauthenticated` or `token_expired`"),
    );
    add(
        "RequestTimeout",
        error("The request took longer than the configured request timeout: `request_timeout`"),
    );
    add(
        "PayloadTooLarge",
        error("The body is larger than the configured limit: `payload_too_large`"),
    );
    add(
        "UnsupportedMediaType",
        error("The body is not sent as `Content-Type: application/json`: `unsupported_media_type`"),
    );
    let mut limited = error(
        "Over the caller's allowance for this kind of request: `rate_limited`; retry after `Retry-After` seconds",
    );
    let mut headers = Map::new();
    headers.insert(
        "Retry-After".into(),
        json!({"description": "Seconds to wait before retrying", "required": true,
               "schema": {"type": "integer", "format": "int64", "minimum": 1}}),
    );
    for name in RATE_LIMIT_HEADERS {
        headers.insert(
            (*name).into(),
            json!({"$ref": format!("#/components/headers/{name}")}),
        );
    }
    limited["headers"] = Value::Object(headers);
    add("RateLimited", limited);
    add(
        "Unavailable",
        error("A backend service is unavailable: `unavailable`; retry later"),
    );
    add(
        "GatewayTimeout",
        error("A backend service did not answer in time: `timeout`"),
    );
    responses
}

fn object<'a>(value: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => object_in(map, key),
        _ => unreachable!("made an object above"),
    }
}

fn object_in<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        let (_, doc) = super::super::api();
        serde_json::from_slice(&render(&doc).expect("renders")).expect("json")
    }

    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.trim_start_matches('#');
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling reference {reference}"))
            }
            None => value,
        }
    }

    #[test]
    fn every_route_documents_its_common_answers() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        let mut checked = 0;
        for (path, item) in paths {
            for method in METHODS {
                let Some(operation) = item.get(*method) else {
                    continue;
                };
                checked += 1;
                let responses = operation["responses"].as_object().expect("responses");
                let has = |status: &str| responses.contains_key(status);
                let name = format!("{method} {path}");
                assert!(has("408"), "{name}: 408");
                if operation.get("security").is_some() {
                    assert!(has("401"), "{name}: 401");
                }
                if operation.get("requestBody").is_some() {
                    assert!(has("400") && has("413"), "{name}: 400 and 413");
                }
                let ops = path.ends_with("/health") || path.ends_with("/ready");
                assert_eq!(has("429"), !ops, "{name}: 429 exactly where limited");
                if has("429") {
                    let limited = resolve(&doc, &responses["429"]);
                    assert_eq!(limited["headers"]["Retry-After"]["required"], true);
                    for status in responses.keys().filter(|status| status.starts_with('2')) {
                        let response = resolve(&doc, &responses[status]);
                        assert!(
                            response["headers"].get("RateLimit-Remaining").is_some(),
                            "{name} {status}: RateLimit-Remaining"
                        );
                    }
                }
                for response in responses.values() {
                    let response = resolve(&doc, response);
                    if let Some(schema) = response.pointer("/content/application~1json/schema") {
                        resolve(&doc, schema);
                    }
                    for header in response["headers"].as_object().into_iter().flatten() {
                        resolve(&doc, header.1);
                    }
                }
            }
        }
        assert!(checked > 50, "only {checked} operations");
    }
}
