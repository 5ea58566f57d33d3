//! Listing: keyset paging through `Link` headers, `q` search, and bad listing parameters.

use pms_proto::rest::{Patient, Role};
use reqwest::Method;

use super::env::{Env, bad_fields, next_link, problem};
use super::{reference_body, unique_email};

pub(super) async fn link_paging_returns_every_patient_exactly_once(env: &Env) {
    let names = ["delta", "Alpha", "charlie", "alpha", "Bravo"];
    let mut created = Vec::new();
    for i in 0..23 {
        let name = format!("{} Pager", names[i % names.len()]);
        created.push(
            env.create(&reference_body(&name, &unique_email("page")))
                .await,
        );
    }
    let (listed, sizes) = env.list_all(Role::Viewer, "/patients?limit=5").await;
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    assert_eq!(listed, created, "creation order, each exactly once");

    let (listed, sizes) = env
        .list_all(Role::Viewer, "/patients?limit=10&sort=-name")
        .await;
    assert_eq!(sizes, [10, 10, 3]);
    let mut expected = created.clone();
    expected.sort_by(|a, b| (b.name.to_lowercase(), &b.mrn).cmp(&(a.name.to_lowercase(), &a.mrn)));
    assert_eq!(listed, expected);

    // The Link header carries the query and names the gateway path.
    let response = env
        .as_role(
            Role::Viewer,
            Method::GET,
            "/patients?limit=2&q=alpha&sort=name",
        )
        .await
        .send()
        .await
        .expect("list");
    let link = next_link(&response).expect("a next page");
    assert!(link.starts_with("/api/patients?limit=2&cursor="), "{link}");
    assert!(link.ends_with("&q=alpha&sort=name"), "{link}");
    let (listed, sizes) = env
        .list_all(Role::Viewer, "/patients?limit=2&q=alpha&sort=name")
        .await;
    assert_eq!(sizes, [2, 2, 2, 2, 1]);
    let mut alphas: Vec<&Patient> = created
        .iter()
        .filter(|p| p.name.to_lowercase() == "alpha pager")
        .collect();
    alphas.sort_by_key(|p| &p.mrn);
    assert_eq!(listed.iter().collect::<Vec<_>>(), alphas);

    // A page that holds everything announces no next page.
    let response = env
        .as_role(Role::Viewer, Method::GET, "/patients?limit=23")
        .await
        .send()
        .await
        .expect("list");
    assert_eq!(next_link(&response), None);
    assert_eq!(
        response.json::<Vec<Patient>>().await.expect("page").len(),
        23
    );
}

pub(super) async fn q_searches_names_emails_and_mrns(env: &Env) {
    let ada = env
        .create(&reference_body(
            "Ada Lovelace",
            "ada.byron@analytical.example",
        ))
        .await;
    env.create(&reference_body("Charles Babbage", &unique_email("cb")))
        .await;
    env.create(&reference_body("100% Literal_Name", &unique_email("lit")))
        .await;
    env.create(&reference_body("1000 LiteralXName", &unique_email("lit")))
        .await;
    let search = |q: &str| {
        let q = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        async move {
            let (found, _) = env
                .list_all(Role::Viewer, &format!("/patients?q={q}"))
                .await;
            let mut names: Vec<String> = found.into_iter().map(|p| p.name).collect();
            names.sort();
            names
        }
    };
    assert_eq!(search("ada").await, ["Ada Lovelace"]);
    assert_eq!(
        search("LOVE").await,
        ["Ada Lovelace"],
        "any word of the name"
    );
    assert_eq!(search("ADA.BYRON@").await, ["Ada Lovelace"], "email prefix");
    assert_eq!(
        search(&ada.mrn.to_lowercase()).await,
        ["Ada Lovelace"],
        "MRN"
    );
    assert!(
        search("velace").await.is_empty(),
        "prefixes, not substrings"
    );
    assert_eq!(search("100%").await, ["100% Literal_Name"], "% is literal");
    assert_eq!(
        search("literal_").await,
        ["100% Literal_Name"],
        "_ is literal"
    );
    assert!(search("%").await.is_empty());
    assert_eq!(search("charles babbage").await, ["Charles Babbage"]);
}

pub(super) async fn bad_listing_parameters_are_rejected(env: &Env) {
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("limit=-5", "limit"),
        ("sort=age", "sort"),
        ("sort=createdAt&cursor=garbage!", "cursor"),
        ("cursor=eyJvIjoibmFtZSIsInMiOjF9", "cursor"),
    ] {
        let response = env
            .as_role(Role::Viewer, Method::GET, &format!("/patients?{query}"))
            .await
            .send()
            .await
            .expect("list");
        assert_eq!(bad_fields(response).await, [field], "{query}");
    }
    let response = env
        .as_role(
            Role::Viewer,
            Method::GET,
            "/patients?limit=1000&sort=-createdAt",
        )
        .await
        .send()
        .await
        .expect("list");
    assert_eq!(response.status(), 200);
    for path in ["/patients/not-a-uuid", "/patients/123/history"] {
        let response = env
            .as_role(Role::Viewer, Method::GET, path)
            .await
            .send()
            .await
            .expect("get");
        problem(response, 400).await;
    }
}

/// The `cursor` parameter of a `Link` path.
fn cursor_of(link: &str) -> String {
    let query = link.split_once('?').expect("query").1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())
        .expect("cursor")
}

pub(super) async fn cursors_reveal_no_patient_field_and_tampered_ones_are_refused(env: &Env) {
    for name in [
        "Aaron Privateperson",
        "Abel Otherperson",
        "Abigail Thirdperson",
    ] {
        env.create(&reference_body(name, &unique_email("cursor")))
            .await;
    }
    let response = env
        .as_role(Role::Viewer, Method::GET, "/patients?limit=1&sort=name&q=a")
        .await
        .send()
        .await
        .expect("list");
    let link = next_link(&response).expect("a next page");
    let cursor = cursor_of(&link);
    let lowered = link.to_lowercase();
    assert!(
        !lowered.contains("aaron") && !lowered.contains("privateperson"),
        "{link}"
    );
    use base64::Engine;
    for engine in [
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ] {
        if let Ok(bytes) = engine.decode(&cursor) {
            let text = String::from_utf8_lossy(&bytes).to_lowercase();
            assert!(
                !text.contains("aaron")
                    && !text.contains("privateperson")
                    && !text.contains("\"n\""),
                "the cursor decodes to {text}"
            );
        }
    }
    // The sealed cursor still pages: the second page is the second name.
    let second: Vec<Patient> = env
        .client
        .get(env.follow(&link))
        .bearer_auth(env.token(Role::Viewer).await)
        .send()
        .await
        .expect("page 2")
        .json()
        .await
        .expect("patients");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].name, "Abel Otherperson");

    // One changed character, or a cursor that is plain base64 JSON, is a 400 on `cursor`.
    let mut tampered: Vec<char> = cursor.chars().collect();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let forged =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"o":"name","s":1,"n":"a"}"#);
    for bad in [tampered, forged] {
        let response = env
            .as_role(
                Role::Viewer,
                Method::GET,
                &format!("/patients?limit=1&sort=name&q=a&cursor={bad}"),
            )
            .await
            .send()
            .await
            .expect("list");
        assert_eq!(bad_fields(response).await, ["cursor"], "{bad}");
    }
}
