//! The layers of ARCHITECTURE.md, held: no module imports from a layer above its own.
use std::path::Path;

/// Lower numbers are lower layers (ARCHITECTURE.md, "Layers").
const LAYERS: [(&str, u8); 18] = [
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
    ("user_import", 5),
    ("export", 5),
    ("error", 6),
    ("web", 7),
    ("metrics", 7),
    ("startup", 8),
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
