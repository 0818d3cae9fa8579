//! The request half of client detection: the client's address (through trusted proxies) and
//! its software, as `auth::client::ClientInfo`.
use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, web};

use crate::auth::client::{ClientInfo, summarize_user_agent};

/// The proxies named in `PORTCULLIS_TRUSTED_PROXIES`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(pub Vec<IpAddr>);

/// The client's address: the socket peer, unless the peer is a trusted proxy, in which case
/// the nearest address in `X-Forwarded-For` that is not itself a trusted proxy. A header from
/// anyone else is ignored (anyone can send one).
pub(crate) fn client_ip(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|addr| addr.ip()) else { return "unknown".to_owned() };
    let trusted = req.app_data::<web::Data<TrustedProxies>>().map(|proxies| proxies.0.as_slice()).unwrap_or(&[]);
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    // Right to left: each hop appends the address it saw; the first untrusted one is the client.
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(address) if trusted.contains(&address) => continue,
            Ok(address) => return address.to_string(),
            Err(_) => break,
        }
    }
    peer.to_string()
}

/// The address and software of the client that sent `req`.
pub(crate) fn client_info(req: &HttpRequest) -> ClientInfo {
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|value| value.to_str().ok()).unwrap_or("");
    ClientInfo { ip: client_ip(req), software: summarize_user_agent(user_agent) }
}
