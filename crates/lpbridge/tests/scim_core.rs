//! The SCIM protocol core (`lpbridge::scim`): filter grammar and evaluation, PATCH with the
//! identity-provider quirks Q1–Q13 (research notes §2.5; one test per quirk, named after it),
//! error bodies, paging and projection. Pure functions: no server, no LastPass.

use lpbridge::scim::filter::FilterError;
use lpbridge::scim::schema::ResourceSchema;
use lpbridge::scim::{
    AttrPath, CompValue, CompareOp, ENTERPRISE_USER_SCHEMA, Filter, GROUP_SCHEMA, ListResponse,
    PageRequest, PatchRequest, Projection, ScimError, ScimType, SearchRequest, SubTest, Test,
    USER_SCHEMA, list_resources,
};
use serde_json::{Value, json};

const USER: ResourceSchema = ResourceSchema::USER;
const GROUP: ResourceSchema = ResourceSchema::GROUP;

fn parse(s: &str) -> Filter {
    Filter::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn attr(path: &str, op: CompareOp, v: CompValue) -> Filter {
    Filter::compare(AttrPath::parse(path).unwrap(), op, v)
}

fn s(v: &str) -> CompValue {
    CompValue::String(v.to_owned())
}

fn bjensen() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "BJensen-Ext",
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara", "formatted": "Ms. Barbara J Jensen III"},
        "displayName": "Babs Jensen",
        "title": "",
        "userType": "Employee",
        "active": true,
        "loginCount": 42,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
                 "lastModified": "2011-05-13T04:42:34Z", "location": "https://x/Users/2819c223"},
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "department": "Tour Operations",
                                 "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    })
}

fn group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}
        ],
        "meta": {"resourceType": "Group"}
    })
}

fn matches(filter: &str, resource: &Value, schema: &ResourceSchema) -> bool {
    parse(filter).matches(resource, schema)
}

fn assert_scim_error(e: &ScimError, status: u16, t: ScimType) {
    assert_eq!((e.status, e.scim_type), (status, Some(t)), "{e}");
    assert!(!e.detail.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Filter: parsing
// ---------------------------------------------------------------------------------------------

/// Every example filter of RFC 7644 §3.4.2.2 parses, and prints back to an equal tree.
#[test]
fn rfc_7644_example_filters_parse_and_round_trip() {
    let examples = [
        r#"userName Eq "john""#,
        r#"Username eq "john""#,
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"title pr"#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    ];
    for text in examples {
        let f = parse(text);
        assert_eq!(parse(&f.to_string()), f, "{text}");
    }
}

#[test]
fn and_binds_tighter_than_or_and_both_associate_left() {
    let a = || attr("a", CompareOp::Eq, CompValue::Number(1.into()));
    let b = || attr("b", CompareOp::Eq, CompValue::Number(2.into()));
    let c = || attr("c", CompareOp::Eq, CompValue::Number(3.into()));
    assert_eq!(parse("a eq 1 or b eq 2 and c eq 3"), a().or(b().and(c())));
    assert_eq!(parse("a eq 1 and b eq 2 or c eq 3"), a().and(b()).or(c()));
    assert_eq!(parse("(a eq 1 or b eq 2) and c eq 3"), a().or(b()).and(c()));
    assert_eq!(parse("a eq 1 and b eq 2 and c eq 3"), a().and(b()).and(c()));
    assert_eq!(
        parse("a eq 1 and (b eq 2 and c eq 3)"),
        a().and(b().and(c()))
    );
    assert_eq!(parse("a eq 1 or b eq 2 or c eq 3"), a().or(b()).or(c()));
    // The printer keeps exactly the parentheses that matter.
    assert_eq!(
        a().and(b().and(c())).to_string(),
        "a eq 1 and (b eq 2 and c eq 3)"
    );
    assert_eq!(
        a().or(b()).and(c()).to_string(),
        "(a eq 1 or b eq 2) and c eq 3"
    );
    assert_eq!(
        a().or(b().and(c())).to_string(),
        "a eq 1 or b eq 2 and c eq 3"
    );
}

#[test]
fn operators_keywords_and_literals_are_case_insensitive() {
    assert_eq!(
        parse(r#"userName EQ "x" AND NOT(title PR) Or active Eq TRUE"#),
        attr("userName", CompareOp::Eq, s("x"))
            .and(
                Filter::Attr {
                    path: AttrPath::new("title"),
                    test: Test::Present
                }
                .not()
            )
            .or(attr("active", CompareOp::Eq, CompValue::Bool(true)))
    );
    for op in CompareOp::ALL {
        let upper = format!("n {} 1", op.as_str().to_uppercase());
        assert_eq!(parse(&upper), attr("n", op, CompValue::Number(1.into())));
    }
}

#[test]
fn attribute_paths_with_urns_and_sub_attributes() {
    let f = parse(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1""#,
    );
    let Filter::Attr { path, .. } = &f else {
        panic!("{f:?}")
    };
    assert_eq!(path.urn.as_deref(), Some(ENTERPRISE_USER_SCHEMA));
    assert_eq!(
        (path.name.as_str(), path.sub.as_deref()),
        ("manager", Some("value"))
    );
    assert_eq!(
        parse(r#"members.$ref pr"#),
        Filter::Attr {
            path: AttrPath::new("members").with_sub("$ref"),
            test: Test::Present
        }
    );
}

#[test]
fn value_filters_with_and_without_a_trailing_sub_attribute() {
    assert_eq!(
        parse(r#"emails[type eq "work"].value eq "x@y""#),
        Filter::ValuePath {
            path: AttrPath::new("emails"),
            filter: Box::new(attr("type", CompareOp::Eq, s("work"))),
            then: Some(SubTest {
                sub: "value".into(),
                test: Test::Compare(CompareOp::Eq, s("x@y"))
            }),
        }
    );
    assert_eq!(
        parse(r#"members[value eq "2819c223"]"#),
        Filter::ValuePath {
            path: AttrPath::new("members"),
            filter: Box::new(attr("value", CompareOp::Eq, s("2819c223"))),
            then: None,
        }
    );
    let f = parse(r#"emails[not (type eq "work") and (value ew ".org" or primary eq true)]"#);
    assert_eq!(parse(&f.to_string()), f);
}

#[test]
fn literals_json_strings_numbers_booleans_null() {
    let lit = |text: &str| match parse(&format!("x eq {text}")) {
        Filter::Attr {
            test: Test::Compare(_, v),
            ..
        } => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(lit(r#""a\"b\\c\/d\u00e9\n\t""#), s("a\"b\\c/d\u{e9}\n\t"));
    assert_eq!(lit(r#""😀 \ud83d\ude00""#), s("😀 😀"));
    assert_eq!(
        lit("-1.5e3"),
        CompValue::Number(serde_json::Number::from_f64(-1500.0).unwrap())
    );
    assert_eq!(
        lit("18446744073709551615"),
        CompValue::Number(u64::MAX.into())
    );
    assert_eq!(lit("0"), CompValue::Number(0.into()));
    assert_eq!(lit("false"), CompValue::Bool(false));
    assert_eq!(lit("Null"), CompValue::Null);
    // Entra's documented sample `externalId eq jyoung` is unquoted: read leniently, `eq` only.
    assert_eq!(lit("jyoung"), s("jyoung"));
    assert_eq!(
        lit("6f8c2e4a-0b1d-4c3e-9f00-123456789abc"),
        s("6f8c2e4a-0b1d-4c3e-9f00-123456789abc")
    );
    assert!(Filter::parse("x co jyoung").is_err());
}

/// Bad filters become 400 `invalidFilter`, and the detail names the position.
#[test]
fn invalid_filters_name_the_position() {
    let cases: &[(&str, usize)] = &[
        ("", 0),
        ("   ", 0),
        ("userName", 8),
        ("userName eq", 11),
        (r#"userName xx "a""#, 9),
        (r#"userName eq "abc"#, 12),
        (r#"(userName eq "a""#, 16),
        (r#"userName eq "a" and"#, 19),
        (r#"userName eq "a" extra"#, 16),
        (r#"userName eq "a\q""#, 12),
        (r#"emails[type eq "work""#, 21),
        (r#"emails[value[type eq 1]]"#, 12),
        (r#"emails[urn:x:y:type eq 1]"#, 7),
        (r#"emails.value[type eq 1]"#, 12),
        ("active gt true", 10),
        ("title co null", 9),
        ("a.b.c pr", 3),
        ("1abc pr", 0),
        (r#"userName=="a""#, 8),
        (r#"userName eq "a" or )"#, 19),
        ("not (title pr", 13),
        ("x gt 01", 5),
    ];
    for &(text, pos) in cases {
        let err: FilterError = Filter::parse(text).expect_err(text);
        assert_eq!(err.position, pos, "{text:?}: {err}");
        let scim = Filter::parse_scim(text).unwrap_err();
        assert_scim_error(&scim, 400, ScimType::InvalidFilter);
        assert!(
            scim.detail.contains(&format!("position {pos}")),
            "{}",
            scim.detail
        );
        assert_eq!(scim.to_body()["status"], "400");
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("{}title pr{}", "(".repeat(100_000), ")".repeat(100_000));
    let e = Filter::parse(&deep).unwrap_err();
    assert!(e.message.contains("nested"), "{e}");
    let nots = format!("{}title pr{}", "not (".repeat(50_000), ")".repeat(50_000));
    assert!(Filter::parse(&nots).is_err());
    // 60 levels are fine.
    let ok = format!("{}title pr{}", "(".repeat(60), ")".repeat(60));
    assert!(Filter::parse(&ok).is_ok());
}

#[test]
fn string_equality_lookup_helper() {
    let user_name = AttrPath::new("userName");
    assert_eq!(
        parse(r#"USERNAME eq "A@b.c""#).as_string_equality(&user_name),
        Some("A@b.c")
    );
    assert_eq!(
        parse(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#)
            .as_string_equality(&user_name),
        Some("x")
    );
    assert_eq!(
        parse(r#"userName co "x""#).as_string_equality(&user_name),
        None
    );
    assert_eq!(
        parse(r#"userName eq "x" and title pr"#).as_string_equality(&user_name),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Filter: evaluation
// ---------------------------------------------------------------------------------------------

#[test]
fn user_name_is_case_insensitive_and_external_id_case_exact() {
    let u = bjensen();
    // Okta's spec test R9 queries the uppercased userName.
    assert!(matches(r#"userName eq "BJENSEN@EXAMPLE.COM""#, &u, &USER));
    assert!(matches(r#"externalId eq "BJensen-Ext""#, &u, &USER));
    assert!(!matches(r#"externalId eq "bjensen-ext""#, &u, &USER));
    assert!(!matches(
        r#"id eq "2819C223-7F76-453A-919D-413861904646""#,
        &u,
        &USER
    ));
    // Attribute names match in any case.
    assert!(matches(
        r#"USERNAME sw "bjen" and NAME.FAMILYNAME eq "jensen""#,
        &u,
        &USER
    ));
}

#[test]
fn every_operator_on_strings_numbers_booleans_and_dates() {
    let u = bjensen();
    for (filter, expected) in [
        (r#"name.familyName co "ENS""#, true),
        (r#"name.familyName sw "Jen""#, true),
        (r#"name.familyName ew "SEN""#, true),
        (r#"name.familyName ne "Jensen""#, false),
        (r#"name.familyName gt "Iverson""#, true),
        (r#"name.familyName ge "jensen""#, true),
        (r#"name.familyName lt "Jensen""#, false),
        (r#"name.familyName le "JENSEN""#, true),
        ("loginCount gt 41", true),
        ("loginCount ge 42.0", true),
        ("loginCount lt 42", false),
        ("loginCount le 42", true),
        ("loginCount eq 42", true),
        ("loginCount ne 42", false),
        (r#"loginCount eq "42""#, false),
        ("loginCount co 4", false),
        ("active eq true", true),
        ("active ne true", false),
        ("active eq false", false),
        (r#"active eq "true""#, false),
        (r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, true),
        // Same instant written with an offset: dates compare chronologically.
        (r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#, true),
        (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.created le "2011-05-13T04:42:34Z""#, true),
    ] {
        assert_eq!(matches(filter, &u, &USER), expected, "{filter}");
    }
}

#[test]
fn presence_means_a_non_empty_value() {
    let u = bjensen();
    assert!(matches("userName pr", &u, &USER));
    assert!(!matches("title pr", &u, &USER), "empty string");
    assert!(!matches("phoneNumbers pr", &u, &USER), "empty array");
    assert!(!matches("nickName pr", &u, &USER), "missing");
    assert!(matches("name pr", &u, &USER));
    assert!(matches("emails.type pr", &u, &USER));
    assert!(!matches("emails.display pr", &u, &USER));
}

#[test]
fn missing_attributes_and_null() {
    let u = bjensen();
    assert!(!matches(r#"nickName eq "x""#, &u, &USER));
    assert!(
        !matches(r#"nickName ne "x""#, &u, &USER),
        "ne on a missing attribute"
    );
    assert!(matches("nickName eq null", &u, &USER));
    assert!(!matches("nickName ne null", &u, &USER));
    assert!(matches("userName ne null", &u, &USER));
    assert!(matches(r#"not (nickName eq "x")"#, &u, &USER));
}

#[test]
fn multi_valued_attributes_match_if_any_element_does() {
    let u = bjensen();
    assert!(
        matches(r#"emails co "jensen.org""#, &u, &USER),
        "complex value → its value"
    );
    assert!(matches(r#"emails.value ew ".ORG""#, &u, &USER));
    assert!(matches(r#"emails.type eq "home""#, &u, &USER));
    assert!(!matches(r#"emails.type eq "other""#, &u, &USER));
    assert!(matches(
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        &u,
        &USER
    ));
}

#[test]
fn value_filters_select_one_element() {
    let u = bjensen();
    // Entra's lookup by the work e-mail.
    assert!(matches(
        r#"emails[type eq "work"].value eq "BJensen@example.com""#,
        &u,
        &USER
    ));
    assert!(!matches(
        r#"emails[type eq "home"].value eq "bjensen@example.com""#,
        &u,
        &USER
    ));
    assert!(matches(
        r#"emails[type eq "work" and value co "@example.com"]"#,
        &u,
        &USER
    ));
    // Both conditions must hold on the same element.
    assert!(!matches(
        r#"emails[type eq "home" and value co "@example.com"]"#,
        &u,
        &USER
    ));
    assert!(matches(
        r#"emails[type eq "home" or primary eq true]"#,
        &u,
        &USER
    ));
    assert!(matches(r#"emails[not (type eq "work")]"#, &u, &USER));
    assert!(matches(
        r#"emails[type eq "work"].primary eq true"#,
        &u,
        &USER
    ));
    assert!(matches(
        r#"emails[type eq "home"].display eq null"#,
        &u,
        &USER
    ));

    let g = group();
    assert!(matches(
        r#"members[value eq "902c246b-6245-4190-8e05-00816be7344a"]"#,
        &g,
        &GROUP
    ));
    // Member ids are caseExact.
    assert!(!matches(
        r#"members[value eq "902C246B-6245-4190-8E05-00816BE7344A"]"#,
        &g,
        &GROUP
    ));
    assert!(matches(r#"displayName eq "tour guides""#, &g, &GROUP));
}

#[test]
fn extension_attributes_by_urn_or_plain_name() {
    let u = bjensen();
    assert!(matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        &u,
        &USER
    ));
    assert!(matches(r#"department eq "tour operations""#, &u, &USER));
    // manager.value is caseExact.
    assert!(!matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87E4-49D8CA9F808D""#,
        &u,
        &USER
    ));
    assert!(matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value sw "26118915""#,
        &u,
        &USER
    ));
}

#[test]
fn a_custom_case_exact_lookup_is_honoured() {
    let u = bjensen();
    let f = parse(r#"userName eq "BJENSEN@EXAMPLE.COM""#);
    let everything_exact = |_: &AttrPath| true;
    assert!(!f.matches(&u, &everything_exact));
    let nothing_exact = |_: &AttrPath| false;
    assert!(parse(r#"externalId eq "bjensen-ext""#).matches(&u, &nothing_exact));
    // The lookup is asked about the full path of a bracketed sub-attribute.
    let asked = std::cell::RefCell::new(Vec::new());
    let spy = |p: &AttrPath| {
        asked.borrow_mut().push(p.to_string());
        false
    };
    parse(r#"emails[type eq "work"].value eq "x""#).matches(&u, &spy);
    assert!(
        asked.borrow().contains(&"emails.type".to_owned()),
        "{:?}",
        asked.borrow()
    );
    assert!(
        asked.borrow().contains(&"emails.value".to_owned()),
        "{:?}",
        asked.borrow()
    );
}

// ---------------------------------------------------------------------------------------------
// Filter: property tests
// ---------------------------------------------------------------------------------------------

mod filter_props {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9_-]{0,7}",
            Just("not".to_owned()),
            Just("and".to_owned()),
            Just("or".to_owned()),
            Just("pr".to_owned()),
            Just("true".to_owned()),
            Just("$ref".to_owned()),
        ]
    }

    fn path() -> impl Strategy<Value = AttrPath> {
        (
            prop::option::of(prop_oneof![
                Just(USER_SCHEMA.to_owned()),
                Just(ENTERPRISE_USER_SCHEMA.to_owned()),
                Just("urn:example:custom:1.0".to_owned()),
            ]),
            name(),
            prop::option::of(name()),
        )
            .prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
    }

    fn number() -> impl Strategy<Value = serde_json::Number> {
        prop_oneof![
            any::<i64>().prop_map(serde_json::Number::from),
            any::<u64>().prop_map(serde_json::Number::from),
            any::<f64>().prop_filter_map("finite", serde_json::Number::from_f64),
        ]
    }

    fn test() -> impl Strategy<Value = Test> {
        let op = prop::sample::select(CompareOp::ALL.to_vec());
        prop_oneof![
            Just(Test::Present),
            (op.clone(), any::<String>())
                .prop_map(|(op, v)| Test::Compare(op, CompValue::String(v))),
            (op, number()).prop_map(|(op, n)| Test::Compare(op, CompValue::Number(n))),
            (
                prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]),
                any::<bool>()
            )
                .prop_map(|(op, b)| Test::Compare(op, CompValue::Bool(b))),
            prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne])
                .prop_map(|op| Test::Compare(op, CompValue::Null)),
        ]
    }

    /// Filters over plain names (the inside of brackets).
    fn inner_filter() -> impl Strategy<Value = Filter> {
        let leaf = (name(), test()).prop_map(|(n, test)| Filter::Attr {
            path: AttrPath::new(n),
            test,
        });
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(Filter::not),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
                (inner.clone(), inner).prop_map(|(a, b)| a.or(b)),
            ]
        })
    }

    pub(super) fn filter() -> impl Strategy<Value = Filter> {
        let attr = (path(), test()).prop_map(|(path, test)| Filter::Attr { path, test });
        let value_path = (
            path().prop_map(|mut p| {
                p.sub = None;
                p
            }),
            inner_filter(),
            prop::option::of((name(), test()).prop_map(|(sub, test)| SubTest { sub, test })),
        )
            .prop_map(|(path, f, then)| Filter::ValuePath {
                path,
                filter: Box::new(f),
                then,
            });
        let leaf = prop_oneof![3 => attr, 1 => value_path];
        leaf.prop_recursive(5, 32, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(Filter::not),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
                (inner.clone(), inner).prop_map(|(a, b)| a.or(b)),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// parse(print(ast)) == ast for random trees.
        #[test]
        fn print_then_parse_is_identity(f in filter()) {
            let text = f.to_string();
            let back = Filter::parse(&text);
            prop_assert_eq!(back.as_ref(), Ok(&f), "printed as {}", text);
        }
    }
}

mod fuzz {
    use super::*;
    use lpbridge::scim::PatchPath;
    use proptest::prelude::*;

    /// Token soup biased toward the grammar, so the fuzzer reaches deep parser states.
    fn filterish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(" ".to_owned()),
            Just(".".to_owned()),
            Just(":".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("\\u00".to_owned()),
            Just("not".to_owned()),
            Just("and".to_owned()),
            Just("or".to_owned()),
            Just("pr".to_owned()),
            Just("urn:ietf:params:scim:schemas:core:2.0:User:".to_owned()),
            prop::sample::select(CompareOp::ALL.to_vec()).prop_map(|o| o.as_str().to_owned()),
            "[a-zA-Z$][a-zA-Z0-9_.-]{0,6}",
            "-?[0-9]{1,4}(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            Just("true".to_owned()),
            Just("null".to_owned()),
            "\"[^\"\\\\]{0,5}\"",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
    }

    fn check(input: &str) -> Result<(), TestCaseError> {
        // Never panics; whatever is accepted prints to text that parses to the same tree.
        if let Ok(f) = Filter::parse(input) {
            let printed = f.to_string();
            prop_assert_eq!(
                Filter::parse(&printed),
                Ok(f),
                "input {:?} printed {:?}",
                input,
                printed
            );
            // Evaluation never panics either.
            let _ = Filter::parse(&printed).map(|f| f.matches(&bjensen(), &USER));
        }
        if let Ok(p) = PatchPath::parse(input) {
            prop_assert_eq!(PatchPath::parse(&p.to_string()), Ok(p));
        }
        let _ = AttrPath::parse(input);
        let _ = SearchRequest::from_query([("filter", input), ("attributes", input)], 10);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn parser_never_panics_on_arbitrary_strings(input in any::<String>()) {
            check(&input)?;
        }

        #[test]
        fn parser_never_panics_on_grammar_shaped_soup(input in filterish()) {
            check(&input)?;
        }

        #[test]
        fn parser_never_panics_on_mutated_valid_filters(
            f in super::filter_props::filter(),
            cut in any::<prop::sample::Index>(),
            insert in any::<char>(),
        ) {
            let mut text = f.to_string();
            let at = text.char_indices().map(|(i, _)| i).nth(cut.index(text.chars().count().max(1))).unwrap_or(0);
            text.insert(at, insert);
            check(&text)?;
            check(&text[..at])?;
        }
    }
}

/// Evaluation cross-checked against a naive, independent model of a few User attributes.
mod eval_crosscheck {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Model {
        user_name: Option<String>,
        external_id: Option<String>,
        active: Option<bool>,
        emails: Vec<(String, String)>, // (type, value)
    }

    impl Model {
        fn to_json(&self) -> Value {
            let mut o = serde_json::Map::new();
            o.insert("id".into(), json!("id-1"));
            if let Some(v) = &self.user_name {
                o.insert("userName".into(), json!(v));
            }
            if let Some(v) = &self.external_id {
                o.insert("externalId".into(), json!(v));
            }
            if let Some(v) = self.active {
                o.insert("active".into(), json!(v));
            }
            if !self.emails.is_empty() {
                o.insert(
                    "emails".into(),
                    Value::Array(
                        self.emails
                            .iter()
                            .map(|(t, v)| json!({"type": t, "value": v}))
                            .collect(),
                    ),
                );
            }
            Value::Object(o)
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Field {
        UserName,
        ExternalId,
        EmailValue,
        WorkEmail,
    }

    #[derive(Debug, Clone)]
    enum F {
        Str(Field, CompareOp, String),
        Present(Field),
        Active(bool),
        Not(Box<F>),
        And(Box<F>, Box<F>),
        Or(Box<F>, Box<F>),
    }

    fn text(f: &F) -> String {
        let field = |fl: Field| match fl {
            Field::UserName => "userName".to_owned(),
            Field::ExternalId => "externalId".to_owned(),
            Field::EmailValue => "emails.value".to_owned(),
            Field::WorkEmail => "emails[type eq \"work\"].value".to_owned(),
        };
        match f {
            F::Str(fl, op, v) => format!("{} {} {}", field(*fl), op, json!(v)),
            F::Present(fl) => format!("{} pr", field(*fl)),
            F::Active(b) => format!("active eq {b}"),
            F::Not(a) => format!("not ({})", text(a)),
            F::And(a, b) => format!("({}) and ({})", text(a), text(b)),
            F::Or(a, b) => format!("({}) or ({})", text(a), text(b)),
        }
    }

    fn str_op(op: CompareOp, have: &str, want: &str, exact: bool) -> bool {
        let (h, w) = if exact {
            (have.to_owned(), want.to_owned())
        } else {
            (have.to_lowercase(), want.to_lowercase())
        };
        match op {
            CompareOp::Eq => h == w,
            CompareOp::Ne => h != w,
            CompareOp::Co => h.contains(&w),
            CompareOp::Sw => h.starts_with(&w),
            CompareOp::Ew => h.ends_with(&w),
            CompareOp::Gt => h > w,
            CompareOp::Ge => h >= w,
            CompareOp::Lt => h < w,
            CompareOp::Le => h <= w,
        }
    }

    fn values(m: &Model, fl: Field) -> (Vec<String>, bool) {
        match fl {
            Field::UserName => (m.user_name.iter().cloned().collect(), false),
            Field::ExternalId => (m.external_id.iter().cloned().collect(), true),
            Field::EmailValue => (m.emails.iter().map(|(_, v)| v.clone()).collect(), false),
            Field::WorkEmail => (
                m.emails
                    .iter()
                    .filter(|(t, _)| t.eq_ignore_ascii_case("work"))
                    .map(|(_, v)| v.clone())
                    .collect(),
                false,
            ),
        }
    }

    fn oracle(m: &Model, f: &F) -> bool {
        match f {
            F::Str(fl, op, want) => {
                let (vals, exact) = values(m, *fl);
                vals.iter().any(|v| str_op(*op, v, want, exact))
            }
            F::Present(fl) => values(m, *fl).0.iter().any(|v| !v.is_empty()),
            F::Active(b) => m.active == Some(*b),
            F::Not(a) => !oracle(m, a),
            F::And(a, b) => oracle(m, a) && oracle(m, b),
            F::Or(a, b) => oracle(m, a) || oracle(m, b),
        }
    }

    fn small() -> impl Strategy<Value = String> {
        "[aAbB@.]{0,4}"
    }

    fn model() -> impl Strategy<Value = Model> {
        (
            prop::option::of(small()),
            prop::option::of(small()),
            prop::option::of(any::<bool>()),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["work", "Work", "home"]).prop_map(str::to_owned),
                    small(),
                ),
                0..3,
            ),
        )
            .prop_map(|(user_name, external_id, active, emails)| Model {
                user_name,
                external_id,
                active,
                emails,
            })
    }

    fn field() -> impl Strategy<Value = Field> {
        prop::sample::select(vec![
            Field::UserName,
            Field::ExternalId,
            Field::EmailValue,
            Field::WorkEmail,
        ])
    }

    fn formula() -> impl Strategy<Value = F> {
        let leaf = prop_oneof![
            4 => (field(), prop::sample::select(CompareOp::ALL.to_vec()), small()).prop_map(|(f, o, v)| F::Str(f, o, v)),
            1 => field().prop_map(F::Present),
            1 => any::<bool>().prop_map(F::Active),
        ];
        leaf.prop_recursive(4, 16, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|a| F::Not(Box::new(a))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| F::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| F::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn evaluator_agrees_with_a_naive_model(m in model(), f in formula()) {
            let filter_text = text(&f);
            let filter = Filter::parse(&filter_text).map_err(|e| TestCaseError::fail(format!("{filter_text}: {e}")))?;
            let resource = m.to_json();
            prop_assert_eq!(filter.matches(&resource, &USER), oracle(&m, &f), "{} on {}", filter_text, resource);
        }

        /// Logical laws hold for any generated filter on any resource.
        #[test]
        fn not_and_or_follow_boolean_logic(m in model(), a in super::filter_props::filter(), b in super::filter_props::filter()) {
            let r = m.to_json();
            let (x, y) = (a.matches(&r, &USER), b.matches(&r, &USER));
            prop_assert_eq!(a.clone().not().matches(&r, &USER), !x);
            prop_assert_eq!(a.clone().and(b.clone()).matches(&r, &USER), x && y);
            prop_assert_eq!(a.or(b).matches(&r, &USER), x || y);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH: the identity-provider quirks (research notes §2.5)
// ---------------------------------------------------------------------------------------------

fn patch(resource: &Value, schema: &ResourceSchema, ops: Value) -> Result<Value, ScimError> {
    let body =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    PatchRequest::from_json(&body)?.apply(resource, schema)
}

fn patch_ok(resource: &Value, schema: &ResourceSchema, ops: Value) -> Value {
    patch(resource, schema, ops.clone()).unwrap_or_else(|e| panic!("{ops}: {e}"))
}

#[test]
fn q1_entra_pascal_case_op_values() {
    let u = bjensen();
    let out = patch_ok(
        &u,
        &USER,
        json!([
            {"op": "Replace", "path": "displayName", "value": "Babs"},
            {"op": "Add", "path": "nickName", "value": "B"},
            {"op": "Remove", "path": "title"},
            {"op": "REPLACE", "path": "userType", "value": "Contractor"}
        ]),
    );
    assert_eq!(out["displayName"], "Babs");
    assert_eq!(out["nickName"], "B");
    assert!(out.get("title").is_none());
    assert_eq!(out["userType"], "Contractor");
    // Structural member names in any case, too.
    let body = json!({"SCHEMAS": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "operations": [{"OP": "replace", "Path": "displayName", "Value": "X"}]});
    assert_eq!(
        PatchRequest::from_json(&body)
            .unwrap()
            .apply(&u, &USER)
            .unwrap()["displayName"],
        "X"
    );
}

#[test]
fn q2_entra_active_as_string_true_false() {
    let u = bjensen();
    let off = patch_ok(
        &u,
        &USER,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    assert_eq!(off["active"], json!(false));
    let on = patch_ok(
        &off,
        &USER,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    );
    assert_eq!(on["active"], json!(true));
    let off = patch_ok(
        &u,
        &USER,
        json!([{"op": "replace", "value": {"active": "FALSE"}}]),
    );
    assert_eq!(off["active"], json!(false));
    let e = patch(
        &u,
        &USER,
        json!([{"op": "Replace", "path": "active", "value": "nope"}]),
    )
    .unwrap_err();
    assert_scim_error(&e, 400, ScimType::InvalidValue);
}

#[test]
fn q3_entra_pathless_replace_with_dotted_and_urn_keys() {
    let u = bjensen();
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "replace", "value": {
            "displayName": "Barbara J",
            "name.givenName": "Barb",
            "name.familyName": "Jensen-Smith",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "1234",
            "active": false
        }}]),
    );
    assert_eq!(out["displayName"], "Barbara J");
    assert_eq!(
        out["name"],
        json!({"familyName": "Jensen-Smith", "givenName": "Barb", "formatted": "Ms. Barbara J Jensen III"})
    );
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "1234");
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA]["department"], "Tour Operations",
        "other extension attributes stay"
    );
    assert_eq!(out["active"], json!(false));
    // A whole extension object as a key works too, and creates the extension when absent.
    let mut plain = u.clone();
    plain
        .as_object_mut()
        .unwrap()
        .remove(ENTERPRISE_USER_SCHEMA);
    plain["schemas"] = json!([USER_SCHEMA]);
    let out = patch_ok(
        &plain,
        &USER,
        json!([{"op": "replace", "value": {ENTERPRISE_USER_SCHEMA: {"department": "Sales"}}}]),
    );
    assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department": "Sales"}));
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
}

#[test]
fn q4_entra_remove_members_by_value_list_and_by_path_filter() {
    let g = group();
    // Default Entra: the value selects what to remove (with `$ref: null` inside).
    let out = patch_ok(
        &g,
        &GROUP,
        json!([{"op": "Remove", "path": "members",
                "value": [{"value": "2819c223-7f76-453a-919d-413861904646", "$ref": null}]}]),
    );
    assert_eq!(
        out["members"],
        json!([{"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}])
    );
    // With aadOptscim062020: a path filter.
    let out = patch_ok(
        &g,
        &GROUP,
        json!([{"op": "remove", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"]"}]),
    );
    assert_eq!(
        out["members"],
        json!([{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"}])
    );
    // Removing a member who is not there succeeds with no change.
    assert_eq!(
        patch_ok(
            &g,
            &GROUP,
            json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}])
        ),
        g
    );
    assert_eq!(
        patch_ok(
            &g,
            &GROUP,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "nobody"}]}])
        ),
        g
    );
    // Member ids are caseExact: a differently cased id is another member.
    assert_eq!(
        patch_ok(
            &g,
            &GROUP,
            json!([{"op": "remove", "path": "members[value eq \"2819C223-7F76-453A-919D-413861904646\"]"}])
        ),
        g
    );
    // Removing every member unassigns the attribute.
    let out = patch_ok(&g, &GROUP, json!([{"op": "remove", "path": "members"}]));
    assert!(out.get("members").is_none());
}

#[test]
fn q5_entra_filtered_replace_creates_the_missing_entry() {
    let mut u = bjensen();
    u.as_object_mut().unwrap().remove("phoneNumbers");
    let out = patch_ok(
        &u,
        &USER,
        json!([
            {"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555 0100"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].postalCode", "value": "98101"},
            {"op": "Replace", "path": "emails[type eq \"other\"].value", "value": "b@other.example"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0101"}
        ]),
    );
    assert_eq!(
        out["phoneNumbers"],
        json!([{"type": "work", "value": "+1 555 0100"}, {"type": "mobile", "value": "+1 555 0101"}])
    );
    assert_eq!(
        out["addresses"],
        json!([{"type": "work", "postalCode": "98101"}])
    );
    assert_eq!(
        out["emails"][2],
        json!({"type": "other", "value": "b@other.example"})
    );
    // An existing entry is updated in place, not duplicated.
    let again = patch_ok(
        &out,
        &USER,
        json!([{"op": "Replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555 0199"}]),
    );
    assert_eq!(
        again["phoneNumbers"][0],
        json!({"type": "work", "value": "+1 555 0199"})
    );
    assert_eq!(again["phoneNumbers"].as_array().unwrap().len(), 2);
    // A filter that describes no single entry cannot be created: noTarget.
    let e = patch(&u, &USER, json!([{"op": "replace", "path": "emails[type eq \"a\" or type eq \"b\"].value", "value": "x"}])).unwrap_err();
    assert_scim_error(&e, 400, ScimType::NoTarget);
}

#[test]
fn q6_entra_multi_operation_body_with_user_name_replace() {
    let u = bjensen();
    let out = patch_ok(
        &u,
        &USER,
        json!([
            {"op": "Replace", "path": "userName", "value": "babs@example.com"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Babs"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Sales"}
        ]),
    );
    assert_eq!(out["userName"], "babs@example.com");
    assert_eq!(out["emails"][0]["value"], "babs@example.com");
    assert_eq!(out["name"]["givenName"], "Babs");
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["department"], "Sales");
    // Several members in one group PATCH (a gallery requirement).
    let g = patch_ok(
        &group(),
        &GROUP,
        json!([{"op": "Add", "path": "members", "value": [{"value": "u3"}, {"value": "u4"}]},
               {"op": "Remove", "path": "members", "value": [{"value": "2819c223-7f76-453a-919d-413861904646"}]}]),
    );
    let ids: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["902c246b-6245-4190-8e05-00816be7344a", "u3", "u4"]);
}

#[test]
fn q7_entra_soft_delete_keeps_the_resource_readable() {
    let u = bjensen();
    let off = patch_ok(
        &u,
        &USER,
        json!([{"op": "Replace", "path": "active", "value": false}]),
    );
    let mut expected = u.clone();
    expected["active"] = json!(false);
    assert_eq!(off, expected, "only `active` changes");
    // Still found by Entra's lookups.
    assert!(matches(r#"userName eq "bjensen@example.com""#, &off, &USER));
    assert!(matches("active eq false", &off, &USER));
}

#[test]
fn q8_okta_pathless_active_group_rename_with_id_and_membership() {
    let u = bjensen();
    let off = patch_ok(
        &u,
        &USER,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(off["active"], json!(false));
    let g = group();
    // Okta's rename repeats the read-only id: unchanged, so ignored.
    let renamed = patch_ok(
        &g,
        &GROUP,
        json!([{"op": "replace", "value": {"id": "e9e30dba-f08f-4109-8486-d5c6a331660a", "displayName": "Guides"}}]),
    );
    assert_eq!(renamed["displayName"], "Guides");
    assert_eq!(renamed["id"], g["id"]);
    // A different id is a mutability error.
    let e = patch(
        &g,
        &GROUP,
        json!([{"op": "replace", "value": {"id": "other", "displayName": "Guides"}}]),
    )
    .unwrap_err();
    assert_scim_error(&e, 400, ScimType::Mutability);
    // remove + add in one request.
    let moved = patch_ok(
        &g,
        &GROUP,
        json!([
            {"op": "remove", "path": "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u9", "display": "New Person"}]}
        ]),
    );
    assert_eq!(
        moved["members"],
        json!([{"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"},
               {"value": "u9", "display": "New Person"}])
    );
    // A full replace of members.
    let replaced = patch_ok(
        &g,
        &GROUP,
        json!([{"op": "replace", "path": "members", "value": [{"value": "only"}]}]),
    );
    assert_eq!(replaced["members"], json!([{"value": "only"}]));
    // Adding a member twice keeps one.
    let twice = patch_ok(
        &g,
        &GROUP,
        json!([{"op": "add", "path": "members", "value": [{"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}]}]),
    );
    assert_eq!(twice, g);
}

#[test]
fn q10_jumpcloud_member_value_list_without_a_filter() {
    let g = group();
    let out = patch_ok(
        &g,
        &GROUP,
        json!([{"op": "remove", "path": "members", "value": [{"value": "2819c223-7f76-453a-919d-413861904646"},
                                                             {"value": "902c246b-6245-4190-8e05-00816be7344a"}]}]),
    );
    assert!(out.get("members").is_none());
    let back = patch_ok(
        &out,
        &GROUP,
        json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}]),
    );
    assert_eq!(back["members"], json!([{"value": "u1"}]));
}

#[test]
fn q12_entra_remove_without_a_path_is_no_target() {
    for value in [None, Some(json!({"members": [{"value": "u1"}]}))] {
        let mut op = json!({"op": "Remove"});
        if let Some(v) = value {
            op["value"] = v;
        }
        let e = patch(&group(), &GROUP, json!([op])).unwrap_err();
        assert_scim_error(&e, 400, ScimType::NoTarget);
        assert!(e.detail.starts_with("Operations[0]: "), "{}", e.detail);
    }
}

#[test]
fn q13_entra_null_sub_attributes_are_accepted_and_dropped() {
    let u = bjensen();
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "add", "path": "addresses", "value": [{"type": "work", "formatted": null, "streetAddress": "1 Main St", "primary": null}]},
               {"op": "add", "value": {"name": {"middleName": null, "honorificPrefix": "Dr."}}},
               {"op": "replace", "path": "nickName", "value": null}]),
    );
    assert_eq!(
        out["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St"}])
    );
    assert_eq!(out["name"]["honorificPrefix"], "Dr.");
    assert!(out["name"].get("middleName").is_none());
    assert!(out.get("nickName").is_none());
}

// ---------------------------------------------------------------------------------------------
// PATCH: RFC semantics and errors
// ---------------------------------------------------------------------------------------------

#[test]
fn add_to_a_multi_valued_attribute_appends_and_moves_primary() {
    let u = bjensen();
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "add", "path": "emails", "value": {"value": "new@x.com", "type": "other", "primary": true}}]),
    );
    let emails = out["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 3);
    assert_eq!(emails[2]["value"], "new@x.com");
    // RFC 7644 §3.5.2: the old primary is no longer primary.
    assert_eq!(emails[0]["primary"], json!(false));
    assert_eq!(emails[2]["primary"], json!(true));
    // Setting primary through a filter does the same.
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
    );
    assert_eq!(
        (
            out["emails"][0]["primary"].clone(),
            out["emails"][1]["primary"].clone()
        ),
        (json!(false), json!(true))
    );
}

#[test]
fn replace_filtered_element_and_sub_attributes() {
    let u = bjensen();
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"type": "home", "value": "b@home.example"}}]),
    );
    assert_eq!(
        out["emails"][1],
        json!({"type": "home", "value": "b@home.example"})
    );
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"display": "Home"}}]),
    );
    assert_eq!(
        out["emails"][1],
        json!({"value": "babs@jensen.org", "type": "home", "display": "Home"})
    );
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "remove", "path": "emails[type eq \"home\"].value"}]),
    );
    assert_eq!(out["emails"][1], json!({"type": "home"}));
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
    );
    assert_eq!(
        out["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    // Complex single-valued: replace merges, remove of the last sub-attribute unassigns.
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "replace", "path": "name", "value": {"givenName": "B"}}]),
    );
    assert_eq!(out["name"]["familyName"], "Jensen");
    assert_eq!(out["name"]["givenName"], "B");
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "remove", "path": "name.familyName"}, {"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.formatted"}]),
    );
    assert!(out.get("name").is_none());
}

#[test]
fn attribute_names_are_canonicalised() {
    let u = json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "a"});
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "add", "path": "NICKNAME", "value": "n"},
                                         {"op": "add", "value": {"Name": {"GIVENNAME": "G"}, "EMAILS": [{"VALUE": "a@b", "Type": "work"}]}}]),
    );
    assert_eq!(
        out,
        json!({"schemas": [USER_SCHEMA], "id": "1", "userName": "a", "nickName": "n",
                           "name": {"givenName": "G"}, "emails": [{"value": "a@b", "type": "work"}]})
    );
}

#[test]
fn removing_the_last_extension_attribute_drops_the_extension() {
    let u = bjensen();
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"},
               {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
               {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]),
    );
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    let out = patch_ok(
        &u,
        &USER,
        json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
    );
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
}

#[test]
fn patch_errors_map_to_scim_types() {
    let u = bjensen();
    let g = group();
    let cases: Vec<(&Value, &ResourceSchema, Value, u16, ScimType)> = vec![
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "nosuch", "value": 1}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "name.nosuch", "value": "x"}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "emails..value", "value": "x"}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "userName[value eq \"x\"]", "value": "x"}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "emails.value", "value": "x"}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "value": {"nosuch": 1}}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": 7, "value": 1}]),
            400,
            ScimType::InvalidPath,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "userName", "value": 5}]),
            400,
            ScimType::InvalidValue,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "name", "value": "flat"}]),
            400,
            ScimType::InvalidValue,
        ),
        (
            &u,
            &USER,
            json!([{"op": "add", "path": "emails", "value": [{"value": "x", "colour": "red"}]}]),
            400,
            ScimType::InvalidValue,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "displayName"}]),
            400,
            ScimType::InvalidValue,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "value": "not an object"}]),
            400,
            ScimType::InvalidValue,
        ),
        (
            &u,
            &USER,
            json!([{"op": "remove", "path": "userName"}]),
            400,
            ScimType::Mutability,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "userName", "value": null}]),
            400,
            ScimType::Mutability,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "id", "value": "new"}]),
            400,
            ScimType::Mutability,
        ),
        (
            &u,
            &USER,
            json!([{"op": "remove", "path": "id"}]),
            400,
            ScimType::Mutability,
        ),
        (
            &u,
            &USER,
            json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]),
            400,
            ScimType::Mutability,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
            400,
            ScimType::Mutability,
        ),
        (
            &g,
            &GROUP,
            json!([{"op": "remove", "path": "displayName"}]),
            400,
            ScimType::Mutability,
        ),
        (
            &g,
            &GROUP,
            json!([{"op": "replace", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"].value", "value": "x"}]),
            400,
            ScimType::Mutability,
        ),
        (
            &u,
            &USER,
            json!([{"op": "remove"}]),
            400,
            ScimType::NoTarget,
        ),
        (
            &u,
            &USER,
            json!([{"op": "replace", "path": "emails[value co \"zzz\"].type", "value": "x"}]),
            400,
            ScimType::NoTarget,
        ),
        (
            &u,
            &USER,
            json!([{"op": "move", "path": "title"}]),
            400,
            ScimType::InvalidSyntax,
        ),
        (
            &u,
            &USER,
            json!([{"path": "title"}]),
            400,
            ScimType::InvalidSyntax,
        ),
        (&u, &USER, json!(["replace"]), 400, ScimType::InvalidSyntax),
    ];
    for (resource, schema, ops, status, t) in cases {
        let e = patch(resource, schema, ops.clone()).expect_err(&ops.to_string());
        assert_eq!((e.status, e.scim_type), (status, Some(t)), "{ops}: {e}");
        assert_eq!(e.to_body()["scimType"], t.as_str());
    }
    // Malformed bodies.
    for body in [
        json!([]),
        json!({"schemas": ["urn:wrong"], "Operations": []}),
        json!({"schemas": [PATCH]}),
    ] {
        let e = PatchRequest::from_json(&body).unwrap_err();
        assert_scim_error(&e, 400, ScimType::InvalidSyntax);
    }
    // A malformed path names its position.
    let e = patch(
        &u,
        &USER,
        json!([{"op": "remove", "path": "members[value eq \"x\""}]),
    )
    .unwrap_err();
    assert!(e.detail.contains("position 20"), "{}", e.detail);
}

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[test]
fn a_failing_operation_leaves_the_resource_untouched() {
    let u = bjensen();
    let e = patch(
        &u,
        &USER,
        json!([{"op": "replace", "path": "displayName", "value": "changed"},
                                    {"op": "remove", "path": "userName"}]),
    )
    .unwrap_err();
    assert!(e.detail.starts_with("Operations[1]: "), "{}", e.detail);
    // The engine works on a copy; nothing to roll back, and the input is as it was.
    assert_eq!(u["displayName"], "Babs Jensen");
}

#[test]
fn readonly_values_sent_unchanged_are_ignored_but_meta_and_schemas_are_skipped() {
    let u = bjensen();
    // A client echoing the whole resource in a path-less replace (meta, schemas, id included).
    let mut echoed = u.clone();
    echoed.as_object_mut().unwrap().remove("loginCount");
    echoed["displayName"] = json!("Echo");
    echoed["meta"] = json!({"resourceType": "User", "created": "1999-01-01T00:00:00Z"});
    let out = patch_ok(&u, &USER, json!([{"op": "replace", "value": echoed}]));
    assert_eq!(out["displayName"], "Echo");
    assert_eq!(out["meta"], u["meta"]);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn error_body_is_rfc_7644_shaped_with_string_status() {
    let e = ScimError::uniqueness("userName bjensen@example.com is taken");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409",
               "scimType": "uniqueness", "detail": "userName bjensen@example.com is taken"})
    );
    for (e, status) in [
        (ScimError::unauthorized("bad token"), "401"),
        (ScimError::not_found("no User 7"), "404"),
        (ScimError::method_not_allowed("read-only"), "405"),
    ] {
        let body = e.to_body();
        assert_eq!(body["status"], status);
        assert!(body.get("scimType").is_none());
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn error_into_response_sets_status_and_content_type() {
    use axum::response::IntoResponse;
    let resp = ScimError::invalid_filter("bad at position 3").into_response();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/scim+json");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["scimType"], "invalidFilter");
    assert_eq!(body["status"], "400");
}

// ---------------------------------------------------------------------------------------------
// Paging and projection
// ---------------------------------------------------------------------------------------------

fn users(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|i| {
            json!({"schemas": [USER_SCHEMA], "id": format!("id-{i:03}"), "userName": format!("user{i}@x.com"),
                   "name": {"givenName": format!("G{i}"), "familyName": "F"}, "password": "secret",
                   "emails": [{"value": format!("user{i}@x.com"), "type": "work"}], "meta": {"resourceType": "User"}})
        })
        .collect()
}

#[test]
fn paging_is_one_based_with_integer_fields() {
    let all = users(5);
    let page = ListResponse::from_page(all.clone(), PageRequest::new(Some(2), Some(2), 100));
    let body = page.to_json();
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(
        (
            body["totalResults"].clone(),
            body["startIndex"].clone(),
            body["itemsPerPage"].clone()
        ),
        (json!(5), json!(2), json!(2))
    );
    assert_eq!(body["Resources"][0]["id"], "id-002");
    assert_eq!(body["Resources"][1]["id"], "id-003");
    // Beyond the end: empty page, totals kept.
    let past = ListResponse::from_page(all.clone(), PageRequest::new(Some(9), Some(2), 100));
    assert_eq!((past.total_results, past.items_per_page), (5, 0));
    assert_eq!(past.to_json()["Resources"], json!([]));
}

#[test]
fn count_zero_returns_only_the_total() {
    let page = ListResponse::from_page(users(5), PageRequest::new(None, Some(0), 100));
    let body = page.to_json();
    assert_eq!(body["totalResults"], 5);
    assert_eq!(body["itemsPerPage"], 0);
    assert_eq!(body["Resources"], json!([]));
}

#[test]
fn page_parameters_are_clamped_per_rfc() {
    assert_eq!(
        PageRequest::new(Some(0), Some(-3), 50),
        PageRequest {
            start_index: 1,
            count: 0
        }
    );
    assert_eq!(
        PageRequest::new(Some(-7), None, 50),
        PageRequest {
            start_index: 1,
            count: 50
        }
    );
    assert_eq!(
        PageRequest::new(Some(3), Some(5000), 50),
        PageRequest {
            start_index: 3,
            count: 50
        }
    );
    assert_eq!(
        PageRequest::from_query(Some(" 2 "), Some("10"), 50).unwrap(),
        PageRequest {
            start_index: 2,
            count: 10
        }
    );
    let e = PageRequest::from_query(Some("one"), None, 50).unwrap_err();
    assert_scim_error(&e, 400, ScimType::InvalidValue);
}

#[test]
fn list_orders_by_id_so_pages_are_stable() {
    let mut shuffled = users(7);
    shuffled.reverse();
    shuffled.swap(1, 4);
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let req = SearchRequest::from_query(
            [("startIndex", start.to_string().as_str()), ("count", "3")],
            100,
        )
        .unwrap();
        let page = list_resources(shuffled.clone(), &req, &USER);
        assert_eq!(page.total_results, 7);
        if page.resources.is_empty() {
            break;
        }
        seen.extend(
            page.resources
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        start += 3;
    }
    let expected: Vec<String> = (1..=7).map(|i| format!("id-{i:03}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn list_filters_then_pages_then_projects() {
    let req = SearchRequest::from_query(
        [
            (
                "filter",
                r#"userName sw "USER1" or emails[type eq "work"].value eq "user3@x.com""#,
            ),
            ("attributes", "userName"),
        ],
        100,
    )
    .unwrap();
    let page = list_resources(users(12), &req, &USER);
    assert_eq!(
        page.total_results, 5,
        "user1, user10, user11, user12, user3"
    );
    assert_eq!(
        page.resources[0],
        json!({"schemas": [USER_SCHEMA], "id": "id-001", "userName": "user1@x.com", "meta": {"resourceType": "User"}})
    );
    // Entra's Test Connection: a random GUID matches nothing; 200 + empty ListResponse.
    let req = SearchRequest::from_query(
        [(
            "filter",
            r#"userName eq "4b2ab3a8-3b8e-4e35-8a1c-6d1a3f0e9b7c""#,
        )],
        100,
    )
    .unwrap();
    let empty = list_resources(users(3), &req, &USER).to_json();
    assert_eq!(
        (empty["totalResults"].clone(), empty["Resources"].clone()),
        (json!(0), json!([]))
    );
    // A bad filter is invalidFilter.
    let e = SearchRequest::from_query([("filter", "userName eq")], 100).unwrap_err();
    assert_scim_error(&e, 400, ScimType::InvalidFilter);
}

#[test]
fn attributes_keeps_requested_plus_always_returned() {
    let u = bjensen();
    let p = Projection::from_query(Some("userName,name.givenName,emails.value"), None).unwrap();
    assert_eq!(
        p.apply(&u, &USER),
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "bjensen@example.com",
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}],
            "meta": u["meta"],
        })
    );
    // Extension attributes by URN, whole extensions, and sub-attributes of extension attributes.
    let p = Projection::from_query(
        Some(&format!("{ENTERPRISE_USER_SCHEMA}:department,displayName")),
        None,
    )
    .unwrap();
    let out = p.apply(&u, &USER);
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({"department": "Tour Operations"})
    );
    assert_eq!(out["displayName"], "Babs Jensen");
    assert!(out.get("userName").is_none());
    let p = Projection::from_query(Some(ENTERPRISE_USER_SCHEMA), None).unwrap();
    assert_eq!(
        p.apply(&u, &USER)[ENTERPRISE_USER_SCHEMA],
        u[ENTERPRISE_USER_SCHEMA]
    );
    let p = Projection::from_query(
        Some(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value")),
        None,
    )
    .unwrap();
    assert_eq!(
        p.apply(&u, &USER)[ENTERPRISE_USER_SCHEMA],
        json!({"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}})
    );
    // Core-URN-qualified and any-case names.
    let p = Projection::from_query(
        Some("urn:ietf:params:scim:schemas:core:2.0:User:USERNAME"),
        None,
    )
    .unwrap();
    assert_eq!(p.apply(&u, &USER)["userName"], "bjensen@example.com");
}

#[test]
fn excluded_attributes_members_and_always_returned_survive() {
    let g = group();
    // Entra: GET /Groups?excludedAttributes=members
    let p = Projection::from_query(None, Some("members")).unwrap();
    assert_eq!(
        p.apply(&g, &GROUP),
        json!({"schemas": [GROUP_SCHEMA], "id": "e9e30dba-f08f-4109-8486-d5c6a331660a", "displayName": "Tour Guides", "meta": {"resourceType": "Group"}})
    );
    // id, schemas and meta cannot be excluded.
    let p = Projection::from_query(None, Some("id,schemas,meta,displayName")).unwrap();
    let out = p.apply(&g, &GROUP);
    assert!(out.get("id").is_some() && out.get("schemas").is_some() && out.get("meta").is_some());
    assert!(out.get("displayName").is_none());
    // Sub-attributes and extension attributes.
    let u = bjensen();
    let p = Projection::from_query(
        None,
        Some(&format!(
            "emails.type,name,{ENTERPRISE_USER_SCHEMA}:manager"
        )),
    )
    .unwrap();
    let out = p.apply(&u, &USER);
    assert_eq!(
        out["emails"],
        json!([{"value": "bjensen@example.com", "primary": true}, {"value": "babs@jensen.org"}])
    );
    assert!(out.get("name").is_none());
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA],
        json!({"employeeNumber": "701984", "department": "Tour Operations"})
    );
    let p = Projection::from_query(None, Some(ENTERPRISE_USER_SCHEMA)).unwrap();
    assert!(p.apply(&u, &USER).get(ENTERPRISE_USER_SCHEMA).is_none());
}

#[test]
fn password_is_never_returned_and_nulls_are_dropped() {
    let mut u = users(1).remove(0);
    u["title"] = Value::Null;
    u["addresses"] = json!([{"type": "work", "formatted": null}]);
    for p in [
        Projection::Default,
        Projection::from_query(Some("password,userName"), None).unwrap(),
        Projection::from_query(None, Some("userName")).unwrap(),
    ] {
        let out = p.apply(&u, &USER);
        assert!(out.get("password").is_none(), "{p:?}");
        assert!(out.get("title").is_none(), "{p:?}");
    }
    assert_eq!(
        Projection::Default.apply(&u, &USER)["addresses"],
        json!([{"type": "work"}])
    );
}

#[test]
fn search_request_from_a_post_body() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "attributes": ["displayName", "userName"],
        "filter": "displayName sw \"smith\"",
        "startIndex": 1,
        "count": 10
    });
    let req = SearchRequest::from_json(&body, 100).unwrap();
    assert_eq!(
        req.page,
        PageRequest {
            start_index: 1,
            count: 10
        }
    );
    assert_eq!(req.filter, Some(parse(r#"displayName sw "smith""#)));
    assert_eq!(
        req.projection,
        Projection::Include(vec![
            AttrPath::new("displayName"),
            AttrPath::new("userName")
        ])
    );
    let req = SearchRequest::from_json(&json!({"excludedAttributes": ["members"]}), 100).unwrap();
    assert_eq!(
        req.projection,
        Projection::Exclude(vec![AttrPath::new("members")])
    );
    assert_eq!(
        req.page,
        PageRequest {
            start_index: 1,
            count: 100
        }
    );
    let e = SearchRequest::from_json(&json!({"schemas": ["urn:nope"]}), 100).unwrap_err();
    assert_scim_error(&e, 400, ScimType::InvalidSyntax);
    let e = SearchRequest::from_json(&json!({"filter": "x eq"}), 100).unwrap_err();
    assert_scim_error(&e, 400, ScimType::InvalidFilter);
}

mod paging_props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Walking pages of any size visits every resource exactly once, in id order.
        #[test]
        fn pages_partition_the_result(n in 0usize..40, size in 1i64..10, seed in any::<u64>()) {
            let mut all = users(n);
            // A deterministic shuffle: the input order must not matter.
            let len = all.len();
            for i in 0..len {
                let j = (seed.wrapping_mul(i as u64 + 1) % len as u64) as usize;
                all.swap(i, j);
            }
            let mut seen = Vec::new();
            let mut start = 1i64;
            loop {
                let req = SearchRequest { filter: None, page: PageRequest::new(Some(start), Some(size), 1000), projection: Projection::Default };
                let page = list_resources(all.clone(), &req, &USER);
                prop_assert_eq!(page.total_results, n);
                prop_assert_eq!(page.items_per_page, page.resources.len());
                if page.resources.is_empty() { break; }
                seen.extend(page.resources.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
                start += size;
            }
            let expected: Vec<String> = (1..=n).map(|i| format!("id-{i:03}")).collect();
            prop_assert_eq!(seen, expected);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// POST / PUT bodies
// ---------------------------------------------------------------------------------------------

mod bodies {
    use super::*;
    use lpbridge::scim::{replace_resource, resource_from_request};

    /// Okta's POST /Users body (okta `scim-20/index.md`): password accepted (dropped later by
    /// the endpoint, never returned), read-only `groups` ignored.
    #[test]
    fn okta_create_body_is_accepted() {
        let body = json!({
            "schemas": [USER_SCHEMA], "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [], "password": "1mz050nq", "active": true
        });
        let r = resource_from_request(&body, &USER).unwrap();
        assert_eq!(r["userName"], "test.user@okta.local");
        assert!(r.get("groups").is_none());
        assert!(
            Projection::Default
                .apply(&r, &USER)
                .get("password")
                .is_none()
        );
    }

    /// Quirk Q13 on create, plus Entra's body: enterprise extension, `meta`, `roles: []`.
    #[test]
    fn q13_entra_create_with_null_sub_attributes() {
        let body = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "Test_User_ab6490ee@testuser.com",
            "active": "True",
            "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "addresses": [{"type": "work", "formatted": null, "streetAddress": null, "country": "US"}],
            "roles": [],
            ENTERPRISE_USER_SCHEMA: {"department": "Eng", "manager": {"value": null}}
        });
        let r = resource_from_request(&body, &USER).unwrap();
        assert_eq!(r["addresses"], json!([{"type": "work", "country": "US"}]));
        assert_eq!(r["active"], json!(true));
        assert!(r.get("meta").is_none(), "server-managed");
        assert_eq!(r[ENTERPRISE_USER_SCHEMA], json!({"department": "Eng"}));
        assert_eq!(r["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    }

    #[test]
    fn entra_group_create_with_a_microsoft_schema_uri() {
        let body = json!({
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1",
            "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "members": [], "meta": {"resourceType": "Group"}
        });
        let r = resource_from_request(&body, &GROUP).unwrap();
        assert_eq!(
            r,
            json!({"schemas": [GROUP_SCHEMA], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1", "members": []})
        );
    }

    #[test]
    fn bad_create_bodies_are_400() {
        for (body, t) in [
            (json!({"schemas": [USER_SCHEMA]}), ScimType::InvalidValue),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "  "}),
                ScimType::InvalidValue,
            ),
            (json!({"not": "a scim resource"}), ScimType::InvalidValue),
            (
                json!({"schemas": ["urn:example:unknown"], "userName": "a"}),
                ScimType::InvalidSyntax,
            ),
            (
                json!({"schemas": USER_SCHEMA, "userName": "a"}),
                ScimType::InvalidSyntax,
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", "active": "maybe"}),
                ScimType::InvalidValue,
            ),
            (
                json!({"schemas": [USER_SCHEMA], "userName": "a", ENTERPRISE_USER_SCHEMA: "x"}),
                ScimType::InvalidValue,
            ),
            (json!([1]), ScimType::InvalidSyntax),
        ] {
            let e = resource_from_request(&body, &USER).expect_err(&body.to_string());
            assert_scim_error(&e, 400, t);
        }
    }

    /// Quirk Q9: Okta GETs the user and PUTs the whole object back, read-only parts included.
    #[test]
    fn q9_okta_put_of_the_whole_fetched_object() {
        let mut stored = bjensen();
        stored.as_object_mut().unwrap().remove("loginCount");
        stored["groups"] = json!([{"value": "g1", "display": "Tour Guides"}]);
        let mut put = stored.clone();
        put["name"]["givenName"] = json!("Barb");
        put["id"] = json!("client-made-up");
        put["meta"] = json!({"resourceType": "User", "created": "1999-01-01T00:00:00Z"});
        put["groups"] = json!([]);
        put.as_object_mut().unwrap().remove("displayName");
        let out = replace_resource(&stored, &put, &USER).unwrap();
        assert_eq!(out["name"]["givenName"], "Barb");
        assert_eq!(out["id"], stored["id"], "read-only id kept");
        assert_eq!(out["meta"], stored["meta"], "read-only meta kept");
        assert_eq!(out["groups"], stored["groups"], "read-only groups kept");
        assert!(
            out.get("displayName").is_none(),
            "PUT replaces: an omitted attribute is removed"
        );
    }
}
