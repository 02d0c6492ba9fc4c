//! QEMU VMs as a node: each VM a QEMU process with a virtio-balloon device, reached over
//! its QMP socket ([`client`]).

pub mod client;
pub mod node;

#[cfg(test)]
mod fake;
