use super::*;
use serde_json::json;

fn check(line: &str, actual: &Actual<'_>) -> bool {
    let a = Assertion::parse(line).unwrap();
    let value = a.actual(actual).unwrap();
    a.check(value.as_ref(), &a.expected)
}

#[test]
fn parses_fields_paths_and_predicates() {
    let a = Assertion::parse(" status == 201").unwrap();
    assert_eq!(
        (
            a.field.as_str(),
            a.path.clone(),
            a.predicate,
            a.expected.as_str()
        ),
        ("status", None, Predicate::Equals, "201")
    );
    let a = Assertion::parse("header content-type includes json").unwrap();
    assert_eq!(a.path.as_deref(), Some("content-type"));
    assert_eq!(a.predicate, Predicate::Includes);
    let a = Assertion::parse("body items[0].name exists").unwrap();
    assert_eq!(
        (a.path.as_deref(), a.predicate, a.expected.as_str()),
        (Some("items[0].name"), Predicate::Exists, "")
    );
    let a = Assertion::parse("body name == Jane Q. Doe").unwrap();
    assert_eq!(a.expected, "Jane Q. Doe");
    assert!(
        Assertion::parse("status is 200")
            .unwrap_err()
            .contains("no known predicate")
    );
    assert!(
        Assertion::parse("== 200")
            .unwrap_err()
            .contains("names no field")
    );
    assert!(
        Assertion::parse("cookie x == 1")
            .unwrap_err()
            .contains("not supported")
    );
    assert!(
        Assertion::parse("header == 1")
            .unwrap_err()
            .contains("header name")
    );
}

#[test]
fn evaluates_like_httpyac() {
    let body = json!({
        "id": "p1", "version": 2, "active": true, "note": "",
        "items": [{"name": "a"}, {"name": "b"}], "nested": {"x": null}
    });
    let text = body.to_string();
    let headers = vec![
        ("ETag".to_owned(), "\"2\"".to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let actual = Actual {
        status: 201,
        duration_ms: 12,
        headers: &headers,
        body_text: &text,
        body_json: Some(&body),
    };
    for ok in [
        "status == 201",
        "status != 200",
        "status >= 200",
        "status < 300",
        "status startsWith 20",
        "duration < 5000",
        "header etag == \"2\"",
        "header Content-Type includes json",
        "header location isFalse",
        "body id == p1",
        "body version == 2",
        "body version > 1",
        "body active == true",
        "body active isTrue",
        "body note isFalse",
        "body missing isFalse",
        "body items.length == 2",
        "body items[1].name == b",
        "body $.items[0].name == a",
        "body items isArray",
        "body version isNumber",
        "body id isString",
        "body nested.x == null",
        "body nested == {\"x\":null}",
        "body includes \"p1\"",
        "js response.statusCode == 201",
        "js response.parsedBody.items.length == 2",
    ] {
        assert!(check(ok, &actual), "should pass: {ok}");
    }
    for bad in [
        "status == 200",
        "body id == P1",
        "body version == 3",
        "body missing exists",
        "header location exists",
        "body items.length > 2",
        "body id isNumber",
    ] {
        assert!(!check(bad, &actual), "should fail: {bad}");
    }
}

#[test]
fn js_paths_and_lengths() {
    let v = json!({"a": [1, 2, 3], "s": "héllo"});
    assert_eq!(js_path(&v, "a.length").unwrap(), Some(json!(3)));
    assert_eq!(js_path(&v, "s.length").unwrap(), Some(json!(5)));
    assert_eq!(js_path(&json!([1, 2]), "length").unwrap(), Some(json!(2)));
    assert_eq!(
        js_path(&json!([{"id": 7}]), "[0].id").unwrap(),
        Some(json!(7))
    );
}
