//! Issue 13 end to end: with a sloppy model (git-prefixed, relative, mis-cased and made-up
//! paths, look-alike lines, a range that starts on a blank line) every finding is posted,
//! inline or in the review body, and the suggestion replaces exactly its thread's lines.

use serde_json::{Value, json};

use crate::support::app::{REPO, TestApp};
use crate::support::github::{PullFile, PullRequest};
use crate::support::llm::Reply;

const HEAD: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
const JAVA: &str = "src/main/java/com/acme/Account.java";

/// The new Java file at head; the PR adds it whole.
const ACCOUNT: &str = "package com.acme;

public class Account {
    private final String owner;
    private final String password;

    public Account(String owner, String password) {
        this.owner = owner;
        this.password = password;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Account && ((Account) o).owner.equals(owner);
    }

    @Override
    public String toString() {
        return \"Account(\" + owner + \", \" + password + \")\";
    }

    public int balance() {
        int total = 0;
        return total;
    }
}
";

fn added(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut patch = format!("@@ -0,0 +1,{} @@", lines.len());
    for l in lines {
        patch.push_str("\n+");
        patch.push_str(l);
    }
    patch
}

fn finding(path: &str, start: Option<u64>, line: u64, code: &str, title: &str) -> Value {
    json!({"path": path, "line": line, "start_line": start, "severity": "warning",
        "category": "bug", "title": title, "body": "Explain.", "code": code, "suggestion": null})
}

/// The ```` ```suggestion ```` block's content in a thread's body.
fn suggested(body: &str) -> &str {
    let start = body.find("```suggestion\n").expect("a suggestion block") + "```suggestion\n".len();
    let len = body[start..].find("```").expect("a closed block");
    &body[start..start + len]
}

#[tokio::test]
async fn every_finding_of_a_sloppy_model_is_posted_inline_or_in_the_body() {
    let app = TestApp::start().await;
    app.github().add_pull(
        REPO,
        PullRequest {
            number: 13,
            title: "Accounts".into(),
            head_sha: HEAD.into(),
            user_login: "alice".into(),
            ..Default::default()
        },
    );
    let readme = "@@ -1,2 +1,3 @@\n # Acme\n+Accounts keep a password.\n Build with Maven.";
    app.github().set_pull_files(
        REPO,
        13,
        vec![
            PullFile {
                status: "added".into(),
                ..PullFile::from_patch(JAVA, &added(ACCOUNT))
            },
            PullFile::from_patch("README.md", readme),
        ],
    );
    app.github().put_content(REPO, HEAD, JAVA, ACCOUNT);
    let mut fix = finding(
        &format!("b/{JAVA}"),
        Some(21),
        24,
        "public int balance() {\n        int total = 0;\n        return total;",
        "int overflows for large balances",
    );
    // Replaces lines 21..=24 as the model cited them, the blank line 21 included.
    fix["suggestion"] =
        json!("\n    public long balance() {\n        long total = 0;\n        return total;\n");
    app.llm().push(Reply::findings(json!([
        // Two problems on identical `@Override` lines, same category.
        finding(
            &format!("./{JAVA}"),
            None,
            12,
            "@Override",
            "equals without hashCode"
        ),
        finding(JAVA, None, 17, "@Override", "toString prints the password"),
        finding(
            "SRC/Main/Java/com/acme/account.java",
            None,
            14,
            "return o instanceof Account",
            "instanceof admits subclasses"
        ),
        fix,
        finding(
            "b/README.md",
            None,
            2,
            "Accounts keep a password.",
            "say how it is stored"
        ),
        // Files the PR does not have.
        finding(
            "src/main/java/com/acme/Ledger.java",
            None,
            5,
            "",
            "ledger is not thread safe"
        ),
        finding(
            "a/docs/missing.md",
            None,
            2,
            "",
            "document the password policy"
        ),
    ])));
    app.deliver("pull_request", &app.pull_request_event("opened", REPO, 13))
        .await;
    app.wait_idle().await;

    let posts: Vec<u16> = app
        .github()
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_only().ends_with("/pulls/13/reviews"))
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [200], "accepted the first time");
    let reviews = app.github().reviews(REPO, 13);
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0];
    let mut threads: Vec<(&str, Option<u64>, u64)> = r
        .comments
        .iter()
        .map(|c| (c.path.as_str(), c.start_line, c.line))
        .collect();
    threads.sort();
    assert_eq!(
        threads,
        [
            ("README.md", None, 2),
            (JAVA, None, 12),
            (JAVA, None, 14),
            (JAVA, None, 17),
            (JAVA, Some(22), 24),
        ]
    );
    assert!(
        r.body
            .contains("**7 new finding(s)**: 5 inline, 2 not on a changed line."),
        "{}",
        r.body
    );
    for listed in [
        "`src/main/java/com/acme/Ledger.java` line 5",
        "`a/docs/missing.md` line 2",
    ] {
        assert!(r.body.contains(listed), "{listed}: {}", r.body);
    }
    assert!(
        !r.body.contains("reported on this pull request before"),
        "{}",
        r.body
    );

    // The suggestion, applied as GitHub would, changes the thread's lines and nothing else.
    let thread = r
        .comments
        .iter()
        .find(|c| c.line == 24)
        .expect("the fix's thread");
    let lines: Vec<&str> = ACCOUNT.lines().collect();
    let applied = [
        &lines[..21],
        &suggested(&thread.body).lines().collect::<Vec<_>>()[..],
        &lines[24..],
    ]
    .concat()
    .join("\n")
        + "\n";
    assert_eq!(
        applied,
        ACCOUNT
            .replace("int balance", "long balance")
            .replace("int total", "long total")
    );

    let summary = &app.github().issue_comments(REPO, 13)[0].body;
    assert!(
        summary.contains("🟠 7 warning, ⚪ 0 nit. 5 inline, 2 in the review body."),
        "{summary}"
    );
    app.finish().await;
}
