//! Raft log compaction and InstallSnapshot unit tests (§7, Figure 13).
