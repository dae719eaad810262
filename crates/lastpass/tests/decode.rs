//! Decoding of every §10 fixture (exact bytes) and every wire variant the reference lists.

use lastpass::decode;
use lastpass::{Error, FolderRole, UserStatus};

fn dt(s: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

// ---- §10 fixtures, byte for byte ----------------------------------------------------------

const AUTH: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lastpass rc=\"Authorization Error\"/>\n";

#[test]
fn fixture_auth_failure_is_auth_for_every_decoder() {
    assert_eq!(AUTH.len(), 76);
    assert!(matches!(decode::user_page(AUTH), Err(Error::Auth)));
    assert!(matches!(
        decode::write_status("batchadd", AUTH, None),
        Err(Error::Auth)
    ));
    assert!(matches!(
        decode::toggle("disableuser", AUTH),
        Err(Error::Auth)
    ));
    assert!(matches!(
        decode::shared_folders("getsfdata", AUTH),
        Err(Error::Auth)
    ));
    assert!(matches!(decode::event_page(AUTH), Err(Error::Auth)));
    assert!(matches!(decode::expired_page(AUTH), Err(Error::Auth)));
    assert!(matches!(decode::push_site(AUTH), Err(Error::Auth)));
}

#[test]
fn fixture_getuserdata_page_of_one() {
    let body = br#"{"total":4,"count":1,"Users":{"449022543":{"username":"a@x.io","fullname":"","mpstrength":"100","created":"2022-05-11 11:02:26","last_pw_change":"2022-05-11 11:02:26","last_login":"2022-06-02 09:20:59","neverloggedin":false,"disabled":false,"admin":true,"totalscore":"0","duousername":null,"sites":0,"notes":0,"formfills":0,"applications":0,"attachments":0,"password_reset_required":false,"groups":[]}}}"#;
    let page = decode::user_page(body).unwrap();
    assert_eq!((page.total, page.count), (4, 1));
    let u = &page.users[0];
    assert_eq!(u.id.as_str(), "449022543");
    assert_eq!(u.username, "a@x.io");
    assert_eq!(u.mpstrength, Some(100.0));
    assert_eq!(u.totalscore, Some(0.0));
    assert_eq!(u.created, Some(dt("2022-05-11 11:02:26")));
    assert_eq!(u.last_login, Some(dt("2022-06-02 09:20:59")));
    assert!(!u.never_logged_in && !u.disabled && u.admin);
    assert_eq!(u.duo_username, None);
    assert_eq!(u.sites, Some(0));
    assert!(u.groups.is_empty());
    assert!(page.groups.is_empty(), "no Groups key and no memberships");
    assert_eq!(u.status(), UserStatus::Active);
}

#[test]
fn fixture_unknown_user() {
    let body = br#"{"Users":[]}"#;
    assert_eq!(
        decode::user_lookup(body, "someone@example.com").unwrap(),
        None
    );
    let page = decode::user_page(body).unwrap();
    assert!(page.users.is_empty());
    assert_eq!((page.total, page.count), (0, 0));
}

#[test]
fn fixture_deluser_unknown_user() {
    let body = br#"{"status":"FAIL","error":"No such user: someone@example.com"}"#;
    match decode::write_status("deluser", body, Some("someone@example.com")) {
        Err(Error::UnknownUser { email }) => assert_eq!(email, "someone@example.com"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fixture_resetpassword_unknown_user_array() {
    let body = br#"{"status":"FAIL","error":["user not found: someone@example.com"]}"#;
    match decode::write_status("resetpassword", body, Some("someone@example.com")) {
        Err(Error::UnknownUser { email }) => assert_eq!(email, "someone@example.com"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fixture_batchchangegrp_partial() {
    let body = br#"{"status":"WARN","errors":["user2@lastpass.com does not exist"]}"#;
    match decode::write_status("batchchangegrp", body, None) {
        Err(Error::Partial { succeeded, errors }) => {
            assert!(succeeded.is_empty());
            assert_eq!(errors, vec!["user2@lastpass.com does not exist"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fixture_disableuser() {
    let body =
        br#"{"status":"success","disabled_users":["user1@lastpass.com","user2@lastpass.com"]}"#;
    let out = decode::toggle("disableuser", body).unwrap();
    assert_eq!(
        out.changed,
        vec!["user1@lastpass.com", "user2@lastpass.com"]
    );
    assert!(out.unchanged.is_empty());
}

#[test]
fn fixture_reporting() {
    let body = br#"{"status":"OK","next":null,"data":{"Event1":{"Time":"2015-07-17 09:51:51","Username":"j.user@example.com","IP_Address":"10.16.21.21","Action":"Failed Login Attempt","Data":""}}}"#;
    let page = decode::event_page(body).unwrap();
    assert_eq!(page.next, None);
    assert_eq!(page.events.len(), 1);
    let e = &page.events[0];
    assert_eq!(e.time, dt("2015-07-17 09:51:51"));
    assert_eq!(e.username, "j.user@example.com");
    assert_eq!(e.ip_address, "10.16.21.21");
    assert_eq!(e.action, "Failed Login Attempt");
    assert_eq!(e.data, "");
    assert_eq!(e.id, None);
}

// ---- getuserdata variants -------------------------------------------------------------------

/// The June 2022 recording (two users shown in the reference).
const RECORDED: &str = r#"{"total":4,"count":4,"Users":{"449022543":{"username":"user-a@example.com","fullname":"","mpstrength":"100","created":"2022-05-11 11:02:26","last_pw_change":"2022-05-11 11:02:26","last_login":"2022-06-02 09:20:59","neverloggedin":false,"disabled":false,"admin":true,"totalscore":"0","duousername":null,"sites":0,"notes":0,"formfills":0,"applications":0,"attachments":0,"password_reset_required":false},"456589433":{"username":"user-c@example.com","fullname":"User C","mpstrength":"0","created":"2022-06-21 11:12:30","last_pw_change":"2022-06-21 11:12:30","last_login":"","neverloggedin":true,"disabled":false,"admin":true,"totalscore":null,"duousername":"user-c@example.com","sites":null,"notes":null,"formfills":null,"applications":null,"attachments":null,"password_reset_required":true,"groups":["Integration Development"]}},"Groups":{"Integration Development":["user-b@example.com","user-c@example.com","user-d@example.com"]}}"#;

#[test]
fn recorded_users_never_logged_in_and_groups() {
    let page = decode::user_page(RECORDED.as_bytes()).unwrap();
    assert_eq!(page.users.len(), 2);
    assert_eq!(page.users[0].id.as_str(), "449022543", "wire order kept");
    let c = &page.users[1];
    assert_eq!(c.last_login, None);
    assert!(c.never_logged_in);
    assert_eq!(c.totalscore, None);
    assert_eq!(
        (c.sites, c.notes, c.formfills, c.applications, c.attachments),
        (None, None, None, None, None)
    );
    assert_eq!(c.duo_username.as_deref(), Some("user-c@example.com"));
    assert!(c.password_reset_required);
    assert_eq!(c.groups, vec!["Integration Development"]);
    // A user with no `groups` key and no Groups membership has no groups.
    assert!(page.users[0].groups.is_empty());
    assert_eq!(page.groups["Integration Development"].len(), 3);
}

#[test]
fn doc_sample_with_linked_and_counters() {
    let body = br#"{"total":1,"count":1,"Users":{"101":{"username":"user1@lastpass.com","fullname":"Ned Flanders","mpstrength":"100","created":"2014-03-12 10:02:56","last_pw_change":"2015-05-19 10:58:33","last_login":"2015-05-29 11:45:05","neverloggedin":false,"disabled":false,"admin":false,"linked":"personal.account@mydomain.com","sites":72,"notes":19,"formfills":2,"applications":0,"attachments":1,"password_reset_required":false,"groups":["Domain Admins","Dev Team","Support Team"]}},"Groups":{"Domain Admins":["user1@lastpass.com"],"Dev Team":["user1@lastpass.com"],"Support Team":["user1@lastpass.com"]}}"#;
    let page = decode::user_page(body).unwrap();
    let u = &page.users[0];
    assert_eq!(u.linked.as_deref(), Some("personal.account@mydomain.com"));
    assert_eq!(u.sites, Some(72));
    assert_eq!(u.groups.len(), 3);
    assert_eq!(page.groups.len(), 3);
}

#[test]
fn users_as_empty_object_or_array_and_groups_as_array() {
    for body in [
        r#"{"total":0,"count":0,"Users":{},"Groups":{}}"#,
        r#"{"total":0,"count":0,"Users":[],"Groups":[]}"#,
        r#"{"total":0,"count":0,"Users":null}"#,
        r#"{"total":0,"count":0}"#,
    ] {
        let page = decode::user_page(body.as_bytes()).unwrap();
        assert!(page.users.is_empty() && page.groups.is_empty(), "{body}");
    }
}

#[test]
fn lenient_user_scalars() {
    let body = br#"{"total":"1","count":"1","Users":{"7":{"username":"x@y.io","mpstrength":55,"totalscore":83.2,"created":"","last_pw_change":null,"last_login":"","disabled":"1","admin":0,"neverloggedin":"0","sites":"","notes":"12","formfills":"3","applications":null,"attachments":4,"password_reset_required":"true","multifactor":"","hasSharingKeys":1,"attribs":{"Department":"Finance","EmployeeNumber":192832,"x":null}}},"invited":["x@y.io"]}"#;
    let page = decode::user_page(body).unwrap();
    assert_eq!((page.total, page.count), (1, 1));
    let u = &page.users[0];
    assert_eq!(u.mpstrength, Some(55.0));
    assert_eq!(u.totalscore, Some(83.2));
    assert_eq!(
        (u.created, u.last_pw_change, u.last_login),
        (None, None, None)
    );
    assert!(u.disabled && !u.admin && !u.never_logged_in && u.password_reset_required);
    assert_eq!((u.sites, u.notes, u.formfills), (None, Some(12), Some(3)));
    assert_eq!(u.multifactor, None);
    assert_eq!(u.has_sharing_keys, Some(true));
    assert_eq!(u.attribs["Department"], "Finance");
    assert_eq!(u.attribs["EmployeeNumber"], "192832");
    assert!(!u.attribs.contains_key("x"));
    assert!(u.invited);
    assert_eq!(u.status(), UserStatus::Invited);
    assert_eq!(page.invited, vec!["x@y.io"]);
}

#[test]
fn paged_answer_without_groups_uses_users_arrays() {
    let body = br#"{"total":4,"count":2,"Users":{"1":{"username":"a@x.io","groups":["G1","G2"]},"2":{"username":"b@x.io","groups":["G2"]}}}"#;
    let page = decode::user_page(body).unwrap();
    assert_eq!(page.groups["G1"], vec!["a@x.io"]);
    assert_eq!(page.groups["G2"], vec!["a@x.io", "b@x.io"]);
}

#[test]
fn users_without_groups_key_take_groups_from_groups_map() {
    let body = br#"{"Users":{"1":{"username":"A@x.io"},"2":{"username":"b@x.io","groups":[]}},"Groups":{"G1":["a@x.io"],"G2":["a@x.io","b@x.io"]}}"#;
    let page = decode::user_page(body).unwrap();
    assert_eq!(page.users[0].groups, vec!["G1", "G2"]);
    // An explicit (even empty) array is the user's own answer.
    assert!(page.users[1].groups.is_empty());
}

#[test]
fn users_as_array_need_ids() {
    let ok = br#"{"Users":[{"id":"5","username":"a@x.io"}]}"#;
    assert_eq!(decode::user_page(ok).unwrap().users[0].id.as_str(), "5");
    let bad = br#"{"Users":[{"username":"a@x.io"}]}"#;
    assert!(matches!(decode::user_page(bad), Err(Error::Decode { .. })));
}

#[test]
fn lookup_picks_the_requested_user_case_insensitively() {
    let body = br#"{"Users":{"1":{"username":"Other@x.io"},"2":{"username":"Me@X.io"}}}"#;
    let u = decode::user_lookup(body, "me@x.io").unwrap().unwrap();
    assert_eq!(u.id.as_str(), "2");
    assert!(decode::user_lookup(body, "nobody@x.io").unwrap().is_none());
    let fail = br#"{"status":"FAIL","error":"No such user: nobody@x.io"}"#;
    assert!(decode::user_lookup(fail, "nobody@x.io").unwrap().is_none());
}

#[test]
fn read_with_failure_status_is_an_error() {
    let body = br#"{"status":"FAIL","error":"Something broke"}"#;
    match decode::user_page(body) {
        Err(Error::Failed { cmd, message }) => {
            assert_eq!(cmd, "getuserdata");
            assert_eq!(message, "Something broke");
        }
        other => panic!("{other:?}"),
    }
}

// ---- write envelopes ------------------------------------------------------------------------

#[test]
fn write_envelopes() {
    let ok = |b: &str| decode::write_status("x", b.as_bytes(), Some("a@b.io"));
    assert!(ok(r#"{"status":"OK"}"#).is_ok());
    assert!(ok(r#"{"status":"success"}"#).is_ok());
    assert!(ok(r#"{"status":"Success"}"#).is_ok());
    assert!(ok(r#"{"status":"OK","message":"Consider throttling your provisioning"}"#).is_ok());
    assert!(ok(r#"{"status":"OK","error":null,"errors":[]}"#).is_ok());
    match ok(r#"{"status":"FAIL","errors":["Invalid email"]}"#) {
        Err(Error::Failed { message, .. }) => assert_eq!(message, "Invalid email"),
        other => panic!("{other:?}"),
    }
    match ok(r#"{"status":"FAIL"}"#) {
        Err(Error::Failed { message, .. }) => assert!(message.contains("FAIL")),
        other => panic!("{other:?}"),
    }
    match ok(r#"{"status":"FAIL","message":"quota exceeded"}"#) {
        Err(Error::Failed { message, .. }) => assert_eq!(message, "quota exceeded"),
        other => panic!("{other:?}"),
    }
    match ok(r#"{"status":"WEIRD"}"#) {
        Err(Error::Failed { message, .. }) => assert!(message.contains("WEIRD")),
        other => panic!("{other:?}"),
    }
    // batch FAIL with several messages stays a failure (not one unknown user).
    match decode::write_status(
        "batchadd",
        br#"{"status":"FAIL","error":["a@x.io does not exist","b@x.io does not exist"]}"#,
        None,
    ) {
        Err(Error::Failed { message, .. }) => assert!(message.contains("b@x.io")),
        other => panic!("{other:?}"),
    }
    // A bulk FAIL with one unknown user names it.
    match decode::write_status(
        "batchchangegrp",
        br#"{"status":"FAIL","errors":["user2@lastpass.com does not exist"]}"#,
        None,
    ) {
        Err(Error::UnknownUser { email }) => assert_eq!(email, "user2@lastpass.com"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn toggle_variants() {
    let out = decode::toggle(
        "enableuser",
        br#"{"status":"success","enabled_users":["a@x.io"],"unchanged_users":["b@x.io"]}"#,
    )
    .unwrap();
    assert_eq!(out.changed, vec!["a@x.io"]);
    assert_eq!(out.unchanged, vec!["b@x.io"]);
    match decode::toggle(
        "disableuser",
        br#"{"status":"success","disabled_users":["a@x.io"],"error":"c@x.io could not be disabled"}"#,
    ) {
        Err(Error::Partial { succeeded, errors }) => {
            assert_eq!(succeeded, vec!["a@x.io"]);
            assert_eq!(errors, vec!["c@x.io could not be disabled"]);
        }
        other => panic!("{other:?}"),
    }
    match decode::toggle(
        "disableuser",
        br#"{"status":"success","disabled_users":[],"error":["No such user: c@x.io"]}"#,
    ) {
        Err(Error::UnknownUser { email }) => assert_eq!(email, "c@x.io"),
        other => panic!("{other:?}"),
    }
    let out = decode::toggle("disableuser", br#"{"status":"success"}"#).unwrap();
    assert!(out.changed.is_empty() && out.unchanged.is_empty());
}

#[test]
fn push_psid_string_or_number() {
    assert_eq!(
        decode::push_site(br#"{"status":"OK","psid":"73"}"#).unwrap(),
        "73"
    );
    assert_eq!(
        decode::push_site(br#"{"status":"OK","psid":74}"#).unwrap(),
        "74"
    );
    assert!(matches!(
        decode::push_site(br#"{"status":"OK"}"#),
        Err(Error::Decode { .. })
    ));
}

// ---- shared folders -------------------------------------------------------------------------

#[test]
fn getsfdata_doc_ints() {
    let body = br#"{"101":{"sharedfoldername":"ThisSFName","score":99,"users":[{"username":"joe.user@lastpass.com","readonly":0,"give":1,"can_administer":1},{"username":"jane.user@lastpass.com","readonly":1,"give":0,"can_administer":0}]}}"#;
    let f = decode::shared_folders("getsfdata", body).unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].id.as_str(), "101");
    assert_eq!(f[0].name, "ThisSFName");
    assert_eq!(f[0].score, Some(99.0));
    assert!(!f[0].deleted);
    let joe = &f[0].users[0];
    assert!(!joe.readonly && joe.give && joe.can_administer && !joe.superadmin);
    assert_eq!(joe.role(), FolderRole::Admin);
    assert_eq!(f[0].users[1].role(), FolderRole::Viewer);
    assert_eq!(joe.sites, None);
}

#[test]
fn getsfdata_string_and_bool_flags_and_envelope_keys() {
    let body = br#"{"status":"OK","errors":[],"201":{"sharedfoldername":"A","deleted":false,"score":"50","users":[{"username":"hoge@hoge.com","readonly":"0","give":"1","can_administer":"0","superadmin":false,"unknown":"0"}]},"202":{"sharedfoldername":"B","deleted":true,"score":null,"users":[{"username":"x@y.io","readonly":true,"give":false,"superadmin":true}]}}"#;
    let f = decode::shared_folders("getsfdata", body).unwrap();
    assert_eq!(f.len(), 2, "status/errors are not folders");
    assert_eq!(f[0].score, Some(50.0));
    assert_eq!(f[0].users[0].role(), FolderRole::Editor);
    assert!(f[1].deleted);
    assert_eq!(f[1].score, None);
    assert!(f[1].users[0].readonly && !f[1].users[0].give && f[1].users[0].superadmin);
    assert!(!f[1].users[0].can_administer, "absent flag is false");
}

#[test]
fn getdetailedsfdata_sites_and_empty() {
    let body = br#"{"101":{"sharedfoldername":"ThisSFName","score":99,"users":[{"username":"joe.user@lastpass.com","readonly":0,"give":1,"can_administer":1,"sites":["aaa.com","bbb.com"]},{"username":"jane.user@lastpass.com","readonly":1,"give":0,"can_administer":0,"sites":["zzz.com"]}]}}"#;
    let f = decode::shared_folders("getdetailedsfdata", body).unwrap();
    assert_eq!(
        f[0].users[0].sites.as_deref(),
        Some(&["aaa.com".to_owned(), "bbb.com".to_owned()][..])
    );
    assert!(
        decode::shared_folders("getsfdata", b"[]")
            .unwrap()
            .is_empty()
    );
    assert!(
        decode::shared_folders("getsfdata", b"{}")
            .unwrap()
            .is_empty()
    );
    match decode::shared_folders("getsfdata", br#"{"status":"FAIL","error":"nope"}"#) {
        Err(Error::Failed { message, .. }) => assert_eq!(message, "nope"),
        other => panic!("{other:?}"),
    }
}

// ---- reporting ------------------------------------------------------------------------------

#[test]
fn reporting_variants() {
    // Newest first by EventN even when keys arrive string-sorted; `next` as a string.
    let body = br#"{"status":"OK","next":"1437126711000000","data":{"Event1":{"Time":"2015-07-17 09:51:59","Username":"a","IP_Address":"::1:443","Action":"Log in","Data":"lastpass.com"},"Event10":{"Time":"2015-07-17 09:50:00","Username":"a","IP_Address":"x","Action":"A","Data":""},"Event2":{"Time":"2015-07-17 09:51:56","Username":"a","IP_Address":"x","Action":"B","Data":""}}}"#;
    let p = decode::event_page(body).unwrap();
    assert_eq!(p.next, Some(1_437_126_711_000_000));
    let actions: Vec<&str> = p.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["Log in", "B", "A"]);
    // `next` as a number; empty `data` as [].
    let p = decode::event_page(br#"{"status":"OK","next":1437126711000000,"data":[]}"#).unwrap();
    assert!(p.events.is_empty());
    assert_eq!(p.next, Some(1_437_126_711_000_000));
    // No `data` at all.
    let p = decode::event_page(br#"{"status":"OK","next":null}"#).unwrap();
    assert!(p.events.is_empty() && p.next.is_none());
    // SIEM format.
    let p = decode::event_page(br#"{"events":[{"Time":"2024-01-02 03:04:05","Username":"API: splunk","IP_Address":"1.1.1.1","Action":"Reporting","Data":"Initiated by API","ID":"991"},{"Time":"2024-01-02 03:04:00","Username":"u","IP_Address":"1.1.1.1","Action":"Login","Data":"","ID":992}]}"#).unwrap();
    assert_eq!(p.events.len(), 2);
    assert_eq!(p.events[0].id.as_deref(), Some("991"));
    assert_eq!(p.events[1].id.as_deref(), Some("992"));
    // An event without a time is a decode error.
    assert!(matches!(
        decode::event_page(br#"{"data":{"Event1":{"Username":"a"}}}"#),
        Err(Error::Decode { .. })
    ));
    match decode::event_page(br#"{"status":"FAIL","error":"Please select a valid user."}"#) {
        Err(Error::Failed { message, .. }) => assert_eq!(message, "Please select a valid user."),
        other => panic!("{other:?}"),
    }
}

// ---- expiredmasterpwlist --------------------------------------------------------------------

#[test]
fn expired_page_doc_sample() {
    let body = br#"{"status":"Success","continuation":{"token":"1235","remaining_item_count":117},"items":[{"user_id":1234,"user_name":"user1@lastpass.com","last_pw_change":"2022-01-13 03:30:13"},{"user_id":"1235","user_name":"user2@lastpass.com","last_pw_change":"2022-03-13 03:38:11"}]}"#;
    let p = decode::expired_page(body).unwrap();
    assert_eq!(p.token.as_deref(), Some("1235"));
    assert_eq!(p.remaining, Some(117));
    assert_eq!(p.items[1].user_id, 1235);
    assert_eq!(p.items[0].last_pw_change, Some(dt("2022-01-13 03:30:13")));
    let last = decode::expired_page(br#"{"status":"Success","items":[]}"#).unwrap();
    assert!(last.token.is_none() && last.items.is_empty());
}

// ---- undecodable bodies ---------------------------------------------------------------------

#[test]
fn undecodable_bodies_give_short_excerpts() {
    let long = format!("<html><body>{}</body></html>", "Bad gateway ".repeat(100));
    match decode::user_page(long.as_bytes()) {
        Err(Error::Decode {
            cmd,
            reason,
            excerpt,
        }) => {
            assert_eq!(cmd, "getuserdata");
            assert!(reason.contains("malformed"), "{reason}");
            assert!(excerpt.chars().count() <= 120);
            assert!(excerpt.starts_with("<html>"));
        }
        other => panic!("{other:?}"),
    }
    for body in [&b""[..], b"   ", b"{\"total\":4,\"Us", b"not json"] {
        assert!(
            matches!(decode::user_page(body), Err(Error::Decode { .. })),
            "{body:?}"
        );
    }
    // Well-formed JSON of the wrong shape.
    match decode::user_page(br#"{"Users":{"1":{"username":"a@x.io","sites":"many"}}}"#) {
        Err(Error::Decode { reason, .. }) => assert!(reason.contains("shape"), "{reason}"),
        other => panic!("{other:?}"),
    }
}
