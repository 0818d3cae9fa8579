//! `GET /api/openapi.json`: the API's contract, generated from the handlers' annotations.
use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{UserJson, me, token, users};
use crate::web::account::security::passkeys;
use crate::web::errors::ApiErrorBody;
use crate::web::login::passkey;
use crate::web::passkey_shapes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Sign-in, tokens and users. Access tokens are short-lived JWTs sent as \
                       `Authorization: Bearer`; renew them with the refresh token. Errors are \
                       `{\"error\", \"message\"}` JSON."
    ),
    paths(
        token::issue,
        token::second_step,
        token::refresh,
        token::logout,
        me::show,
        users::show,
        passkey::sign_in_options,
        passkey::sign_in,
        passkey::second_step_options,
        passkey::second_step,
        passkeys::options,
        passkeys::register
    ),
    components(schemas(ApiErrorBody, UserJson, token::SignIn, token::SignInByUsername, token::SignInByEmail, token::SecondStepRequest, token::RefreshRequest, token::TokenResponse, passkey_shapes::OptionsRequest, passkey_shapes::OptionsResponse, passkey::AssertionRequest, passkey::AssertionCredential, passkey::AssertionResponse, passkey_shapes::NoExtensions, passkey::SignedIn, passkeys::RegisterRequest, passkeys::AttestationCredential, passkeys::AttestationResponse, passkeys::Added)),
    modifiers(&BearerScheme),
    tags(
        (name = "tokens", description = "Sign in, renew, sign out"),
        (name = "users", description = "Who is who"),
        (name = "passkeys", description = "The JSON calls of the pages' passkey script (cookies and CSRF tokens, not Bearer tokens)")
    )
)]
pub(crate) struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("portcullis"))),
        );
    }
}

pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
