//! `train-bench`: post-run and the next station's pre-run over assorted results, native and
//! legacy, beside the Python reference on the same data and `openssl speed`, in one run.
//!
//!     cargo run --release --bin train-bench -- [--size-mib 1024] [--python PATH]
//!
//! Each measured step runs in its own child process (this binary, re-executed) that reports its
//! wall time and peak RSS (VmHWM), so steps do not share a high-water mark. Files are in the page
//! cache for every contender alike, and dirty pages are flushed (`sync`) before every step.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use train_lib::keys::{PrivateKey, TrustStore};
use train_lib::{CreateSpec, Format, Station, TrainDir};

#[derive(Parser)]
#[command(about = "Protocol throughput and memory, ours beside the reference and openssl")]
struct Args {
    /// Total size of the results, MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Scratch directory (needs about 4× the size free).
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Python with pht-train-container-library 2.0.5 (default: $PHT_REFERENCE_PYTHON).
    #[arg(long, env = "PHT_REFERENCE_PYTHON")]
    python: Option<PathBuf>,
    /// Internal: run one step in this process and report on stdout.
    #[arg(long, hide = true, num_args = 4, value_names = ["STEP", "DIR", "STATION", "KEY"])]
    phase: Option<Vec<String>>,
    /// Repetitions; each step's median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Only this format of ours (`native` or `legacy`), e.g. to profile one.
    #[arg(long)]
    only: Option<Format>,
}

#[derive(Clone, Copy)]
struct Sample {
    secs: f64,
    rss_mib: f64,
}

/// The sample with the median time (the upper one of an even count), with the highest peak RSS
/// seen in any repetition.
fn median(samples: &[Sample]) -> Sample {
    let secs: Vec<f64> = samples.iter().map(|s| s.secs).collect();
    Sample {
        secs: sorted_median(&secs),
        rss_mib: samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max),
    }
}

/// The median (the upper one of an even count).
fn sorted_median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn run_phase(p: &[String]) -> Result<()> {
    let key = PrivateKey::from_file(Path::new(&p[3]), None)?;
    let trust = TrustStore::default();
    let st = Station {
        id: &p[2],
        key: &key,
        trust: &trust,
    };
    let t = TrainDir::open(Path::new(&p[1]))?;
    let start = Instant::now();
    match p[0].as_str() {
        "post-run" => t.post_run(&st)?,
        "pre-run" => t.pre_run(&st)?,
        other => bail!("unknown step {other}"),
    };
    pht_term::outln!("{} {}", start.elapsed().as_secs_f64(), peak_rss_kib());
    Ok(())
}

/// Seconds OpenSSL's SHA-512 (as the legacy steps use it) takes over `total` bytes already in
/// memory, on one thread: the least each legacy step must spend, since it hashes every byte in
/// one sequential stream (reading and the cipher can overlap it; the hash cannot be split).
fn sha512_pass(total: u64) -> f64 {
    let buf = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut h = openssl::sha::Sha512::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    std::hint::black_box(h.finish());
    start.elapsed().as_secs_f64()
}

/// Flushes dirty pages so that a step is not slowed by the previous step's writeback.
fn settle() {
    let _ = Command::new("sync").status();
}

fn child(step: &str, dir: &Path, station: &str, key: &Path) -> Result<Sample> {
    settle();
    // Profiling aid: PHT_BENCH_WRAP="perf record -g -o target/pre.data --" with
    // PHT_BENCH_WRAP_STEP=pre-run runs that step under the given command.
    let exe = std::env::current_exe()?;
    let mut cmd = match (
        std::env::var("PHT_BENCH_WRAP"),
        std::env::var("PHT_BENCH_WRAP_STEP"),
    ) {
        (Ok(wrap), Ok(s)) if s == step && !wrap.trim().is_empty() => {
            let mut words = wrap.split_whitespace();
            let mut c = Command::new(words.next().expect("not empty"));
            c.args(words).arg(&exe);
            c
        }
        _ => Command::new(&exe),
    };
    let out = cmd
        .arg("--phase")
        .args([step, dir.to_str().unwrap(), station, key.to_str().unwrap()])
        .output()?;
    if !out.status.success() {
        bail!("{step} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse_sample(&out.stdout)
}

fn parse_sample(stdout: &[u8]) -> Result<Sample> {
    let s = String::from_utf8_lossy(stdout);
    let last = s.lines().last().context("no report")?;
    let mut it = last.split_whitespace();
    let secs: f64 = it.next().context("secs")?.parse()?;
    let kib: f64 = it.next().context("rss")?.parse()?;
    Ok(Sample {
        secs,
        rss_mib: kib / 1024.0,
    })
}

const PY_HARNESS: &str = r#"
import resource, runpy, sys, time
driver = sys.argv[1]
sys.argv = [driver] + sys.argv[2:]
t = time.time()
runpy.run_path(driver, run_name="__main__")
print(time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"#;

fn python_phase(py: &Path, step: &str, dir: &Path, station: &str, key: &Path) -> Result<Sample> {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/reference_driver.py");
    settle();
    let out = Command::new(py)
        .args([
            "-c",
            PY_HARNESS,
            driver.to_str().unwrap(),
            step,
            dir.to_str().unwrap(),
            station,
            key.to_str().unwrap(),
        ])
        .output()?;
    if !out.status.success() {
        bail!(
            "reference {step} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_sample(&out.stdout)
}

/// Results of assorted sizes: half in one file, then 4 × 8 %, 8 × 2 %, the rest in 64 KiB files.
fn make_results(dir: &Path, total: u64) -> Result<()> {
    fs::create_dir_all(dir.join("many"))?;
    let mut sizes = vec![("big.bin".to_string(), total / 2)];
    sizes.extend((0..4).map(|i| (format!("mid/{i}.bin"), total * 8 / 100)));
    sizes.extend((0..8).map(|i| (format!("small/{i}.csv"), total * 2 / 100)));
    let used: u64 = sizes.iter().map(|s| s.1).sum();
    let n_tiny = (total - used) / 65536;
    sizes.extend((0..n_tiny).map(|i| (format!("many/{i:05}.dat"), 65536)));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    for (name, size) in sizes {
        let p = dir.join(&name);
        fs::create_dir_all(p.parent().unwrap())?;
        let mut f = std::io::BufWriter::new(fs::File::create(&p)?);
        let mut left = size;
        while left > 0 {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
    }
    Ok(())
}

fn link_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            link_tree(&e.path(), &dst)?;
        } else {
            fs::hard_link(e.path(), &dst)?;
        }
    }
    Ok(())
}

struct Keys {
    creator: PrivateKey,
    builder: PrivateKey,
    stations: Vec<PrivateKey>,
    paths: Vec<PathBuf>,
}

fn keys(dir: &Path) -> Result<Keys> {
    fs::create_dir_all(dir)?;
    let stations: Vec<PrivateKey> = (0..2)
        .map(|_| PrivateKey::generate(2048))
        .collect::<Result<_, _>>()?;
    let mut paths = Vec::new();
    for (i, k) in stations.iter().enumerate() {
        let p = dir.join(format!("s{i}.key.pem"));
        fs::write(&p, k.to_pkcs8_pem()?.as_bytes())?;
        paths.push(p);
    }
    Ok(Keys {
        creator: PrivateKey::generate(2048)?,
        builder: PrivateKey::generate(2048)?,
        stations,
        paths,
    })
}

/// A train of `format` that station s0 has pre-run, with `data` linked into its results.
fn prepare(work: &Path, format: Format, k: &Keys, data: &Path) -> Result<PathBuf> {
    let src = work.join("src");
    fs::create_dir_all(&src)?;
    fs::write(src.join("main.py"), b"print('bench')\n")?;
    let spec = CreateSpec {
        files: &src,
        entrypoint: "main.py",
        creator_id: "bench",
        creator_key: &k.creator,
        stations: vec![
            ("s0".into(), k.stations[0].public().clone()),
            ("s1".into(), k.stations[1].public().clone()),
        ],
        query: None,
        builder_key: Some(&k.builder),
        train_id: None,
        proposal_id: None,
        master_image: None,
    };
    let dir = work.join("train");
    train_lib::create(&spec, format, &dir)?;
    let trust = TrustStore::default();
    TrainDir::open(&dir)?.pre_run(&Station {
        id: "s0",
        key: &k.stations[0],
        trust: &trust,
    })?;
    fs::remove_dir_all(dir.join("pht_results"))?;
    link_tree(data, &dir.join("pht_results"))?;
    Ok(dir)
}

fn openssl_speed(alg: &str) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed", "-elapsed", "-seconds", "3", "-bytes", "1048576", "-evp", alg,
        ])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let v = s
        .lines()
        .last()?
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse::<f64>()
        .ok()?;
    Some(v * 1000.0 / 1e6)
}

/// Single-core MB/s of the aws-lc primitives on 1 MiB buffers.
fn awslc_speed(alg: &str) -> f64 {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    use aws_lc_rs::digest;
    let mut buf = vec![7u8; 1 << 20];
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[1u8; 32]).unwrap());
    let rounds = 1024;
    let start = Instant::now();
    for i in 0..rounds {
        match alg {
            "sha256" => drop(digest::digest(&digest::SHA256, &buf)),
            "sha512" => drop(digest::digest(&digest::SHA512, &buf)),
            _ => {
                let mut n = [0u8; 12];
                n[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let _tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(n),
                        Aad::empty(),
                        &mut buf,
                    )
                    .unwrap();
            }
        }
    }
    (rounds as f64 * (1 << 20) as f64) / start.elapsed().as_secs_f64() / 1e6
}

/// `v` as a comma-separated list with `digits` decimals.
fn listed(v: &[f64], digits: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.digits$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One repetition's step times, so that a slow spell of the host shows where it fell.
fn progress(post: &Sample, pre: &Sample) {
    eprintln!(
        "      post-run {:.2} s, pre-run {:.2} s",
        post.secs, pre.secs
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(p) = &args.phase {
        return run_phase(p);
    }
    let total = args.size_mib << 20;
    let work = &args.work_dir;
    if work.exists() {
        fs::remove_dir_all(work)?;
    }
    eprintln!(
        "generating {} MiB of results in {} …",
        args.size_mib,
        work.display()
    );
    let data = work.join("data");
    make_results(&data, total)?;
    let k = keys(&work.join("keys"))?;
    let mb = total as f64 / 1e6;

    // Contenders take turns in every repetition, so that a slow spell of this shared host falls
    // on all of them alike; each step's median is reported.
    let mut runs: Vec<(String, Vec<Sample>, Vec<Sample>)> = Vec::new();
    let mut record =
        |name: String, post: Sample, pre: Sample| match runs.iter_mut().find(|r| r.0 == name) {
            Some(r) => {
                r.1.push(post);
                r.2.push(pre);
            }
            None => runs.push((name, vec![post], vec![pre])),
        };
    let mut passes = Vec::new();
    for rep in 1..=args.repeat {
        for format in [Format::Native, Format::Legacy] {
            if args.only.is_some_and(|o| o != format) {
                continue;
            }
            eprintln!(
                "[{rep}/{}] {format}: post-run, then pre-run at the next station …",
                args.repeat
            );
            let dir = prepare(&work.join(format.to_string()), format, &k, &data)?;
            let post = child("post-run", &dir, "s0", &k.paths[0])?;
            let pre = child("pre-run", &dir, "s1", &k.paths[1])?;
            progress(&post, &pre);
            record(format!("{format} (ours)"), post, pre);
            fs::remove_dir_all(work.join(format.to_string()))?;
        }
        passes.push(sha512_pass(total));
        if let Some(py) = &args.python {
            eprintln!(
                "[{rep}/{}] reference (Python): post-run, then pre-run …",
                args.repeat
            );
            let dir = prepare(&work.join("reference"), Format::Legacy, &k, &data)?;
            let post = python_phase(py, "postrun", &dir, "s0", &k.paths[0])?;
            let pre = python_phase(py, "prerun", &dir, "s1", &k.paths[1])?;
            progress(&post, &pre);
            record("reference 2.0.5 (legacy)".into(), post, pre);
            fs::remove_dir_all(work.join("reference"))?;
        }
    }
    if args.python.is_none() {
        eprintln!("no --python / PHT_REFERENCE_PYTHON: the reference is left out");
    }
    let rows: Vec<(String, Sample, Sample)> = runs
        .iter()
        .map(|(name, posts, pres)| (name.clone(), median(posts), median(pres)))
        .collect();
    eprintln!("primitives …");
    let prims: Vec<(&str, Option<f64>, f64)> = ["sha512", "sha256", "aes-256-gcm"]
        .iter()
        .map(|a| (*a, openssl_speed(a), awslc_speed(a)))
        .collect();

    pht_term::outln!(
        "\nResults: {} MiB in {} files; 2 cores; page cache warm.\n",
        args.size_mib,
        fs::read_dir(data.join("many"))?.count() + 13
    );
    pht_term::outln!("| implementation | post-run s | post-run MB/s | pre-run s | pre-run MB/s | both MB/s | peak RSS MiB |");
    pht_term::outln!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, post, pre) in &rows {
        pht_term::outln!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} |",
            post.secs,
            mb / post.secs,
            pre.secs,
            mb / pre.secs,
            2.0 * mb / (post.secs + pre.secs),
            post.rss_mib.max(pre.rss_mib)
        );
    }
    pht_term::outln!(
        "\n| primitive (1 core, 1 MiB blocks) | openssl speed MB/s | aws-lc in-process MB/s |"
    );
    pht_term::outln!("|---|---:|---:|");
    for (a, o, l) in &prims {
        pht_term::outln!(
            "| {a} | {} | {l:.0} |",
            o.map_or("n/a".into(), |v| format!("{v:.0}"))
        );
    }
    let both = |i: usize| 2.0 * mb / (rows[i].1.secs + rows[i].2.secs);
    // Contender `j`'s post-run plus pre-run in repetition `k`.
    let pair = |j: usize, k: usize| runs[j].1[k].secs + runs[j].2[k].secs;
    // `--only` leaves contenders out, so each is looked up by name.
    let at = |name: &str| rows.iter().position(|r| r.0 == name);
    let (native, legacy, reference) = (
        at("native (ours)"),
        at("legacy (ours)"),
        at("reference 2.0.5 (legacy)"),
    );
    let slowest_native = prims
        .iter()
        .filter(|p| p.0 != "sha512")
        .map(|p| p.1.unwrap_or(p.2))
        .fold(f64::INFINITY, f64::min);
    pht_term::outln!("\nRatios (same run):");
    if let Some(n) = native {
        pht_term::outln!("- native / slowest primitive it applies to every byte (openssl sha256, aes-256-gcm): post-run {:.2}, pre-run {:.2}",
            mb / rows[n].1.secs / slowest_native, mb / rows[n].2.secs / slowest_native);
    }
    if let Some(l) = legacy {
        // What bounds legacy (see the ceiling below): its speed against that one hash pass.
        let of_pass: Vec<f64> = (0..passes.len())
            .map(|k| 2.0 * passes[k] / pair(l, k))
            .collect();
        pht_term::outln!(
            "- legacy speed / one in-memory SHA-512 pass's speed: {:.2} (median; each repetition: {})",
            sorted_median(&of_pass),
            listed(&of_pass, 2)
        );
    }
    if let Some(r) = reference {
        // The ratio within each repetition too, to show the spread.
        let per_rep = |i: usize| -> String {
            let ratios: Vec<f64> = (0..runs[i].1.len())
                .map(|k| pair(r, k) / pair(i, k))
                .collect();
            listed(&ratios, 1)
        };
        for (label, i) in [("native", native), ("legacy", legacy)] {
            if let Some(i) = i {
                pht_term::outln!(
                    "- {label} / reference throughput: {:.1}× (medians; each repetition: {})",
                    both(i) / both(r),
                    per_rep(i)
                );
            }
        }
        // Each legacy step hashes all the data as one SHA-512 stream, which no core count
        // shortens: the reference's time over that one pass, timed in the same repetition,
        // bounds any implementation.
        let ceilings: Vec<f64> = (0..passes.len())
            .map(|k| pair(r, k) / (2.0 * passes[k]))
            .collect();
        pht_term::outln!(
            "- legacy ceiling (the reference's step time over one in-memory SHA-512 pass of the same size, {:.0} MB/s): {:.1}× (each repetition: {})",
            mb / sorted_median(&passes),
            sorted_median(&ceilings),
            listed(&ceilings, 1)
        );
        pht_term::outln!(
            "- reference peak RSS / data size: {:.1}",
            rows[r].1.rss_mib.max(rows[r].2.rss_mib) / args.size_mib as f64
        );
    }
    fs::remove_dir_all(work)?;
    Ok(())
}
