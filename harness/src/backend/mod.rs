//! The nodes the run loop drives ([`node_backend::NodeBackend`]) besides the simulator
//! ([`crate::sim`]): [`cgroup_backend`] runs each VM as a Linux memory cgroup of stand-in
//! programs ([`standin`]) on primitives of [`cgroup`]; [`qmp`] balloons real QEMU VMs.
//! The agents that act on them are in [`crate::agents`].

pub mod cgroup;
pub mod cgroup_backend;
pub mod node_backend;
pub mod qmp;
pub mod standin;
