//! One corpus, one judge: every case `remap-forge` writes gets the same verdict from
//! `remap_core::judge::judge_state` (in process, on each of the five copies), from
//! `remapctl meta check`, and — for a state the judge refuses — from `remapctl meta
//! restore` of its dump and from `remapctl meta repair`; and the corpus covers every
//! rule of `judge_state`.

use remap_core::judge::{self, Verdict};
use remap_core::layout::{COPY_MAX_BYTES, COPY_SECTORS};
use remap_core::meta;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MAIN_SECTORS: &str = "2097152";
const SPARE_SECTORS: &str = "131072";

fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe).args(args).output().expect("run")
}

fn remapctl(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_remapctl"), args)
}

fn forge(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_remap-forge"), args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("remap-judge-{}-{name}", std::process::id()));
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

/// `remap-forge --list`: (case, verdict text or `OK`).
fn corpus() -> Vec<(String, String)> {
    let o = forge(&["--list"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| {
            let (c, v) = l.split_once('\t').expect("case<TAB>verdict");
            (c.to_string(), v.to_string())
        })
        .collect()
}

/// The judge's word on every copy of the image, in process, as `remapctl` sizes
/// the bitmap (from the image).
fn judge_in_process(img: &Path) -> String {
    let bytes = std::fs::read(img).unwrap();
    let sectors = bytes.len() as u64 / 512;
    let mut words = BTreeSet::new();
    for &s in &COPY_SECTORS {
        let at = s as usize * 512;
        let d = meta::decode(&bytes[at..at + COPY_MAX_BYTES], s).expect("every copy decodes");
        let mut bm = vec![0u64; judge::bitmap_words(&d, |i| (i == 0).then_some(sectors)) as usize];
        words.insert(
            judge::judge_state(&d, &mut bm)
                .err()
                .map_or("OK", Verdict::as_str)
                .to_string(),
        );
    }
    assert_eq!(words.len(), 1, "copies judged differently: {words:?}");
    words.into_iter().next().unwrap()
}

/// `remapctl meta check --json`: the verdict text, or `OK` for a clean state.
fn check_cli(img: &Path) -> String {
    let o = remapctl(&["meta", "check", "--json", img.to_str().unwrap()]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("check --json");
    match r["verdict"].as_str() {
        Some(v) => {
            assert_eq!(o.status.code(), Some(2));
            assert_eq!(r["result"], format!("refused: {v}"));
            v.to_string()
        }
        None => {
            assert_eq!(o.status.code(), Some(0), "{r}");
            assert_eq!(r["result"], "clean");
            "OK".into()
        }
    }
}

#[test]
fn every_case_gets_the_same_verdict_from_the_judge_and_from_remapctl() {
    let d = Scratch::new("corpus");
    let cases = corpus();
    assert_eq!(cases[0], ("valid".to_string(), "OK".to_string()));
    // Geometries: the defaults, 512-byte blocks on 4 KiB-sector-like fingerprints,
    // and 64 KiB blocks. A case that cannot exist in a geometry says so and is skipped.
    let geometries: [&[&str]; 3] = [
        &[],
        &["--block-size", "512", "--lbs", "512", "--pbs", "4096"],
        &["--block-size", "65536", "--lbs", "4096", "--pbs", "4096"],
    ];
    let mut checked = 0;
    for (gi, extra) in geometries.iter().enumerate() {
        for (case, want) in &cases {
            let img = d.path(&format!("{case}-{gi}.img"));
            let mut args = vec![
                case.as_str(),
                img.to_str().unwrap(),
                MAIN_SECTORS,
                SPARE_SECTORS,
            ];
            args.extend_from_slice(extra);
            let o = forge(&args);
            if !o.status.success() {
                let err = text(&o.stderr);
                assert!(
                    matches!(
                        (case.as_str(), gi),
                        ("target-unaligned", 1) | ("lost-beyond-block", 2)
                    ),
                    "{case} {extra:?}: {err}"
                );
                continue;
            }
            assert!(text(&o.stdout).contains(&format!("expect: {want}")));
            assert_eq!(
                &judge_in_process(&img),
                want,
                "{case} {extra:?}: judge_state"
            );
            assert_eq!(
                &check_cli(&img),
                want,
                "{case} {extra:?}: remapctl meta check"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * cases.len() - 2);
}

#[test]
fn the_corpus_covers_every_rule_of_judge_state() {
    let listed: BTreeSet<String> = corpus().into_iter().map(|(_, v)| v).collect();
    for v in Verdict::ALL.into_iter().filter(|v| v.is_internal()) {
        assert!(listed.contains(v.as_str()), "no corpus case for {v:?}");
    }
}

#[test]
fn restore_and_repair_refuse_what_the_judge_refuses() {
    let d = Scratch::new("restore");
    for (case, want) in corpus() {
        let img = d.path(&format!("{case}.img"));
        let o = forge(&[&case, img.to_str().unwrap(), MAIN_SECTORS, SPARE_SECTORS]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        // Dump shows the state either way (a refused one with a warning).
        let o = remapctl(&["meta", "dump", img.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{case}: {}", text(&o.stderr));
        assert_eq!(
            text(&o.stderr).contains(&want),
            want != "OK",
            "{case}: {}",
            text(&o.stderr)
        );
        let js = d.path(&format!("{case}.json"));
        std::fs::write(&js, &o.stdout).unwrap();
        // Restore onto a blank image of the same size.
        let target = d.path(&format!("{case}-restored.img"));
        std::fs::File::create(&target)
            .unwrap()
            .set_len(SPARE_SECTORS.parse::<u64>().unwrap() * 512)
            .unwrap();
        let o = remapctl(&[
            "meta",
            "restore",
            js.to_str().unwrap(),
            target.to_str().unwrap(),
        ]);
        if want == "OK" {
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
            assert_eq!(
                std::fs::read(&img).unwrap(),
                std::fs::read(&target).unwrap()
            );
            continue;
        }
        assert_eq!(o.status.code(), Some(2), "{case}");
        assert_eq!(
            text(&o.stderr).trim_end(),
            format!("remapctl meta: {want}; nothing was written"),
            "{case}"
        );
        let restored = std::fs::read(&target).unwrap();
        assert!(restored.iter().all(|&b| b == 0), "{case}: restore wrote");
        // Repair refuses too, and writes nothing.
        let before = std::fs::read(&img).unwrap();
        let o = remapctl(&["meta", "repair", img.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{case}");
        assert!(text(&o.stderr).contains(&want), "{case}");
        assert_eq!(std::fs::read(&img).unwrap(), before, "{case}: repair wrote");
    }
}
