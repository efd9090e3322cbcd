//! Policy tests: AWS's documented bucket-policy examples, the grammar's error cases, and the
//! matching and condition semantics that are easy to get subtly wrong.

use super::*;

const B: &str = "amzn-s3-demo-bucket";
const ALICE: &str = "COFFERALICE0000000001";
const BOB: &str = "COFFERBOB00000000002";

fn policy(doc: &str) -> Policy {
    Policy::parse(doc.as_bytes(), B).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn refused(doc: &str) -> PolicyError {
    Policy::parse(doc.as_bytes(), B).expect_err(doc)
}

fn stmt(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#)
}

fn get(principal: Option<&str>, key: &str) -> PolicyRequest<'static> {
    PolicyRequest::new(principal, "s3:GetObject", object_arn(B, key))
}

fn list(principal: Option<&str>) -> PolicyRequest<'static> {
    PolicyRequest::new(principal, "s3:ListBucket", bucket_arn(B))
}

fn put(principal: Option<&str>, key: &str) -> PolicyRequest<'static> {
    PolicyRequest::new(principal, "s3:PutObject", object_arn(B, key))
}

// ---- AWS documentation examples ----

#[test]
fn public_read_allows_anonymous_get_of_objects_only() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow",
            "Principal":"*","Action":["s3:GetObject","s3:GetObjectVersion"],
            "Resource":["arn:aws:s3:::amzn-s3-demo-bucket/*"]}]}"#,
    );
    assert_eq!(p.evaluate(&get(None, "index.html")), Decision::Allow);
    assert_eq!(p.evaluate(&get(Some(ALICE), "a/b.png")), Decision::Allow);
    assert_eq!(p.evaluate(&list(None)), Decision::NotApplicable);
    assert_eq!(p.evaluate(&put(None, "x")), Decision::NotApplicable);
    let other = PolicyRequest::new(None, "s3:GetObject", object_arn("other", "x"));
    assert_eq!(p.evaluate(&other), Decision::NotApplicable);
    assert!(p.is_public());
    assert_eq!(p.statements()[0].sid(), Some("PublicRead"));
    assert_eq!(p.version(), PolicyVersion::V2012_10_17);
}

#[test]
fn deny_outside_ip_range_with_not_ip_address() {
    let p = policy(
        r#"{"Version":"2012-10-17","Id":"S3PolicyId1","Statement":[
            {"Sid":"IPAllow","Effect":"Deny","Principal":"*","Action":"s3:*",
             "Resource":["arn:aws:s3:::amzn-s3-demo-bucket","arn:aws:s3:::amzn-s3-demo-bucket/*"],
             "Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:DB8:1234:5678::/64"]}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
             "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}]}"#,
    );
    assert_eq!(p.id(), Some("S3PolicyId1"));
    let from = |ip: &str| get(None, "k").with("aws:SourceIp", ip);
    assert_eq!(p.evaluate(&from("192.0.2.77")), Decision::Allow);
    assert_eq!(p.evaluate(&from("2001:db8:1234:5678::9")), Decision::Allow);
    assert_eq!(p.evaluate(&from("198.51.100.1")), Decision::ExplicitDeny);
    assert_eq!(
        p.evaluate(&list(None).with("aws:SourceIp", "198.51.100.1")),
        Decision::ExplicitDeny
    );
    // No source IP at all: a negated operator on a missing key is true, so the deny fires.
    assert_eq!(p.evaluate(&get(None, "k")), Decision::ExplicitDeny);
}

#[test]
fn require_secure_transport() {
    let p = policy(&stmt(
        r#"{"Sid":"RestrictToTLSRequestsOnly","Action":"s3:*","Effect":"Deny",
            "Resource":["arn:aws:s3:::amzn-s3-demo-bucket","arn:aws:s3:::amzn-s3-demo-bucket/*"],
            "Condition":{"Bool":{"aws:SecureTransport":"false"}},"Principal":"*"}"#,
    ));
    let req = |tls: &str| get(Some(ALICE), "k").with("aws:SecureTransport", tls);
    assert_eq!(p.evaluate(&req("false")), Decision::ExplicitDeny);
    assert_eq!(p.evaluate(&req("true")), Decision::NotApplicable);
    assert_eq!(p.evaluate(&req("TRUE")), Decision::NotApplicable);
    assert_eq!(p.evaluate(&get(Some(ALICE), "k")), Decision::NotApplicable);
    assert!(!p.is_public());
}

#[test]
fn user_may_list_only_their_prefix() {
    let p = policy(&stmt(&format!(
        r#"{{"Sid":"ListHome","Effect":"Allow",
            "Principal":{{"AWS":"arn:aws:iam::111122223333:user/{ALICE}"}},
            "Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket",
            "Condition":{{"StringLike":{{"s3:prefix":["","home/","home/${{aws:username}}/*"]}}}}}},
           {{"Sid":"RWHome","Effect":"Allow",
            "Principal":{{"AWS":"arn:aws:iam::111122223333:user/{ALICE}"}},
            "Action":["s3:GetObject","s3:PutObject"],
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/home/${{aws:username}}/*"}}"#
    )));
    let listing = |who: &str, prefix: &str| {
        list(Some(who))
            .with("s3:prefix", prefix)
            .with("aws:username", who)
    };
    assert_eq!(p.evaluate(&listing(ALICE, "")), Decision::Allow);
    assert_eq!(p.evaluate(&listing(ALICE, "home/")), Decision::Allow);
    let own = format!("home/{ALICE}/photos/");
    assert_eq!(p.evaluate(&listing(ALICE, &own)), Decision::Allow);
    assert_eq!(
        p.evaluate(&listing(ALICE, "home/bob/")),
        Decision::NotApplicable
    );
    assert_eq!(p.evaluate(&listing(BOB, "")), Decision::NotApplicable);
    // No s3:prefix in the request: StringLike on a missing key is false.
    assert_eq!(p.evaluate(&list(Some(ALICE))), Decision::NotApplicable);
    let key = format!("home/{ALICE}/notes.txt");
    assert_eq!(
        p.evaluate(&put(Some(ALICE), &key).with("aws:username", ALICE)),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&put(Some(ALICE), "home/bob/x").with("aws:username", ALICE)),
        Decision::NotApplicable
    );
    // Without aws:username the variable is unresolved and the resource matches nothing.
    assert_eq!(p.evaluate(&put(Some(ALICE), &key)), Decision::NotApplicable);
}

#[test]
fn deny_unencrypted_uploads_with_null_and_string_not_equals() {
    let p = policy(&stmt(
        r#"{"Sid":"DenyIncorrectEncryptionHeader","Effect":"Deny","Principal":"*",
             "Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
             "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}},
           {"Sid":"DenyUnencryptedObjectUploads","Effect":"Deny","Principal":"*",
             "Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
             "Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}},
           {"Effect":"Allow","Principal":{"AWS":"COFFERALICE0000000001"},
             "Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
    ));
    let sse = |v: &str| put(Some(ALICE), "k").with("s3:x-amz-server-side-encryption", v);
    assert_eq!(p.evaluate(&sse("AES256")), Decision::Allow);
    assert_eq!(p.evaluate(&sse("aws:kms")), Decision::ExplicitDeny);
    assert_eq!(p.evaluate(&put(Some(ALICE), "k")), Decision::ExplicitDeny);
}

#[test]
fn null_false_requires_the_key_present() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"Null":{"aws:username":"false"}}}"#,
    ));
    assert_eq!(
        p.evaluate(&get(Some(ALICE), "k").with("aws:username", ALICE)),
        Decision::Allow
    );
    assert_eq!(p.evaluate(&get(None, "k")), Decision::NotApplicable);
}

#[test]
fn referer_and_user_agent_string_like() {
    let p = policy(&stmt(
        r#"{"Sid":"AllowGetRequestsOriginatingFromSite","Effect":"Allow","Principal":"*",
            "Action":["s3:GetObject","s3:GetObjectVersion"],
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"StringLike":{"aws:Referer":["https://www.example.com/*","https://example.com/*"]},
                         "StringNotLike":{"aws:UserAgent":"*BadBot*"}}}"#,
    ));
    let req = |referer: &str, agent: &str| {
        get(None, "a.png")
            .with("aws:Referer", referer)
            .with("aws:UserAgent", agent)
    };
    assert_eq!(
        p.evaluate(&req("https://www.example.com/page", "Firefox")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&req("https://evil.example.net/", "Firefox")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req("https://example.com/", "x BadBot/1")),
        Decision::NotApplicable,
        "both operators must hold"
    );
    assert!(p.is_public(), "referer is not a narrowing condition");
}

#[test]
fn canned_acl_and_max_keys_and_current_time() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":{"AWS":["COFFERALICE0000000001"]},"Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"}}},
           {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket",
            "Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"},
                         "DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}"#,
    ));
    let acl = |v: &str| put(Some(ALICE), "k").with("s3:x-amz-acl", v);
    assert_eq!(
        p.evaluate(&acl("bucket-owner-full-control")),
        Decision::Allow
    );
    assert_eq!(p.evaluate(&acl("public-read")), Decision::NotApplicable);
    let l = |keys: &str, now: &str| {
        list(None)
            .with("s3:max-keys", keys)
            .with("aws:CurrentTime", now)
    };
    assert_eq!(
        p.evaluate(&l("10", "2025-06-01T12:00:00Z")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&l("1000", "2025-06-01T12:00:00Z")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(&l("5", "2031-06-01T12:00:00Z")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(&l("ten", "2025-06-01T12:00:00Z")),
        Decision::NotApplicable
    );
}

#[test]
fn existing_object_tag_and_numeric_and_date_operators() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"StringEquals":{"s3:ExistingObjectTag/environment":"production"},
                         "NumericGreaterThan":{"s3:object-lock-remaining-retention-days":1.5},
                         "DateGreaterThanEquals":{"aws:EpochTime":"2020-01-01"}}}"#,
    ));
    let req = |tag: &str, days: &str, epoch: &str| {
        get(None, "k")
            .with("s3:ExistingObjectTag/environment", tag)
            .with("s3:object-lock-remaining-retention-days", days)
            .with("aws:EpochTime", epoch)
    };
    assert_eq!(
        p.evaluate(&req("production", "2", "1577836800")),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&req("Production", "2", "1577836800")),
        Decision::NotApplicable,
        "StringEquals is case-sensitive"
    );
    assert_eq!(
        p.evaluate(&req("production", "1.5", "1577836800")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req("production", "2", "1577836799")),
        Decision::NotApplicable
    );
}

#[test]
fn string_equals_ignore_case_and_literal_star() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"StringEqualsIgnoreCase":{"aws:PrincipalType":"anonymous"},
                         "StringEquals":{"s3:x-amz-storage-class":"*"}}}"#,
    ));
    let req = |t: &str, c: &str| {
        get(None, "k")
            .with("aws:PrincipalType", t)
            .with("s3:x-amz-storage-class", c)
    };
    assert_eq!(p.evaluate(&req("Anonymous", "*")), Decision::Allow);
    assert_eq!(
        p.evaluate(&req("Anonymous", "STANDARD")),
        Decision::NotApplicable,
        "StringEquals does not expand *"
    );
}

#[test]
fn arn_like_matches_segment_by_segment() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::source-*"},
                         "ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/blocked"}}}"#,
    ));
    let req = |source: &str, principal: &str| {
        put(None, "k")
            .with("aws:SourceArn", source)
            .with("aws:PrincipalArn", principal)
    };
    let ok = "arn:aws:iam::111122223333:user/ok";
    assert_eq!(
        p.evaluate(&req("arn:aws:s3:::source-logs", ok)),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&req("arn:aws:s3:::other", ok)),
        Decision::NotApplicable
    );
    assert_eq!(p.evaluate(&req("not-an-arn", ok)), Decision::NotApplicable);
    assert_eq!(
        p.evaluate(&req(
            "arn:aws:s3:::source-logs",
            "arn:aws:iam::111122223333:user/blocked"
        )),
        Decision::NotApplicable
    );
    // A wildcard source ARN is not a fixed value, so the grant still counts as public.
    assert!(p.is_public());
}

// ---- Effects and the Not… elements ----

#[test]
fn explicit_deny_beats_allow_in_any_order() {
    for order in [("Allow", "Deny"), ("Deny", "Allow")] {
        let p = policy(&stmt(&format!(
            r#"{{"Effect":"{}","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}},
               {{"Effect":"{}","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}}"#,
            order.0, order.1
        )));
        assert_eq!(p.evaluate(&get(Some(ALICE), "k")), Decision::ExplicitDeny);
    }
}

#[test]
fn not_action_not_resource_and_not_principal() {
    let p = policy(&stmt(&format!(
        r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"{ALICE}"}},"NotAction":["s3:Get*","s3:List*"],
             "Resource":["arn:aws:s3:::amzn-s3-demo-bucket","arn:aws:s3:::amzn-s3-demo-bucket/*"]}},
           {{"Effect":"Allow","Principal":"*","Action":"s3:*",
             "NotResource":"arn:aws:s3:::amzn-s3-demo-bucket/private/*"}}"#
    )));
    // Bob may read anywhere but under private/, and may not write.
    assert_eq!(p.evaluate(&get(Some(BOB), "public/a")), Decision::Allow);
    assert_eq!(
        p.evaluate(&get(Some(BOB), "private/a")),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(&put(Some(BOB), "public/a")),
        Decision::ExplicitDeny
    );
    assert_eq!(p.evaluate(&put(None, "public/a")), Decision::ExplicitDeny);
    // Alice is outside NotPrincipal's deny.
    assert_eq!(p.evaluate(&put(Some(ALICE), "public/a")), Decision::Allow);
    assert_eq!(p.evaluate(&list(Some(BOB))), Decision::Allow);
}

#[test]
fn principal_forms_and_what_they_match() {
    let doc = |principal: &str| {
        stmt(&format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"s3:GetObject",
                "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}}"#
        ))
    };
    let cases: &[(&str, Option<&str>, Decision)] = &[
        (r#""*""#, None, Decision::Allow),
        (r#"{"AWS":"*"}"#, None, Decision::Allow),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            None,
            Decision::NotApplicable,
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            Some(BOB),
            Decision::Allow,
        ),
        (r#"{"AWS":"111122223333"}"#, Some(BOB), Decision::Allow),
        (
            r#"{"AWS":"COFFERALICE0000000001"}"#,
            Some(ALICE),
            Decision::Allow,
        ),
        (
            r#"{"AWS":"COFFERALICE0000000001"}"#,
            Some(BOB),
            Decision::NotApplicable,
        ),
        (
            r#"{"AWS":"COFFERALICE0000000001"}"#,
            None,
            Decision::NotApplicable,
        ),
        (
            r#"{"AWS":["arn:aws:iam::111122223333:user/team/COFFERALICE0000000001"]}"#,
            Some(ALICE),
            Decision::Allow,
        ),
        (
            r#"{"AWS":"COFFERALICE0000000001"}"#,
            Some("arn:aws:iam::111122223333:user/COFFERALICE0000000001"),
            Decision::Allow,
        ),
        (
            r#"{"CanonicalUser":"COFFERALICE0000000001"}"#,
            Some(ALICE),
            Decision::Allow,
        ),
        (
            r#"{"Service":"logging.s3.amazonaws.com"}"#,
            Some(ALICE),
            Decision::NotApplicable,
        ),
    ];
    for (principal, who, want) in cases {
        let p = policy(&doc(principal));
        assert_eq!(p.evaluate(&get(*who, "k")), *want, "{principal} vs {who:?}");
    }
}

// ---- Matching edge cases ----

#[test]
fn actions_ignore_case_resources_do_not() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":["S3:getobject","s3:List*"],
            "Resource":["arn:aws:s3:::amzn-s3-demo-bucket","arn:aws:s3:::amzn-s3-demo-bucket/Photos/*"]}"#,
    ));
    assert_eq!(p.evaluate(&get(None, "Photos/a.jpg")), Decision::Allow);
    assert_eq!(
        p.evaluate(&get(None, "photos/a.jpg")),
        Decision::NotApplicable
    );
    let shouting = PolicyRequest::new(None, "S3:GETOBJECT", object_arn(B, "Photos/x"));
    assert_eq!(p.evaluate(&shouting), Decision::Allow);
    assert_eq!(p.evaluate(&list(None)), Decision::Allow);
    let versions = PolicyRequest::new(None, "s3:ListBucketVersions", bucket_arn(B));
    assert_eq!(p.evaluate(&versions), Decision::Allow);
}

#[test]
fn resource_wildcards_star_crosses_slash_question_is_one_char() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":["arn:aws:s3:::amzn-s3-demo-bucket/logs/*.gz","arn:aws:s3:::amzn-s3-demo-bucket/v?/index"]}"#,
    ));
    assert_eq!(p.evaluate(&get(None, "logs/2024/01/a.gz")), Decision::Allow);
    assert_eq!(
        p.evaluate(&get(None, "logs/a.gzip")),
        Decision::NotApplicable
    );
    assert_eq!(p.evaluate(&get(None, "v1/index")), Decision::Allow);
    assert_eq!(p.evaluate(&get(None, "v10/index")), Decision::NotApplicable);
    assert_eq!(p.evaluate(&get(None, "v/index")), Decision::NotApplicable);
}

#[test]
fn star_action_and_bucket_wildcard_resource() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:s3:::amzn-s3-demo-*"}"#,
    ));
    assert_eq!(p.evaluate(&list(None)), Decision::Allow);
    assert_eq!(p.evaluate(&get(None, "deep/key")), Decision::Allow);
}

#[test]
fn variables_are_literal_under_2008_version() {
    let doc = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*",
        "Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"}}"#;
    let p = policy(doc);
    assert_eq!(p.version(), PolicyVersion::V2008_10_17);
    assert_eq!(p.evaluate(&get(None, "${aws:username}/x")), Decision::Allow);
    assert_eq!(
        p.evaluate(&get(None, "alice/x").with("aws:username", "alice")),
        Decision::NotApplicable
    );
    // Absent Version means 2008-10-17 as well; Statement may be a single object.
    let p = policy(&doc.replace(r#""Version":"2008-10-17","#, ""));
    assert_eq!(p.version(), PolicyVersion::V2008_10_17);
}

#[test]
fn condition_keys_ignore_case_in_policy_and_request() {
    let p = policy(&stmt(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"bool":{"AWS:SECURETRANSPORT":false}}}"#,
    ));
    assert_eq!(
        p.evaluate(&get(None, "k").with("aws:SecureTransport", "false")),
        Decision::ExplicitDeny
    );
}

// ---- IfExists and set qualifiers ----

#[test]
fn if_exists_only_tests_keys_that_are_present() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"StringEqualsIfExists":{"s3:x-amz-storage-class":"STANDARD"}}},
           {"Effect":"Deny","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"StringNotEqualsIfExists":{"s3:x-amz-acl":"private"}}}"#,
    ));
    let req = |class: Option<&str>, acl: Option<&str>| {
        let mut r = put(None, "k");
        if let Some(c) = class {
            r = r.with("s3:x-amz-storage-class", c);
        }
        if let Some(a) = acl {
            r = r.with("s3:x-amz-acl", a);
        }
        r
    };
    // An absent key makes an IfExists condition true, whether the operator is negated or not:
    // the Allow applies without a storage class, and so does the Deny without an ACL.
    assert_eq!(p.evaluate(&req(None, Some("private"))), Decision::Allow);
    assert_eq!(p.evaluate(&req(None, None)), Decision::ExplicitDeny);
    assert_eq!(
        p.evaluate(&req(Some("STANDARD"), Some("private"))),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&req(Some("GLACIER"), Some("private"))),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req(Some("STANDARD"), Some("public-read"))),
        Decision::ExplicitDeny
    );
}

#[test]
fn for_all_values_is_true_for_no_values_and_for_any_value_is_false() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["Owner","CreationDate"]}}}"#,
    ));
    let tags = |keys: &[&str]| {
        keys.iter()
            .fold(put(None, "k"), |r, k| r.with("s3:RequestObjectTagKeys", *k))
    };
    assert_eq!(p.evaluate(&tags(&["Owner"])), Decision::Allow);
    assert_eq!(
        p.evaluate(&tags(&["Owner", "CreationDate"])),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(&tags(&["Owner", "Secret"])),
        Decision::NotApplicable
    );
    assert_eq!(p.evaluate(&tags(&[])), Decision::Allow, "vacuously true");

    let any = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"ForAnyValue:StringLike":{"s3:RequestObjectTagKeys":["Proj*"]}}}"#,
    ));
    assert_eq!(any.evaluate(&tags(&["Owner", "Project"])), Decision::Allow);
    assert_eq!(any.evaluate(&tags(&["Owner"])), Decision::NotApplicable);
    assert_eq!(any.evaluate(&tags(&[])), Decision::NotApplicable);
}

#[test]
fn negated_set_operators_apply_per_value() {
    let all = policy(&stmt(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"ForAnyValue:StringNotEquals":{"s3:RequestObjectTagKeys":["Owner","Team"]}}}"#,
    ));
    let tags = |keys: &[&str]| {
        keys.iter()
            .fold(put(None, "k"), |r, k| r.with("s3:RequestObjectTagKeys", *k))
    };
    assert_eq!(
        all.evaluate(&tags(&["Owner", "Team"])),
        Decision::NotApplicable
    );
    assert_eq!(
        all.evaluate(&tags(&["Owner", "Other"])),
        Decision::ExplicitDeny
    );
    assert_eq!(all.evaluate(&tags(&[])), Decision::NotApplicable);
}

#[test]
fn single_valued_operator_over_several_request_values() {
    let p = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"StringNotEquals":{"s3:RequestObjectTagKeys":["Secret","Hidden"]}}}"#,
    ));
    let tags = |keys: &[&str]| {
        keys.iter()
            .fold(put(None, "k"), |r, k| r.with("s3:RequestObjectTagKeys", *k))
    };
    // Negated operators NOR the policy values and must hold for every request value.
    assert_eq!(p.evaluate(&tags(&["Owner", "Team"])), Decision::Allow);
    assert_eq!(
        p.evaluate(&tags(&["Owner", "Hidden"])),
        Decision::NotApplicable
    );
    assert_eq!(
        p.evaluate(&tags(&[])),
        Decision::Allow,
        "missing key, negated"
    );
}

// ---- GetBucketPolicyStatus ----

#[test]
fn is_public_ignores_ip_narrowed_and_key_only_grants() {
    let narrowed = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/16"}}}"#,
    ));
    assert!(!narrowed.is_public());
    let wide = policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*",
            "Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/1"}}}"#,
    ));
    assert!(wide.is_public());
    let keyed = policy(&stmt(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}}"#
    )));
    assert!(!keyed.is_public());
    let not_principal = policy(&stmt(&format!(
        r#"{{"Effect":"Allow","NotPrincipal":{{"AWS":"{ALICE}"}},"Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}}"#
    )));
    assert!(not_principal.is_public());
}

// ---- Malformed policies ----

#[test]
fn malformed_policies_each_get_their_message() {
    let ok_rest = r#""Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*""#;
    let cases: Vec<(String, PolicyError, &str)> = vec![
        (
            "not json".into(),
            PolicyError::InvalidJson,
            "This policy contains invalid Json",
        ),
        (
            "[]".into(),
            PolicyError::InvalidJson,
            "This policy contains invalid Json",
        ),
        (
            r#"{"Version":"2020-01-01","Statement":[]}"#.into(),
            PolicyError::InvalidVersion,
            "The policy must contain a valid version string",
        ),
        (
            r#"{"Version":"2012-10-17"}"#.into(),
            PolicyError::MissingField("Statement"),
            "Missing required field Statement",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
            PolicyError::EmptyStatement,
            "Could not parse the policy: Statement is empty!",
        ),
        (
            stmt("{}"),
            PolicyError::EmptyStatement,
            "Could not parse the policy: Statement is empty!",
        ),
        (
            r#"{"Version":"2012-10-17","Statment":[]}"#.into(),
            PolicyError::UnknownField("Statment".into()),
            "Unknown field Statment",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow","Actions":"s3:*",{ok_rest}}}"#
            )),
            PolicyError::UnknownField("Actions".into()),
            "Unknown field Actions",
        ),
        (
            stmt(&format!(r#"{{"Effect":"Permit",{ok_rest}}}"#)),
            PolicyError::InvalidEffect("Permit".into()),
            "Invalid effect: Permit",
        ),
        (
            stmt(&format!(r#"{{"Effect":"allow",{ok_rest}}}"#)),
            PolicyError::InvalidEffect("allow".into()),
            "Invalid effect: allow",
        ),
        (
            stmt(&format!(r#"{{{ok_rest}}}"#)),
            PolicyError::MissingField("Effect"),
            "Missing required field Effect",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::MissingField("Principal"),
            "Missing required field Principal",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::MissingField("Action"),
            "Missing required field Action",
        ),
        (
            stmt(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}"#),
            PolicyError::MissingField("Resource"),
            "Missing required field Resource",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::ConflictingElements("Action"),
            "Statement cannot contain both Action and NotAction",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"someone","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidPrincipal,
            "Invalid principal in policy",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/r"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidPrincipal,
            "Invalid principal in policy",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::*:user/x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidPrincipal,
            "Invalid principal in policy",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":{"Group":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidPrincipal,
            "Invalid principal in policy",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObjects","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidAction,
            "Policy has invalid action",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"iam:PassRole","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidAction,
            "Policy has invalid action",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:Frob*","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidAction,
            "Policy has invalid action",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::InvalidAction,
            "Policy has invalid action",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}"#,
            ),
            PolicyError::InvalidResource,
            "Policy has invalid resource",
        ),
        (
            stmt(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#),
            PolicyError::InvalidResource,
            "Policy has invalid resource",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::${aws:username}/*"}"#,
            ),
            PolicyError::InvalidResource,
            "Policy has invalid resource",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket"}"#,
            ),
            PolicyError::ActionResourceMismatch,
            "Action does not apply to any resource(s) in statement",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}"#,
            ),
            PolicyError::ActionResourceMismatch,
            "Action does not apply to any resource(s) in statement",
        ),
        (
            stmt(
                r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::amzn-s3-demo-bucket"}"#,
            ),
            PolicyError::ActionResourceMismatch,
            "Action does not apply to any resource(s) in statement",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"StringEqualz":{{"s3:prefix":"a"}}}}}}"#
            )),
            PolicyError::InvalidConditionOperator("StringEqualz".into()),
            "Invalid Condition type : StringEqualz",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"StringEquals":{{"s3:prefixx":"a"}}}}}}"#
            )),
            PolicyError::InvalidConditionKey("s3:prefixx".into()),
            "Policy has an invalid condition key",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"StringEquals":{{"prefix":"a"}}}}}}"#
            )),
            PolicyError::InvalidConditionKey("prefix".into()),
            "Policy has an invalid condition key",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/99"}}}}}}"#
            )),
            PolicyError::InvalidConditionValue("IpAddress".into()),
            "Invalid Condition value for IpAddress",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"NumericLessThan":{{"s3:max-keys":"ten"}}}}}}"#
            )),
            PolicyError::InvalidConditionValue("NumericLessThan".into()),
            "Invalid Condition value for NumericLessThan",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"DateLessThan":{{"aws:CurrentTime":"soon"}}}}}}"#
            )),
            PolicyError::InvalidConditionValue("DateLessThan".into()),
            "Invalid Condition value for DateLessThan",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"Bool":{{"aws:SecureTransport":"yes"}}}}}}"#
            )),
            PolicyError::InvalidConditionValue("Bool".into()),
            "Invalid Condition value for Bool",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"StringEquals":{{"s3:prefix":[]}}}}}}"#
            )),
            PolicyError::InvalidConditionValue("StringEquals".into()),
            "Invalid Condition value for StringEquals",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":{{"NullIfExists":{{"s3:prefix":"true"}}}}}}"#
            )),
            PolicyError::InvalidConditionOperator("NullIfExists".into()),
            "Invalid Condition type : NullIfExists",
        ),
        (
            stmt(&format!(
                r#"{{"Effect":"Allow",{ok_rest},"Condition":"StringEquals"}}"#
            )),
            PolicyError::InvalidConditionBlock,
            "Condition block must map operators to objects of keys and values",
        ),
    ];
    for (doc, want, message) in cases {
        let got = refused(&doc);
        assert_eq!(got, want, "{doc}");
        assert_eq!(got.to_string(), message, "{doc}");
    }
}

#[test]
fn oversized_policy_is_refused() {
    let padding = "x".repeat(MAX_POLICY_BYTES);
    let doc = stmt(&format!(
        r#"{{"Sid":"{padding}","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}}"#
    ));
    assert_eq!(refused(&doc), PolicyError::TooLarge);
}

#[test]
fn mixed_bucket_and_object_actions_need_only_one_fitting_pair() {
    // AWS accepts a statement where some action fits some resource.
    policy(&stmt(
        r#"{"Effect":"Allow","Principal":"*","Action":["s3:ListBucket","s3:GetObject"],
            "Resource":"arn:aws:s3:::amzn-s3-demo-bucket"}"#,
    ));
    policy(&stmt(
        r#"{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject",
            "NotResource":"arn:aws:s3:::amzn-s3-demo-bucket/public/*"}"#,
    ));
}
