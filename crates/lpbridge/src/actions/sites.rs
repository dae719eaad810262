//! `lastpass_push_sites` (pushsitestousers).

use lastpass::{Client, Email, GroupName, PushSite, PushTarget, UsernameType};
use serde_json::json;

use super::types::{PushSitesInput, UsernameTypeInput};
use super::{ActionError, ActionOutput};

/// `push_to`: `all`, else an e-mail address when the value parses as one, else a group name.
fn target(push_to: &str) -> Result<PushTarget, ActionError> {
    let t = push_to.trim();
    if t.eq_ignore_ascii_case("all") {
        return Ok(PushTarget::All);
    }
    if t.contains('@')
        && let Ok(e) = Email::parse_field("push_to", t)
    {
        return Ok(PushTarget::User(e));
    }
    Ok(PushTarget::Group(GroupName::new(t)?))
}

pub(super) async fn push(client: &Client, i: PushSitesInput) -> Result<ActionOutput, ActionError> {
    let target = target(&i.push_to)?;
    let label = match &target {
        PushTarget::All => "all".to_owned(),
        PushTarget::Group(g) => format!("group:{g}"),
        PushTarget::User(u) => format!("user:{u}"),
    };
    let site = PushSite {
        target,
        url: i.url.trim().to_owned(),
        name: i.label,
        folder: i.folder.filter(|f| !f.is_empty()),
        username_type: match i.username_type {
            UsernameTypeInput::Email => UsernameType::Email,
            UsernameTypeInput::Username => UsernameType::Username,
            UsernameTypeInput::Custom => UsernameType::Custom,
        },
        username: i.username,
        password: i.password.map(|p| p.0),
        notes: i.notes,
        favorite: i.favorite,
        persistent: i.persistent,
        shared_folder_id: i.shared_folder_id.map(|f| f.0),
    };
    let psid = client.push_site(&site).await?;
    // A push changes vaults, not the directory.
    Ok(ActionOutput::read(json!({
        "psid": psid,
        "target": label,
        "url": site.url,
        "label": site.name,
        "persistent": site.persistent,
        "outcome": "ok",
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_targets() {
        assert_eq!(target("ALL").unwrap(), PushTarget::All);
        assert!(matches!(
            target("ann@example.com").unwrap(),
            PushTarget::User(_)
        ));
        assert!(matches!(
            target("Sales Team").unwrap(),
            PushTarget::Group(_)
        ));
        // Not a valid address: a group name (LastPass decides whether it exists).
        assert!(matches!(target("ops@team").unwrap(), PushTarget::Group(_)));
    }
}
