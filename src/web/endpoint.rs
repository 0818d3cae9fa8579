//! One address and the methods it answers (RFC 9110): GET also answers HEAD, OPTIONS answers
//! 204 with `Allow`, and any other method gets 405 with `Allow` (a page, or JSON under `/api/`).
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder, Route, web};

use super::errors;

/// A method and the route that answers it, for [`endpoint`].
pub struct MethodRoute(Method, Route);

pub fn get<F, Args>(handler: F) -> MethodRoute
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    MethodRoute(Method::GET, web::get().to(handler))
}

pub fn post<F, Args>(handler: F) -> MethodRoute
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    MethodRoute(Method::POST, web::post().to(handler))
}

impl MethodRoute {
    /// Puts only this method's route behind the Bearer guard, so a wrong method is a 405
    /// before any token check.
    pub fn with_bearer_token(self) -> Self {
        Self(self.0, self.1.wrap(actix_web::middleware::from_fn(crate::auth::guard::require_bearer)))
    }
}

/// The resource at `path` answering `routes`; other methods as the module says.
pub fn endpoint(path: &str, routes: impl IntoIterator<Item = MethodRoute>) -> Resource {
    let mut resource = web::resource(path);
    let mut allowed = Vec::new();
    for MethodRoute(method, route) in routes {
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
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}
