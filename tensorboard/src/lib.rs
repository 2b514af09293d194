//! A small TensorBoard event-file writer: scalars, histograms and PNG images, readable by TensorBoard's
//! `EventAccumulator`; and a reader of the scalars back ([`read_scalars`]).
//!
//! File format: records of `u64` length (little endian), masked CRC-32C of the length bytes, the `Event`
//! protobuf, masked CRC-32C of the payload. The first record carries `file_version = "brain.Event:2"`.

#![warn(missing_docs)]

mod plot;
mod proto;
mod read;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

pub use plot::{BinAxis, PmfLabels, Png, fan_png, pmf_png, pmf_png_labelled, tile_pngs};
use proto::{Event, HistogramProto, Image, Summary, Value};
pub use read::{ImageEvent, ScalarEvent, read_file_scalars, read_images, read_scalars};

/// Writes one event file in a run folder (`runs/<job-name>/`).
///
/// Logs never stop a run: once a write fails (a full disk, a file-size limit), the writer says so once on stderr,
/// naming the file, and drops every later event; [`SummaryWriter::failure`] tells what happened. The file keeps the
/// events written before (TensorBoard skips a torn last record).
pub struct SummaryWriter {
    path: PathBuf,
    out: BufWriter<File>,
    failure: Option<String>,
}

impl SummaryWriter {
    /// Creates `dir` if needed and a new event file in it named `events.out.tfevents.<secs>.<host>.<pid>`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut n = 0;
        let path = loop {
            let suffix = if n == 0 { String::new() } else { format!(".{n}") };
            let p = dir.join(format!("events.out.tfevents.{secs}.{}.{}{suffix}", hostname(), std::process::id()));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        let out = BufWriter::new(File::create(&path)?);
        let mut w = Self { path, out, failure: None };
        let first =
            Event { wall_time: wall_time(), step: 0, file_version: Some("brain.Event:2".into()), summary: None };
        let written = w.out.write_all(&record(&first.encode_to_vec())).and_then(|_| w.out.flush());
        written.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", w.path.display())))?;
        Ok(w)
    }

    /// Why logging stopped, if a write failed.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Records the first failed write and turns logging off.
    fn failed(&mut self, e: io::Error) {
        if self.failure.is_none() {
            let why = format!("TensorBoard file {}: {e}", self.path.display());
            eprintln!("warning: {why}; the run goes on, later TensorBoard events are dropped");
            self.failure = Some(why);
        }
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs a scalar.
    pub fn scalar(&mut self, tag: &str, step: u64, value: f64) -> io::Result<()> {
        self.values(step, vec![Value { tag: tag.into(), simple_value: Some(value as f32), ..Default::default() }])
    }

    /// Logs several scalars at one step.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> io::Result<()> {
        let values = values
            .iter()
            .map(|(tag, v)| Value { tag: (*tag).into(), simple_value: Some(*v as f32), ..Default::default() })
            .collect();
        self.values(step, values)
    }

    /// Logs a histogram of `values` over `buckets` equal-width buckets; non-finite values are skipped.
    pub fn histogram(&mut self, tag: &str, step: u64, values: &[f32], buckets: usize) -> io::Result<()> {
        let histo = histogram(values, buckets.max(1));
        self.values(step, vec![Value { tag: tag.into(), histo: Some(histo), ..Default::default() }])
    }

    /// Logs a PNG image.
    pub fn image(&mut self, tag: &str, step: u64, png: &Png) -> io::Result<()> {
        let image = Image {
            height: png.height as i32,
            width: png.width as i32,
            colorspace: 3,
            encoded_image_string: png.bytes.clone(),
        };
        self.values(step, vec![Value { tag: tag.into(), image: Some(image), ..Default::default() }])
    }

    /// Writes buffered records to disk.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.failure.is_none()
            && let Err(e) = self.out.flush().and_then(|_| self.out.get_ref().sync_data())
        {
            self.failed(e);
        }
        Ok(())
    }

    fn values(&mut self, step: u64, value: Vec<Value>) -> io::Result<()> {
        self.write_event(Event {
            wall_time: wall_time(),
            step: step as i64,
            file_version: None,
            summary: Some(Summary { value }),
        })
    }

    fn write_event(&mut self, event: Event) -> io::Result<()> {
        if self.failure.is_none()
            && let Err(e) = self.out.write_all(&record(&event.encode_to_vec()))
        {
            self.failed(e);
        }
        Ok(())
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        if self.failure.is_none() {
            let _ = self.out.flush();
        }
    }
}

/// One framed record: length, masked CRC of the length, payload, masked CRC of the payload.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

/// TensorFlow's masked CRC-32C.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn histogram(values: &[f32], buckets: usize) -> HistogramProto {
    let finite: Vec<f64> = values.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
    if finite.is_empty() {
        return HistogramProto::default();
    }
    let min = finite.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = finite.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let width = if max > min { (max - min) / buckets as f64 } else { 1.0 };
    let mut counts = vec![0.0; buckets];
    for &v in &finite {
        let i = (((v - min) / width) as usize).min(buckets - 1);
        counts[i] += 1.0;
    }
    let bucket_limit = (1..=buckets).map(|i| if i == buckets { max } else { min + width * i as f64 }).collect();
    HistogramProto {
        min,
        max,
        num: finite.len() as f64,
        sum: finite.iter().sum(),
        sum_squares: finite.iter().map(|v| v * v).sum(),
        bucket_limit,
        bucket: counts,
    }
}

fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn hostname() -> String {
    let raw = std::env::var("HOSTNAME").ok().or_else(|| fs::read_to_string("/etc/hostname").ok()).unwrap_or_default();
    let clean: String = raw.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    if clean.is_empty() { "localhost".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_finite_value() {
        let h = histogram(&[0.0, 1.0, 2.0, 3.0, f32::NAN], 3);
        assert_eq!(h.num, 4.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 4.0);
        assert_eq!(h.bucket_limit.last().copied(), Some(3.0));
        assert_eq!(h.sum_squares, 14.0);
    }
}
