//! The `ember` binary: exit status and messages on bad input.

use std::process::{Command, Output};

fn ember(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .output()
        .expect("run ember")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn corrupt_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.ember");
    std::fs::write(&bad, b"not a model at all").unwrap();
    let path = bad.to_str().unwrap();
    for args in [
        vec!["inspect", path],
        vec!["eval", "--model", path, "--samples", "5"],
    ] {
        let o = ember(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("corrupt.ember") && e.contains("bad magic"),
            "{args:?}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
    // A valid header with a flipped payload byte.
    let mut bytes = ember_runtime::doc_example_model().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&bad, &bytes).unwrap();
    let o = ember(&["inspect", path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("checksum mismatch"), "{}", stderr(&o));
}

#[test]
fn inspect_valid_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("doc.ember");
    std::fs::write(&p, ember_runtime::doc_example_model()).unwrap();
    let o = ember(&["inspect", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("[0] dense   4x4x1 -> 4") && out.contains("arena"),
        "{out}"
    );
}

#[test]
fn missing_files_name_the_path() {
    let o = ember(&["train", "--recipe", "/nonexistent/r.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/r.toml"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("doc.ember");
    std::fs::write(&p, ember_runtime::doc_example_model()).unwrap();
    let o = ember(&[
        "eval",
        "--model",
        p.to_str().unwrap(),
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no t10k-images-idx3-ubyte"),
        "{}",
        stderr(&o)
    );
}
