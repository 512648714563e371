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
    /// Make everything appended durable.
    fn sync(&mut self) -> io::Result<()>;
    /// The durable image, for booting after a crash (`None`: nothing was ever written).
    fn load(&mut self) -> io::Result<Option<R::Durable>>;
}

/// The durable image kept in memory.
#[derive(Debug)]
pub struct MemStorage<R: Replica<C>, C: Command> {
    image: Option<R::Durable>,
}

impl<R: Replica<C>, C: Command> Default for MemStorage<R, C> {
    fn default() -> Self {
        MemStorage { image: None }
    }
}

impl<R: Replica<C>, C: Command> Storage<R, C> for MemStorage<R, C> {
    fn append(&mut self, write: &R::Write) -> io::Result<()> {
        R::apply_write(self.image.get_or_insert_with(Default::default), write);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn load(&mut self) -> io::Result<Option<R::Durable>> {
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
