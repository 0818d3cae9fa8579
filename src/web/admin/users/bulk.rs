//! `POST /admin/users/bulk` and `POST /admin/users/bulk/apply`: act on the users ticked in the
//! list. The first shows a confirmation page listing who and what will happen; only its button
//! acts, one user at a time through the same service calls as each user's own page (so every
//! rule, audit row and revocation holds), and the list comes back with what happened.
use std::collections::HashMap;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;
use serde::Deserialize;

use crate::accounts::AccountError;
use crate::db::groups::Group;
use crate::db::users::{self, User};
use crate::db::{self};
use crate::error::PageError;
use crate::web::context::Page;
use crate::web::form::CsrfForm;
use crate::web::layout::{Layout, render};

/// A page of the list holds 50; a little room for lists someone built by hand.
const MAX_SELECTED: usize = 100;
/// Each ticked user arrives as `select-{id}=on` (a checkbox per row, no script needed).
const SELECT_PREFIX: &str = "select-";

#[derive(Clone, Copy, PartialEq, Eq)]
enum BulkAction {
    Disable,
    Enable,
    SignOut,
    Delete,
    AddToGroup,
    RemoveFromGroup,
}

impl BulkAction {
    fn parse(code: &str) -> Option<Self> {
        match code {
            "disable" => Some(Self::Disable),
            "enable" => Some(Self::Enable),
            "sign-out" => Some(Self::SignOut),
            "delete" => Some(Self::Delete),
            "add-to-group" => Some(Self::AddToGroup),
            "remove-from-group" => Some(Self::RemoveFromGroup),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Enable => "enable",
            Self::SignOut => "sign-out",
            Self::Delete => "delete",
            Self::AddToGroup => "add-to-group",
            Self::RemoveFromGroup => "remove-from-group",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Disable => "Disable",
            Self::Enable => "Enable",
            Self::SignOut => "Sign out everywhere",
            Self::Delete => "Delete",
            Self::AddToGroup => "Add to the group",
            Self::RemoveFromGroup => "Remove from the group",
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            Self::Disable => {
                "They cannot sign in, and every session they have ends now. Their accounts and history stay; \
                              you can enable them again."
            }
            Self::Enable => "They can sign in again with their passwords.",
            Self::SignOut => {
                "Every session they have ends: browsers and apps must sign in again. Their passwords and \
                              accounts stay as they are."
            }
            Self::Delete => {
                "Their accounts are removed for good and every session they have ends. The audit trail \
                             keeps their names. This cannot be undone."
            }
            Self::AddToGroup => {
                "They join the group: within two seconds the apps and access rules that need it let them in. \
                 Nobody is signed out."
            }
            Self::RemoveFromGroup => {
                "They leave the group: within two seconds the apps and access rules that need it stop letting \
                 them in. Nobody is signed out."
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct BulkForm {
    #[serde(default)]
    action: String,
    /// The list to return to (its search, filters and page).
    #[serde(default)]
    back: String,
    /// For adding to or removing from a group: its name.
    #[serde(default)]
    group: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

impl BulkForm {
    fn selected(&self) -> Result<Vec<i64>, PageError> {
        let mut ids: Vec<i64> = Vec::new();
        for key in self.rest.keys() {
            let Some(raw) = key.strip_prefix(SELECT_PREFIX) else { continue };
            let id = raw.parse().map_err(|_| PageError::BadRequest("The list of users is damaged.".into()))?;
            ids.push(id);
        }
        if ids.len() > MAX_SELECTED {
            return Err(PageError::BadRequest(format!("Select at most {MAX_SELECTED} users at a time.")));
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Only a page of the user list: anything else goes to the list's first page.
    fn back(&self) -> &str {
        let back = self.back.as_str();
        let is_list = back == "/admin/users" || back.starts_with("/admin/users?");
        if is_list && !back.contains(['\r', '\n', '\\']) { back } else { "/admin/users" }
    }
}

pub(crate) struct Selected {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
    /// Why this user will be left as they are, or "".
    pub skipped: String,
}

#[derive(Template)]
#[template(path = "admin/users/bulk.html")]
struct ConfirmBulk {
    layout: Layout,
    heading: String,
    explanation: &'static str,
    users: Vec<Selected>,
    action: &'static str,
    back: String,
    button: String,
    is_delete: bool,
    /// The group's name, for adding to or removing from it ("" otherwise).
    group: String,
}

/// Who is left out before anything is tried (the service refuses them too; the page says so first).
fn skipped(page: &Page, action: BulkAction, user: &User) -> String {
    let is_self = user.id == page.user.user_id;
    match action {
        BulkAction::Disable if is_self => "You cannot disable your own account.".to_owned(),
        BulkAction::Delete if is_self => "You cannot delete your own account.".to_owned(),
        BulkAction::Disable if !user.is_active => "Already disabled.".to_owned(),
        BulkAction::Enable if user.is_active => "Already active.".to_owned(),
        BulkAction::SignOut if is_self => "You: your other sessions end, this one stays.".to_owned(),
        BulkAction::AddToGroup | BulkAction::RemoveFromGroup => String::new(),
        _ => String::new(),
    }
}

async fn load(page: &Page, form: &BulkForm) -> Result<Result<(BulkAction, Vec<User>), String>, PageError> {
    let Some(action) = BulkAction::parse(&form.action) else {
        return Ok(Err("Choose what to do with the selected users.".to_owned()));
    };
    let ids = form.selected()?;
    if ids.is_empty() {
        return Ok(Err("Select at least one user: tick the boxes beside their names.".to_owned()));
    }
    let found = db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(users::find_by_ids(conn, &ids)?) }).await?;
    if found.is_empty() {
        return Ok(Err("None of the selected users exist any more.".to_owned()));
    }
    Ok(Ok((action, found)))
}

/// The group a group action names; `Err` with what to tell the admin.
async fn group_of(
    page: &Page,
    action: BulkAction,
    form: &BulkForm,
) -> Result<Result<Option<Group>, String>, PageError> {
    if !matches!(action, BulkAction::AddToGroup | BulkAction::RemoveFromGroup) {
        return Ok(Ok(None));
    }
    let Ok(name) = crate::domain::GroupName::parse(&form.group) else {
        return Ok(Err("Choose the group to add the selected users to, or to remove them from.".to_owned()));
    };
    let found =
        db::run(&page.pool, move |conn| -> anyhow::Result<_> { Ok(db::groups::find_by_name(conn, &name)?) }).await?;
    Ok(found.map(Some).ok_or_else(|| "That group no longer exists.".to_owned()))
}

/// `POST /admin/users/bulk`: the confirmation page (nothing changes yet).
pub(crate) async fn confirm(page: Page, form: CsrfForm<BulkForm>) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let (action, found) = match load(&page, &form).await? {
        Ok(loaded) => loaded,
        Err(problem) => return Ok(page.redirect(form.back(), &problem)),
    };
    let group = match group_of(&page, action, &form).await? {
        Ok(group) => group,
        Err(problem) => return Ok(page.redirect(form.back(), &problem)),
    };
    let users: Vec<Selected> = found
        .iter()
        .map(|user| Selected {
            id: user.id,
            username: user.username.to_string(),
            display_name: user.display_name.clone(),
            email: user.email.to_string(),
            skipped: skipped(&page, action, user),
        })
        .collect();
    let acting = users.iter().filter(|user| user.skipped.is_empty() || action == BulkAction::SignOut).count();
    let noun = |count: usize| if count == 1 { "1 user".to_owned() } else { format!("{count} users") };
    let view = ConfirmBulk {
        layout: page.layout(),
        heading: match (&group, action) {
            (Some(group), BulkAction::AddToGroup) => format!("Add {} to {}?", noun(users.len()), group.name),
            (Some(group), _) => format!("Remove {} from {}?", noun(users.len()), group.name),
            (None, _) => format!("{} {}?", action.verb(), noun(users.len())),
        },
        group: group.as_ref().map(|group| group.name.to_string()).unwrap_or_default(),
        explanation: action.explanation(),
        action: action.code(),
        back: form.back().to_owned(),
        button: match &group {
            Some(group) if action == BulkAction::AddToGroup => format!("Yes, add {} to {}", noun(acting), group.name),
            Some(group) => format!("Yes, remove {} from {}", noun(acting), group.name),
            None => format!("Yes, {} {}", action.verb().to_lowercase(), noun(acting)),
        },
        is_delete: action == BulkAction::Delete,
        users,
    };
    render(StatusCode::OK, &view)
}

/// `POST /admin/users/bulk/apply`: each selected user in turn; refusals (yourself, the last
/// administrator) are reported, not fatal.
pub(crate) async fn apply(page: Page, form: CsrfForm<BulkForm>) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let (action, found) = match load(&page, &form).await? {
        Ok(loaded) => loaded,
        Err(problem) => return Ok(page.redirect(form.back(), &problem)),
    };
    let group = match group_of(&page, action, &form).await? {
        Ok(group) => group,
        Err(problem) => return Ok(page.redirect(form.back(), &problem)),
    };
    if let Some(group) = group {
        // One change for all of them: one transaction, one audit row.
        let ids: Vec<i64> = found.iter().map(|user| user.id).collect();
        let by = crate::accounts::MemberChanger::Admin;
        let (changed, verb) = if action == BulkAction::AddToGroup {
            (page.accounts().add_members(page.actor(), group.id, ids, by).await, "added to")
        } else {
            (page.accounts().remove_members(page.actor(), group.id, ids, by).await, "removed from")
        };
        let changed = match changed {
            Ok(changed) => changed,
            Err(AccountError::NotFound) => return Ok(page.redirect(form.back(), "That group no longer exists.")),
            Err(error) => return Err(error.into()),
        };
        let names: Vec<String> =
            found.iter().filter(|user| changed.contains(&user.id)).map(|user| user.username.to_string()).collect();
        let message = if names.is_empty() {
            format!("Nobody was {verb} {}.", group.name)
        } else {
            format!("{} {verb} {}.", few(&names, ", "), group.name)
        };
        return Ok(page.redirect(form.back(), &message));
    }
    let (mut done, mut left) = (Vec::new(), Vec::new());
    for user in found {
        let name = user.username.to_string();
        let result = match action {
            BulkAction::Disable | BulkAction::Enable => {
                let active = action == BulkAction::Enable;
                if user.is_active == active {
                    Err(AccountError::Refused(if active { "already active" } else { "already disabled" }.to_owned()))
                } else {
                    page.accounts().set_active(page.actor(), user.id, active).await.map(|_| ())
                }
            }
            BulkAction::Delete => page.accounts().delete(page.actor(), user.id).await.map(|_| ()),
            BulkAction::SignOut => {
                page.accounts().sign_out_everywhere(page.actor(), &user, Some(&page.user.session_id)).await.map(|_| ())
            }
            BulkAction::AddToGroup | BulkAction::RemoveFromGroup => Ok(()),
        };
        match result {
            Ok(()) => done.push(name),
            Err(AccountError::Refused(reason)) => {
                // The reason's first sentence: the message holds several users' reasons.
                let first = reason.split(". ").next().unwrap_or_default().trim_end_matches('.');
                left.push(format!("{name} ({first})"));
            }
            Err(AccountError::NotFound) => left.push(format!("{name} (no longer exists)")),
            Err(error) => return Err(error.into()),
        }
    }
    let past = match action {
        BulkAction::Disable => "Disabled",
        BulkAction::Enable => "Enabled",
        BulkAction::SignOut => "Signed out everywhere",
        BulkAction::Delete => "Deleted",
        BulkAction::AddToGroup | BulkAction::RemoveFromGroup => "Changed",
    };
    let mut message =
        if done.is_empty() { "Nobody was changed.".to_owned() } else { format!("{past}: {}.", few(&done, ", ")) };
    if !left.is_empty() {
        message.push_str(&format!(" Left as they were: {}.", few(&left, "; ")));
    }
    Ok(page.redirect(form.back(), &message))
}

/// A list short enough for the one-line message: "a, b, c and 7 others".
fn few(names: &[String], separator: &str) -> String {
    const SHOWN: usize = 3;
    if names.len() <= SHOWN + 1 {
        return names.join(separator);
    }
    format!("{} and {} others", names[..SHOWN].join(separator), names.len() - SHOWN)
}
