//! Reading scalars and images back from event files (tests, tools, the demo's picture): the framing and CRCs are checked, so a truncated or
//! corrupt file is an error naming it, never a panic or a huge allocation.

use std::io;
use std::path::Path;

use prost::Message;

use crate::masked_crc;
use crate::proto::Event;

/// One scalar read from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarEvent {
    /// Its tag, e.g. `train/loss`.
    pub tag: String,
    /// The step it was logged at.
    pub step: i64,
    /// Its value (event files store scalars as f32).
    pub value: f32,
}

/// One image read from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEvent {
    /// Its tag, e.g. `action_pmf/window0_dim0`.
    pub tag: String,
    /// The step it was logged at.
    pub step: i64,
    /// The encoded PNG.
    pub png: Vec<u8>,
}

/// Every event of every event file in the run folder `dir` (files in name order, records in file order).
fn read_events(dir: &Path) -> io::Result<Vec<Event>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents")))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        out.extend(
            read_file_events(&std::fs::read(&file)?).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("event file {}: {e}", file.display()))
            })?,
        );
    }
    Ok(out)
}

/// Every scalar of every event file in the run folder `dir` (files in name order, records in file order).
pub fn read_scalars(dir: &Path) -> io::Result<Vec<ScalarEvent>> {
    Ok(read_events(dir)?.into_iter().flat_map(scalars_of).collect())
}

/// Every image of every event file in the run folder `dir` (files in name order, records in file order).
pub fn read_images(dir: &Path) -> io::Result<Vec<ImageEvent>> {
    let images = read_events(dir)?.into_iter().flat_map(|event| {
        let step = event.step;
        event
            .summary
            .map(|s| s.value)
            .unwrap_or_default()
            .into_iter()
            .filter_map(move |v| v.image.map(|i| ImageEvent { tag: v.tag, step, png: i.encoded_image_string }))
    });
    Ok(images.collect())
}

fn scalars_of(event: Event) -> Vec<ScalarEvent> {
    let step = event.step;
    let values = event.summary.map(|s| s.value).unwrap_or_default();
    values.into_iter().filter_map(|v| v.simple_value.map(|value| ScalarEvent { tag: v.tag, step, value })).collect()
}

/// The largest record a torn tail may declare; a longer declared length is damage.
const MAX_RECORD: u64 = 1 << 30;

/// The scalars of one event file's bytes. A torn last record (a write cut short: by a full disk, a kill) ends the
/// file, as TensorBoard reads it; a damaged checksum anywhere is an error.
pub fn read_file_scalars(bytes: &[u8]) -> Result<Vec<ScalarEvent>, String> {
    Ok(read_file_events(bytes)?.into_iter().flat_map(scalars_of).collect())
}

/// The events of one event file's bytes, read as [`read_file_scalars`] says.
fn read_file_events(bytes: &[u8]) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 12) else { break };
        let (len_bytes, len_crc) = header.split_at(8);
        if masked_crc(len_bytes).to_le_bytes() != len_crc {
            return Err(format!("bad length checksum at byte {at}"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        let start = at + 12;
        let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l)).filter(|&e| e + 4 <= bytes.len());
        let Some(end) = end else {
            if len > MAX_RECORD {
                return Err(format!("record at byte {at} declares {len} bytes, past the end of the file"));
            }
            // A plausible length that checked out: the record was being written when the file stopped growing.
            break;
        };
        let payload = &bytes[start..end];
        if masked_crc(payload).to_le_bytes() != bytes[end..end + 4] {
            return Err(format!("bad payload checksum in the record at byte {at}"));
        }
        out.push(Event::decode(payload).map_err(|e| format!("record at byte {at}: {e}"))?);
        at = end + 4;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SummaryWriter;

    #[test]
    fn scalars_read_back_as_written_and_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut w = SummaryWriter::create(dir.path()).unwrap();
            w.scalars(3, &[("a", 1.5), ("b", -2.0)]).unwrap();
            w.histogram("h", 3, &[1.0, 2.0], 2).unwrap();
            w.image("pmf/x", 7, &crate::plot::pmf_png(&[0.25, 0.75], Some(1))).unwrap();
            w.scalar("a", 7, 0.25).unwrap();
        }
        let images = read_images(dir.path()).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!((images[0].tag.as_str(), images[0].step), ("pmf/x", 7));
        assert_eq!(images[0].png, crate::plot::pmf_png(&[0.25, 0.75], Some(1)).bytes);
        let got = read_scalars(dir.path()).unwrap();
        let want = [("a", 3, 1.5), ("b", 3, -2.0), ("a", 7, 0.25)];
        assert_eq!(got.len(), want.len());
        for (g, (tag, step, value)) in got.iter().zip(want) {
            assert_eq!((g.tag.as_str(), g.step, g.value), (tag, step, value));
        }
        let file = std::fs::read_dir(dir.path()).unwrap().flatten().next().unwrap().path();
        let bytes = std::fs::read(&file).unwrap();
        // A torn last record (a write cut short) ends the file: the records before it read back.
        for cut in [1, 5, 13, 20] {
            assert_eq!(read_file_scalars(&bytes[..bytes.len() - cut]).unwrap().len(), 2, "truncated by {cut}");
        }
        let mut flipped = bytes.clone();
        let n = flipped.len();
        flipped[n - 10] ^= 0xff;
        assert!(read_file_scalars(&flipped).is_err());
        let mut huge = bytes;
        huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let crc = masked_crc(&huge[..8]).to_le_bytes();
        huge[8..12].copy_from_slice(&crc);
        let e = read_file_scalars(&huge).unwrap_err();
        assert!(e.contains("past the end"), "{e}");
    }
}
