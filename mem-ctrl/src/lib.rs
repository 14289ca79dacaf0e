//! The encrypting memory controller of mktme-sim: the key table and PCONFIG, the AES-XTS engine,
//! the DRAM store, the DIMM bus port, and DRAM timing.
//!
//! ```text
//!   write:  plaintext --[KeyID -> key, DRAM address -> tweak]--> AES-XTS --> bus --> DRAM store
//!   read:   DRAM store --> bus --> AES-XTS decrypt --> plaintext
//! ```
//!
//! This crate is the only one that ever holds keys or ciphertext. Cores and caches (other
//! crates) see plaintext and physical addresses with KeyID bits; the bus and the DIMMs see DRAM
//! addresses (KeyID bits cleared) and ciphertext.
//!
//! ```
//! use mem_ctrl::{MemCtrlConfig, MemorySystem};
//! use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
//! use mem_ctrl::xts::XtsAlgorithm;
//! use sim_core::{Cycle, DramAddr, KeyId, RngFactory};
//!
//! let mut mem = MemorySystem::new(&MemCtrlConfig::default(), RngFactory::new(1)).unwrap();
//! // Program KeyID 3 with software-supplied keys.
//! let program = KeyProgramStruct::new(3, KeyCommand::SetKeyDirect, XtsAlgorithm::Aes128)
//!     .with_keys(&[0x11; 16], &[0x22; 16]);
//! let result = mem.pconfig(Cycle::ZERO, &PconfigCall::key_program(program));
//! assert!(result.outcome.is_success());
//!
//! // Write a line through KeyID 3 once the key is in place, then read it back.
//! let pa = mem.layout().compose(KeyId::new(3), DramAddr::new(0x1000)).unwrap();
//! mem.write_line_untimed(result.done, pa, &[7; 64]);
//! assert_eq!(mem.read_line_untimed(result.done.plus(1), pa), [7; 64]);
//! // The DIMM holds ciphertext, not the plaintext.
//! assert_ne!(mem.controllers()[0].store().read(DramAddr::new(0x1000)), [7; 64]);
//! ```

#![warn(missing_docs, unreachable_pub)]
pub mod bus;
pub mod config;
pub mod controller;
pub mod dram;
pub mod key_table;
pub mod pconfig;
pub mod store;
pub mod xts;

pub use bus::{BusPort, BusProbe, BusRecorder, BusTransaction, ProbeId};
pub use config::{
    AlgorithmSet, ExclusionRange, Fraction, MemCtrlConfig, MemCtrlConfigError, TmeSettings,
};
pub use controller::{GhostBitError, MemoryController, MemorySystem};
pub use key_table::{
    Key, KeyMode, KeyOrigin, KeyTable, LineTransform, PconfigResult, PlaintextReason,
};
pub use store::DramStore;
