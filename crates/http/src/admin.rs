//! The admin listener's REST API (described in docs/openapi.yaml).

use crate::auth::{Access, Guard};
use crate::error::ApiError;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use mamori_core::{CoreError, Services};
use mamori_domain::Permission;

/// Largest admin request body.
pub const ADMIN_LIMIT: usize = 2 * 1024 * 1024;

/// Who may see and decide requests of the two-person rule (each request
/// further needs the permission of its action).
const DECIDERS: Access = Access::AnyPermission(&[
    Permission::CommandsWrite,
    Permission::AccountsManage,
    Permission::PersonalDataRead,
]);

/// The OpenAPI document served at /api/v1/openapi.yaml.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");

/// One admin route: method, path, who may call it, and its handler.
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern (axum syntax).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: MethodRouter<Services>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

fn r(
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Services>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every admin route. The router is built from this table only, so a route
/// cannot exist without a declared access rule. Each area lists its own
/// routes beside its handlers (`admin/*.rs`).
pub fn table() -> Vec<Route> {
    use Access::Public;
    let mut all = vec![
        r("GET", "/healthz", Public, get(|| async { "ok" })),
        r("GET", "/api/v1/openapi.yaml", Public, get(openapi)),
    ];
    for area in [
        session::routes(),
        accounts::routes(),
        suspension::routes(),
        groups::routes(),
        devices::routes(),
        policies::routes(),
        incidents::routes(),
        enrollment::routes(),
        people::routes(),
        reenroll::routes(),
        settings::routes(),
    ] {
        all.extend(area);
    }
    all
}

/// Every admin route's method, path and access (for tests and docs).
pub fn routes() -> Vec<(&'static str, &'static str, Access)> {
    table()
        .into_iter()
        .map(|r| (r.method, r.path, r.access))
        .collect()
}

mod accounts;
mod devices;
mod enrollment;
mod groups;
mod incidents;
mod people;
mod policies;
mod reenroll;
mod session;
mod settings;
mod suspension;

/// Routes administrators use.
pub fn router(services: Services) -> Router {
    let mut router = Router::new();
    for route in table() {
        let guard = Guard {
            services: services.clone(),
            access: route.access,
        };
        router = router.route(
            route.path,
            route.handler.layer(axum::middleware::from_fn_with_state(
                guard,
                crate::auth::guard,
            )),
        );
    }
    router
        .merge(crate::console::routes(&services))
        .fallback(|| async { ApiError(CoreError::NotFound("no such route".into())) })
        .layer(DefaultBodyLimit::max(ADMIN_LIMIT))
        .with_state(services)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

/// A request waiting for a second administrator (two-person rule), as the
/// routes that may create one answer it (202).
#[derive(Debug, serde::Serialize)]
struct AwaitingApproval<'a> {
    approval: &'a mamori_domain::Approval,
}

impl AwaitingApproval<'_> {
    /// 202 with the pending request.
    fn accepted(approval: &mamori_domain::Approval) -> Response {
        (
            StatusCode::ACCEPTED,
            axum::Json(AwaitingApproval { approval }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{routes, OPENAPI};

    /// Every admin route is described in the OpenAPI document, under its
    /// method; a route added without documentation fails here.
    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_yaml_ng::from_str(OPENAPI).unwrap();
        let routes = routes();
        for (method, path, _) in &routes {
            let ops = &doc["paths"][path];
            assert!(ops.is_object(), "{path} missing from docs/openapi.yaml");
            assert!(
                ops[method.to_lowercase()].is_object(),
                "{method} {path} missing from docs/openapi.yaml"
            );
        }
        let documented = doc["paths"].as_object().unwrap();
        for path in documented.keys() {
            assert!(
                routes.iter().any(|(_, p, _)| p == path),
                "{path} is documented but not routed"
            );
        }
    }
}
