//! One address and the methods it answers (RFC 9110): GET also answers HEAD, OPTIONS answers
//! 204 with `Allow`, and any other method gets 405 with `Allow` (a page, or JSON under `/api/`).
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, Route, Scope, web};

use super::errors;
use crate::auth::Authenticated;
use crate::error::{ApiError, PageError, is_api_path};
use crate::web::guard::require_bearer;

/// A method, the route that answers it, and whether it is for administrators only.
pub(crate) struct MethodRoute(Method, Route, bool);

pub(crate) fn get<F, Args>(handler: F) -> MethodRoute
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    MethodRoute(Method::GET, web::get().to(handler), false)
}

pub(crate) fn post<F, Args>(handler: F) -> MethodRoute
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    MethodRoute(Method::POST, web::post().to(handler), false)
}

impl MethodRoute {
    /// Puts only this method's route behind the Bearer guard, so a wrong method is a 405
    /// before any token check.
    pub(crate) fn with_bearer_token(self) -> Self {
        Self(self.0, self.1.wrap(from_fn(require_bearer)), self.2)
    }

    /// Behind the Bearer guard, for administrators only (JSON 403 for anyone else).
    pub(crate) fn with_admin_bearer_token(self) -> Self {
        // The last wrap runs first: the token is checked, then the role.
        Self(self.0, self.1.wrap(from_fn(require_admin)).wrap(from_fn(require_bearer)), true)
    }
}

/// One address of the route table, as [`Area`] records it.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// With its area's prefix, `{id}` placeholders as mounted.
    pub path: String,
    pub methods: Vec<Method>,
    pub admins_only: bool,
}

/// A scope of endpoints that also records what it mounts, so the route table can be listed
/// (the admin gate's test takes every admin route from it).
pub(crate) struct Area {
    prefix: String,
    scope: Scope,
    routes: Vec<RouteInfo>,
    admins_only: bool,
}

impl Area {
    pub(crate) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned(), scope: web::scope(prefix), routes: Vec::new(), admins_only: false }
    }

    /// An area whose every route is for administrators: the caller wraps the scope in
    /// [`require_admin`] (after its session guard).
    pub(crate) fn for_admins(prefix: &str) -> Self {
        Self { admins_only: true, ..Self::new(prefix) }
    }

    pub(crate) fn at(mut self, path: &str, routes: impl IntoIterator<Item = MethodRoute>) -> Self {
        let routes: Vec<MethodRoute> = routes.into_iter().collect();
        let admin_route = routes.iter().any(|route| route.2);
        self.routes.push(RouteInfo {
            path: format!("{}{path}", self.prefix),
            methods: routes.iter().map(|route| route.0.clone()).collect(),
            admins_only: self.admins_only || admin_route,
        });
        self.scope = self.scope.service(endpoint(path, routes));
        self
    }

    pub(crate) fn into_parts(self) -> (Scope, Vec<RouteInfo>) {
        (self.scope, self.routes)
    }
}

/// The admin gate: behind a session guard (pages) or the Bearer guard (API), lets only
/// administrators through; anyone else gets 403 (a page, or JSON under `/api/`).
pub(crate) async fn require_admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let caller = req.extensions().get::<std::sync::Arc<Authenticated>>().cloned();
    let refusal = match caller {
        Some(caller) if caller.is_admin() => return Ok(next.call(req).await?.map_into_boxed_body()),
        Some(_) => "This area is for administrators.".to_owned(),
        None => {
            let error = anyhow::anyhow!("route {} has the admin gate but no session guard", req.path());
            return Ok(if is_api_path(req.path()) {
                req.error_response(ApiError::Unexpected(error))
            } else {
                req.error_response(PageError::Unexpected(error))
            });
        }
    };
    Ok(if is_api_path(req.path()) {
        req.error_response(ApiError::Forbidden(refusal))
    } else {
        req.error_response(PageError::Forbidden(refusal))
    })
}

/// The resource at `path` answering `routes`; other methods as the module says.
pub(crate) fn endpoint(path: &str, routes: impl IntoIterator<Item = MethodRoute>) -> Resource {
    let mut resource = web::resource(path);
    let mut allowed = Vec::new();
    for MethodRoute(method, route, _) in routes {
        allowed.push(method.as_str().to_owned());
        if method == Method::GET {
            allowed.push(Method::HEAD.as_str().to_owned());
        }
        resource = resource.route(route);
    }
    allowed.push(Method::OPTIONS.as_str().to_owned());
    let allow = HeaderValue::from_str(&allowed.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("OPTIONS"));
    resource.default_service(web::to(move |req: HttpRequest| {
        let allow = allow.clone();
        async move {
            let mut response = if req.method() == Method::OPTIONS {
                HttpResponse::NoContent().finish()
            } else {
                errors::method_not_allowed(req).await
            };
            response.headers_mut().insert(header::ALLOW, allow);
            response
        }
    }))
}

/// HEAD is answered exactly as GET: the route table lists GET only, and the server sends the
/// GET answer's status and headers without its body (it remembers the request was HEAD).
pub(crate) async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}
