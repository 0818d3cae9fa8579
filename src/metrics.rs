//! Prometheus metrics at `GET /metrics` when `PORTCULLIS_METRICS=on`: requests and their
//! latency by route, sign-in outcomes, open sessions. Counted per instance, in memory.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::auth::sessions::Sessions;
use crate::db::{self, DbPool};
use crate::error::ApiError;
use crate::mail::sender::SenderStats;
use std::sync::atomic::Ordering;

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Latency {
    count: u64,
    sum: f64,
    /// Cumulative counts per bucket, as Prometheus wants them.
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    /// (method, route pattern, status) → latency.
    requests: Mutex<BTreeMap<(String, String, u16), Latency>>,
    /// (via, outcome) → count.
    logins: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Ok(mut requests) = self.requests.lock() {
            let latency = requests.entry((method.to_owned(), route.to_owned(), status)).or_default();
            latency.count += 1;
            latency.sum += seconds;
            for (bucket, bound) in latency.buckets.iter_mut().zip(BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
        }
        if let Some(key) = login_outcome(method, route, status)
            && let Ok(mut logins) = self.logins.lock()
        {
            *logins.entry(key).or_default() += 1;
        }
    }

    fn render(&self, open_sessions: i64) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP portcullis_http_requests_total Requests answered, by route pattern and status.");
        let _ = writeln!(out, "# TYPE portcullis_http_requests_total counter");
        let requests = self.requests.lock().map(|r| r.iter().map(|(k, v)| (k.clone(), v.count)).collect::<Vec<_>>());
        for ((method, route, status), count) in requests.unwrap_or_default() {
            let _ = writeln!(
                out,
                "portcullis_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(&route)
            );
        }
        let _ = writeln!(out, "# HELP portcullis_http_request_duration_seconds Time to answer, by route pattern.");
        let _ = writeln!(out, "# TYPE portcullis_http_request_duration_seconds histogram");
        if let Ok(requests) = self.requests.lock() {
            let mut by_route: BTreeMap<(&str, &str), Latency> = BTreeMap::new();
            for ((method, route, _), latency) in requests.iter() {
                let total = by_route.entry((method, route)).or_default();
                total.count += latency.count;
                total.sum += latency.sum;
                for (sum, add) in total.buckets.iter_mut().zip(latency.buckets) {
                    *sum += add;
                }
            }
            for ((method, route), latency) in by_route {
                let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
                for (bound, count) in BUCKETS.iter().zip(latency.buckets) {
                    let _ = writeln!(
                        out,
                        "portcullis_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "portcullis_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    latency.count
                );
                let _ = writeln!(out, "portcullis_http_request_duration_seconds_sum{{{labels}}} {}", latency.sum);
                let _ = writeln!(out, "portcullis_http_request_duration_seconds_count{{{labels}}} {}", latency.count);
            }
        }
        let _ = writeln!(out, "# HELP portcullis_logins_total Sign-in attempts by path and outcome.");
        let _ = writeln!(out, "# TYPE portcullis_logins_total counter");
        if let Ok(logins) = self.logins.lock() {
            for ((via, outcome), count) in logins.iter() {
                let _ = writeln!(out, "portcullis_logins_total{{via=\"{via}\",outcome=\"{outcome}\"}} {count}");
            }
        }
        let _ = writeln!(out, "# HELP portcullis_sessions_open Sessions neither ended nor timed out (all instances).");
        let _ = writeln!(out, "# TYPE portcullis_sessions_open gauge");
        let _ = writeln!(out, "portcullis_sessions_open {open_sessions}");
        out
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

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
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
    let mut text = metrics.render(open);
    let _ = write!(
        text,
        "# HELP portcullis_mail_sent_total Messages this instance delivered.\n\
         # TYPE portcullis_mail_sent_total counter\nportcullis_mail_sent_total {}\n\
         # HELP portcullis_mail_send_failures_total Delivery attempts that failed and will be retried.\n\
         # TYPE portcullis_mail_send_failures_total counter\nportcullis_mail_send_failures_total {}\n\
         # HELP portcullis_mail_given_up_total Messages given up (refused for good, or undeliverable for 2 days).\n\
         # TYPE portcullis_mail_given_up_total counter\nportcullis_mail_given_up_total {}\n\
         # HELP portcullis_mail_outbox_waiting Messages waiting in the outbox (all instances).\n\
         # TYPE portcullis_mail_outbox_waiting gauge\nportcullis_mail_outbox_waiting {waiting}\n\
         # HELP portcullis_mail_outbox_failing Waiting messages that failed at least once.\n\
         # TYPE portcullis_mail_outbox_failing gauge\nportcullis_mail_outbox_failing {failing}\n",
        mail.sent.load(Ordering::Relaxed),
        mail.failed_attempts.load(Ordering::Relaxed),
        mail.given_up.load(Ordering::Relaxed),
    );
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text))
}

#[cfg(test)]
mod tests {
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
        let text = metrics.render(3);
        assert!(text.contains(r#"portcullis_http_requests_total{method="GET",route="/healthz",status="200"} 2"#));
        assert!(text.contains(
            r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.001"} 1"#
        ));
        assert!(
            text.contains(
                r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.05"} 2"#
            )
        );
        assert!(text.contains(r#"le="+Inf"} 2"#));
        assert!(text.contains("portcullis_sessions_open 3"));
    }
}
