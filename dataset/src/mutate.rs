//! Damaged copies of valid files, for the readers' robustness tests: bit flips, truncations, insertions, deletions,
//! repeated ranges, huge declared lengths, and for text formats swapped lines and numbers replaced by extreme ones.
//! [`fuzz`] feeds a reader a seeded series of them and fails on a panic, a hang, or an error that does not name the
//! file; the case that failed is saved so it can become a regression fixture.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Numbers a text mutation writes in place of one in the file: lengths a reader must not allocate, signs and
/// specials it must refuse.
const EXTREMES: &[&str] =
    &["1099511627776", "18446744073709551615", "-1", "0", "1e308", "-1e308", "NaN", "inf", "4294967296", "\"x\""];

/// One damaged copy of `valid`, never equal to it, drawn by `rng`; `text` adds the mutations of line-based formats.
pub fn mutate(valid: &[u8], text: bool, rng: &mut impl Rng) -> Vec<u8> {
    for _ in 0..16 {
        let b = mutate_once(valid, text, rng);
        if b != valid {
            return b;
        }
    }
    let mut b = valid.to_vec();
    b.push(b'\n');
    b
}

/// One mutation of `valid` (which may, rarely, leave it as it was).
fn mutate_once(valid: &[u8], text: bool, rng: &mut impl Rng) -> Vec<u8> {
    let mut b = valid.to_vec();
    let kinds = if text { 9 } else { 7 };
    let n = b.len();
    match rng.random_range(0..kinds) {
        // One bit.
        0 if n > 0 => {
            let i = rng.random_range(0..n);
            b[i] ^= 1 << rng.random_range(0..8);
        }
        // One byte inverted.
        1 if n > 0 => {
            let i = rng.random_range(0..n);
            b[i] ^= 0xFF;
        }
        // Truncated.
        2 => b.truncate(rng.random_range(0..n.max(1))),
        // Random bytes inserted.
        3 => {
            let at = rng.random_range(0..=n);
            let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
            b.splice(at..at, extra);
        }
        // A range deleted.
        4 if n > 1 => {
            let at = rng.random_range(0..n - 1);
            let len = rng.random_range(1..=(n - at).min(64));
            b.drain(at..at + len);
        }
        // A range repeated.
        5 if n > 1 => {
            let at = rng.random_range(0..n - 1);
            let len = rng.random_range(1..=(n - at).min(64));
            let copy = b[at..at + len].to_vec();
            b.splice(at..at, copy);
        }
        // A little-endian length of 2^40 (or all ones) written over eight bytes.
        6 if n >= 8 => {
            let at = if rng.random_bool(0.5) { 0 } else { rng.random_range(0..=n - 8) };
            let v: u64 = if rng.random_bool(0.5) { 1 << 40 } else { u64::MAX };
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        // Two lines swapped.
        7 => {
            let mut lines: Vec<&[u8]> = valid.split(|&c| c == b'\n').collect();
            if lines.len() > 1 {
                let (i, j) = (rng.random_range(0..lines.len()), rng.random_range(0..lines.len()));
                lines.swap(i, j);
                b = lines.join(&b'\n');
            }
        }
        // A number replaced by an extreme one.
        8 => {
            let numbers = number_spans(valid);
            if !numbers.is_empty() {
                let (s, e) = numbers[rng.random_range(0..numbers.len())];
                let with = EXTREMES[rng.random_range(0..EXTREMES.len())];
                b.splice(s..e, with.bytes());
            }
        }
        _ => b.push(rng.random()),
    }
    b
}

/// Byte ranges of the decimal numbers in `text`.
fn number_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_digit() {
            let s = if i > 0 && text[i - 1] == b'-' { i - 1 } else { i };
            let mut e = i;
            while e < text.len()
                && (text[e].is_ascii_digit()
                    || matches!(text[e], b'.' | b'e' | b'E')
                    || (matches!(text[e], b'-' | b'+') && matches!(text[e - 1], b'e' | b'E')))
            {
                e += 1;
            }
            spans.push((s, e));
            i = e;
        } else {
            i += 1;
        }
    }
    spans
}

/// How a fuzz run goes: which format, how many cases, from which seed.
#[derive(Debug, Clone)]
pub struct FuzzPlan {
    /// The format's name: fixtures live in `<fixtures>/<name>/`, failures are saved as `<name>-<case>.bin`.
    pub name: String,
    /// Mutated cases (`FRL_FUZZ_CASES` overrides).
    pub cases: u64,
    /// Seed of the first case; case `i` uses `seed + i`.
    pub seed: u64,
    /// Whether the line-based mutations apply.
    pub text: bool,
    /// Earlier failing inputs, replayed first (`<fixtures>/<name>/*`).
    pub fixtures: Option<PathBuf>,
    /// A case that takes longer than this is a hang.
    pub timeout: Duration,
    /// Whether an accepted damaged input is a failure (formats whose every byte is checksummed).
    pub refuse_all: bool,
}

impl FuzzPlan {
    /// A plan of `cases` cases (or `FRL_FUZZ_CASES`) for the format `name`.
    pub fn new(name: &str, cases: u64, text: bool) -> Self {
        let cases = std::env::var("FRL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
        let seed = std::env::var("FRL_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        FuzzPlan {
            name: name.into(),
            cases,
            seed,
            text,
            fixtures: None,
            timeout: Duration::from_secs(20),
            refuse_all: false,
        }
    }

    /// Fails on any accepted input: the format's every byte is checksummed.
    pub fn refuse_all(mut self) -> Self {
        self.refuse_all = true;
        self
    }

    /// Replays the inputs in `dir/<name>/` before the mutated cases.
    pub fn fixtures(mut self, dir: &Path) -> Self {
        self.fixtures = Some(dir.join(&self.name));
        self
    }
}

/// What [`fuzz`] counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FuzzReport {
    /// Inputs tried (fixtures included).
    pub cases: u64,
    /// Inputs the reader refused.
    pub refused: u64,
    /// Inputs the reader accepted (a mutation that left the file meaning something valid).
    pub accepted: u64,
}

/// Feeds `read` the fixtures and `plan.cases` damaged copies of `valid`. `read` gets the bytes and returns `Ok`
/// or the error message; the message must contain `must_name` (the file's name). A panic, an error without the
/// name, or a case slower than `plan.timeout` fails: the input is saved under `target/fuzz-failures/` and the
/// call panics naming it.
pub fn fuzz(
    plan: &FuzzPlan,
    valid: &[u8],
    must_name: &str,
    read: impl Fn(&[u8]) -> Result<(), String> + Send + 'static,
) -> FuzzReport {
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(dir) = &plan.fixtures {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            inputs.push((f.display().to_string(), std::fs::read(&f).expect("a readable fixture")));
        }
    }
    let (fixtures, total) = (inputs.len() as u64, inputs.len() as u64 + plan.cases);
    let valid = valid.to_vec();
    let (text, seed, refuse_all) = (plan.text, plan.seed, plan.refuse_all);
    let input = move |i: u64| -> (String, Vec<u8>) {
        if i < fixtures {
            inputs[i as usize].clone()
        } else {
            let case = seed + i - fixtures;
            (format!("case {case}"), mutate(&valid, text, &mut StdRng::seed_from_u64(case)))
        }
    };
    let started = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<Result<FuzzReport, (String, Vec<u8>, String)>>();
    let must = must_name.to_string();
    let progress = started.clone();
    let worker = std::thread::spawn(move || {
        let mut report = FuzzReport::default();
        for i in 0..total {
            progress.store(i, Ordering::SeqCst);
            let (label, bytes) = input(i);
            CURRENT_CASE.store(if i < fixtures { u64::MAX } else { seed + i - fixtures }, Ordering::SeqCst);
            let outcome = catch_unwind(AssertUnwindSafe(|| read(&bytes)));
            let failure = match outcome {
                Ok(Ok(())) if refuse_all => Some("was accepted, though damaged".to_string()),
                Ok(Ok(())) => {
                    report.accepted += 1;
                    None
                }
                Ok(Err(m)) if m.contains(&must) => {
                    report.refused += 1;
                    None
                }
                Ok(Err(m)) => Some(format!("the error does not name `{must}`: {m}")),
                Err(p) => Some(format!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or(p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                )),
            };
            report.cases += 1;
            if let Some(why) = failure {
                let _ = tx.send(Err((label, bytes, why)));
                return;
            }
        }
        CURRENT_CASE.store(u64::MAX, Ordering::SeqCst);
        let _ = tx.send(Ok(report));
    });
    let mut last = (u64::MAX, std::time::Instant::now());
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(report)) => {
                let _ = worker.join();
                return report;
            }
            Ok(Err((label, bytes, why))) => {
                let path = save_failure(&plan.name, &label, &bytes);
                panic!("{}: {label} {why}; the input is saved as {}", plan.name, path.display());
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{}: the fuzz worker died", plan.name),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = started.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, std::time::Instant::now());
                } else if last.1.elapsed() > plan.timeout {
                    panic!("{}: input {now} has run for over {:?} (a hang?)", plan.name, plan.timeout);
                }
            }
        }
    }
}

fn save_failure(name: &str, label: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = dir.join("fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{}.bin", label.replace(['/', ' '], "_")));
    let _ = std::fs::write(&path, bytes);
    path
}

/// A global allocator for fuzz test binaries that refuses any single allocation above 1 GiB, so a reader that
/// trusts a declared length fails at once instead of paging the machine.
pub struct CappedAlloc;

/// The largest allocation [`CappedAlloc`] grants.
pub const ALLOC_CAP: usize = 1 << 30;

/// The input [`fuzz`] is reading (its seed), for the message of a refused allocation; `u64::MAX` when none.
static CURRENT_CASE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Says on stderr, without allocating, which case asked for `size` bytes; the process aborts next.
fn report_refused(size: usize) {
    use std::io::Write;
    let mut buf = [0u8; 128];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        let k = s.len().min(buf.len() - n);
        buf[n..n + k].copy_from_slice(&s[..k]);
        n += k;
    };
    let digits = |mut v: u64, out: &mut [u8; 20]| -> usize {
        let mut i = out.len();
        loop {
            i -= 1;
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                return i;
            }
        }
    };
    let mut d = [0u8; 20];
    put(b"fuzz: refused an allocation of ");
    let i = digits(size as u64, &mut d);
    put(&d[i..]);
    put(b" bytes while reading case ");
    let i = digits(CURRENT_CASE.load(Ordering::SeqCst), &mut d);
    put(&d[i..]);
    put(b" (rerun it with FRL_FUZZ_SEED)\n");
    let _ = std::io::stderr().write_all(&buf[..n]);
}

// SAFETY: forwards to the system allocator; refusing (returning null) is allowed by `GlobalAlloc`.
unsafe impl std::alloc::GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            report_refused(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout contract is passed on unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_CAP {
            report_refused(new_size);
            return std::ptr::null_mut();
        }
        // SAFETY: as `alloc` and `dealloc`.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutation_changes_or_keeps_a_valid_length_and_numbers_are_found() {
        let valid = b"steps = 12\nlr = 1e-3\nname = \"a\"\n".to_vec();
        assert_eq!(number_spans(&valid), vec![(8, 10), (16, 20)]);
        let mut rng = StdRng::seed_from_u64(1);
        let changed = (0..200).filter(|_| mutate(&valid, true, &mut rng) != valid).count();
        assert!(changed > 150, "{changed} of 200 mutations changed the file");
    }

    #[test]
    fn fuzz_reports_a_panic_and_saves_the_input() {
        let plan = FuzzPlan { cases: 50, ..FuzzPlan::new("selftest", 50, false) };
        let r = catch_unwind(|| {
            fuzz(&plan, b"0123456789", "x", |b| if b.len() < 10 { panic!("short") } else { Err("x".into()) })
        });
        assert!(r.is_err());
        let ok = fuzz(&plan, b"0123456789", "file.bin", |_| Err("file.bin: bad".into()));
        assert_eq!((ok.cases, ok.refused), (50, 50));
    }
}
