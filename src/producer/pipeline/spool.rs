//! [`Spool`]: an append-only, bounded, crash-tolerant disk queue of encoded events.
//!
//! Events the broker could not take are appended here and replayed in order when it is back.
//! The directory holds numbered segment files of records
//! `[payload_len u32][crc32 u32][key_len u16][key][payload]` (little endian; the CRC covers
//! everything after it) and a `checkpoint` with the position replay has reached. A record
//! that fails its CRC, or a torn record at the end of a segment, ends the usable part of that
//! segment: the remainder is renamed `*.corrupt` for inspection, counted, and skipped.
//! When the spool is opened (after a crash, say) damage is cut out more finely: reading resumes
//! at the next record that passes its CRC, so what follows a damaged record is kept.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::event::limits::MAX_EVENT_BYTES;

const HEADER_BYTES: usize = 10;
/// The largest payload a record may hold; a larger length in a header means damage.
const MAX_RECORD_PAYLOAD: usize = MAX_EVENT_BYTES * 2;
const SEGMENT_EXTENSION: &str = "spool";
const CHECKPOINT_FILE: &str = "checkpoint";
/// A segment being rewritten without its damaged records.
const CLEAN_EXTENSION: &str = "clean";
/// Most bytes checksummed while looking for the next intact record after a damaged one.
const RESYNC_BUDGET_BYTES: usize = 256 * 1024 * 1024;
/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Appends reach the disk (fdatasync) at least this often while the spool is written, and at
/// every flush and shutdown: a host crash loses at most this much of what was spooled.
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Records the broker refused for good, set aside as JSON lines with the reason.
const REJECTED_FILE: &str = "spool.rejected";
/// Most bytes the rejected file may grow to; records past it are dropped (and counted).
const REJECTED_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Why the spool could not take or give records.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Taking the record would exceed the configured size.
    #[error(
        "spool full: {used} of {limit} bytes used (raise SPOOL_MAX_BYTES or restore the broker)"
    )]
    Full {
        /// Bytes in use.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// The record is larger than the spool reads back: written, it would end its segment.
    #[error("a record of {bytes} bytes is over the spool's {limit}-byte record limit")]
    RecordTooLarge {
        /// The record's payload size.
        bytes: usize,
        /// The largest payload the spool reads back.
        limit: usize,
    },
    /// Another spool (in this process or another) has the directory open.
    #[error(
        "spool directory {path} is in use by another pipeline; give each pipeline its own SPOOL_DIR"
    )]
    InUse {
        /// The directory.
        path: PathBuf,
    },
    /// The file system refused an operation.
    #[error("spool {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A place in the spool: segment number and byte offset within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct SpoolPosition {
    segment: u64,
    offset: u64,
}

/// Records read for replay, and the position just past them.
#[derive(Debug, Default)]
pub struct SpoolBatch {
    /// `(key, payload)` pairs, in append order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where replay continues once each record (and those before it) is delivered.
    pub ends: Vec<SpoolPosition>,
    /// Where replay continues once these are delivered.
    pub end: SpoolPosition,
}

#[derive(Debug)]
struct Writer {
    segment: u64,
    file: File,
    /// When appends last reached the disk.
    synced_at: std::time::Instant,
    /// Whether appends since then wait for a sync.
    dirty: bool,
}

#[derive(Debug)]
struct State {
    writer: Option<Writer>,
    /// Every live segment and its length in bytes (only whole records are counted).
    segments: BTreeMap<u64, u64>,
    read: SpoolPosition,
    used_bytes: u64,
}

/// The disk spool. All methods take `&self` and are safe to call from several threads.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Held open with an exclusive lock for the spool's lifetime: two writers would append to
    /// the same segments and delete each other's unreplayed records.
    _lock: fs::File,
    max_bytes: u64,
    state: Mutex<State>,
    pending: AtomicU64,
    corrupt: AtomicU64,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SpoolError {
    let path = path.to_path_buf();
    move |source| SpoolError::Io {
        action,
        path,
        source,
    }
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, bounded to `max_bytes` on disk.
    ///
    /// Recovers from a crash: torn or corrupted records are set aside and counted in
    /// [`Spool::corrupt_records`], every intact record around them is kept for replay.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, SpoolError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error("creating directory", &dir))?;
        let probe = dir.join(".write-probe");
        fs::write(&probe, b"ok").map_err(io_error("writing in directory", &dir))?;
        let _ = fs::remove_file(&probe);
        let lock_path = dir.join(".lock");
        let lock = fs::File::create(&lock_path).map_err(io_error("creating", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::InUse { path: dir }),
            Err(fs::TryLockError::Error(err)) => return Err(io_error("locking", &lock_path)(err)),
        }

        let read = read_checkpoint(&dir);
        let mut segments = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(io_error("listing", &dir))? {
            let path = entry.map_err(io_error("listing", &dir))?.path();
            if path.extension().is_some_and(|e| e == CLEAN_EXTENSION) {
                // A rewrite a crash interrupted: the segment it came from is still whole.
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(number) = segment_number(&path) else {
                continue;
            };
            if number < read.segment {
                // Fully replayed before the last stop.
                let _ = fs::remove_file(&path);
                continue;
            }
            segments.insert(number, 0);
        }
        let spool = Self {
            dir,
            _lock: lock,
            max_bytes,
            state: Mutex::new(State {
                writer: None,
                segments: BTreeMap::new(),
                read,
                used_bytes: 0,
            }),
            pending: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
        };
        let mut pending = 0;
        let mut used = 0;
        let mut recovered = BTreeMap::new();
        for number in segments.into_keys() {
            let start = if number == read.segment {
                read.offset
            } else {
                0
            };
            let (records, valid_len) = spool.scan_segment(number, start)?;
            pending += records;
            used += valid_len;
            recovered.insert(number, valid_len);
        }
        {
            // Replay starts at the checkpoint, or at the next segment that exists after it.
            let mut state = spool.lock();
            state.segments = recovered;
            state.used_bytes = used;
        }
        spool.pending.store(pending, Ordering::Relaxed);
        Ok(spool)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records waiting for replay.
    pub fn pending_records(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Whether anything waits for replay.
    pub fn has_pending(&self) -> bool {
        self.pending_records() > 0
    }

    /// Corrupted records found and set aside since the spool was opened.
    pub fn corrupt_records(&self) -> u64 {
        self.corrupt.load(Ordering::Relaxed)
    }

    /// Bytes the spool's segments take on disk.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes
    }

    /// Appends one record. Fails with [`SpoolError::Full`] rather than exceed the bound.
    pub fn append(&self, key: &[u8], payload: &[u8]) -> Result<(), SpoolError> {
        if payload.len() > MAX_RECORD_PAYLOAD {
            return Err(SpoolError::RecordTooLarge {
                bytes: payload.len(),
                limit: MAX_RECORD_PAYLOAD,
            });
        }
        let record = encode_record(key, payload);
        let mut state = self.lock();
        let size = record.len() as u64;
        if state.used_bytes + size > self.max_bytes {
            return Err(SpoolError::Full {
                used: state.used_bytes,
                limit: self.max_bytes,
            });
        }
        let needs_new_segment = match &state.writer {
            None => true,
            Some(writer) => {
                state.segments.get(&writer.segment).copied().unwrap_or(0) >= SEGMENT_BYTES
            }
        };
        if needs_new_segment {
            // Always past the replay position, so replay never skips the new segment's start.
            let last = state.segments.keys().next_back().copied().unwrap_or(0);
            let next = last.max(state.read.segment) + 1;
            let path = self.segment_path(next);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_error("creating segment", &path))?;
            state.segments.insert(next, 0);
            state.writer = Some(Writer {
                segment: next,
                file,
                synced_at: std::time::Instant::now(),
                dirty: false,
            });
        }
        let writer = state.writer.as_mut().expect("writer opened above");
        let segment = writer.segment;
        // One write per record: a crash leaves at most one torn record, found by the CRC.
        if let Err(err) = writer.file.write_all(&record) {
            state.writer = None;
            return Err(io_error("writing segment", &self.segment_path(segment))(
                err,
            ));
        }
        writer.dirty = true;
        if writer.synced_at.elapsed() >= SYNC_INTERVAL {
            sync_writer(writer, &self.segment_path(segment))?;
        }
        *state.segments.entry(segment).or_default() += size;
        state.used_bytes += size;
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Makes every append so far durable (fdatasync of the open segment).
    pub fn sync(&self) -> Result<(), SpoolError> {
        self.sync_older_than(std::time::Duration::ZERO)
    }

    /// [`Self::sync`] once the last one is [`SYNC_INTERVAL`] old (the sink calls this on every
    /// tick, so the last appends before a quiet spell reach the disk too).
    pub fn sync_if_due(&self) -> Result<(), SpoolError> {
        self.sync_older_than(SYNC_INTERVAL)
    }

    fn sync_older_than(&self, age: std::time::Duration) -> Result<(), SpoolError> {
        let mut state = self.lock();
        let Some(writer) = state.writer.as_mut() else {
            return Ok(());
        };
        if !writer.dirty || writer.synced_at.elapsed() < age {
            return Ok(());
        }
        let path = self.segment_path(writer.segment);
        sync_writer(writer, &path)
    }

    /// Sets aside a record the broker refused for good: one JSON line with `reason`, the key
    /// and the payload, in `spool.rejected`. Fails once that file holds 64 MiB.
    pub fn reject(&self, key: &[u8], payload: &[u8], reason: &str) -> Result<(), SpoolError> {
        let path = self.dir.join(REJECTED_FILE);
        let _state = self.lock();
        let used = fs::metadata(&path).map_or(0, |m| m.len());
        let line = serde_json::json!({
            "reason": reason,
            "key": String::from_utf8_lossy(key),
            "payload": String::from_utf8_lossy(payload),
        })
        .to_string()
            + "\n";
        if used + line.len() as u64 > REJECTED_MAX_BYTES {
            return Err(SpoolError::Full {
                used,
                limit: REJECTED_MAX_BYTES,
            });
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error("opening", &path))?;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(io_error("writing", &path))
    }

    /// Reads up to `max_records` records from the replay position, without consuming them.
    pub fn read_batch(&self, max_records: usize) -> Result<SpoolBatch, SpoolError> {
        let mut state = self.lock();
        let mut batch = SpoolBatch {
            records: Vec::new(),
            ends: Vec::new(),
            end: state.read,
        };
        let mut position = state.read;
        while batch.records.len() < max_records {
            let Some((&segment, &length)) = state.segments.range(position.segment..).next() else {
                break;
            };
            if segment != position.segment {
                position = SpoolPosition { segment, offset: 0 };
            }
            if position.offset >= length {
                // This segment is exhausted; move on if a later one exists.
                if state.segments.range(segment + 1..).next().is_none() {
                    break;
                }
                position = SpoolPosition {
                    segment: segment + 1,
                    offset: 0,
                };
                continue;
            }
            let path = self.segment_path(segment);
            let mut file = File::open(&path).map_err(io_error("opening segment", &path))?;
            file.seek(SeekFrom::Start(position.offset))
                .map_err(io_error("seeking segment", &path))?;
            let mut reader = io::BufReader::new(file.take(length - position.offset));
            while batch.records.len() < max_records && position.offset < length {
                match read_record(&mut reader) {
                    Ok(Some(record)) => {
                        batch.records.push((record.key, record.payload));
                        position.offset += record.size;
                        batch.ends.push(position);
                    }
                    Ok(None) | Err(_) => {
                        // Corruption written after open() scanned: set the rest aside.
                        let lost = self.quarantine_tail(&mut state, segment, position.offset);
                        self.corrupt.fetch_add(lost, Ordering::Relaxed);
                        break;
                    }
                }
            }
            batch.end = position;
        }
        Ok(batch)
    }

    /// Marks everything before `end` as delivered: advances the checkpoint and deletes
    /// segments that are fully replayed.
    pub fn commit(&self, end: SpoolPosition, records: u64) -> Result<(), SpoolError> {
        let mut state = self.lock();
        if end <= state.read {
            return Ok(());
        }
        state.read = end;
        self.pending
            .fetch_sub(records.min(self.pending_records()), Ordering::Relaxed);
        write_checkpoint(&self.dir, end)?;
        let finished: Vec<(u64, u64)> = state
            .segments
            .iter()
            .filter(|(number, length)| {
                **number < end.segment || (**number == end.segment && end.offset >= **length)
            })
            .map(|(number, length)| (*number, *length))
            .collect();
        for (number, length) in finished {
            let active = state.writer.as_ref().is_some_and(|w| w.segment == number);
            if active {
                // Start a fresh segment next time so this one can go.
                state.writer = None;
            }
            let _ = fs::remove_file(self.segment_path(number));
            state.segments.remove(&number);
            state.used_bytes = state.used_bytes.saturating_sub(length);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn segment_path(&self, number: u64) -> PathBuf {
        self.dir.join(format!("{number:020}.{SEGMENT_EXTENSION}"))
    }

    /// Counts the records of a segment from `start`. A damaged span (a record failing its
    /// CRC, or torn) is moved to `*.corrupt` and counted as one lost record; reading resumes
    /// at the next offset where a whole record passes its CRC, so one flipped bit costs one
    /// record, not the rest of the segment. Returns the record count and the segment's length
    /// once the damage is cut out.
    fn scan_segment(&self, number: u64, start: u64) -> Result<(u64, u64), SpoolError> {
        let path = self.segment_path(number);
        let bytes = fs::read(&path).map_err(io_error("reading segment", &path))?;
        let record_at = |offset: usize| {
            claimed_size(&bytes[offset..]).filter(|&size| passes_crc(&bytes[offset..], size))
        };
        let mut offset = (start as usize).min(bytes.len());
        let mut records = 0;
        // Only built once damage is found: the valid bytes, and the damaged ones.
        let mut kept: Option<Vec<u8>> = None;
        let mut damaged = Vec::new();
        let mut lost = 0;
        while offset < bytes.len() {
            if let Some(size) = record_at(offset) {
                if let Some(kept) = &mut kept {
                    kept.extend_from_slice(&bytes[offset..offset + size]);
                }
                offset += size;
                records += 1;
                continue;
            }
            let next = resync(&bytes, offset);
            kept.get_or_insert_with(|| bytes[..offset].to_vec());
            damaged.extend_from_slice(&bytes[offset..next]);
            lost += 1;
            offset = next;
        }
        let Some(kept) = kept else {
            return Ok((records, bytes.len() as u64));
        };
        keep_for_inspection(&path, &damaged)?;
        // Replaced in one rename of a synced file: a crash leaves the old segment or the new one.
        let clean = path.with_extension(CLEAN_EXTENSION);
        let mut file = File::create(&clean).map_err(io_error("writing", &clean))?;
        file.write_all(&kept)
            .and_then(|()| file.sync_all())
            .map_err(io_error("writing", &clean))?;
        fs::rename(&clean, &path).map_err(io_error("replacing", &path))?;
        self.corrupt.fetch_add(lost, Ordering::Relaxed);
        tracing::error!(
            segment = %path.display(),
            damaged_spans = lost,
            corrupt_bytes = damaged.len(),
            "spool segment is corrupted; the damaged bytes were moved aside as .corrupt and each span counted as one lost event"
        );
        Ok((records, kept.len() as u64))
    }

    /// Sets aside the rest of `segment` from `offset`; returns how many records that lost (≥ 1).
    fn quarantine_tail(&self, state: &mut State, segment: u64, offset: u64) -> u64 {
        let path = self.segment_path(segment);
        let length = state.segments.get(&segment).copied().unwrap_or(offset);
        if let Err(err) = split_off_tail(&path, offset) {
            tracing::error!(%err, "could not set aside a corrupted spool tail");
        }
        tracing::error!(segment = %path.display(), offset, "corrupted spool record; rest of segment set aside");
        state.segments.insert(segment, offset);
        state.used_bytes = state.used_bytes.saturating_sub(length - offset);
        if state.writer.as_ref().is_some_and(|w| w.segment == segment) {
            state.writer = None;
        }
        // The records lost cannot be counted once their framing is gone; count the event.
        let pending = self.pending_records();
        let lost = 1.min(pending);
        self.pending.fetch_sub(lost, Ordering::Relaxed);
        lost
    }
}

fn segment_number(path: &Path) -> Option<u64> {
    if path.extension()? != SEGMENT_EXTENSION {
        return None;
    }
    path.file_stem()?.to_str()?.parse().ok()
}

fn encode_record(key: &[u8], payload: &[u8]) -> Vec<u8> {
    let key = &key[..key.len().min(u16::MAX as usize)];
    let mut record = Vec::with_capacity(HEADER_BYTES + key.len() + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&(key.len() as u16).to_le_bytes());
    record.extend_from_slice(key);
    record.extend_from_slice(payload);
    let crc = crc32fast::hash(&record[8..]);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    record
}

/// One record read back from a segment.
struct SpoolRecord {
    key: Vec<u8>,
    payload: Vec<u8>,
    /// Bytes the record takes on disk, header included.
    size: u64,
}

/// Reads one record: `Ok(None)` at a torn, oversized or CRC-failing record.
fn read_record(reader: &mut impl Read) -> io::Result<Option<SpoolRecord>> {
    let mut header = [0u8; HEADER_BYTES];
    if let Err(err) = reader.read_exact(&mut header) {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => Ok(None),
            _ => Err(err),
        };
    }
    let Some((key_len, payload_len)) = claimed_lengths(&header) else {
        return Ok(None);
    };
    let size = HEADER_BYTES + key_len + payload_len;
    let mut record = Vec::with_capacity(size);
    record.extend_from_slice(&header);
    record.resize(size, 0);
    if reader.read_exact(&mut record[HEADER_BYTES..]).is_err() || !passes_crc(&record, size) {
        return Ok(None);
    }
    let payload = record.split_off(HEADER_BYTES + key_len);
    record.drain(..HEADER_BYTES);
    Ok(Some(SpoolRecord {
        key: record,
        payload,
        size: size as u64,
    }))
}

/// The key and payload lengths a record header claims; `None` if implausible (a payload over
/// twice the event size limit).
fn claimed_lengths(header: &[u8]) -> Option<(usize, usize)> {
    let payload_len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let key_len = u16::from_le_bytes(header[8..10].try_into().unwrap()) as usize;
    (payload_len <= MAX_RECORD_PAYLOAD).then_some((key_len, payload_len))
}

/// The size the record at the start of `bytes` claims, if its header is plausible and the
/// whole record is there.
fn claimed_size(bytes: &[u8]) -> Option<usize> {
    let (key_len, payload_len) = claimed_lengths(bytes.get(..HEADER_BYTES)?)?;
    let size = HEADER_BYTES + key_len + payload_len;
    (size <= bytes.len()).then_some(size)
}

/// Whether the first `size` bytes of `bytes` are a record passing its CRC (checked in place).
fn passes_crc(bytes: &[u8], size: usize) -> bool {
    let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    crc32fast::hash(&bytes[8..size]) == crc
}

/// Where the next intact record after the damaged one at `damaged` starts; the end of
/// `bytes` if there is none, or if finding it would mean checksumming more than
/// [`RESYNC_BUDGET_BYTES`] (garbage full of plausible lengths).
fn resync(bytes: &[u8], damaged: usize) -> usize {
    let mut budget = RESYNC_BUDGET_BYTES;
    for candidate in damaged + 1..bytes.len() {
        let Some(size) = claimed_size(&bytes[candidate..]) else {
            continue;
        };
        if size > budget {
            break;
        }
        budget -= size;
        if passes_crc(&bytes[candidate..], size) {
            return candidate;
        }
    }
    bytes.len()
}

/// Appends damaged bytes of segment `path` to `path.corrupt`, for inspection.
fn keep_for_inspection(path: &Path, damaged: &[u8]) -> Result<(), SpoolError> {
    let corrupt = path.with_extension("corrupt");
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&corrupt)
        .map_err(io_error("writing", &corrupt))?;
    out.write_all(damaged)
        .map_err(io_error("writing", &corrupt))
}

/// Moves the bytes of `path` from `offset` on into `path.corrupt`.
fn split_off_tail(path: &Path, offset: u64) -> Result<(), SpoolError> {
    let mut bytes = Vec::new();
    {
        let mut file = File::open(path).map_err(io_error("opening segment", path))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(io_error("seeking segment", path))?;
        file.read_to_end(&mut bytes)
            .map_err(io_error("reading segment", path))?;
    }
    if bytes.is_empty() {
        return Ok(());
    }
    keep_for_inspection(path, &bytes)?;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error("opening segment", path))?;
    file.set_len(offset)
        .map_err(io_error("truncating segment", path))
}

/// fdatasync of `writer`'s segment at `path`; notes when.
fn sync_writer(writer: &mut Writer, path: &Path) -> Result<(), SpoolError> {
    writer
        .file
        .sync_data()
        .map_err(io_error("syncing segment", path))?;
    writer.synced_at = std::time::Instant::now();
    writer.dirty = false;
    Ok(())
}

fn read_checkpoint(dir: &Path) -> SpoolPosition {
    let text = fs::read_to_string(dir.join(CHECKPOINT_FILE)).unwrap_or_default();
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(segment)), Some(Ok(offset))) => SpoolPosition { segment, offset },
        _ => SpoolPosition::default(),
    }
}

fn write_checkpoint(dir: &Path, position: SpoolPosition) -> Result<(), SpoolError> {
    let path = dir.join(CHECKPOINT_FILE);
    let temporary = dir.join("checkpoint.tmp");
    fs::write(
        &temporary,
        format!("{} {}\n", position.segment, position.offset),
    )
    .map_err(io_error("writing", &temporary))?;
    // Rename is atomic: a crash leaves the old or the new checkpoint, never half of one.
    fs::rename(&temporary, &path).map_err(io_error("replacing", &path))
}
