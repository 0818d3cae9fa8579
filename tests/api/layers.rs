//! The layers of ARCHITECTURE.md, held: no module imports from a layer above its own.
use std::path::Path;

/// Lower numbers are lower layers (ARCHITECTURE.md, "Layers").
const LAYERS: [(&str, u8); 20] = [
    ("config", 0),
    ("random", 0),
    ("memory", 0),
    ("telemetry", 0),
    ("crypto", 0),
    ("domain", 1),
    ("db", 2),
    ("mail", 3),
    ("auth", 4),
    ("accounts", 5),
    ("oauth", 5),
    ("user_import", 5),
    ("export", 5),
    ("error", 6),
    ("web", 7),
    ("metrics", 7),
    ("startup", 8),
    ("background", 8),
    ("commands", 8),
    ("main", 9),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(name, _)| *name == module).map(|(_, rank)| *rank)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_from_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_str().unwrap().trim_end_matches(".rs");
        let Some(own) = layer(top) else { continue };
        let text = std::fs::read_to_string(file).unwrap();
        for (at, _) in text.match_indices("crate::") {
            let used: String =
                text[at + "crate::".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if let Some(theirs) = layer(&used)
                && theirs > own
            {
                upward.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(upward.len() < files.len(), "the scan read the sources");
    assert!(upward.is_empty(), "imports that run up the layers:\n{}", upward.join("\n"));
}

/// Top-level `src/web` modules every page may use: the request context, extractors, layout,
/// errors, … (ARCHITECTURE.md, "Module map"). Any other module is a page (or an area of
/// pages), and so is every module below an area except those named `shared`.
const SHARED_WEB_MODULES: [&str; 23] = [
    "app_return",
    "client",
    "context",
    "cookies",
    "cross_site",
    "downloads",
    "endpoint",
    "errors",
    "extractors",
    "flash",
    "form",
    "group_members",
    "guard",
    "json",
    "layout",
    "limits",
    "mailed_links",
    "params",
    "passkey_shapes",
    "signed_in",
    "tables",
    "time_words",
    "mod",
];

#[test]
fn nothing_below_the_web_layer_speaks_http() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let web = layer("web").unwrap();
    let mut speaking = Vec::new();
    let mut below = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_str().unwrap().trim_end_matches(".rs");
        let Some(own) = layer(top) else { continue };
        if own >= web {
            continue;
        }
        below += 1;
        let text = std::fs::read_to_string(file).unwrap();
        if text.contains("actix_web") || text.contains("actix_files") {
            speaking.push(relative.display().to_string());
        }
    }
    assert!(below > 50, "the scan read the lower layers ({below} files)");
    assert!(speaking.is_empty(), "modules below `web` that import actix-web:\n{}", speaking.join("\n"));
}

/// The module path of a file under `src/web` (`login/passkey.rs` → `["login", "passkey"]`).
fn web_module(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_str().unwrap().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts
}

fn is_page(module: &[String]) -> bool {
    match module {
        [] => false,
        [top, ..] if SHARED_WEB_MODULES.contains(&top.as_str()) => false,
        [.., last] => last != "shared",
    }
}

#[test]
fn no_page_module_imports_a_sibling_page_module() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut files = Vec::new();
    rust_files(&web, &mut files);
    let modules: Vec<Vec<String>> = files.iter().map(|file| web_module(file.strip_prefix(&web).unwrap())).collect();
    let mut crossing = Vec::new();
    for (file, own) in files.iter().zip(&modules) {
        // The API description gathers every JSON shape for the OpenAPI document.
        if !is_page(own) || own == &["api", "openapi"] {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let path_after = |at: usize| -> Vec<String> {
            let path: String =
                text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            path.split("::").filter(|part| !part.is_empty()).map(str::to_owned).collect()
        };
        let mut used: Vec<Vec<String>> = Vec::new();
        for (at, _) in text.match_indices("crate::web::") {
            used.push(path_after(at + "crate::web::".len()));
        }
        for (at, _) in text.match_indices("super::") {
            if at > 0 && text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path = own[..own.len() - 1].to_vec();
            path.extend(path_after(at + "super::".len()));
            used.push(path);
        }
        for path in used {
            let Some(target) =
                (1..=path.len()).rev().map(|len| &path[..len]).find(|prefix| modules.iter().any(|m| m == prefix))
            else {
                continue;
            };
            let related = own.starts_with(target) || target.starts_with(own);
            if is_page(target) && !related {
                crossing.push(format!("web::{} uses web::{}", own.join("::"), target.join("::")));
            }
        }
    }
    assert!(modules.len() > 40, "the scan read the web modules");
    crossing.sort();
    crossing.dedup();
    assert!(
        crossing.is_empty(),
        "page modules that import a sibling page (move what they share to a shared module):\n{}",
        crossing.join("\n")
    );
}

/// Which modules of `src/{area}` each module imports (`crate::{area}::…` and `super::…`),
/// leaving out its own tests and its ancestors (an area's `mod.rs` declares its children).
fn import_graph(area: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(area);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: Vec<Vec<String>> = files.iter().map(|file| web_module(file.strip_prefix(&root).unwrap())).collect();
    let prefix = format!("crate::{area}::");
    files
        .iter()
        .zip(&modules)
        .filter(|(_, own)| !own.is_empty())
        .map(|(file, own)| {
            let text = std::fs::read_to_string(file).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap();
            let path_after = |at: usize| -> Vec<String> {
                let path: String =
                    text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                path.split("::").filter(|part| !part.is_empty()).map(str::to_owned).collect()
            };
            let mut paths: Vec<Vec<String>> =
                text.match_indices(&prefix).map(|(at, _)| path_after(at + prefix.len())).collect();
            for (at, _) in text.match_indices("super::") {
                if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut path = own[..own.len() - 1].to_vec();
                path.extend(path_after(at + "super::".len()));
                paths.push(path);
            }
            let mut targets: Vec<Vec<String>> = paths
                .iter()
                .filter_map(|path| {
                    (1..=path.len()).rev().map(|len| path[..len].to_vec()).find(|prefix| modules.contains(prefix))
                })
                .filter(|target| target != own && !own.starts_with(target))
                .collect();
            targets.sort();
            targets.dedup();
            (own.clone(), targets)
        })
        .collect()
}

#[test]
fn auth_and_web_have_no_import_circles() {
    for area in ["auth", "web", "accounts", "db", "mail"] {
        let graph = import_graph(area);
        assert!(graph.len() > 4, "the scan read src/{area}");
        // Depth-first search; a module met again while still on the path closes a circle.
        fn visit<'g>(
            module: &'g Vec<String>,
            graph: &'g [(Vec<String>, Vec<Vec<String>>)],
            path: &mut Vec<&'g Vec<String>>,
            done: &mut Vec<&'g Vec<String>>,
        ) -> Option<Vec<String>> {
            if let Some(start) = path.iter().position(|on| *on == module) {
                let mut circle: Vec<String> = path[start..].iter().map(|m| m.join("::")).collect();
                circle.push(module.join("::"));
                return Some(circle);
            }
            if done.contains(&module) {
                return None;
            }
            path.push(module);
            let targets = graph.iter().find(|(own, _)| own == module).map(|(_, targets)| targets.as_slice());
            for target in targets.unwrap_or_default() {
                if let Some(circle) = visit(target, graph, path, done) {
                    return Some(circle);
                }
            }
            path.pop();
            done.push(module);
            None
        }
        let mut done = Vec::new();
        for (module, _) in &graph {
            let circle = visit(module, &graph, &mut Vec::new(), &mut done);
            assert!(circle.is_none(), "an import circle in src/{area}: {}", circle.unwrap().join(" → "));
        }
    }
}
