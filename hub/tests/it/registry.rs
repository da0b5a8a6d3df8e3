//! Registry files: what parses, and errors that say where and what to do.

use sangdam_hub::{add_device, Registry, RegistryError};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn err(text: &str) -> String {
    let e = Registry::from_toml_str(text).expect_err("should be refused");
    e.to_string()
}

#[test]
fn parses_devices_with_korean_branches() {
    let r = Registry::from_toml_str(&format!(
        "[[device]]\nid = \"busan-03\"\nkey = \"{KEY}\"\nbranch = \"부산 3지점\"\n\n\
         [[device]]\nid = \"seoul.gangnam_01\"\nkey = \"{}\"\nbranch = \"  서울 강남지점 \"\n",
        &KEY[..32]
    ))
    .unwrap();
    assert_eq!(r.len(), 2);
    let d = r.get("busan-03").unwrap();
    assert_eq!(d.branch, "부산 3지점");
    assert_eq!(d.key.len(), 32);
    assert_eq!(d.key[1], 0x11);
    assert_eq!(r.get("seoul.gangnam_01").unwrap().branch, "서울 강남지점");
    assert_eq!(r.get("seoul.gangnam_01").unwrap().key.len(), 16);
    assert!(r.get("daegu-01").is_none());
    // The key never shows in Debug output.
    assert!(!format!("{d:?}").contains("112233"), "{d:?}");
    // An empty file is an empty registry.
    assert!(Registry::from_toml_str("").unwrap().is_empty());
}

#[test]
fn insert_adds_and_replaces() {
    let mut r = Registry::new();
    r.insert("a", vec![1; 16], "가 지점");
    r.insert("a", vec![2; 16], "나 지점");
    assert_eq!(r.len(), 1);
    assert_eq!(r.get("a").unwrap().key, vec![2; 16]);
    assert_eq!(r.get("a").unwrap().branch, "나 지점");
}

#[test]
fn entry_errors_name_the_entry_and_the_fix() {
    let ok = format!("[[device]]\nid = \"ok-1\"\nkey = \"{KEY}\"\nbranch = \"가\"\n");
    let short = err(&format!(
        "{ok}[[device]]\nid = \"busan-03\"\nkey = \"abcd\"\nbranch = \"부산\"\n"
    ));
    assert!(short.contains("entry #2"), "{short}");
    assert!(short.contains("busan-03"), "{short}");
    assert!(short.contains("openssl rand -hex 32"), "{short}");
    let not_hex = err(&format!(
        "[[device]]\nid = \"x\"\nkey = \"{}\"\nbranch = \"부산\"\n",
        "g".repeat(64)
    ));
    assert!(not_hex.contains("not hex"), "{not_hex}");
    let bad_id = err(&format!(
        "[[device]]\nid = \"부산 03\"\nkey = \"{KEY}\"\nbranch = \"부산\"\n"
    ));
    assert!(bad_id.contains("ASCII letters"), "{bad_id}");
    let empty_branch = err(&format!(
        "[[device]]\nid = \"x\"\nkey = \"{KEY}\"\nbranch = \" \"\n"
    ));
    assert!(empty_branch.contains("branch is empty"), "{empty_branch}");
    let twice = err(&format!("{ok}{ok}"));
    assert!(
        twice.contains("entry #2") && twice.contains("twice"),
        "{twice}"
    );
}

#[test]
fn syntax_errors_show_the_expected_shape() {
    let missing = err("[[device]]\nid = \"x\"\nbranch = \"부산\"\n");
    assert!(missing.contains("key"), "{missing}");
    assert!(
        missing.contains("[[device]]"),
        "the message shows an example: {missing}"
    );
    let typo = err(&format!(
        "[[device]]\nid = \"x\"\nkey = \"{KEY}\"\nbranch = \"b\"\nbrnach = \"c\"\n"
    ));
    assert!(typo.contains("brnach"), "{typo}");
    let garbage = err("this is not toml");
    assert!(garbage.contains("not valid TOML"), "{garbage}");
    let wrong_table = err("[device]\nid = \"x\"\n");
    assert!(wrong_table.contains("not valid TOML"), "{wrong_table}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let e = Registry::load(&missing).unwrap_err();
    assert!(matches!(e, RegistryError::Read { .. }));
    let text = e.to_string();
    assert!(
        text.contains("nope.toml") && text.contains("add-device"),
        "{text}"
    );

    let bad = dir.path().join("registry.toml");
    std::fs::write(
        &bad,
        "[[device]]\nid = \"x\"\nkey = \"12\"\nbranch = \"b\"\n",
    )
    .unwrap();
    private(&bad);
    let text = Registry::load(&bad).unwrap_err().to_string();
    assert!(text.contains(&bad.display().to_string()), "{text}");
    assert!(text.contains("entry #1"), "{text}");
}

#[test]
fn add_device_appends_a_fresh_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    let k1 = add_device(&path, "busan-03", "부산 3지점").unwrap();
    let k2 = add_device(&path, "seoul-01", "서울 \"본점\"").unwrap();
    assert_eq!((k1.len(), k2.len()), (32, 32));
    assert_ne!(k1, k2);
    let r = Registry::load(&path).unwrap();
    assert_eq!(r.get("busan-03").unwrap().key, k1);
    assert_eq!(r.get("seoul-01").unwrap().branch, "서울 \"본점\"");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the registry holds keys: {mode:o}");
    }
    let again = add_device(&path, "busan-03", "부산")
        .unwrap_err()
        .to_string();
    assert!(again.contains("already registered"), "{again}");
    let bad = add_device(&path, "bad id", "부산").unwrap_err().to_string();
    assert!(bad.contains("ASCII"), "{bad}");
    assert_eq!(
        Registry::load(&path).unwrap().len(),
        2,
        "failed adds wrote nothing"
    );
}

/// Makes `path` readable by its owner only, as a registry must be.
fn private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_registry_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    std::fs::write(
        &path,
        format!("[[device]]\nid = \"busan-03\"\nkey = \"{KEY}\"\nbranch = \"부산\"\n"),
    )
    .unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = Registry::load(&path).unwrap_err();
        assert!(matches!(e, RegistryError::Exposed { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(&format!("{mode:04o}")), "{text}");
        assert!(
            text.contains("chmod 600") && text.contains("chown sangdam-hub"),
            "{text}"
        );
        assert!(!text.contains(&KEY[..8]), "{text}");
        // add-device does not append a new key to it either.
        let e = add_device(&path, "seoul-01", "서울").unwrap_err();
        assert!(matches!(e, RegistryError::Exposed { .. }), "{e}");
    }
    private(&path);
    assert_eq!(Registry::load(&path).unwrap().len(), 1);
    // A syntax error does not quote the line (it may hold a key).
    std::fs::write(&path, format!("[[device]]\nid = \"x\"\nkey = {KEY}\n")).unwrap();
    let text = Registry::load(&path).unwrap_err().to_string();
    assert!(
        text.contains("line 3") && !text.contains(&KEY[..8]),
        "{text}"
    );
}
