//! JUnit XML for `pms request --report junit=PATH`: one `<testsuite>` per file, one
//! `<testcase>` per request; a failed assertion is a `<failure>`, a request that could not run an
//! `<error>`, a skipped one (gRPC) a `<skipped>`. The subset every CI system reads (Jenkins, GitLab, GitHub test reporters).

use std::fmt::Write as _;

use super::run::RequestResult;

/// Renders the report for results grouped by file (in run order).
pub fn render(files: &[(String, Vec<RequestResult>)]) -> String {
    let count = |pred: &dyn Fn(&RequestResult) -> bool| -> usize {
        files
            .iter()
            .flat_map(|(_, r)| r)
            .filter(|r| pred(r))
            .count()
    };
    let tests = count(&|_| true);
    let errors = count(&|r| r.error.is_some());
    let failures = count(&|r| r.error.is_none() && !r.passed());
    let skipped = skipped_attribute(count(&|r| r.is_skipped()));
    let total_ms: u64 = files
        .iter()
        .flat_map(|(_, r)| r)
        .map(|r| r.duration_ms)
        .sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"pms request\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\"{skipped} time=\"{}\">",
        seconds(total_ms)
    );
    for (file, results) in files {
        let failures = results
            .iter()
            .filter(|r| r.error.is_none() && !r.passed())
            .count();
        let errors = results.iter().filter(|r| r.error.is_some()).count();
        let skipped = skipped_attribute(results.iter().filter(|r| r.is_skipped()).count());
        let time: u64 = results.iter().map(|r| r.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\"{skipped} time=\"{}\">",
            escape(file),
            results.len(),
            seconds(time)
        );
        let mut seen = std::collections::HashMap::<&str, usize>::new();
        for r in results {
            // The name is the request's own (`# @name`, `###` title, else the URL template as
            // written), never the URL as sent: that holds per-run ids, and CI systems follow a
            // test across runs by classname + name. A repeated name gets ` #2`, ` #3`, …
            let n = seen.entry(r.name.as_str()).or_default();
            *n += 1;
            let name = match *n {
                1 => r.name.clone(),
                n => format!("{} #{n}", r.name),
            };
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                escape(&name),
                escape(file),
                seconds(r.duration_ms)
            );
            if let Some(reason) = &r.skipped {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(reason)
                );
            } else if let Some(error) = &r.error {
                let _ = writeln!(
                    out,
                    ">\n      <error message=\"{}\"/>\n    </testcase>",
                    escape(error)
                );
            } else if !r.passed() {
                let failed: Vec<String> = r
                    .assertions
                    .iter()
                    .filter(|a| !a.passed)
                    .map(|a| format!("?? {} ({})", a.assertion, a.message))
                    .collect();
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    escape(&failed.join("; ")),
                    escape(&format!(
                        "{} {} (line {}): status {}\n{}",
                        r.method,
                        r.url,
                        r.line,
                        r.status.unwrap_or(0),
                        failed.join("\n")
                    ))
                );
            } else {
                out.push_str("/>\n");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// ` skipped="n"`, only when something was skipped (reports without skips stay as they were).
fn skipped_attribute(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" skipped=\"{n}\"")
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// XML attribute/text escaping; control characters XML 1.0 forbids are dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::run::AssertionResult;
    use super::*;

    fn result(name: &str, passed: bool, error: Option<&str>) -> RequestResult {
        RequestResult {
            file: "api-requests/patients.http".into(),
            name: name.into(),
            line: 3,
            method: "POST".into(),
            url: "http://127.0.0.1:4004/api/patients?a=1&b=<2>".into(),
            status: error.is_none().then_some(201),
            duration_ms: 12,
            assertions: vec![AssertionResult {
                assertion: "status == 201".into(),
                passed,
                message: if passed {
                    String::new()
                } else {
                    "actual: 400".into()
                },
            }],
            error: error.map(str::to_owned),
            skipped: None,
            response_body: String::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn report_counts_and_escapes() {
        let xml = render(&[(
            "patients.http".into(),
            vec![
                result("ok", true, None),
                result("bad", false, None),
                result("err", true, Some("cannot reach \"x\"")),
            ],
        )]);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"pms request\" tests=\"3\" failures=\"1\" errors=\"1\" time=\"0.036\">"), "{xml}");
        assert!(xml.contains("<testsuite name=\"patients.http\" tests=\"3\" failures=\"1\" errors=\"1\" time=\"0.036\">"));
        assert!(
            xml.contains("<testcase name=\"ok\" classname=\"patients.http\" time=\"0.012\"/>"),
            "{xml}"
        );
        assert!(xml.contains("<failure message=\"?? status == 201 (actual: 400)\">POST http://127.0.0.1:4004/api/patients?a=1&amp;b=&lt;2&gt; (line 3): status 201&#10;?? status == 201 (actual: 400)</failure>"), "{xml}");
        assert!(xml.contains("<error message=\"cannot reach &quot;x&quot;\"/>"));
        assert!(xml.ends_with("</testsuites>\n"));
    }

    #[test]
    fn names_are_stable_and_unique_per_file() {
        let mut first = result("GET {{host}}/api/patients/{{id}}", true, None);
        first.url = "http://127.0.0.1:4004/api/patients/6f1c".into();
        let mut second = first.clone();
        second.url = "http://127.0.0.1:4004/api/patients/99aa".into();
        let xml = render(&[("p.http".into(), vec![first, second])]);
        assert!(
            xml.contains("<testcase name=\"GET {{host}}/api/patients/{{id}}\" "),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"GET {{host}}/api/patients/{{id}} #2\" "),
            "{xml}"
        );
        assert!(!xml.contains("6f1c") && !xml.contains("99aa"), "{xml}");
    }
}
