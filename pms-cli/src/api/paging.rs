//! Cursor paging as the API does it: a JSON array per page and the next page's URL in a
//! `Link: <…>; rel="next"` header (RFC 8288).

use reqwest::header::{HeaderMap, LINK};

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The next page (a path or URL on the same server), when there is one.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The next page's position as a user passes it back: its `cursor` (sealed, opaque) or, for
    /// lists paged by event sequence number, its `after`.
    pub fn next_cursor(&self) -> Option<String> {
        let next = self.next.as_deref()?;
        let url = url::Url::parse(next)
            .or_else(|_| url::Url::parse("http://server/").and_then(|base| base.join(next)))
            .ok()?;
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        ["cursor", "after"].iter().find_map(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }
}

/// The `rel="next"` target of the `Link` headers, if any.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_links)
        .find_map(|(target, params)| {
            params
                .iter()
                .any(|p| is_rel_next(p))
                .then(|| target.to_owned())
        })
}

/// `<a>; rel="next", <b>; rel="prev"` → [(a, [rel="next"]), (b, [rel="prev"])]. Commas inside
/// `<…>` belong to the URL.
fn split_links(value: &str) -> Vec<(&str, Vec<&str>)> {
    let mut links = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let target = &rest[start + 1..start + end];
        let after = &rest[start + end + 1..];
        let next_link = after.find('<').unwrap_or(after.len());
        let params = after[..next_link]
            .split(';')
            .map(|p| p.trim().trim_end_matches(',').trim())
            .filter(|p| !p.is_empty())
            .collect();
        links.push((target, params));
        rest = &after[next_link..];
    }
    links
}

fn is_rel_next(param: &str) -> bool {
    let Some((key, value)) = param.split_once('=') else {
        return false;
    };
    key.trim().eq_ignore_ascii_case("rel")
        && value
            .trim()
            .trim_matches('"')
            .split_ascii_whitespace()
            .any(|rel| rel.eq_ignore_ascii_case("next"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(LINK, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn the_next_cursor_is_read_from_the_link() {
        let page = |next: Option<&str>| Page::<u8> {
            items: Vec::new(),
            next: next.map(str::to_owned),
        };
        assert_eq!(
            page(Some("/api/patients?limit=2&cursor=a-b_c&sort=name")).next_cursor(),
            Some("a-b_c".into())
        );
        assert_eq!(
            page(Some("http://h:1/api/analytics/events?after=42&limit=5")).next_cursor(),
            Some("42".into())
        );
        assert_eq!(page(Some("/api/x?limit=2")).next_cursor(), None);
        assert_eq!(page(None).next_cursor(), None);
    }

    #[test]
    fn finds_the_next_link() {
        assert_eq!(
            next_link(&headers(&[
                r#"</api/patients?limit=2&cursor=abc>; rel="next""#
            ])),
            Some("/api/patients?limit=2&cursor=abc".into())
        );
        assert_eq!(
            next_link(&headers(&[
                r#"<http://h/a?x=1,2>; rel="prev", <http://h/b>; rel=next"#
            ])),
            Some("http://h/b".into())
        );
        assert_eq!(
            next_link(&headers(&[
                r#"<http://h/a>; rel="prev""#,
                r#"<http://h/c>; title="x"; rel="next last""#
            ])),
            Some("http://h/c".into())
        );
        assert_eq!(next_link(&headers(&[r#"<http://h/a>; rel="prev""#])), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
