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
