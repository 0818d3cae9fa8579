//! A user's connected apps: the apps they signed in to (with what each may learn and when it
//! last used it), and disconnecting one: its consent is forgotten and every grant of it ends.
use chrono::NaiveDateTime;

use super::scopes::Scopes;
use crate::db::audit::{self, Action, Actor};
use crate::db::oauth as store;
use crate::db::users::{self, now};
use crate::db::{DbConnection, write_transaction};

#[derive(Debug, Clone)]
pub struct ConnectedApp {
    /// The app's number (`/admin/apps/{id}`, and the disconnect button's address).
    pub id: i64,
    pub name: String,
    pub client_id: String,
    pub scopes: Scopes,
    pub connected_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
}

pub fn of_user(conn: &mut DbConnection, user_id: i64) -> diesel::QueryResult<Vec<ConnectedApp>> {
    Ok(store::consents_of(conn, user_id)?
        .into_iter()
        .map(|(consent, name, client_id)| ConnectedApp {
            id: consent.client_id,
            name,
            client_id,
            scopes: Scopes::parse(&consent.scopes),
            connected_at: consent.granted_at,
            last_used_at: consent.last_used_at,
        })
        .collect())
}

/// Ends what the app holds for the user (its tokens stop within a second) and forgets the
/// consent, in one transaction with its audit row. The app's name, or `None` when it was not
/// connected.
pub fn disconnect(
    conn: &mut DbConnection,
    actor: &Actor,
    user_id: i64,
    client_id: i64,
) -> anyhow::Result<Option<String>> {
    write_transaction(conn, |conn| {
        let Some(client) = store::find_client(conn, client_id)? else { return Ok(None) };
        if !store::delete_consent(conn, user_id, client_id)? {
            return Ok(None);
        }
        let ended = store::revoke_grants_of_user_and_client(conn, user_id, client_id, now())?;
        let user = users::find_by_id(conn, user_id)?;
        let target = user.as_ref().map(|user| (user.id, user.username.as_str()));
        audit::record(conn, actor, Action::AppDisconnect, target, &format!("{}: {ended} grants ended", client.name))?;
        Ok(Some(client.name))
    })
}
