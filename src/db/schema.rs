// Hand-written and shared by both backends: portable SQL types only.
diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        email -> Text,
        display_name -> Text,
        password_hash -> Text,
        role -> Text,
        is_active -> Bool,
        must_change_password -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        search_name -> Text,
        email_skeleton -> Nullable<Text>,
        mfa_enabled -> Bool,
        search_text -> Text,
        time_zone -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        actor_id -> Nullable<BigInt>,
        actor_username -> Nullable<Text>,
        action -> Text,
        target_id -> Nullable<BigInt>,
        target_username -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        sid -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        client_ip -> Text,
        user_agent -> Text,
        via -> Text,
        amr -> Text,
        proved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> BigInt,
        issued_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    revoked_sessions (sid) {
        sid -> Text,
        revoked_at -> Timestamp,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions, refresh_tokens);

diesel::table! {
    user_groups (id) {
        id -> BigInt,
        name -> Text,
        display_name -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> BigInt,
        user_id -> BigInt,
        added_at -> Timestamp,
    }
}

diesel::table! {
    group_managers (group_id, user_id) {
        group_id -> BigInt,
        user_id -> BigInt,
    }
}

diesel::table! {
    renewed_sessions (sid) {
        sid -> Text,
        changed_at -> Timestamp,
    }
}

diesel::joinable!(group_members -> user_groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(group_managers -> user_groups (group_id));
diesel::allow_tables_to_appear_in_same_query!(users, user_groups, group_members, group_managers);
diesel::allow_tables_to_appear_in_same_query!(sessions, group_members);

diesel::table! {
    login_throttles (throttle_key) {
        throttle_key -> Text,
        attempts -> Integer,
        window_started_at -> Timestamp,
        strikes -> Integer,
        paused_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    totp_factors (user_id) {
        user_id -> BigInt,
        sealed_secret -> Text,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        last_used_step -> BigInt,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sign_in_challenges (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        failures -> Integer,
        via -> Text,
        next_path -> Text,
    }
}

diesel::table! {
    passkeys (id) {
        id -> BigInt,
        user_id -> BigInt,
        credential_id -> Text,
        user_handle -> Text,
        name -> Text,
        passkey -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    passkey_ceremonies_used (token_hash) {
        token_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        created_at -> Timestamp,
        kind -> Text,
        recipient -> Text,
        subject -> Text,
        sealed_body -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    email_links (token_hash) {
        token_hash -> Text,
        purpose -> Text,
        user_id -> BigInt,
        new_email -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        voided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    search_trigram_sample (trigram) {
        trigram -> Text,
        users -> BigInt,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> BigInt,
        kid -> Text,
        alg -> Text,
        sealed_private_key -> Nullable<Text>,
        public_key -> Nullable<Text>,
        published_at -> Timestamp,
        signs_from -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        drop_after -> Nullable<Timestamp>,
        purpose -> Text,
    }
}

diesel::table! {
    oauth_clients (id) {
        id -> BigInt,
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        scopes -> Text,
        ask_consent -> Bool,
        allowed_roles -> Text,
        allowed_groups -> Text,
        id_token_alg -> Text,
        access_token_seconds -> BigInt,
        refresh_token_seconds -> BigInt,
        is_enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        post_logout_redirect_uris -> Text,
        backchannel_logout_uri -> Text,
        require_pushed_requests -> Bool,
        registration -> Text,
    }
}

diesel::table! {
    oauth_grants (id) {
        id -> BigInt,
        gid -> Text,
        client_id -> BigInt,
        user_id -> Nullable<BigInt>,
        session_sid -> Nullable<Text>,
        scope -> Text,
        auth_time -> Timestamp,
        amr -> Text,
        nonce -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        resource -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_codes (code_hash) {
        code_hash -> Text,
        client_id -> BigInt,
        user_id -> BigInt,
        session_sid -> Text,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        auth_time -> Timestamp,
        amr -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        grant_id -> Nullable<BigInt>,
        resource -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> BigInt,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oauth_consents (user_id, client_id) {
        user_id -> BigInt,
        client_id -> BigInt,
        scopes -> Text,
        granted_at -> Timestamp,
        last_used_at -> Timestamp,
    }
}

diesel::table! {
    oauth_logout_deliveries (id) {
        id -> BigInt,
        client_id -> BigInt,
        session_sid -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_pushed_requests (request_hash) {
        request_hash -> Text,
        client_id -> BigInt,
        params -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oauth_device_codes (device_hash) {
        device_hash -> Text,
        user_code -> Text,
        client_id -> BigInt,
        scope -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        poll_interval -> Integer,
        last_polled_at -> Nullable<Timestamp>,
        state -> Text,
        user_id -> Nullable<BigInt>,
        session_sid -> Nullable<Text>,
        auth_time -> Nullable<Timestamp>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_ended_sessions (session_sid) {
        session_sid -> Text,
        user_id -> BigInt,
        client_ids -> Text,
        ended_at -> Timestamp,
    }
}

diesel::table! {
    oauth_registration_tokens (token_hash) {
        token_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        uses_left -> Integer,
        made_by -> Text,
    }
}

diesel::joinable!(oauth_grants -> oauth_clients (client_id));
diesel::joinable!(oauth_device_codes -> oauth_clients (client_id));
diesel::joinable!(oauth_pushed_requests -> oauth_clients (client_id));
diesel::joinable!(oauth_logout_deliveries -> oauth_clients (client_id));
diesel::joinable!(oauth_refresh_tokens -> oauth_grants (grant_id));
diesel::joinable!(oauth_consents -> oauth_clients (client_id));
diesel::allow_tables_to_appear_in_same_query!(
    oauth_clients,
    oauth_grants,
    oauth_refresh_tokens,
    oauth_consents,
    oauth_logout_deliveries,
    oauth_pushed_requests,
    oauth_device_codes,
    users
);
