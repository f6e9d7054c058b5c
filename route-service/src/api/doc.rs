//! The OpenAPI document. Each handler's annotation lists what is particular to it (its body,
//! its success, the 403/404/409/422/502 its own logic answers); what follows from the shape of
//! an operation is added here by one rule, so that no operation can forget it:
//!
//! | the operation                          | may also answer                                   |
//! |----------------------------------------|---------------------------------------------------|
//! | any                                    | 500 (a failure of the service)                    |
//! | needs an API key                       | 401 (none, malformed, unknown principal, wrong key) |
//! | takes a path or query parameter        | 400 (it does not decode)                          |
//! | takes a JSON body                      | 400 (not JSON), 413 (too large), 415 (not `application/json`), 422 (not the schema) |
//! | takes a registry's body                | 400 (not the envelope), 413 (too large)           |
//!
//! Every one of these is an [`ApiError`](route_wire::ApiError) body, whatever produced it (a
//! handler, an extractor, the body limit, the router): see `api::rejections`.

use super::{feeds, health, registry_events, station_self, stations, token, trains};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::OpenApi;

/// The default `max_body_bytes`, for the document (a deployment may set another).
const DEFAULT_BODY_LIMIT: &str = "1 MiB";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PHT route service",
        description = "Routes Personal Health Trains between stations' registries. Authenticate with \
            `Authorization: ApiKey <principal-id> <key>`. Every error is an `ApiError` JSON body whose \
            `error` code decides its status: 400 `bad_request` (a body, path or query that does not \
            decode), 401 `unauthenticated` (no key, unknown principal or wrong key), 403 `forbidden`, \
            404 `not_found`, 405 `method_not_allowed` (`Allow` lists the methods), 409 `conflict`, \
            413 `too_large` (request bodies are capped at `max_body_bytes`, 1 MiB by default), 415 \
            `unsupported_media_type`, 422 `invalid` or `rejected` (`check` names the failed \
            submission check), 500 `internal`, 502 `registry`, 503 `unavailable`.",
        license(name = "Apache-2.0")
    ),
    paths(
        trains::submit, trains::list, trains::get_one, trains::cancel, trains::retry,
        stations::report, stations::approve, stations::reject, stations::list_stations,
        stations::station_key, stations::inbox, stations::list_creators, registry_events::list_notifications,
        station_self::propose_key, station_self::accept_key, station_self::set_approval,
        feeds::train_feed, feeds::station_feed,
        registry_events::distribution, registry_events::harbor, token::issue,
        health::healthz, health::readyz, health::metrics, health::openapi_json,
    ),
    components(schemas(
        route_wire::SubmitTrain, route_wire::TrainView, route_wire::HopView, route_wire::TrainList,
        route_wire::EventView, route_wire::Inbox, route_wire::InboxItem, route_wire::StationRepositories, route_wire::StationReport,
        route_wire::ReportStatus, route_wire::Decision, route_wire::StationView,
        route_wire::StationKey, route_wire::CreatorView, route_wire::ApiError, route_wire::ErrorCode,
        route_wire::TrainState, route_wire::HopState, route_wire::Format, route_wire::Approval,
        route_wire::Liveness, route_wire::KeyProposal, route_wire::KeyAcceptance, route_wire::ApprovalSetting,
        registry_events::Received, token::RegistryToken, health::Readiness, feeds::FeedEvent,
        crate::notify::DistributionEnvelope, crate::notify::DistributionEvent,
        crate::notify::DistributionTarget, crate::notify::DistributionActor,
        crate::notify::HarborHook, crate::notify::HarborData, crate::notify::HarborResource,
        crate::notify::HarborRepo,
    )),
    modifiers(&SecuritySchemes, &ShapeResponses)
)]
struct ApiDoc;

/// The document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`ApiKey <principal-id> <key>`: the key `route-service admin|station|creator add` printed",
            ))),
        );
        c.add_security_scheme(
            "registry_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "the notification secret configured for the registry (`notification_secret_env` or \
                 `_file`), optionally as `Bearer <secret>`; it also names the registry",
            ))),
        );
        c.add_security_scheme(
            "registry_login",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "a principal's id and API key, as `docker login` sends them (no credentials: \
                         public pulls only)",
                    ))
                    .build(),
            ),
        );
    }
}

struct ShapeResponses;

/// `status`: the `ApiError` body with `description`.
fn error(op: &mut Operation, status: &str, description: &str) {
    if op.responses.responses.contains_key(status) {
        return;
    }
    let r = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ApiError"))),
        )
        .build();
    op.responses.responses.insert(status.to_string(), r.into());
}

impl utoipa::Modify for ShapeResponses {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        for (path, item) in api.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                shape(path, op);
            }
        }
    }
}

fn shape(path: &str, op: &mut Operation) {
    let keyed = op.security.iter().flatten().any(|s| {
        serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.contains_key("api_key")))
            .unwrap_or(false)
    });
    if keyed {
        error(
            op,
            "401",
            "no API key, a malformed header, an unknown principal or a wrong key",
        );
    }
    let params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    // The registries' bodies are read as bytes, whatever their media type (distribution's own,
    // Harbor's JSON); the API's are read by axum's JSON extractor.
    let registry = path.starts_with("/v1/registry-events/");
    match op.request_body.as_ref().map(|_| !registry) {
        Some(true) => {
            error(op, "400", "the body is not JSON");
            error(
                op,
                "413",
                &format!(
                    "the body is larger than `max_body_bytes` ({DEFAULT_BODY_LIMIT} by default)"
                ),
            );
            error(
                op,
                "415",
                "the body is not `Content-Type: application/json`",
            );
            error(
                op,
                "422",
                "the body does not fit the schema, or a value is wrong",
            );
        }
        Some(false) => {
            error(
                op,
                "400",
                "the body is not the registry's notification envelope",
            );
            error(
                op,
                "413",
                &format!(
                    "the body is larger than `max_body_bytes` ({DEFAULT_BODY_LIMIT} by default)"
                ),
            );
        }
        None => {}
    }
    if params {
        error(op, "400", "a path or query parameter does not decode");
    }
    error(
        op,
        "500",
        "the service failed (its log says why); try again",
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_declares_its_path_parameters_and_errors() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                for seg in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = seg.trim_matches(['{', '}']);
                    assert!(
                        declared.contains(&name),
                        "{method} {path} does not declare `{name}`"
                    );
                }
                assert!(op["responses"]["500"].is_object(), "{method} {path}");
                if op["security"].to_string().contains("api_key") {
                    assert!(op["responses"]["401"].is_object(), "{method} {path}");
                }
            }
        }
    }
}
