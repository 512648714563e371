//! Multi-Paxos unit tests.
