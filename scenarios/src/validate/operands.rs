//! The values ops and expectations take, checked against the machine: addresses (virtual,
//! physical with a KeyID, or through the direct map), KeyIDs, DRAM addresses and lines, and
//! data (hex, integers, fills, text).

use super::helpers::{field, hex, index};
use super::{LINE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario_file::{AddrFile, DataFile};
use cpu_model::program::Addr;
use sim_core::{DramAddr, KeyId, VirtAddr};

impl Validator<'_> {
    pub(super) fn addr(
        &self,
        a: &AddrFile,
        path: &[PathSeg<'static>],
    ) -> Result<Addr, ScenarioError> {
        Ok(match a {
            AddrFile::Virt(v) => Addr::Virt(VirtAddr::new(*v)),
            AddrFile::DirectMapOf(v) => Addr::DirectMapOf(VirtAddr::new(*v)),
            AddrFile::Phys { keyid, addr } => {
                let keyid = self.keyid(*keyid, &field(path, "keyid"))?;
                let dram = self.dram_addr(*addr, &field(path, "addr"))?;
                let pa = self
                    .layout
                    .compose(keyid, dram)
                    .map_err(|e| self.err(path, format!("phys address: {e}")))?;
                Addr::Phys(pa)
            }
        })
    }

    /// A physical access of `len` bytes must end inside DRAM.
    pub(super) fn access_in_dram(
        &self,
        a: &AddrFile,
        len: u64,
        path: &[PathSeg<'static>],
    ) -> Result<(), ScenarioError> {
        if let AddrFile::Phys { addr, .. } = a
            && addr
                .checked_add(len)
                .is_none_or(|end| end > self.dram_bytes)
        {
            return Err(self.err(
                &field(path, "addr"),
                format!(
                    "{len} bytes at DRAM address {} run past the end of the machine's {} bytes \
                     of DRAM: expected the access inside DRAM",
                    hex(*addr),
                    hex(self.dram_bytes)
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn keyid(
        &self,
        keyid: u16,
        path: &[PathSeg<'static>],
    ) -> Result<KeyId, ScenarioError> {
        let max = self.layout.max_keyid();
        if keyid > max {
            return Err(self.err(
                path,
                format!(
                    "KeyID {keyid} does not fit the machine's {} KeyID bits: expected 0..={max}",
                    self.layout.keyid_bits()
                ),
            ));
        }
        Ok(KeyId::new(keyid))
    }

    pub(super) fn dram_addr(
        &self,
        addr: u64,
        path: &[PathSeg<'static>],
    ) -> Result<DramAddr, ScenarioError> {
        if addr >= self.dram_bytes {
            return Err(self.err(
                path,
                format!(
                    "DRAM address {} is beyond the machine's {} bytes of DRAM: expected an \
                     address below {}",
                    hex(addr),
                    hex(self.dram_bytes),
                    hex(self.dram_bytes)
                ),
            ));
        }
        Ok(DramAddr::new(addr))
    }

    /// A 64-byte-aligned DRAM line address inside DRAM.
    pub(super) fn dram_line(
        &self,
        addr: u64,
        path: &[PathSeg<'static>],
    ) -> Result<DramAddr, ScenarioError> {
        if !addr.is_multiple_of(LINE_BYTES) {
            let below = addr - addr % LINE_BYTES;
            return Err(self.err(
                path,
                format!(
                    "line {} is not 64-byte aligned: expected a multiple of 0x40 (such as {} \
                     or {})",
                    hex(addr),
                    hex(below),
                    hex(below.saturating_add(LINE_BYTES))
                ),
            ));
        }
        self.dram_addr(addr, path)
    }

    pub(super) fn data(
        &self,
        d: &DataFile,
        path: &[PathSeg<'static>],
    ) -> Result<Vec<u8>, ScenarioError> {
        // Nothing takes more than 64 bytes; bound what is allocated well above that so the
        // length error comes from the field that knows its limit.
        const DATA_BYTES_MAX: u64 = 4096;
        Ok(match d {
            DataFile::Hex(s) => parse_hex(s, DATA_BYTES_MAX as usize)
                .map_err(|m| self.err(&index(path, 0), format!("hex data: {m}")))?,
            DataFile::U8(v) => vec![*v],
            DataFile::U16(v) => v.to_le_bytes().to_vec(),
            DataFile::U32(v) => v.to_le_bytes().to_vec(),
            DataFile::U64(v) => v.to_le_bytes().to_vec(),
            DataFile::Fill { byte, len } => {
                if *len > DATA_BYTES_MAX {
                    return Err(self.err(
                        &field(path, "len"),
                        format!(
                            "fill len {len} is more than any data can hold: expected at most 64 \
                             bytes"
                        ),
                    ));
                }
                vec![*byte; *len as usize]
            }
            DataFile::Text(s) => {
                if let Some(c) = s.chars().find(|c| !c.is_ascii()) {
                    return Err(self.err(
                        &index(path, 0),
                        format!("text data holds {c:?}: expected ASCII characters only"),
                    ));
                }
                if s.len() as u64 > DATA_BYTES_MAX {
                    return Err(self.err(
                        &index(path, 0),
                        format!(
                            "text of {} bytes is more than any data can hold: expected at most \
                             64 bytes",
                            s.len()
                        ),
                    ));
                }
                s.as_bytes().to_vec()
            }
        })
    }
}

/// Parses hex digits in pairs, with whitespace or `_` allowed between pairs; at most
/// `max_bytes` bytes.
pub fn parse_hex(text: &str, max_bytes: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut high: Option<u8> = None;
    let mut digits = 0usize;
    for (i, c) in text.chars().enumerate() {
        if c.is_whitespace() || c == '_' {
            if high.is_some() {
                return Err(format!(
                    "separator {c:?} at character {} splits a byte: expected separators only \
                     between pairs of hex digits",
                    i + 1
                ));
            }
            continue;
        }
        let Some(v) = c.to_digit(16) else {
            return Err(format!(
                "{c:?} at character {} is not a hex digit: expected pairs of 0-9, a-f",
                i + 1
            ));
        };
        digits += 1;
        match high.take() {
            None => high = Some(v as u8),
            Some(h) => {
                if out.len() >= max_bytes {
                    return Err(format!(
                        "more than {max_bytes} bytes: expected at most {max_bytes}"
                    ));
                }
                out.push(h << 4 | v as u8);
            }
        }
    }
    if high.is_some() {
        return Err(format!(
            "{digits} hex digits: expected an even number (two per byte)"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_data() {
        assert_eq!(
            parse_hex("00 11_22\n33", 64).unwrap(),
            [0, 0x11, 0x22, 0x33]
        );
        assert_eq!(parse_hex("", 64).unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex("aAfF", 64).unwrap(), [0xaa, 0xff]);
        assert!(parse_hex("0 0", 64).unwrap_err().contains("splits a byte"));
        assert!(parse_hex("abc", 64).unwrap_err().contains("3 hex digits"));
        assert!(
            parse_hex("0g", 64)
                .unwrap_err()
                .contains("'g' at character 2")
        );
        assert!(parse_hex("0x00", 64).unwrap_err().contains("'x'"));
        assert!(
            parse_hex("000000", 2)
                .unwrap_err()
                .contains("more than 2 bytes")
        );
    }
}
