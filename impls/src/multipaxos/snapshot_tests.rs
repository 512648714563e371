//! Multi-Paxos snapshot tests (see [`super::snapshot`]).
