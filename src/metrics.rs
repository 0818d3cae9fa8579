//! Prometheus metrics at `GET /metrics` when `PORTCULLIS_METRICS=on`: requests and their
//! latency by route, sign-in outcomes, open sessions, mail. Counted per instance, in memory,
//! with the Prometheus project's `prometheus-client` (lock-free counters; a request takes
//! only read locks once its series exist), written in the OpenMetrics text format.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::auth::sessions::Sessions;
use crate::db::{self, DbPool};
use crate::error::ApiError;
use crate::mail::sender::SenderStats;

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// The OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    via: &'static str,
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    logins: Family<LoginLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            logins: Family::default(),
        }
    }
}

/// What a scrape reads from the database and the mail sender, beside the counters.
struct Gauges {
    open_sessions: i64,
    outbox_waiting: i64,
    outbox_failing: i64,
    mail_sent: u64,
    mail_failed_attempts: u64,
    mail_given_up: u64,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, elapsed: std::time::Duration) {
        if let Some((via, outcome)) = login_outcome(method, route, status) {
            self.logins.get_or_create(&LoginLabels { via, outcome }).inc();
        }
        let (method, route) = (method.to_owned(), route.to_owned());
        self.latency
            .get_or_create(&RouteLabels { method: method.clone(), route: route.clone() })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    }

    fn render(&self, gauges: &Gauges) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register(
            "portcullis_http_requests",
            "Requests answered, by route pattern and status",
            self.requests.clone(),
        );
        registry.register(
            "portcullis_http_request_duration_seconds",
            "Time to answer, by route pattern",
            self.latency.clone(),
        );
        registry.register("portcullis_logins", "Sign-in attempts by path and outcome", self.logins.clone());
        let gauge = |value: i64| ConstGauge::new(value);
        let counter = |value: u64| ConstCounter::new(value);
        registry.register(
            "portcullis_sessions_open",
            "Sessions neither ended nor timed out (all instances)",
            gauge(gauges.open_sessions),
        );
        registry.register("portcullis_mail_sent", "Messages this instance delivered", counter(gauges.mail_sent));
        registry.register(
            "portcullis_mail_send_failures",
            "Delivery attempts that failed and will be retried",
            counter(gauges.mail_failed_attempts),
        );
        registry.register(
            "portcullis_mail_given_up",
            "Messages given up (refused for good, or undeliverable for 2 days)",
            counter(gauges.mail_given_up),
        );
        registry.register(
            "portcullis_mail_outbox_waiting",
            "Messages waiting in the outbox (all instances)",
            gauge(gauges.outbox_waiting),
        );
        registry.register(
            "portcullis_mail_outbox_failing",
            "Waiting messages that failed at least once",
            gauge(gauges.outbox_failing),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// Sign-in outcomes, read from how the two sign-in routes answered.
fn login_outcome(method: &str, route: &str, status: u16) -> Option<(&'static str, &'static str)> {
    let via = match (method, route) {
        ("POST", "/login") => "form",
        ("POST", "/api/token") => "api",
        _ => return None,
    };
    let outcome = match (via, status) {
        ("form", 303) | ("api", 200) => "success",
        (_, 401) => "failure",
        (_, 429) => "throttled",
        _ => return None,
    };
    Some((via, outcome))
}

/// Times every request (when metrics are on). The route is the pattern (`/admin/users/{id}`),
/// so ids do not multiply the series; unmatched paths are one series.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(metrics) = req.app_data::<web::Data<Metrics>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    match next.call(req).await {
        Ok(response) => {
            let route = response.request().match_pattern().unwrap_or_else(|| "(unmatched)".to_owned());
            metrics.observe(&method, &route, response.status().as_u16(), started.elapsed());
            Ok(response.map_into_boxed_body())
        }
        // Refused by a middleware before routing (oversized, compressed, cross-site).
        Err(error) => {
            let status = error.as_response_error().status_code().as_u16();
            metrics.observe(&method, "(refused)", status, started.elapsed());
            Err(error)
        }
    }
}

/// `GET /metrics`.
pub async fn show(
    metrics: web::Data<Metrics>,
    pool: web::Data<DbPool>,
    sessions: web::Data<Sessions>,
    mail: web::Data<SenderStats>,
) -> Result<HttpResponse, ApiError> {
    let idle = chrono::Duration::from_std(sessions.policy().idle_timeout).map_err(anyhow::Error::from)?;
    let (open, (waiting, failing)) = db::run(&pool, move |conn| -> anyhow::Result<_> {
        let now = db::users::now();
        Ok((db::sessions::count_open(conn, now, now - idle)?, db::outbox::backlog(conn)?))
    })
    .await?;
    let read = |count: &AtomicU64| count.load(Ordering::Relaxed);
    let gauges = Gauges {
        open_sessions: open,
        outbox_waiting: waiting,
        outbox_failing: failing,
        mail_sent: read(&mail.sent),
        mail_failed_attempts: read(&mail.failed_attempts),
        mail_given_up: read(&mail.given_up),
    };
    let text = metrics.render(&gauges).map_err(|_| anyhow::anyhow!("the metrics could not be written"))?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn sign_in_outcomes_are_read_from_the_sign_in_routes_only() {
        assert_eq!(login_outcome("POST", "/login", 303), Some(("form", "success")));
        assert_eq!(login_outcome("POST", "/api/token", 401), Some(("api", "failure")));
        assert_eq!(login_outcome("POST", "/api/token", 429), Some(("api", "throttled")));
        assert_eq!(login_outcome("POST", "/login", 403), None, "a CSRF refusal is not a sign-in attempt");
        assert_eq!(login_outcome("GET", "/login", 200), None);
    }

    #[test]
    fn latencies_land_in_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/healthz", 200, Duration::from_micros(500));
        metrics.observe("GET", "/healthz", 200, Duration::from_millis(30));
        let gauges = Gauges {
            open_sessions: 3,
            outbox_waiting: 0,
            outbox_failing: 0,
            mail_sent: 0,
            mail_failed_attempts: 0,
            mail_given_up: 0,
        };
        let text = metrics.render(&gauges).unwrap();
        assert!(text.contains(r#"portcullis_http_requests_total{method="GET",route="/healthz",status="200"} 2"#));
        assert!(text.contains(
            r#"portcullis_http_request_duration_seconds_bucket{le="0.001",method="GET",route="/healthz"} 1"#
        ));
        assert!(
            text.contains(
                r#"portcullis_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/healthz"} 2"#
            )
        );
        assert!(
            text.contains(
                r#"portcullis_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/healthz"} 2"#
            )
        );
        assert!(text.contains("portcullis_sessions_open 3"));
        assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with its EOF marker");
    }
}
