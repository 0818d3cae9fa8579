use serde_json::Value;

both_backends! {
    async fn health_and_readiness_answer(app: TestApp) {
        let health = app.get("/healthz").await;
        assert_eq!(health.status(), 200);
        assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");

        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), 200);
        assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    }

    async fn an_unknown_page_gets_a_404_page_in_the_layout_without_internals(app: TestApp) {
        let response = app.get("/no/such/page").await;

        assert_eq!(response.status(), 404);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = response.text().await.unwrap();
        assert!(html.contains("Page not found"));
        assert!(html.contains(r#"<link rel="stylesheet" href="/static/portcullis.css">"#));
    }

    async fn every_response_carries_the_security_headers(app: TestApp) {
        for path in ["/login", "/healthz", "/nowhere", "/dashboard"] {
            let response = app.get(path).await;
            let headers = response.headers();
            let csp = headers["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(headers["x-frame-options"], "DENY", "{path}");
            assert!(headers.get("server").is_none(), "{path}: no version banner");
        }
        assert_eq!(app.get("/login").await.headers()["cache-control"], "no-store");
    }

    async fn the_stylesheet_is_served_from_static(app: TestApp) {
        let response = app.get("/static/portcullis.css").await;

        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
        assert!(app.get("/static/../Cargo.toml").await.status().is_client_error());
    }
}
