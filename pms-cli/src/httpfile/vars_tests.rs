use super::*;

fn scope() -> Scope {
    let mut scope = Scope::default();
    scope
        .injected
        .insert("baseUrl".into(), "http://127.0.0.1:4004".into());
    scope.injected.insert("token".into(), "tok".into());
    scope.file.insert("api".into(), "{{baseUrl}}/api".into());
    scope
        .file
        .insert("patientId".into(), "{{create.response.body.$.id}}".into());
    let exchange = Exchange {
        status: 201,
        request: Message::new(
            vec![("Content-Type".into(), "application/json".into())],
            r#"{"email":"a@b.test"}"#.into(),
        ),
        response: Message::new(
            vec![
                ("etag".into(), "\"1\"".into()),
                ("location".into(), "/api/patients/p1".into()),
            ],
            r#"{"id":"p1","version":1,"lines":[{"n":1},{"n":2}]}"#.into(),
        ),
    };
    scope.named.insert("create".into(), exchange.clone());
    scope.last = Some(exchange);
    scope
}

#[test]
fn variables_resolve_with_precedence_and_laziness() {
    let mut s = scope();
    assert_eq!(
        s.resolve("{{api}}/patients/{{patientId}}").unwrap(),
        "http://127.0.0.1:4004/api/patients/p1"
    );
    assert_eq!(s.resolve("Bearer {{ token }}").unwrap(), "Bearer tok");
    s.cli.insert("baseUrl".into(), "http://other:1".into());
    assert_eq!(
        s.resolve("{{api}}").unwrap(),
        "http://other:1/api",
        "--var wins, file values are lazy"
    );
    assert_eq!(s.resolve("no braces").unwrap(), "no braces");
}

#[test]
fn rest_client_captures() {
    let s = scope();
    assert_eq!(s.resolve("{{create.response.body.$.id}}").unwrap(), "p1");
    assert_eq!(
        s.resolve("{{create.response.body.$.version}}").unwrap(),
        "1"
    );
    assert_eq!(
        s.resolve("{{create.response.body.$.lines[*].n}}").unwrap(),
        "[1,2]"
    );
    assert_eq!(
        s.resolve("{{create.response.headers.ETag}}").unwrap(),
        "\"1\""
    );
    assert_eq!(
        s.resolve("{{create.request.body.$.email}}").unwrap(),
        "a@b.test"
    );
    assert_eq!(
        s.resolve("{{create.request.headers.content-type}}")
            .unwrap(),
        "application/json"
    );
    assert!(
        s.resolve("{{create.response.body.*}}")
            .unwrap()
            .starts_with("{\"id\"")
    );
    assert!(
        s.resolve("{{create.response.body.$.nope}}")
            .unwrap_err()
            .contains("matches nothing")
    );
}

#[test]
fn httpyac_captures() {
    let s = scope();
    assert_eq!(s.resolve("{{create.id}}").unwrap(), "p1");
    assert_eq!(s.resolve("{{create.lines[1].n}}").unwrap(), "2");
    assert_eq!(s.resolve("{{create.lines.length}}").unwrap(), "2");
    assert_eq!(
        s.resolve("{{createResponse.headers.etag}}").unwrap(),
        "\"1\""
    );
    assert_eq!(s.resolve("{{createResponse.statusCode}}").unwrap(), "201");
    assert_eq!(s.resolve("{{createResponse.parsedBody.id}}").unwrap(), "p1");
    assert_eq!(
        s.resolve("{{response.headers.location}}").unwrap(),
        "/api/patients/p1"
    );
}

#[test]
fn unknown_and_unavailable() {
    let mut s = scope();
    assert!(
        s.resolve("{{nobody}}")
            .unwrap_err()
            .contains("unknown variable `nobody`")
    );
    assert!(s.resolve("{{open").unwrap_err().contains("unclosed"));
    s.file.insert("a".into(), "{{b}}".into());
    s.file.insert("b".into(), "{{a}}".into());
    assert!(s.resolve("{{a}}").unwrap_err().contains("too deeply"));
    s.injected.remove("token");
    s.token_unavailable = Some("{{token}} needs a session: run `pms login`".into());
    assert!(s.resolve("{{token}}").unwrap_err().contains("pms login"));
}

#[test]
fn dynamic_values() {
    let s = Scope::default();
    let a = s.resolve("{{$uuid}}").unwrap();
    assert_eq!(uuid::Uuid::parse_str(&a).unwrap().to_string(), a);
    assert_ne!(a, s.resolve("{{$guid}}").unwrap(), "fresh every time");
    let n: i64 = s.resolve("{{$randomInt 5 10}}").unwrap().parse().unwrap();
    assert!((5..10).contains(&n));
    assert!(s.resolve("{{$timestamp}}").unwrap().parse::<i64>().unwrap() > 1_700_000_000);
    assert!(s.resolve("{{$datetime iso8601}}").unwrap().ends_with('Z'));
    assert!(s.resolve("{{$nope}}").is_err());
}
