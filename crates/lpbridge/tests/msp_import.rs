//! The MSP import end to end through the library (the functions the CLI and the service call),
//! against the in-process ConnectWise, Autotask and LastPass REST emulators: every import
//! status, map to existing, contact selection, apply and its numbers, incremental re-imports
//! (nothing changed: zero writes; one new contact: one user added), "Companies not in <PSA>",
//! each error message in its situation, and bad input that changes nothing. The full flow runs
//! on SQLite and PostgreSQL.
#![cfg(feature = "sandbox")]

mod msp_common;

use lastpass::rest::CreationAccountAction;
use lpbridge::msp::apply::ApplyOptions;
use lpbridge::msp::lock::{self, Owner};
use lpbridge::msp::plan::{CompanyAction, CompanyRow, Edit, ImportStatus, Plan};
use lpbridge::msp::{MspError, messages};
use lpbridge::store::msp::RunStatus;
use msp_common::{AT, CW, Fx, active_emails, statuses};
use serde_json::json;

const SERVER: &str = "We received a server error from your PSA provider";
const AUTH: &str =
    "Authentication error. Check your credentials for your PSA provider and try again";
const FORBIDDEN: &str = "We received a Forbidden error from your PSA provider";
const INVALID: &str = "We received an invalid response from your PSA provider";
const DUP: &str = "Unmapped \u{2013} potential duplicate";

fn ids_of(rows: &[&CompanyRow]) -> Vec<String> {
    rows.iter().map(|r| r.psa_company_id.clone()).collect()
}

/// Unmapped rows with at least `n` active e-mails.
fn unmapped_with(p: &Plan, n: usize) -> Vec<&CompanyRow> {
    p.companies_in_psa
        .iter()
        .filter(|r| r.import_status == ImportStatus::Unmapped && active_emails(r).len() >= n)
        .collect()
}

fn skip_all_but(p: &Plan, keep: &[String]) -> Vec<Edit> {
    p.companies_in_psa
        .iter()
        .filter(|r| !keep.contains(&r.psa_company_id))
        .map(|r| Edit::Import {
            company: r.psa_company_id.clone(),
            import: false,
        })
        .collect()
}

/// Leaves every company but `keep` out of the import.
fn only(p: &mut Plan, keep: &[String]) {
    let edits = skip_all_but(p, keep);
    lpbridge::msp::plan::apply_edits(p, &edits).unwrap();
}

fn row<'a>(p: &'a Plan, id: &str) -> &'a CompanyRow {
    p.companies_in_psa
        .iter()
        .find(|r| r.psa_company_id == id)
        .unwrap_or_else(|| panic!("no row {id}"))
}

async fn full_flow(pg: bool, psa: &str) {
    let Some(fx) = Fx::new(pg).await else {
        return;
    };
    // ---- plan 1: both lists, statuses, defaults
    let p = fx.plan(psa).await.unwrap();
    let st = statuses(&p);
    assert!(st.contains(&"Unmapped"), "{st:?}");
    assert!(st.contains(&DUP), "{st:?}");
    assert!(!st.contains(&"Mapped"));
    assert!(p.companies_not_in_psa.is_empty());
    assert_eq!(
        serde_json::to_value(&p).unwrap()["companies_in_psa"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["import_status"] == DUP)
            .count(),
        st.iter().filter(|s| **s == DUP).count()
    );
    let dups: Vec<&CompanyRow> = p
        .companies_in_psa
        .iter()
        .filter(|r| {
            r.import_status == ImportStatus::PotentialDuplicate && !active_emails(r).is_empty()
        })
        .collect();
    assert!(dups.len() >= 2, "need two potential duplicates: {st:?}");
    let d1 = dups[0].clone();
    let d2 = dups[1].clone();
    // The product: a potential duplicate is mapped with the same-named company by default.
    assert_eq!(d1.choice.action, CompanyAction::Map);
    let d1_target = d1.choice.managed_company_id.clone().unwrap();
    assert_eq!(d1.duplicates[0].id, d1_target);
    let unmapped = unmapped_with(&p, 2);
    assert!(unmapped.len() >= 4, "{st:?}");
    for u in &unmapped {
        assert_eq!(u.choice.action, CompanyAction::Create);
        assert!(
            u.choice.emails.is_empty(),
            "nothing preselected before any import"
        );
    }
    let (u_map, u_skip, c1, c2) = (
        unmapped[0].clone(),
        unmapped[1].clone(),
        unmapped[2].clone(),
        unmapped[3].clone(),
    );
    // A hand-made managed company that no row names: the target of "map to existing".
    let named: std::collections::HashSet<String> = p
        .companies_in_psa
        .iter()
        .flat_map(|r| r.duplicates.iter().map(|d| d.id.clone()))
        .collect();
    let (target_id, target_user) = fx.sb.msp.with_tenant(|t| {
        t.companies
            .values()
            .find(|c| !named.contains(&c.id.to_string()) && !c.users().is_empty())
            .map(|c| {
                (
                    c.id.to_string(),
                    c.users().values().next().unwrap().id.to_string(),
                )
            })
            .unwrap()
    });
    let u_map_email = active_emails(&u_map)[0].clone();
    let c1_emails: Vec<String> = active_emails(&c1).into_iter().take(2).collect();
    let c2_emails = active_emails(&c2);
    let d1_emails = active_emails(&d1);
    let d1_existing: Vec<String> = fx.managed()[&d1_target.parse::<u64>().unwrap()]
        .1
        .iter()
        .filter(|e| d1_emails.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .cloned()
        .collect();
    let keep = ids_of(&[&d1, &u_map, &c1, &c2]);
    let mut edits = skip_all_but(&p, &keep);
    edits.extend([
        Edit::Map {
            company: u_map.psa_company_id.clone(),
            managed_id: target_id.clone(),
        },
        Edit::Emails {
            company: u_map.psa_company_id.clone(),
            emails: vec![u_map_email.clone()],
        },
        Edit::MapUser {
            company: u_map.psa_company_id.clone(),
            email: u_map_email.clone(),
            user_id: target_user.clone(),
        },
        Edit::Emails {
            company: c1.psa_company_id.clone(),
            emails: c1_emails.clone(),
        },
        Edit::Emails {
            company: c2.name.clone(),
            emails: c2_emails.clone(),
        },
        Edit::Emails {
            company: d1.psa_company_id.clone(),
            emails: d1_emails.clone(),
        },
    ]);
    let mut p = p;
    lpbridge::msp::plan::apply_edits(&mut p, &edits).unwrap();
    let before = fx.managed().len();
    fx.sb.msp.reset_stats();

    // ---- Import and Map
    let r = fx.apply(psa, p).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.errors);
    assert!(r.errors.is_empty());
    assert_eq!(r.companies.created, 2, "{r:?}");
    assert_eq!(r.companies.mapped, 2, "{r:?}");
    assert_eq!(r.companies_imported, 4);
    let added = c1_emails.len() + c2_emails.len() + d1_emails.len() - d1_existing.len();
    assert_eq!(r.users.added as usize, added, "{r:?}");
    assert_eq!(r.users.mapped as usize, 1 + d1_existing.len(), "{r:?}");
    assert_eq!(r.users_imported as usize, added + 1 + d1_existing.len());
    let calls = fx.rest_calls();
    assert_eq!(calls.get("companies.create").copied(), Some(2));
    assert_eq!(calls.get("users.add").copied().unwrap_or(0) as usize, added);
    assert_eq!(r.calls.lastpass_writes as usize, 2 + added);
    assert_eq!(fx.managed().len(), before + 2);
    // The duplicate got the contacts, the new companies exactly their e-mails.
    let m = fx.managed();
    let d1_users = &m[&d1_target.parse::<u64>().unwrap()].1;
    for e in &d1_emails {
        assert!(
            d1_users.contains(&e.to_lowercase()),
            "{e} not in {d1_users:?}"
        );
    }
    let names = fx.name_counts();
    assert_eq!(names[&c1.name.to_lowercase()], 1);
    fx.assert_no_duplicate_users();

    // ---- plan 2: Mapped rows, unmapped first, preselection, last import
    let p2 = fx.plan(psa).await.unwrap();
    let st = statuses(&p2);
    assert!(
        st.contains(&"Mapped") && st.contains(&"Unmapped") && st.contains(&DUP),
        "{st:?}"
    );
    let first_mapped = st.iter().position(|s| *s == "Mapped").unwrap();
    assert!(
        st[first_mapped..].iter().all(|s| *s == "Mapped"),
        "unmapped first: {st:?}"
    );
    for id in &keep {
        let r = row(&p2, id);
        assert_eq!(r.import_status, ImportStatus::Mapped, "{id}");
        assert!(r.last_import.is_some());
        assert_eq!(r.choice.action, CompanyAction::Keep);
    }
    assert_eq!(
        row(&p2, &d2.psa_company_id).import_status,
        ImportStatus::PotentialDuplicate
    );
    assert_eq!(
        row(&p2, &u_skip.psa_company_id).import_status,
        ImportStatus::Unmapped
    );
    assert_eq!(
        row(&p2, &c1.psa_company_id).choice.emails,
        c1_emails,
        "preselected"
    );
    assert_eq!(
        row(&p2, &u_map.psa_company_id).choice.managed_company_id,
        Some(target_id.clone())
    );
    let c1_row = row(&p2, &c1.psa_company_id);
    assert_eq!(c1_row.contacts.iter().filter(|c| c.imported).count(), 2);

    // ---- incremental, nothing changed: zero write calls
    let keep2: Vec<String> = p2
        .companies_in_psa
        .iter()
        .filter(|r| r.import_status == ImportStatus::Mapped)
        .map(|r| r.psa_company_id.clone())
        .collect();
    let mut p2 = p2;
    only(&mut p2, &keep2);
    fx.sb.msp.reset_stats();
    let r = fx.apply(psa, p2).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.errors);
    assert_eq!(fx.rest_writes(), 0, "{:?}", fx.rest_calls());
    assert_eq!(r.calls.lastpass_writes, 0);
    assert_eq!(r.companies.kept, 4);
    assert_eq!(r.users_imported as usize, added + 1 + d1_existing.len());
    assert_eq!(r.users.kept, r.users_imported);

    // ---- a new contact in the PSA, selected: only that user is added
    let new_email = format!("new.person.{}@{}.example", c1.psa_company_id, psa);
    fx.add_contact(psa, &c1.psa_company_id, "Nova", &new_email)
        .await;
    let p3 = fx.plan(psa).await.unwrap();
    let c1_row = row(&p3, &c1.psa_company_id);
    let newc = c1_row
        .contacts
        .iter()
        .find(|c| c.email.as_deref() == Some(new_email.as_str()))
        .expect("the new contact is listed");
    assert!(!newc.imported);
    assert!(
        !c1_row.choice.emails.contains(&new_email),
        "not preselected"
    );
    let mut emails = c1_row.choice.emails.clone();
    emails.push(new_email.clone());
    let mut p3 = p3.clone();
    let mut edits = skip_all_but(&p3, &keep2);
    edits.push(Edit::Emails {
        company: c1.psa_company_id.clone(),
        emails,
    });
    lpbridge::msp::plan::apply_edits(&mut p3, &edits).unwrap();
    fx.sb.msp.reset_stats();
    let r = fx.apply(psa, p3).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.errors);
    assert_eq!(fx.rest_calls().get("users.add").copied(), Some(1));
    assert_eq!(fx.rest_writes(), 1);
    assert_eq!(r.users.added, 1);
    assert_eq!(r.companies.created, 0);

    // ---- a mapped company leaves the filter: "Companies not in <PSA>"; nothing is removed
    fx.deactivate_company(psa, &c2.psa_company_id).await;
    let p4 = fx.plan(psa).await.unwrap();
    assert!(
        p4.companies_in_psa
            .iter()
            .all(|r| r.psa_company_id != c2.psa_company_id)
    );
    let gone = p4
        .companies_not_in_psa
        .iter()
        .find(|g| g.psa_company_id == c2.psa_company_id)
        .expect("listed in Companies not in <PSA>");
    assert_eq!(gone.import_status, ImportStatus::Mapped);
    assert!(gone.managed_company.exists);
    assert!(gone.last_import.is_some());
    let users_before = fx.managed()[&gone.managed_company.id.parse::<u64>().unwrap()]
        .1
        .len();
    let keep4: Vec<String> = keep2
        .iter()
        .filter(|k| **k != c2.psa_company_id)
        .cloned()
        .collect();
    let mut p4 = p4.clone();
    only(&mut p4, &keep4);
    fx.sb.msp.reset_stats();
    let r = fx.apply(psa, p4).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(fx.rest_writes(), 0);
    let after = &fx.managed()[&gone.managed_company.id.parse::<u64>().unwrap()];
    assert_eq!(
        after.1.len(),
        users_before,
        "the import never removes users"
    );
    assert_eq!(
        fx.store.msp_company_maps(psa).await.unwrap().len(),
        4,
        "mapping kept"
    );
}

async fn full_flow_connectwise(pg: bool) {
    full_flow(pg, CW).await;
}

async fn full_flow_autotask(pg: bool) {
    full_flow(pg, AT).await;
}

both!(full_flow_connectwise, full_flow_autotask);

// ---- staleness --------------------------------------------------------------------------------

#[tokio::test]
async fn a_stale_plan_is_refused_saying_what_changed() {
    let fx = Fx::new(false).await.unwrap();
    let p = fx.plan(CW).await.unwrap();
    let unmapped = unmapped_with(&p, 1);
    let (a, b) = (unmapped[0].clone(), unmapped[1].clone());
    let mut p = p.clone();
    only(&mut p, &ids_of(&[&a, &b]));
    fx.rename_company(CW, &a.psa_company_id, "Renamed Since The Plan")
        .await;
    fx.control_post("/msp/companies", json!({"name": b.name}))
        .await;
    fx.sb.msp.reset_stats();
    let e = fx.apply(CW, p).await.unwrap_err();
    let MspError::Stale(changes) = &e else {
        panic!("{e}");
    };
    let text = changes.join("\n");
    assert!(
        text.contains("renamed to \"Renamed Since The Plan\""),
        "{text}"
    );
    assert!(
        text.contains("was added in LastPass with the name of"),
        "{text}"
    );
    assert!(e.to_string().contains("nothing was changed"));
    assert_eq!(fx.rest_writes(), 0);
    assert!(fx.store.msp_company_maps(CW).await.unwrap().is_empty());
    assert!(fx.store.msp_runs(CW, 10).await.unwrap().is_empty());
}

// ---- bad input ---------------------------------------------------------------------------------

/// Asserts `e` is bad input and that nothing changed anywhere.
async fn refused(fx: &Fx, e: &MspError, needle: &str) {
    assert!(
        matches!(
            e,
            MspError::Invalid(_) | MspError::Tampered(_) | MspError::Foreign(_)
        ),
        "{e}"
    );
    assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
    assert_eq!(e.exit_code(), 2);
    assert_eq!(fx.rest_writes(), 0, "{:?}", fx.rest_calls());
    assert!(fx.store.msp_company_maps(CW).await.unwrap().is_empty());
    assert!(fx.store.msp_contact_maps(CW).await.unwrap().is_empty());
    assert!(fx.store.msp_runs(CW, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let fx = Fx::new(false).await.unwrap();
    let base = fx.plan(CW).await.unwrap();
    let un = unmapped_with(&base, 1);
    let (a, b) = (un[0].clone(), un[1].clone());
    let target = fx
        .sb
        .msp
        .with_tenant(|t| t.companies.keys().next().unwrap().to_string());
    fx.sb.msp.reset_stats();

    // A tampered plan: a fact edited in the file.
    let mut v: serde_json::Value = serde_json::from_str(&base.to_json()).unwrap();
    v["companies_in_psa"][0]["name"] = json!("Not The PSA Name");
    let tampered = Plan::from_json(v.to_string().as_bytes()).unwrap();
    let e = fx.apply(CW, tampered).await.unwrap_err();
    refused(&fx, &e, "altered").await;

    // A plan from another lpbridge store, and a plan for another integration.
    let other = Fx::new(false).await.unwrap();
    let foreign = other.plan(CW).await.unwrap();
    let e = fx.apply(CW, foreign).await.unwrap_err();
    refused(&fx, &e, "another lpbridge installation").await;
    let e = fx
        .apply_opts(
            CW,
            base.clone(),
            ApplyOptions {
                expected_integration: Some(AT.into()),
                ..ApplyOptions::default()
            },
        )
        .await
        .unwrap_err();
    refused(&fx, &e, "not \"sandbox-autotask\"").await;
    let at_plan = fx.plan(AT).await.unwrap();
    let e = fx.apply(CW, at_plan).await.unwrap_err();
    refused(&fx, &e, "made for PSA integration \"sandbox-autotask\"").await;

    // Unknown ids: a managed company, a LastPass user, a PSA company, a contact.
    let mut p = base.clone();
    lpbridge::msp::plan::apply_edits(
        &mut p,
        &[Edit::Map {
            company: a.psa_company_id.clone(),
            managed_id: "99999999".into(),
        }],
    )
    .unwrap();
    let e = fx.apply(CW, p).await.unwrap_err();
    refused(
        &fx,
        &e,
        "\"99999999\": is not a managed company of the MSP account (unknown id",
    )
    .await;
    let mut p = base.clone();
    let email = active_emails(&a)[0].clone();
    lpbridge::msp::plan::apply_edits(
        &mut p,
        &[
            Edit::Map {
                company: a.psa_company_id.clone(),
                managed_id: target.clone(),
            },
            Edit::MapUser {
                company: a.psa_company_id.clone(),
                email: email.clone(),
                user_id: "424242".into(),
            },
        ],
    )
    .unwrap();
    let e = fx.apply(CW, p).await.unwrap_err();
    refused(&fx, &e, "\"424242\": is not a user of managed company").await;
    let e = lpbridge::msp::plan::apply_edits(
        &mut base.clone(),
        &[Edit::Unmap {
            company: "777777".into(),
        }],
    )
    .unwrap_err();
    refused(&fx, &e, "invalid company \"777777\"").await;
    let mut p = base.clone();
    p.companies_in_psa
        .iter_mut()
        .find(|r| r.psa_company_id == a.psa_company_id)
        .unwrap()
        .choice
        .emails = vec!["nobody@nowhere.example".into()];
    let e = fx.apply(CW, p).await.unwrap_err();
    refused(&fx, &e, "unknown contact").await;

    // An invalid contact e-mail (edited in the file, and as a flag).
    let mut p = base.clone();
    p.companies_in_psa
        .iter_mut()
        .find(|r| r.psa_company_id == a.psa_company_id)
        .unwrap()
        .choice
        .emails = vec!["not-an-email".into()];
    let e = fx.apply(CW, p).await.unwrap_err();
    refused(&fx, &e, "\"not-an-email\": has no '@'").await;
    let e = lpbridge::msp::plan::apply_edits(
        &mut base.clone(),
        &[Edit::Emails {
            company: a.psa_company_id.clone(),
            emails: vec!["ann@@x".into()],
        }],
    )
    .unwrap_err();
    refused(&fx, &e, "ann@@x").await;

    // Two PSA companies mapped to one managed company.
    let mut p = base.clone();
    lpbridge::msp::plan::apply_edits(
        &mut p,
        &[
            Edit::Map {
                company: a.psa_company_id.clone(),
                managed_id: target.clone(),
            },
            Edit::Map {
                company: b.psa_company_id.clone(),
                managed_id: target.clone(),
            },
        ],
    )
    .unwrap();
    let e = fx.apply(CW, p).await.unwrap_err();
    refused(
        &fx,
        &e,
        "two PSA companies cannot be mapped to one managed company",
    )
    .await;
}

// ---- the error messages, each in its situation --------------------------------------------

#[tokio::test]
async fn credentials_are_required() {
    let fx = Fx::new(false).await.unwrap();
    assert!(fx.store.delete_msp_settings().await.unwrap());
    let e = fx.ctx(CW).await.unwrap_err();
    assert!(
        e.to_string().starts_with("Credentials are required\n"),
        "{e}"
    );
    assert_eq!(e.user_message(), messages::CREDENTIALS_REQUIRED);
    assert_eq!(e.exit_code(), 2);
    let url = lastpass::rest::parse_base_url(&fx.sb.msp_base_url()).unwrap();
    let e = lpbridge::msp::build_rest_client(url, lp_types::Secret::new("  ")).unwrap_err();
    assert!(e.to_string().starts_with("Credentials are required"), "{e}");
    // Empty PSA credentials: the same message (checked before any call).
    let e = MspError::from(psa::Error::credentials_missing("private_key"));
    assert!(e.to_string().starts_with("Credentials are required"), "{e}");
}

#[tokio::test]
async fn one_admin_at_a_time_and_stale_locks_recover() {
    let fx = Fx::new(false).await.unwrap();
    let p = fx.plan(CW).await.unwrap();
    let other = Owner {
        admin: "bob".into(),
        host: "another-host".into(),
        pid: 1,
        token: "t".into(),
    };
    lock::acquire(&fx.store, CW, &other, lock::RUN_TTL)
        .await
        .unwrap();
    fx.sb.msp.reset_stats();
    let e = fx.apply(CW, p.clone()).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Another admin is already working with this integration\n"),
        "{e}"
    );
    assert!(e.to_string().contains("bob on another-host"), "{e}");
    assert_eq!(fx.rest_writes(), 0);
    let s = lock::status(&fx.store, CW).await.unwrap();
    assert!(s.locked && s.holder.unwrap().contains("bob"));
    // Another integration is not locked.
    lock::acquire(&fx.store, AT, &Owner::new("me", "x"), lock::RUN_TTL)
        .await
        .unwrap();
    lock::release(&fx.store, AT, &Owner::new("me", "x"))
        .await
        .unwrap();

    // A holder that died on this host: taken over at once.
    let me_host = Owner::new("x", "y").host;
    let dead = Owner {
        admin: "crashed".into(),
        host: me_host,
        pid: 4_000_000_000,
        token: "z".into(),
    };
    lock::force_release(&fx.store, CW).await.unwrap();
    lock::acquire(&fx.store, CW, &dead, lock::RUN_TTL)
        .await
        .unwrap();
    let r = fx.apply(CW, p.clone()).await;
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));

    // An expired lease is free (no waiting: it expires on the database clock at once).
    lock::acquire(&fx.store, CW, &other, std::time::Duration::from_micros(1))
        .await
        .unwrap();
    let p = fx.plan(CW).await.unwrap();
    let keep: Vec<Edit> = p
        .companies_in_psa
        .iter()
        .map(|r| Edit::Import {
            company: r.psa_company_id.clone(),
            import: false,
        })
        .collect();
    let p = {
        let mut p = p;
        lpbridge::msp::plan::apply_edits(&mut p, &keep).unwrap();
        p
    };
    fx.apply(CW, p).await.unwrap();
    assert!(
        !lock::status(&fx.store, CW).await.unwrap().locked,
        "released after apply"
    );
}

#[tokio::test]
async fn not_enough_licenses() {
    let fx = Fx::new(false).await.unwrap();
    let p = fx.plan(CW).await.unwrap();
    let c = unmapped_with(&p, 2)[0].clone();
    let mut p = p.clone();
    let mut edits = skip_all_but(&p, std::slice::from_ref(&c.psa_company_id));
    edits.push(Edit::Emails {
        company: c.psa_company_id.clone(),
        emails: active_emails(&c),
    });
    lpbridge::msp::plan::apply_edits(&mut p, &edits).unwrap();
    // The pool is exactly what is allocated and used: nothing left to distribute.
    let l = fx.sb.msp.licenses();
    fx.sb.msp.set_licenses(l.total - l.unallocated);
    fx.sb.msp.reset_stats();
    let r = fx.apply(CW, p).await.unwrap();
    assert_eq!(r.status, RunStatus::Partial);
    assert_eq!(
        r.companies.created, 1,
        "a company with no allocation needs no licence"
    );
    assert_eq!(r.users.added, 0);
    let n = active_emails(&c).len();
    assert_eq!(r.errors.len(), n, "{:?}", r.errors);
    for e in &r.errors {
        assert_eq!(
            e.message,
            "You don't seem to have enough available licenses"
        );
        assert_eq!(e.psa_company_id.as_deref(), Some(c.psa_company_id.as_str()));
        assert!(e.email.is_some());
    }
    assert_eq!(
        fx.rest_calls().get("users.add").copied(),
        Some(1),
        "after the first refusal, no more invitations are sent"
    );
    // Staging needs no licence.
    let p = fx.plan(CW).await.unwrap();
    let mut p = p.clone();
    only(&mut p, std::slice::from_ref(&c.psa_company_id));
    lpbridge::msp::plan::apply_edits(
        &mut p,
        &[Edit::Emails {
            company: c.psa_company_id.clone(),
            emails: active_emails(&c),
        }],
    )
    .unwrap();
    let r = fx.apply_opts(CW, p, Fx::stage()).await.unwrap();
    assert_eq!(r.users.added as usize, n, "{:?}", r.errors);
    let _ = CreationAccountAction::Stage;
}

async fn psa_failure(psa: &str, rule: serde_json::Value, message: &str) {
    let fx = Fx::new(false).await.unwrap();
    let p = fx.plan(psa).await.unwrap();
    fx.psa_fault(psa, rule).await;
    let e = fx.plan(psa).await.unwrap_err();
    assert!(e.to_string().starts_with(&format!("{message}\n")), "{e}");
    assert_eq!(e.user_message(), message);
    // Apply reads the PSA again before any write: the same message, nothing changed.
    fx.sb.msp.reset_stats();
    let e = fx.apply(psa, p).await.unwrap_err();
    assert_eq!(e.user_message(), message, "{e}");
    assert_eq!(fx.rest_writes(), 0);
    assert!(fx.store.msp_company_maps(psa).await.unwrap().is_empty());
}

#[tokio::test]
async fn psa_server_errors() {
    psa_failure(
        CW,
        json!({"kind": "status", "status": 500, "path": "company/companies"}),
        SERVER,
    )
    .await;
    psa_failure(
        AT,
        json!({"endpoint": "Companies", "kind": "status", "status": 500, "message": "Internal error"}),
        SERVER,
    )
    .await;
}

#[tokio::test]
async fn psa_authentication_errors() {
    psa_failure(
        CW,
        json!({"kind": "status", "status": 401, "path": "company/companies", "message": "Unauthorized"}),
        AUTH,
    )
    .await;
    psa_failure(AT, json!({"kind": "locked"}), AUTH).await;
}

#[tokio::test]
async fn psa_forbidden_errors() {
    psa_failure(
        CW,
        json!({"kind": "status", "status": 403, "path": "company/companies"}),
        FORBIDDEN,
    )
    .await;
    psa_failure(
        AT,
        json!({"endpoint": "Companies", "kind": "permission", "status": 403}),
        FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn psa_invalid_responses() {
    psa_failure(
        CW,
        json!({"kind": "html", "status": 200, "path": "company/companies"}),
        INVALID,
    )
    .await;
    psa_failure(
        AT,
        json!({"endpoint": "Companies", "kind": "truncate"}),
        INVALID,
    )
    .await;
}

#[tokio::test]
async fn anything_else_is_something_went_wrong() {
    let fx = Fx::new(false).await.unwrap();
    // A PSA that cannot be reached.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut i = fx
        .store
        .get_psa_integration(&lp_types::ConnectionId::new(CW).unwrap())
        .await
        .unwrap()
        .unwrap();
    if let lpbridge::store::PsaSettings::ConnectWise(s) = &mut i.settings {
        s.site = format!("http://127.0.0.1:{port}/cw");
    }
    fx.store
        .create_psa_integration(
            lpbridge::store::NewPsaIntegration {
                id: lp_types::ConnectionId::new("unreachable").unwrap(),
                settings: i.settings.clone(),
                secrets: i.secrets.clone(),
            },
            false,
        )
        .await
        .unwrap();
    let e = fx.plan("unreachable").await.unwrap_err();
    assert!(e.to_string().starts_with("Something went wrong\n"), "{e}");

    // A LastPass failure on one user: that item's error, the rest imported.
    let p = fx.plan(CW).await.unwrap();
    let c = unmapped_with(&p, 2)[0].clone();
    let mut p = p.clone();
    let mut edits = skip_all_but(&p, std::slice::from_ref(&c.psa_company_id));
    edits.push(Edit::Emails {
        company: c.psa_company_id.clone(),
        emails: active_emails(&c),
    });
    lpbridge::msp::plan::apply_edits(&mut p, &edits).unwrap();
    fx.control_post("/msp/faults", json!({"spec": "users.add:400:1:1"}))
        .await;
    let r = fx.apply(CW, p).await.unwrap();
    assert_eq!(r.status, RunStatus::Partial);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].message, "Something went wrong");
    assert_eq!(r.users.added as usize, active_emails(&c).len() - 1);
}
