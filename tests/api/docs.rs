//! The guides quote the code they explain: a quoted block that no longer matches its file
//! fails here, so the guide is rewritten with the code.
use std::path::Path;

/// Each `## … \`path\`` heading of `guide`, with the fenced code blocks under it.
fn quoted_blocks(guide: &str) -> Vec<(String, String)> {
    let mut file = None;
    let mut blocks = Vec::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("## ") {
            file = line.split('`').nth(1).map(str::to_owned);
        } else if line.starts_with("```") {
            let block: Vec<&str> = lines.by_ref().take_while(|line| !line.starts_with("```")).collect();
            let file = file.clone().expect("a code block under a heading that names its file");
            blocks.push((file, block.join("\n")));
        }
    }
    blocks
}

#[test]
fn the_guide_to_adding_a_private_page_quotes_the_code_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/adding-a-page.md")).unwrap();
    let blocks = quoted_blocks(&guide);
    assert!(blocks.len() >= 5, "the guide quotes the handler, the template, the route and the test");
    for (file, block) in blocks {
        let text = std::fs::read_to_string(root.join(&file)).unwrap_or_else(|_| panic!("the guide names {file}"));
        assert!(text.contains(&block), "docs/adding-a-page.md quotes {file}, which no longer has:\n{block}");
    }
}

#[test]
fn the_apache_configuration_in_the_docs_is_the_one_the_test_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test = std::fs::read_to_string(root.join("tests/api/apache_oidc.rs")).unwrap();
    let tested = test
        .split("# --- the part the documentation gives ---\n")
        .nth(1)
        .unwrap()
        .split("# --- end ---")
        .next()
        .unwrap();
    let guide = std::fs::read_to_string(root.join("docs/openid-connect.md")).unwrap();
    let documented = guide.split("```apache\n").nth(1).expect("an apache block").split("```").next().unwrap();
    // The same directives in the same order; the values are the test's loopback ones.
    let words = |text: &str| -> Vec<String> {
        text.lines().filter_map(|line| line.split_whitespace().next()).map(str::to_owned).collect()
    };
    assert_eq!(words(documented), words(tested), "docs/openid-connect.md and tests/api/apache_oidc.rs differ");
    for line in [
        "OIDCScope \"openid profile email groups\"",
        "OIDCPKCEMethod S256",
        "OIDCRemoteUserClaim preferred_username",
        "Require valid-user",
    ] {
        assert!(documented.contains(line) && tested.contains(line), "{line}");
    }
}
