//! QEMU VMs as a node: each VM a QEMU process with a virtio-balloon device, reached over
//! its QMP socket ([`client`]).

pub mod backend;
pub mod client;

#[cfg(test)]
mod fake;
