//! Durable storage for a replica's incremental writes.
//!
//! [`MemStorage`] keeps the durable image in memory (benchmarks, tests: it survives a crash of
//! the replica *thread*, which is what `Cluster::crash` simulates). [`FileStorage`] appends
//! every write to a log file as one JSON line and fsyncs on [`Storage::sync`], so a user can
//! measure what durability costs; a restarted replica boots from the replayed log. JSON lines
//! because the protocol types already derive serde and the format needs no extra dependency;
//! a torn last line (a crash mid-append) is ignored on replay, like any log-structured store.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::marker::PhantomData;
use std::path::PathBuf;

use paxraft_impls::{Command, Replica};
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
        if !self.tail.is_empty() {
            let image = self.image.get_or_insert_with(Default::default);
            for w in self.tail.drain(..) {
                R::apply_write(image, &w);
            }
        }
        Ok(self.image.clone())
    }
}

/// An append-only log file of JSON-encoded writes, fsynced on `sync`.
#[derive(Debug)]
pub struct FileStorage<R, C> {
    path: PathBuf,
    file: BufWriter<File>,
    dirty: bool,
    _p: PhantomData<fn() -> (R, C)>,
}

impl<R, C> FileStorage<R, C> {
    /// Open (creating or appending to) the log at `path`.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(FileStorage {
            path,
            file: BufWriter::with_capacity(1 << 16, file),
            dirty: false,
            _p: PhantomData,
        })
    }
}

impl<R, C> Storage<R, C> for FileStorage<R, C>
where
    R: Replica<C>,
    C: Command,
    R::Write: Serialize + DeserializeOwned,
{
    fn append(&mut self, write: &R::Write) -> io::Result<()> {
        serde_json::to_writer(&mut self.file, write)?;
        self.file.write_all(b"\n")?;
        self.dirty = true;
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
        let mut image: Option<R::Durable> = None;
        for line in BufReader::new(File::open(&self.path)?).lines() {
            let line = line?;
            match serde_json::from_str::<R::Write>(&line) {
                Ok(w) => R::apply_write(image.get_or_insert_with(Default::default), &w),
                // Only the last line can be torn; anything after it was never acknowledged.
                Err(_) => break,
            }
        }
        Ok(image)
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
        Entry {
            term,
            cmd: Some(Request {
                client: 1,
                seq,
                acked: 1,
                op: KvOp::Get(0),
            }),
        }
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
                entries: vec![entry(2, 1), entry(2, 2), entry(2, 3)],
            },
            RaftWrite::HardState {
                term: 3,
                voted_for: None,
            },
            // Truncates from slot 2 on, then appends.
            RaftWrite::Append {
                at: 2,
                entries: vec![entry(3, 9)],
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
}
