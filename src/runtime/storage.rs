//! Durable storage for a replica's incremental writes, and what a crash does to it.
//!
//! * [`MemStorage`] keeps the durable image in memory (benchmarks, tests). Every append is
//!   durable at once: a crash loses nothing.
//! * [`FileStorage`] appends every write to a log file as one JSON line and fsyncs on
//!   [`Storage::sync`], so a user can measure what durability costs; a restarted replica boots
//!   from the replayed log. JSON lines because the protocol types already derive serde and the
//!   format needs no extra dependency. A crash loses what its user-space buffer held; a write
//!   torn by it (a last line without its newline, or unreadable) is cut off at the next load,
//!   like any log-structured store does, so that later appends are not read as part of it.
//!   After a compaction ([`Storage::checkpoint`]) the image is written whole to `LOG.image`
//!   (a temporary file renamed over it, so a crash leaves the old image or the new one) with
//!   the number of the log that continues it, `LOG.<n>`; the old log is deleted. So the files
//!   hold the snapshot and the writes since, not every write ever made. The image written is
//!   the last one with the writes since folded in ([`Replica::fold_writes`]), both kept in
//!   memory from the boot's load on, not the log read back and decoded: that took the
//!   node's thread 40 ms and more at each compaction, and its followers held elections. After
//!   a crash the next checkpoint reads the files, as the boot does. An image that does
//!   not decode, or is missing while a later log continues it, is refused with an error
//!   naming the file, never read as an empty state.
//! * [`LossyStorage`] wraps either and injects the fault the protocols must survive: writes
//!   wait in memory until `sync`, and a crash ([`Storage::crash`]) keeps a seeded-random
//!   *prefix* of the unsynced ones (a log-structured store may have persisted any prefix of
//!   what it was asked to write) and drops the rest, counting them ([`Storage::lost_writes`])
//!   so that tests can show the fault really happened.
//!
//! Why losing unsynced writes is safe: the runtime syncs every write of a batch before any of
//! its messages or client answers leave (the persist-before-send rule of the effect contract),
//! so nothing a crash drops was ever announced to anyone.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::marker::PhantomData;
use std::path::PathBuf;

use paxraft_impls::{Command, Replica};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Where a replica's writes go. `sync` must make every appended write durable.
pub trait Storage<R: Replica<C>, C: Command>: Send + 'static {
    /// Append one write (buffered until `sync`).
    fn append(&mut self, write: &R::Write) -> io::Result<()>;
    /// Append one write the caller gives up (the runtime's hot path: a store that keeps
    /// writes can take them without a copy). Defaults to [`Storage::append`].
    fn append_owned(&mut self, write: R::Write) -> io::Result<()> {
        self.append(&write)
    }
    /// Make everything appended durable.
    fn sync(&mut self) -> io::Result<()>;
    /// The durable image, for booting after a crash (`None`: nothing was ever written).
    fn load(&mut self) -> io::Result<Option<R::Durable>>;
    /// The process died (a crash, or a panic of the replica thread): what was appended but
    /// not synced may be lost. Called before the next [`Storage::load`]. The default loses
    /// nothing, which is right for a store whose every append is durable at once.
    fn crash(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// How many writes crashes have lost so far (0 for a store that never loses any).
    fn lost_writes(&self) -> u64 {
        0
    }
    /// The replica compacted its log into a snapshot ([`Replica::compact`]) and the writes
    /// saying so are synced: a store that keeps writes may fold them into its image now, so
    /// that what it holds stays bounded by the snapshot and the log after it. The default
    /// keeps everything.
    fn checkpoint(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The durable image kept in memory.
///
/// Writes are kept as they come (moved, not copied: copying every log entry into the image
/// was a third of the runtime's CPU time, mostly page faults) and folded into the image only
/// when it is read, at a restart. The kept writes hold what the image would, so memory is the
/// same order as the replica's own log.
#[derive(Debug)]
pub struct MemStorage<R: Replica<C>, C: Command> {
    image: Option<R::Durable>,
    tail: Vec<R::Write>,
}

impl<R: Replica<C>, C: Command> Default for MemStorage<R, C> {
    fn default() -> Self {
        MemStorage {
            image: None,
            tail: Vec::new(),
        }
    }
}

impl<R: Replica<C>, C: Command> Storage<R, C> for MemStorage<R, C> {
    fn append(&mut self, write: &R::Write) -> io::Result<()> {
        self.tail.push(write.clone());
        Ok(())
    }
    fn append_owned(&mut self, write: R::Write) -> io::Result<()> {
        self.tail.push(write);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn load(&mut self) -> io::Result<Option<R::Durable>> {
        self.checkpoint()?;
        Ok(self.image.clone())
    }
    fn checkpoint(&mut self) -> io::Result<()> {
        if !self.tail.is_empty() {
            let image = self.image.get_or_insert_with(Default::default);
            // Moved in, not copied: the kept writes are not needed after.
            R::fold_writes(image, &mut self.tail);
        }
        Ok(())
    }
}

impl<R: Replica<C>, C: Command> MemStorage<R, C> {
    /// Writes kept and not yet folded into the image (a long run with snapshots keeps this
    /// bounded: every compaction folds them).
    pub fn unfolded(&self) -> usize {
        self.tail.len()
    }
}

/// Capacity of a [`FileStorage`]'s write buffer.
const FILE_BUFFER: usize = 1 << 16;

/// An append-only log file of JSON-encoded writes, fsynced on `sync`, and the image of the
/// last checkpoint (see the [module docs](self)).
#[derive(Debug)]
pub struct FileStorage<R: Replica<C>, C: Command> {
    /// The name the files share: `base` (log 0), `base.image`, `base.<n>` (log n).
    base: PathBuf,
    /// The log the writes go to now, and its number.
    path: PathBuf,
    generation: u64,
    file: BufWriter<File>,
    dirty: bool,
    lost: u64,
    /// What the files hold, in memory: the image they start from and the writes appended
    /// since, in order (`None` until a load reads the files, and again after a crash). As
    /// much memory as a [`MemStorage`] holds; a write's entries are shared with the replica's
    /// log, not copied.
    held: Option<Held<R::Durable, R::Write>>,
    _p: PhantomData<fn() -> (R, C)>,
}

/// [`FileStorage::held`]: an image and the writes after it.
#[derive(Debug)]
struct Held<D, W> {
    image: D,
    writes: Vec<W>,
}

/// What `LOG.image` holds: the durable image at the last checkpoint, and the number of the
/// log whose writes follow it.
#[derive(Serialize, serde::Deserialize)]
struct Checkpoint<D> {
    generation: u64,
    image: D,
}

/// `base` with `suffix` appended to its file name.
fn with_suffix(base: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl<R: Replica<C>, C: Command> FileStorage<R, C> {
    /// Open (creating or appending to) the log at `path`, continuing from its last
    /// checkpoint if it has one.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let base = path.into();
        let generation = Self::read_generation(&base)?;
        if generation == 0 && !base.exists() {
            // Without its image a later log is writes to apply to a state that is gone: read
            // alone it would boot the node from a silently emptied state.
            if let Some(orphan) = Self::later_log(&base)? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is missing, and {} continues it",
                        Self::image_path(&base).display(),
                        orphan.display()
                    ),
                ));
            }
        }
        let path = Self::log_path(&base, generation);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(FileStorage {
            base,
            path,
            generation,
            file: BufWriter::with_capacity(FILE_BUFFER, file),
            dirty: false,
            lost: 0,
            held: None,
            _p: PhantomData,
        })
    }

    /// Append `write` to the log as one JSON line (buffered).
    fn write_line(&mut self, write: &R::Write) -> io::Result<()>
    where
        R::Write: Serialize,
    {
        let written = serde_json::to_writer(&mut self.file, write)
            .map_err(io::Error::from)
            .and_then(|()| self.file.write_all(b"\n"));
        if written.is_err() {
            // Whether the file holds the write, or part of it, is unknown: the next
            // checkpoint reads the files.
            self.held = None;
        }
        self.dirty = true;
        written
    }

    fn image_path(base: &std::path::Path) -> PathBuf {
        with_suffix(base, ".image")
    }

    fn log_path(base: &std::path::Path, generation: u64) -> PathBuf {
        match generation {
            0 => base.to_path_buf(),
            n => with_suffix(base, &format!(".{n}")),
        }
    }

    /// The generation the image names (0 without an image), read without decoding the
    /// image itself.
    fn read_generation(base: &std::path::Path) -> io::Result<u64> {
        #[derive(serde::Deserialize)]
        struct Header {
            generation: u64,
        }
        let path = Self::image_path(base);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Header>(&bytes)
                .map(|h| h.generation)
                .map_err(|e| corrupt(&path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// A log of generation 1 or more next to `base` (`base.<n>`), if there is one.
    fn later_log(base: &std::path::Path) -> io::Result<Option<PathBuf>> {
        let (Some(dir), Some(name)) = (base.parent(), base.file_name()) else {
            return Ok(None);
        };
        let dir = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let file = entry.file_name();
            let file = file.to_string_lossy();
            let numbered = file.strip_prefix(&prefix).is_some_and(|n| {
                !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n != "0"
            });
            if numbered {
                return Ok(Some(entry.path()));
            }
        }
        Ok(None)
    }

    /// Bytes in the files this storage holds now (the image and the current log).
    pub fn bytes_on_disk(&self) -> io::Result<u64> {
        let image = match std::fs::metadata(Self::image_path(&self.base)) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(image + std::fs::metadata(&self.path)?.len())
    }
}

/// The error for a file whose content does not decode.
fn corrupt(path: &std::path::Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is corrupt: {e}", path.display()),
    )
}

impl<R, C> Storage<R, C> for FileStorage<R, C>
where
    R: Replica<C>,
    C: Command,
    R::Write: Serialize + DeserializeOwned,
    R::Durable: Serialize + DeserializeOwned,
{
    fn append(&mut self, write: &R::Write) -> io::Result<()> {
        self.append_owned(write.clone())
    }
    fn append_owned(&mut self, write: R::Write) -> io::Result<()> {
        self.write_line(&write)?;
        if let Some(held) = &mut self.held {
            held.writes.push(write);
        }
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.flush()?;
            self.file.get_ref().sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
    fn load(&mut self) -> io::Result<Option<R::Durable>> {
        self.sync()?;
        let image_path = Self::image_path(&self.base);
        let mut image: Option<R::Durable> = match std::fs::read(&image_path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<Checkpoint<R::Durable>>(&bytes)
                    .map_err(|e| corrupt(&image_path, e))?
                    .image,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::new(File::open(&self.path)?);
        let mut line = Vec::new();
        // The end of the last whole write.
        let mut whole = 0u64;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            // A write is whole only with its newline: a crash may tear it anywhere, even just
            // before the newline (then the next append would glue onto it).
            let Some(json) = line.strip_suffix(b"\n") else {
                break;
            };
            match serde_json::from_slice::<R::Write>(json) {
                Ok(w) => R::apply_write_owned(image.get_or_insert_with(Default::default), w),
                // Only the last write can be torn (a torn tail is cut off below, before
                // anything is appended after it); it was never synced, so never announced.
                Err(_) if reader.fill_buf()?.is_empty() => break,
                // A bad write with whole writes after it was not torn by a crash: the file
                // is damaged (or another protocol's), and cutting it off would lose them.
                Err(e) => {
                    return Err(corrupt(
                        &self.path,
                        format!("the write at byte {whole} does not decode ({e})"),
                    ))
                }
            }
            whole += n as u64;
        }
        let len = self.file.get_ref().metadata()?.len();
        if whole < len {
            // Cut the torn tail off: writes appended after it would otherwise be read back as
            // part of it, and lost, at the next load.
            let f = OpenOptions::new().write(true).open(&self.path)?;
            f.set_len(whole)?;
            f.sync_all()?;
        }
        // From here on what the files hold is kept in memory too (the checkpoints use it).
        self.held = Some(Held {
            image: image.clone().unwrap_or_default(),
            writes: Vec::new(),
        });
        Ok(image)
    }
    fn crash(&mut self) -> io::Result<()> {
        // Bytes still in the user-space buffer die with the process. What the buffer already
        // handed to the kernel survives a process crash, possibly a torn part of a write.
        let file = OpenOptions::new().append(true).open(&self.path)?;
        let old = std::mem::replace(&mut self.file, BufWriter::with_capacity(FILE_BUFFER, file));
        // `into_parts` hands the buffer back without flushing it.
        let (_, buffered) = old.into_parts();
        let buffered = buffered.unwrap_or_else(|panicked| panicked.into_inner());
        // Every write ends with a newline: a write whose newline was still buffered is lost.
        self.lost += buffered.iter().filter(|&&b| b == b'\n').count() as u64;
        self.dirty = false;
        // What the files hold now is what the next load reads.
        self.held = None;
        Ok(())
    }
    fn lost_writes(&self) -> u64 {
        self.lost
    }
    fn checkpoint(&mut self) -> io::Result<()> {
        // The files hold every write appended, as `held` does; after a crash it is read
        // from them.
        self.sync()?;
        if self.held.is_none() {
            self.load()?;
        }
        let Held {
            mut image,
            mut writes,
        } = self.held.take().expect("a load keeps what it read");
        R::fold_writes(&mut image, &mut writes);
        let next = self.generation + 1;
        let tmp = with_suffix(&self.base, ".image.tmp");
        {
            let mut f = BufWriter::new(File::create(&tmp)?);
            serde_json::to_writer(
                &mut f,
                &Checkpoint {
                    generation: next,
                    image: &image,
                },
            )?;
            f.flush()?;
            f.get_ref().sync_all()?;
        }
        // The rename is the checkpoint: before it the old image and log hold everything,
        // after it the new image does (its log, not created yet, reads as empty).
        std::fs::rename(&tmp, Self::image_path(&self.base))?;
        if let Some(dir) = self.base.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        let old = std::mem::replace(&mut self.path, Self::log_path(&self.base, next));
        self.generation = next;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::with_capacity(FILE_BUFFER, file);
        std::fs::remove_file(old)?;
        self.held = Some(Held {
            image,
            writes: Vec::new(),
        });
        Ok(())
    }
}

/// A fault-injecting storage over `S` (a [`MemStorage`] or a [`FileStorage`]): writes wait in
/// memory until [`Storage::sync`], which hands them to `S` and syncs it; a crash keeps a
/// random prefix of the unsynced writes (handed to `S` and synced: they reached the disk) and
/// drops the rest. The prefix length is drawn uniformly, from a seeded generator, so a run
/// can be repeated. [`Storage::lost_writes`] counts what was dropped.
#[derive(Debug)]
pub struct LossyStorage<R: Replica<C>, C: Command, S> {
    inner: S,
    unsynced: Vec<R::Write>,
    rng: StdRng,
    lost: u64,
}

impl<R: Replica<C>, C: Command, S: Storage<R, C>> LossyStorage<R, C, S> {
    /// Wrap `inner`; `seed` seeds the choice of what each crash keeps.
    pub fn new(inner: S, seed: u64) -> Self {
        LossyStorage {
            inner,
            unsynced: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            lost: 0,
        }
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn forward(&mut self, keep: usize) -> io::Result<()> {
        for w in self.unsynced.drain(..keep) {
            self.inner.append_owned(w)?;
        }
        self.inner.sync()
    }
}

impl<R: Replica<C>, C: Command, S: Storage<R, C>> Storage<R, C> for LossyStorage<R, C, S> {
    fn append(&mut self, write: &R::Write) -> io::Result<()> {
        self.unsynced.push(write.clone());
        Ok(())
    }
    fn append_owned(&mut self, write: R::Write) -> io::Result<()> {
        self.unsynced.push(write);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.forward(self.unsynced.len())
    }
    fn load(&mut self) -> io::Result<Option<R::Durable>> {
        // Only a first boot can find writes here (a crash empties the buffer): like the
        // stores it wraps, what was appended is what a load reads.
        self.sync()?;
        self.inner.load()
    }
    fn crash(&mut self) -> io::Result<()> {
        let keep = self.rng.gen_range(0..=self.unsynced.len());
        self.lost += (self.unsynced.len() - keep) as u64;
        self.unsynced.truncate(keep);
        self.forward(keep)?;
        self.inner.crash()
    }
    fn lost_writes(&self) -> u64 {
        self.lost + self.inner.lost_writes()
    }
    fn checkpoint(&mut self) -> io::Result<()> {
        // Only what reached the inner store is folded; unsynced writes stay at risk.
        self.inner.checkpoint()
    }
}

#[cfg(test)]
mod tests {
    use paxraft_impls::raft::{Entry, Raft, RaftWrite};
    use paxraft_impls::sm::{Kv, KvOp, Request};
    use paxraft_impls::NodeId;

    use super::*;
    use crate::runtime::Cmd;

    type R = Raft<Cmd<Kv>>;

    fn entry(term: u64, seq: u64) -> Entry<Cmd<Kv>> {
        Entry::command(
            term,
            Request {
                client: 1,
                seq,
                acked: 1,
                op: KvOp::Get(0),
            },
        )
    }

    /// Writes taken by move are folded into the image at load, as `apply_write` would.
    #[test]
    fn mem_storage_load_equals_the_applied_image() {
        let mut s = MemStorage::<R, Cmd<Kv>>::default();
        assert_eq!(s.load().unwrap(), None);
        let writes = [
            RaftWrite::HardState {
                term: 2,
                voted_for: Some(NodeId(1)),
            },
            RaftWrite::Append {
                at: 1,
                entries: vec![entry(2, 1), entry(2, 2), entry(2, 3)].into(),
            },
            RaftWrite::HardState {
                term: 3,
                voted_for: None,
            },
            // Truncates from slot 2 on, then appends.
            RaftWrite::Append {
                at: 2,
                entries: vec![entry(3, 9)].into(),
            },
        ];
        let mut image = Default::default();
        for (i, w) in writes.iter().enumerate() {
            R::apply_write(&mut image, w);
            if i % 2 == 0 {
                s.append_owned(w.clone()).unwrap();
            } else {
                s.append(w).unwrap();
            }
        }
        s.sync().unwrap();
        assert_eq!(s.load().unwrap(), Some(image.clone()));
        // Loading twice (a second restart) gives the same image.
        assert_eq!(s.load().unwrap(), Some(image));
    }

    /// Writes appending one entry each at slots 1, 2, ...
    fn appends(n: u64) -> Vec<RaftWrite<Cmd<Kv>>> {
        (1..=n)
            .map(|i| RaftWrite::Append {
                at: i,
                entries: vec![entry(1, i)].into(),
            })
            .collect()
    }

    fn image_of(writes: &[RaftWrite<Cmd<Kv>>]) -> Option<<R as Replica<Cmd<Kv>>>::Durable> {
        let mut image = None;
        for w in writes {
            R::apply_write(image.get_or_insert_with(Default::default), w);
        }
        image
    }

    /// A fresh, empty directory for one test's files.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("paxraft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// From the boot's load on, a checkpoint writes the image the store holds in memory, the
    /// writes since folded in, without reading the log back (decoding it took the node's
    /// thread 40 ms and more at each compaction): a log damaged behind its back does not
    /// reach the image. After a crash the checkpoint reads the files, as the boot does, and
    /// so refuses a damaged log.
    #[test]
    fn file_storage_checkpoints_what_it_holds_until_a_crash() {
        let dir = temp_dir("held");
        let base = dir.join("n0.log");
        let writes = appends(8);
        let restart = || {
            FileStorage::<R, Cmd<Kv>>::open(&base)
                .unwrap()
                .load()
                .unwrap()
        };
        let mut s = FileStorage::<R, Cmd<Kv>>::open(&base).unwrap();
        assert_eq!(s.load().unwrap(), None);
        for w in &writes[..3] {
            s.append(w).unwrap();
        }
        s.append_owned(writes[3].clone()).unwrap();
        s.sync().unwrap();
        let damaged = "not json\n{}\n";
        std::fs::write(&base, damaged).unwrap();
        s.checkpoint().unwrap();
        assert_eq!(restart(), image_of(&writes[..4]));
        for w in &writes[4..6] {
            s.append(w).unwrap();
        }
        s.checkpoint().unwrap();
        assert_eq!(restart(), image_of(&writes[..6]));
        for w in &writes[6..] {
            s.append(w).unwrap();
        }
        s.sync().unwrap();
        s.crash().unwrap();
        std::fs::write(with_suffix(&base, ".2"), damaged).unwrap();
        let e = s.checkpoint().unwrap_err().to_string();
        assert!(e.contains("n0.log.2 is corrupt"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A checkpoint folds the log into `LOG.image` and starts a new log: a reopened store
    /// (a restart) loads the same image as from every write, the old log is gone, and the
    /// writes after the checkpoint follow it. A corrupt image is an error naming the file.
    #[test]
    fn file_storage_checkpoints_into_an_image_and_a_new_log() {
        let dir = temp_dir("checkpoint");
        let base = dir.join("n0.log");
        let writes = appends(6);
        {
            let mut s = FileStorage::<R, Cmd<Kv>>::open(&base).unwrap();
            for w in &writes[..4] {
                s.append(w).unwrap();
            }
            s.sync().unwrap();
            s.checkpoint().unwrap();
            assert!(!base.exists(), "the old log is deleted");
            for w in &writes[4..] {
                s.append(w).unwrap();
            }
            s.sync().unwrap();
            assert_eq!(s.load().unwrap(), image_of(&writes));
        }
        // A restart: the image and the log after it.
        let mut s = FileStorage::<R, Cmd<Kv>>::open(&base).unwrap();
        assert_eq!(s.load().unwrap(), image_of(&writes));
        let lines = std::fs::read_to_string(with_suffix(&base, ".1")).unwrap();
        assert_eq!(
            lines.lines().count(),
            2,
            "only the writes since the checkpoint"
        );
        // A second checkpoint moves on to log 2.
        s.checkpoint().unwrap();
        assert!(!with_suffix(&base, ".1").exists());
        assert_eq!(s.load().unwrap(), image_of(&writes));
        drop(s);
        std::fs::write(
            with_suffix(&base, ".image"),
            b"{\"generation\": 2, \"image\": [",
        )
        .unwrap();
        let e = FileStorage::<R, Cmd<Kv>>::open(&base)
            .and_then(|mut s| s.load())
            .expect_err("a corrupt image is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("n0.log.image is corrupt"), "{e}");
        // Truncated: a prefix of a good image is refused the same way.
        std::fs::write(with_suffix(&base, ".image"), b"{\"generation\": 2, \"im").unwrap();
        let e = FileStorage::<R, Cmd<Kv>>::open(&base)
            .and_then(|mut s| s.load())
            .expect_err("a truncated image is refused");
        assert!(e.to_string().contains("n0.log.image is corrupt"), "{e}");
        // Deleted: the log after it must not be read as the whole state.
        std::fs::write(with_suffix(&base, ".2"), b"").unwrap();
        std::fs::remove_file(with_suffix(&base, ".image")).unwrap();
        let e = FileStorage::<R, Cmd<Kv>>::open(&base).expect_err("a missing image is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string().contains("n0.log.image is missing, and")
                && e.to_string().contains("n0.log.2 continues it"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A crash keeps what was synced and a prefix of the rest, every prefix length can come
    /// up, and the loss is counted; the store goes on working after it.
    fn lossy_crash_keeps_a_prefix<S: Storage<R, Cmd<Kv>>>(mut open: impl FnMut(u64) -> S) {
        let writes = appends(8);
        let mut kept_lengths = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let mut s = LossyStorage::new(open(seed), seed);
            for w in &writes[..3] {
                s.append(w).unwrap();
            }
            s.sync().unwrap();
            for w in &writes[3..7] {
                s.append_owned(w.clone()).unwrap();
            }
            s.crash().unwrap();
            let lost = s.lost_writes();
            assert!(lost <= 4, "only unsynced writes can be lost");
            let kept = 7 - lost as usize;
            assert_eq!(s.load().unwrap(), image_of(&writes[..kept]), "seed {seed}");
            kept_lengths.insert(kept);
            // After the restart: appends land after the surviving prefix.
            s.append(&writes[kept]).unwrap();
            s.sync().unwrap();
            s.crash().unwrap();
            assert_eq!(
                s.lost_writes(),
                lost,
                "a crash right after a sync loses nothing"
            );
            assert_eq!(s.load().unwrap(), image_of(&writes[..=kept]));
        }
        assert_eq!(
            kept_lengths,
            (3..=7).collect(),
            "every prefix of the unsynced writes can survive"
        );
    }

    #[test]
    fn lossy_memory_storage_keeps_a_random_prefix_of_unsynced_writes() {
        lossy_crash_keeps_a_prefix(|_| MemStorage::<R, Cmd<Kv>>::default());
    }

    #[test]
    fn lossy_file_storage_keeps_a_random_prefix_of_unsynced_writes() {
        let dir = temp_dir("lossy-file");
        lossy_crash_keeps_a_prefix(|seed| {
            FileStorage::<R, Cmd<Kv>>::open(dir.join(format!("{seed}.log"))).unwrap()
        });
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A plain memory store loses nothing: its appends are durable at once.
    #[test]
    fn memory_storage_loses_nothing_in_a_crash() {
        let writes = appends(3);
        let mut s = MemStorage::<R, Cmd<Kv>>::default();
        for w in &writes {
            s.append(w).unwrap();
        }
        s.crash().unwrap();
        assert_eq!(s.lost_writes(), 0);
        assert_eq!(s.load().unwrap(), image_of(&writes));
    }

    /// A file store's crash drops what its buffer held (not flushed), and a write torn by a
    /// crash is cut off at the next load, so the writes appended after it are read back.
    #[test]
    fn file_storage_crash_drops_the_buffer_and_a_torn_write_is_cut_off() {
        let dir = temp_dir("file-crash");
        let path = dir.join("n0.log");
        let writes = appends(6);
        let mut s = FileStorage::<R, Cmd<Kv>>::open(&path).unwrap();
        for w in &writes[..3] {
            s.append(w).unwrap();
        }
        s.sync().unwrap();
        for w in &writes[3..5] {
            s.append(w).unwrap();
        }
        s.crash().unwrap();
        assert_eq!(
            s.lost_writes(),
            2,
            "the two buffered writes died with the process"
        );
        assert_eq!(s.load().unwrap(), image_of(&writes[..3]));

        // A crash tore the next write: part of it reached the file, without its newline.
        // Whole, it would still parse: only the newline tells it is torn.
        let line = serde_json::to_string(&writes[3]).unwrap();
        for torn in [&line[..line.len() / 2], line.as_str()] {
            let len = std::fs::metadata(&path).unwrap().len();
            OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(torn.as_bytes())
                .unwrap();
            assert_eq!(s.load().unwrap(), image_of(&writes[..3]), "torn: {torn}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "cut off");
        }
        // A bad write with whole writes after it is damage, not a torn tail: refused, and
        // nothing is cut.
        let good = std::fs::read(&path).unwrap();
        let mut damaged = good.clone();
        damaged.splice(0..0, b"{\"Append\": 7}\n".iter().copied());
        std::fs::write(&path, &damaged).unwrap();
        let e = s.load().expect_err("a damaged log is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string()
                .contains("the write at byte 0 does not decode"),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "nothing cut");
        std::fs::write(&path, &good).unwrap();
        // What is appended after the cut is read back.
        s.append(&writes[3]).unwrap();
        s.sync().unwrap();
        assert_eq!(s.load().unwrap(), image_of(&writes[..4]));
        // A fresh open (a new process) reads the same.
        let mut again = FileStorage::<R, Cmd<Kv>>::open(&path).unwrap();
        assert_eq!(again.load().unwrap(), image_of(&writes[..4]));
        let _ = std::fs::remove_dir_all(dir);
    }
}
