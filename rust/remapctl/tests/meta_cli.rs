//! `remapctl meta` on hand-made spare images: restore, dump, check, repair, and
//! refusal when nothing valid is left.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const COPY_SECTORS: [u64; 5] = [0, 1024, 2048, 4096, 8192];
const IMAGE_BYTES: u64 = 64 << 20;

fn remapctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remapctl"))
        .args(args)
        .output()
        .expect("run remapctl")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("remapctl-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn state_json(version: u64, extra_block: u64) -> String {
    format!(
        r#"{{
  "format_version": 2,
  "uuid": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0",
  "version": {version},
  "fingerprint": {{ "main_sectors": 2097152, "logical_block_bytes": 512, "physical_block_bytes": 4096, "identity": "naa:5000c500a1b2c3d4" }},
  "config": {{ "block_bytes": 4096, "read_retries": 1, "target_sectors": 2097152, "flags": 0,
              "scan_interval_s": 0, "scan_rate_kibs": 0, "predict_interval_s": 0, "alert_min_level": 0 }},
  "spares": [ {{ "uuid": "11111111-2222-4333-8444-555555555555", "sectors": 131072, "data_start": 9216,
                "data_blocks": 15232, "role": 0, "priority": 0, "state": 0, "logical_block_bytes": 512 }} ],
  "scan": {{ "cursor_block": 100, "passes": 1, "last_pass_end_s": 0 }},
  "entries": [
    {{ "block": 5, "state": "remapped", "spare": 0, "spare_block": 0 }},
    {{ "block": 9, "state": "pending" }},
    {{ "block": 70, "state": "remapped", "spare": 0, "spare_block": 1, "lost_sectors": [0, 7] }},
    {{ "block": {extra_block}, "state": "remapped", "spare": 0, "spare_block": 2 }}
  ]
}}"#
    )
}

/// A zero-filled (sparse) image of IMAGE_BYTES.
fn blank_image(dir: &Scratch, name: &str) -> PathBuf {
    let img = dir.path(name);
    std::fs::File::create(&img)
        .unwrap()
        .set_len(IMAGE_BYTES)
        .unwrap();
    img
}

fn make_image(dir: &Scratch, name: &str, version: u64) -> PathBuf {
    let img = blank_image(dir, name);
    let js = dir.path(&format!("{name}.json"));
    std::fs::write(&js, state_json(version, 1000)).unwrap();
    restore(&js, &img);
    img
}

fn poke(img: &Path, off: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    f.write_all(bytes).unwrap();
}

fn copy_bytes(img: &Path, i: usize, n: usize) -> Vec<u8> {
    let all = std::fs::read(img).unwrap();
    let o = COPY_SECTORS[i] as usize * 512;
    all[o..o + n].to_vec()
}

#[test]
fn a_format_1_dump_restores_as_format_2() {
    // A dump of a format 1 copy has no spare block size: restore writes format 2 with
    // the size of what it writes to (an image file: 512 bytes).
    let d = Scratch::new("v1json");
    let v1 = state_json(4, 1000)
        .replace("\"format_version\": 2", "\"format_version\": 1")
        .replace(", \"logical_block_bytes\": 512 }", " }");
    assert!(v1.contains("\"format_version\": 1") && !v1.contains("\"state\": 0, \"logical"));
    let js = d.path("v1.json");
    std::fs::write(&js, v1).unwrap();
    let img = blank_image(&d, "v1.img");
    restore(&js, &img);
    let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
    let dumped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(dumped["format_version"], 2);
    assert_eq!(dumped["spares"][0]["logical_block_bytes"], 512);
    assert_eq!(dumped["entries"].as_array().unwrap().len(), 4);
}

/// A spare image holding the module's format 1 fixture (copy 0 of
/// tests/fixtures/make-v1-spare.sh's spare) in all five copies.
fn v1_image(dir: &Scratch) -> PathBuf {
    let copy0 = include_bytes!("../../remap-core/tests/fixtures/v1-copy0.bin");
    let img = dir.path("v1.img");
    let mut all = vec![0u8; 16384 * 512];
    for &sector in &COPY_SECTORS {
        let mut c = copy0.to_vec();
        remap_core::meta::set_copy_sector(&mut c, sector).unwrap();
        all[sector as usize * 512..][..c.len()].copy_from_slice(&c);
    }
    std::fs::write(&img, all).unwrap();
    img
}

#[test]
fn repair_upgrades_a_format_1_spare() {
    let d = Scratch::new("v1repair");
    let img = v1_image(&d);
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // One copy damaged: the repair writes every copy in format 2 as version 8.
    poke(&img, COPY_SECTORS[2] * 512 + 300, &[0xff; 4]);
    let o = remapctl(&["meta", "repair", img.to_str().unwrap()]);
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("upgraded from format 1 (version 7) to format 2 (version 8)"));
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
    let dumped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            dumped["format_version"].as_u64(),
            dumped["version"].as_u64()
        ),
        (Some(2), Some(8))
    );
    assert_eq!(dumped["counts"]["runs"], 1);
    assert_eq!(dumped["counts"]["remapped"], 6);
}

#[test]
fn restore_dump_round_trip() {
    let d = Scratch::new("roundtrip");
    let img = make_image(&d, "a.img", 7);
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("clean"));
    let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let dumped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut want: serde_json::Value = serde_json::from_str(&state_json(7, 1000)).unwrap();
    // Dump adds the copy it read, the spare its copies name and the counts.
    want["copy"] = 0.into();
    want["spare_uuid"] = "11111111-2222-4333-8444-555555555555".into();
    want["counts"] =
        serde_json::json!({"remapped": 3, "lost": 1, "pending": 1, "singles": 3, "runs": 0});
    assert_eq!(dumped, want);
    // The dump restores to an identical image.
    let js = d.path("dump.json");
    std::fs::write(&js, &o.stdout).unwrap();
    let img2 = blank_image(&d, "b.img");
    assert_eq!(
        code(&remapctl(&[
            "meta",
            "restore",
            js.to_str().unwrap(),
            img2.to_str().unwrap()
        ])),
        0
    );
    assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(&img2).unwrap());
}

#[test]
fn four_damaged_copies_are_named_and_repaired() {
    let d = Scratch::new("repair4");
    for keep in 0..5 {
        let img = make_image(&d, "a.img", 3);
        let good = copy_bytes(&img, keep, 4096);
        // Each damaged copy gets a different kind of damage.
        let mut kinds = Vec::new();
        for (n, i) in (0..5).filter(|&i| i != keep).enumerate() {
            let off = COPY_SECTORS[i] * 512;
            match n {
                0 => {
                    poke(&img, off + 600, &[0xff]);
                    kinds.push((i, "body checksum"));
                }
                1 => {
                    poke(&img, off, &vec![0u8; 4096]);
                    kinds.push((i, "blank"));
                }
                2 => {
                    poke(&img, off, b"garbage!");
                    kinds.push((i, "bad magic"));
                }
                _ => {
                    poke(&img, off + 40, &[0x99]);
                    kinds.push((i, "wrong location"));
                }
            }
        }
        let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
        assert_eq!(code(&o), 1, "{}", stdout(&o));
        let out = stdout(&o);
        for (i, k) in &kinds {
            let line = out
                .lines()
                .find(|l| l.contains(&format!("copy {i} ")))
                .unwrap();
            assert!(line.contains(k), "copy {i}: want {k}: {line}");
        }
        let o = remapctl(&["meta", "repair", img.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(stdout(&o).matches("rewritten").count(), 4);
        assert_eq!(
            code(&remapctl(&["meta", "check", img.to_str().unwrap()])),
            0
        );
        // The repaired copies equal the survivor apart from the copy-sector header field.
        for i in 0..5 {
            let c = copy_bytes(&img, i, 4096);
            assert_eq!(c[128..], good[128..], "copy {i}");
        }
        let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["version"], 3);
        assert_eq!(v["entries"].as_array().unwrap().len(), 4);
    }
}

#[test]
fn stale_copy_is_replaced_by_the_newest() {
    let d = Scratch::new("stale");
    let old = make_image(&d, "old.img", 4);
    let new = make_image(&d, "new.img", 5);
    // Copies 1..4 of the new image go back to version 4 (a commit cut after copy 0).
    let old_bytes = std::fs::read(&old).unwrap();
    for s in &COPY_SECTORS[1..] {
        let o = *s as usize * 512;
        poke(&new, o as u64, &old_bytes[o..o + 512 * 1024]);
    }
    let o = remapctl(&["meta", "check", new.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        stdout(&o).matches("stale (version 4 < 5)").count(),
        4,
        "{}",
        stdout(&o)
    );
    assert_eq!(
        code(&remapctl(&["meta", "repair", new.to_str().unwrap()])),
        0
    );
    let o = remapctl(&["meta", "dump", new.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], 5);
}

#[test]
fn all_five_damaged_refuses_and_writes_nothing() {
    let d = Scratch::new("refuse");
    let img = make_image(&d, "a.img", 9);
    for s in COPY_SECTORS {
        poke(&img, s * 512 + 700, &[0x42, 0x42]);
    }
    let before = std::fs::read(&img).unwrap();
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert_eq!(stdout(&o).matches("checksum").count(), 5, "{}", stdout(&o));
    let o = remapctl(&["meta", "repair", img.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing was written"));
    assert_eq!(code(&remapctl(&["meta", "dump", img.to_str().unwrap()])), 2);
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "refusal must not write"
    );
}

#[test]
fn blank_foreign_and_bad_input() {
    let d = Scratch::new("blank");
    let img = blank_image(&d, "blank.img");
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert_eq!(code(&o), 3);
    assert!(stdout(&o).contains("blank"));
    // Foreign data: refused by check and repair.
    poke(&img, 0, &[0x5a; 8192]);
    assert_eq!(
        code(&remapctl(&["meta", "check", img.to_str().unwrap()])),
        2
    );
    // A JSON whose entries are out of order is rejected before anything is written.
    let before = std::fs::read(&img).unwrap();
    let js = d.path("bad.json");
    std::fs::write(&js, state_json(1, 2)).unwrap();
    let o = remapctl(&[
        "meta",
        "restore",
        js.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert_eq!(std::fs::read(&img).unwrap(), before);
    // Unknown fields are rejected too (stable names, no silent drops).
    std::fs::write(
        &js,
        state_json(1, 1000).replacen("\"version\"", "\"versoin\"", 1),
    )
    .unwrap();
    assert_eq!(
        code(&remapctl(&[
            "meta",
            "restore",
            js.to_str().unwrap(),
            img.to_str().unwrap()
        ])),
        2
    );
    // A UUID filter that matches nothing: every copy is foreign.
    let good = make_image(&d, "g.img", 1);
    let o = remapctl(&[
        "meta",
        "check",
        "--uuid",
        "00000000-0000-4000-8000-000000000000",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert_eq!(stdout(&o).matches("another setup").count(), 5);
}

#[test]
fn failed_mode_and_identity_in_dump_and_check() {
    let d = Scratch::new("failed");
    let img = blank_image(&d, "f.img");
    let js = d.path("f.json");
    let restore = |json: &str| {
        std::fs::write(&js, json).unwrap();
        remapctl(&[
            "meta",
            "restore",
            js.to_str().unwrap(),
            img.to_str().unwrap(),
        ])
    };
    let failed = state_json(4, 1000).replace("\"flags\": 0", "\"flags\": 1");
    assert_eq!(code(&restore(&failed)), 0);
    let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let dumped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(dumped["config"]["flags"], 1);
    assert_eq!(dumped["config"]["failed"], true);
    assert_eq!(dumped["fingerprint"]["identity"], "naa:5000c500a1b2c3d4");
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("mode: failed"), "{}", stdout(&o));
    let o = remapctl(&["meta", "check", "--json", img.to_str().unwrap()]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["failed"], true);
    // The dump restores to the same image.
    let before = std::fs::read(&img).unwrap();
    let dump_text = stdout(&remapctl(&["meta", "dump", img.to_str().unwrap()]));
    assert_eq!(code(&restore(&dump_text)), 0);
    assert_eq!(std::fs::read(&img).unwrap(), before);
    // A "failed" that disagrees with the flags, and an identity that follows no
    // encoding, are refused before anything is written.
    let o = restore(&state_json(4, 1000).replace("\"flags\": 0", "\"flags\": 0, \"failed\": true"));
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("failed"));
    let o = restore(&state_json(4, 1000).replace("naa:5000c500a1b2c3d4", "disk-7"));
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad identity"));
    assert_eq!(std::fs::read(&img).unwrap(), before);
    // A state without the flag shows no mode line.
    assert_eq!(code(&restore(&state_json(5, 1000))), 0);
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert!(!stdout(&o).contains("mode: failed"));
    let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
    let dumped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(dumped["config"].get("failed").is_none());
}

#[test]
fn a_base_written_for_a_4k_spare_zeroes_a_4k_block_after_it() {
    // An image file reads as 512-byte blocks; the state records a 4 KiB-sector spare,
    // whose module appends the first record at the next 4 KiB boundary: that block must
    // be zero after the base (stale records there must not chain onto it).
    let d = Scratch::new("zero4k");
    let img = blank_image(&d, "a.img");
    poke(&img, 0, &vec![0xaa; 512 * 1024]);
    let js = d.path("a.json");
    let text = state_json(3, 1000).replace(
        "\"state\": 0, \"logical_block_bytes\": 512",
        "\"state\": 0, \"logical_block_bytes\": 4096",
    );
    assert!(text.contains("\"logical_block_bytes\": 4096"));
    std::fs::write(&js, text).unwrap();
    restore(&js, &img);
    let bytes = copy_bytes(&img, 0, 512 * 1024);
    let len = remap_core::meta::decode(&bytes, 0).unwrap().total_len;
    let end = len.div_ceil(4096) * 4096 + 4096;
    assert!(
        bytes[len..end].iter().all(|&b| b == 0),
        "bytes {len}..{end} after the base are not all zero"
    );
    assert_eq!(bytes[end], 0xaa, "only one logical block is zeroed");
}

#[test]
fn a_copy_whose_log_does_not_replay_is_dropped_and_repaired() {
    // remap-forge --log-mismatch: every copy holds version 5 as a base and a record to
    // version 6 carrying version 6's checksum; copy 0's record names another spare
    // block, so it passes its own checksum but does not replay to that state.
    let dir = Scratch::new("log-mismatch");
    let img = dir.path("spare.img");
    let img_s = img.to_str().unwrap();
    let forge = Command::new(env!("CARGO_BIN_EXE_remap-forge"))
        .args(["valid", img_s, "131072", "32768", "--log-mismatch"])
        .output()
        .expect("run remap-forge");
    assert_eq!(
        code(&forge),
        0,
        "{}",
        String::from_utf8_lossy(&forge.stderr)
    );
    let check = remapctl(&["meta", "check", img_s]);
    assert_eq!(
        code(&check),
        1,
        "needs repair, not refused: {}",
        stdout(&check)
    );
    let out = stdout(&check);
    assert!(out.contains("needs repair: 1 of 5 copies"), "{out}");
    assert!(
        out.contains("copy 0 (sector 0): log does not replay to the state it records"),
        "{out}"
    );
    assert!(
        out.contains("copy 1 (sector 1024): ok (version 6) (1 log records)"),
        "{out}"
    );
    let dump = remapctl(&["meta", "dump", img_s]);
    assert_eq!(code(&dump), 0);
    let d: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    assert_eq!(d["version"], 6);
    assert_eq!(
        d["counts"]["remapped"], 4,
        "version 6 has the record's remap"
    );
    let repair = remapctl(&["meta", "repair", img_s]);
    assert_eq!(code(&repair), 0, "{}", stdout(&repair));
    let check = remapctl(&["meta", "check", img_s]);
    assert_eq!(code(&check), 0, "{}", stdout(&check));
    assert!(stdout(&check).contains("copy 0 (sector 0): ok (version 6)"));
}

/// `remapctl meta restore json img`, which must succeed.
fn restore(js: &Path, img: &Path) {
    let o = remapctl(&[
        "meta",
        "restore",
        js.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
}

const SECOND_SPARE: &str = "66666666-7777-4888-8999-aaaaaaaaaaaa";

/// Image `name` holding `state_json(version, 1000)` with a second spare in the list
/// (and block 9 remapped to it), written as the copies of spare `which` (0 or 1) of
/// that pool (the dump's `spare_uuid`); `extra_block` as in `state_json`.
fn pool_image(dir: &Scratch, name: &str, version: u64, which: usize) -> PathBuf {
    pool_image_with(dir, name, version, which, 1000)
}

fn pool_image_with(dir: &Scratch, name: &str, version: u64, which: usize, extra: u64) -> PathBuf {
    let second = format!(
        r#"{{ "uuid": "{SECOND_SPARE}", "sectors": 131072, "data_start": 9216,
                "data_blocks": 15232, "role": 0, "priority": 1, "state": 0, "logical_block_bytes": 512 }}"#
    );
    let me = ["11111111-2222-4333-8444-555555555555", SECOND_SPARE][which];
    let img = blank_image(dir, name);
    let js = dir.path(&format!("{name}.json"));
    let state = state_json(version, extra)
        .replace(
            "\"logical_block_bytes\": 512 } ],",
            &format!("\"logical_block_bytes\": 512 }}, {second} ],"),
        )
        .replace(
            "{ \"block\": 9, \"state\": \"pending\" },",
            "{ \"block\": 9, \"state\": \"remapped\", \"spare\": 1, \"spare_block\": 0 },",
        )
        .replacen(
            "\"version\":",
            &format!("\"spare_uuid\": \"{me}\",\n  \"version\":"),
            1,
        );
    assert!(state.contains(SECOND_SPARE), "{state}");
    std::fs::write(&js, state).unwrap();
    restore(&js, &img);
    img
}

#[test]
fn a_pool_is_checked_as_a_whole() {
    let dir = Scratch::new("pool");
    let check = |imgs: &[&Path]| {
        let mut args = vec!["meta", "check"];
        args.extend(imgs.iter().map(|p| p.to_str().unwrap()));
        let o = remapctl(&args);
        (code(&o), stdout(&o))
    };
    let a = pool_image(&dir, "a.img", 5, 0);
    let b = pool_image(&dir, "b.img", 5, 1);
    let (c, out) = check(&[&a, &b]);
    assert_eq!(c, 0, "{out}");
    assert!(out.starts_with("pool of 2 spares: clean"), "{out}");
    // Either order: the spares are matched to their records by UUID.
    assert_eq!(check(&[&b, &a]).0, 0);
    // Each spare alone is a state of the pool; its copies are intact.
    assert_eq!(check(&[&a]).0, 0);
    // A spare left at an older version: the newest state is chosen, the other spare
    // needs repair.
    let old = pool_image(&dir, "old.img", 4, 1);
    let (c, out) = check(&[&a, &old]);
    assert_eq!(c, 1, "{out}");
    assert!(out.contains("needs repair: 1 of 2 spares"), "{out}");
    assert!(out.contains("old.img: version 4"), "{out}");
    // Two spares claiming the same record (a copied image).
    let (c, out) = check(&[&a, &pool_image(&dir, "copy.img", 5, 0)]);
    assert_eq!(c, 2, "{out}");
    assert!(
        out.contains("refused: two spares carry the same spare UUID"),
        "{out}"
    );
    // A record of the list without its spare (a blank device in its place).
    let (c, out) = check(&[&a, &blank_image(&dir, "blank.img")]);
    assert_eq!(c, 2, "{out}");
    assert!(
        out.contains("refused: a spare of the spare list is not among the devices"),
        "{out}"
    );
    // A pool repair gives the stale spare the newest state, as its own record.
    let o = remapctl(&["meta", "repair", a.to_str().unwrap(), old.to_str().unwrap()]);
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout(&o)
            .contains("old.img: 5 of 5 copies rewritten with version 5 (spare 1 of the pool)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(check(&[&a, &old]).0, 0);
    // The dump of the second spare names it; restored onto a blank image, that image is
    // the second spare again.
    let o = remapctl(&["meta", "dump", b.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("\"spare_uuid\": \"66666666-7777-4888-8999-aaaaaaaaaaaa\""),
        "{}",
        stdout(&o)
    );
    let js = dir.path("b-dump.json");
    std::fs::write(&js, stdout(&o)).unwrap();
    let r = blank_image(&dir, "r.img");
    restore(&js, &r);
    assert_eq!(check(&[&a, &r]).0, 0);
    // Two spares at one version holding different states.
    let other = pool_image_with(&dir, "other.img", 5, 1, 1001);
    let (c, out) = check(&[&a, &other]);
    assert_eq!(c, 2, "{out}");
    assert!(
        out.contains("refused: spares hold different states under the same version"),
        "{out}"
    );
}

/// `remapctl probe`, what the udev rule runs on every block device: a spare of a pool
/// exports its setup and place; blank and foreign devices export nothing (exit 0) and,
/// without `--export`, exit 1 with the reason; an unreadable path is exit 1 either way.
#[test]
fn probe_tells_udev_which_setup_a_device_holds() {
    let d = Scratch::new("probe");
    let second = pool_image(&d, "p1.img", 4, 1);
    let o = remapctl(&["probe", "--export", second.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        stdout(&o),
        format!(
            "DM_REMAP_SETUP_UUID=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0\n\
             DM_REMAP_SPARE_UUID={SECOND_SPARE}\nDM_REMAP_SPARE_INDEX=1\n\
             DM_REMAP_SPARES=2\nDM_REMAP_VERSION=4\n"
        )
    );
    let o = remapctl(&["probe", second.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("spare 1 of 2 of setup 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f0"),
        "{}",
        stdout(&o)
    );
    let blank = blank_image(&d, "blank.img");
    let o = remapctl(&["probe", "--export", blank.to_str().unwrap()]);
    assert_eq!((code(&o), stdout(&o)), (0, String::new()));
    let o = remapctl(&["probe", blank.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("no dm-remap setup (blank)"),
        "{}",
        stdout(&o)
    );
    poke(&blank, 0, &[0x5a; 8192]);
    let o = remapctl(&["probe", "--export", blank.to_str().unwrap()]);
    assert_eq!((code(&o), stdout(&o)), (0, String::new()));
    let o = remapctl(&["probe", "--export", d.path("missing.img").to_str().unwrap()]);
    assert_eq!(code(&o), 1);
}

/// `redundancy 2`: second copies survive restore and dump, and a second copy without
/// its block, or on a pending block, is refused.
#[test]
fn second_copies_restore_and_dump() {
    let d = Scratch::new("mirrors");
    let two = state_json(7, 1000)
        .replace(r#""flags": 0"#, r#""flags": 2"#)
        .replace(
            r#""logical_block_bytes": 512 } ],"#,
            r#""logical_block_bytes": 512 }, { "uuid": "11111111-2222-4333-8444-666666666666", "sectors": 131072, "data_start": 9216, "data_blocks": 15232, "role": 0, "priority": 1, "state": 0, "logical_block_bytes": 512 } ],"#,
        )
        .replace(
            r#"{ "block": 5, "state": "remapped", "spare": 0, "spare_block": 0 }"#,
            r#"{ "block": 5, "state": "remapped", "spare": 0, "spare_block": 0, "mirror": 1, "mirror_block": 40 }"#,
        );
    assert!(
        two.contains(r#""mirror": 1"#) && two.contains("666666666666"),
        "{two}"
    );
    let js = d.path("two.json");
    std::fs::write(&js, &two).unwrap();
    let img = blank_image(&d, "a.img");
    restore(&js, &img);
    let o = remapctl(&["meta", "check", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let dumped: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(dumped["entries"][0]["mirror"], 1);
    assert_eq!(dumped["entries"][0]["mirror_block"], 40);
    assert_eq!(dumped["counts"]["mirrors"], 1);
    assert!(dumped["entries"][2].get("mirror").is_none());
    for bad in [
        two.replace(r#", "mirror_block": 40"#, ""),
        two.replace(
            r#"{ "block": 9, "state": "pending" }"#,
            r#"{ "block": 9, "state": "pending", "mirror": 1, "mirror_block": 41 }"#,
        ),
    ] {
        assert_ne!(bad, two);
        std::fs::write(&js, &bad).unwrap();
        let o = remapctl(&[
            "meta",
            "restore",
            js.to_str().unwrap(),
            blank_image(&d, "b.img").to_str().unwrap(),
        ]);
        assert_ne!(code(&o), 0);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("second copy"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
