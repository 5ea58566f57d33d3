use super::*;
use crate::httpfile::assert::Predicate;

fn parse_str(text: &str) -> HttpFile {
    parse(Path::new("dir/t.http"), text).unwrap()
}

#[test]
fn blocks_names_variables_headers_bodies_and_assertions() {
    let file = parse_str(
        r#"@email = jane-{{$uuid}}@example.com
@password = correct-horse

### Create a patient
# @name createPatient
POST {{baseUrl}}/api/patients HTTP/1.1
Content-Type: application/json
Authorization: Bearer {{token}}

{
  "name": "Jane",

  "email": "{{email}}"
}

?? status == 201
?? body id exists

###

// @name get
GET {{baseUrl}}/api/patients/{{createPatient.id}}
  ?limit=2
  &q=ja
Authorization: Bearer {{token}}
?? header etag == "1"

### bare url
{{baseUrl}}/health/live
"#,
    );
    assert_eq!(file.requests.len(), 3);
    let create = &file.requests[0];
    assert_eq!(create.name.as_deref(), Some("createPatient"));
    assert_eq!(create.title.as_deref(), Some("Create a patient"));
    assert_eq!(create.line, 6);
    assert_eq!(
        create.variables,
        vec![
            ("email".to_owned(), "jane-{{$uuid}}@example.com".to_owned()),
            ("password".to_owned(), "correct-horse".to_owned())
        ]
    );
    assert_eq!(
        (create.method.as_str(), create.url.as_str()),
        ("POST", "{{baseUrl}}/api/patients")
    );
    assert_eq!(create.headers.len(), 2);
    assert_eq!(
        create.body,
        Some(Body::Text(
            "{\n  \"name\": \"Jane\",\n\n  \"email\": \"{{email}}\"\n}".into()
        )),
        "blank lines inside the body are kept, the ?? lines are not"
    );
    assert_eq!(create.assertions.len(), 2);
    assert_eq!(create.assertions[1].predicate, Predicate::Exists);

    let get = &file.requests[1];
    assert_eq!(get.name.as_deref(), Some("get"));
    assert_eq!(get.title, None);
    assert_eq!(
        get.url,
        "{{baseUrl}}/api/patients/{{createPatient.id}}?limit=2&q=ja"
    );
    assert_eq!(
        get.headers,
        vec![("Authorization".to_owned(), "Bearer {{token}}".to_owned())]
    );
    assert_eq!(get.assertions[0].text, "header etag == \"1\"");
    assert_eq!(get.body, None);
    assert!(get.variables.is_empty());

    let bare = &file.requests[2];
    assert_eq!(
        (bare.method.as_str(), bare.url.as_str()),
        ("GET", "{{baseUrl}}/health/live")
    );
    assert_eq!(bare.label(), "bare url");
}

#[test]
fn file_bodies_scripts_and_comments() {
    let file = parse_str(
        "POST http://h/x\nContent-Type: application/json\n\n< ./body.json\n\n###\n# just a comment\nGET http://h/y\n\n> {%\n client.test('x');\n%}\n",
    );
    assert_eq!(
        file.requests[0].body,
        Some(Body::File(PathBuf::from("dir/./body.json")))
    );
    assert_eq!(
        file.requests[1].body, None,
        "response handler scripts are skipped"
    );
    assert_eq!(file.requests[1].label(), "GET http://h/y");
}

#[test]
fn blocks_without_requests_and_errors() {
    let file = parse_str("@a = 1\n\n###\n# nothing here\n\n###\n@b = 2\n");
    assert!(file.requests.is_empty());
    assert_eq!(file.trailing_variables.len(), 2);
    let err = parse(Path::new("x.http"), "FETCH the thing now\n").unwrap_err();
    assert_eq!(err.line, 1);
    assert!(
        err.to_string()
            .starts_with("x.http:1: expected `METHOD URL`"),
        "{err}"
    );
    let err = parse(Path::new("x.http"), "GET http://h\nnot a header\n").unwrap_err();
    assert_eq!(err.line, 2);
    let err = parse(Path::new("x.http"), "GET http://h\n\n?? status is 200\n").unwrap_err();
    assert_eq!(err.line, 3);
}

#[test]
fn httpyac_grpc_requests_parse_with_their_proto_import() {
    let text = "proto < ../../proto/proto/billing_service.proto\n\n### Create\nGRPC localhost:9001/BillingService/CreateBillingAccount\n\n{\n  \"patientId\": \"12345\"\n}\n\n?? status == 0\n\n### Then HTTP\nGET {{baseUrl}}/health\n";
    let file = parse(Path::new("grpc.http"), text).expect("parses");
    assert_eq!(file.requests.len(), 2);
    assert_eq!(file.requests[0].method, GRPC);
    assert_eq!(
        file.requests[0].url,
        "localhost:9001/BillingService/CreateBillingAccount"
    );
    assert_eq!(file.requests[1].method, "GET");
}
