//! The values ops and expectations take, checked against the machine: addresses (virtual,
//! physical with a KeyID, or through the direct map), KeyIDs, DRAM addresses and lines, and
//! data (hex, integers, fills, text). Addresses and integer data may be expressions in the
//! indices of enclosing repeats (`expr`): each is checked over every iteration.

use super::expr::{self, Affine};
use super::helpers::{field, hex, index};
use super::{LINE_BYTES, ScenarioError, Validator};
use crate::locate::PathSeg;
use crate::scenario_file::{AddrFile, DataFile, NumFile};
use cpu_model::program::{Addr, IndexTerm, OpTag};
use sim_core::{DramAddr, KeyId, VirtAddr};

/// An op's address: its value in every repeat's first iteration, the terms it steps by, and,
/// for a physical one, the highest DRAM address any iteration names (for the access's end).
#[derive(Clone, Debug)]
pub(super) struct AddrValue {
    pub(super) addr: Addr,
    pub(super) steps: Vec<IndexTerm>,
    /// A physical address's highest DRAM address, and where it comes from (for messages).
    dram_max: Option<(u64, String)>,
}

/// Data and the terms its value steps by (integers only).
pub(super) type SteppedData = (Vec<u8>, Vec<IndexTerm>);

impl Validator<'_> {
    /// A number or expression, in the indices in scope.
    pub(super) fn affine(
        &self,
        n: &NumFile,
        path: &[PathSeg<'static>],
    ) -> Result<Affine, ScenarioError> {
        match n {
            NumFile::Int(v) => Ok(Affine {
                constant: i128::from(*v),
                terms: Vec::new(),
            }),
            NumFile::Expr(text) => expr::parse(text, &self.scope)
                .map_err(|m| self.err(path, format!("expression \"{text}\": {m}"))),
        }
    }

    /// Checks `check` on the value of `a` in every iteration (its extremes, which bound the
    /// rest) and returns the value in the first iteration. Messages about an expression say
    /// at which index values it goes wrong.
    pub(super) fn checked<T>(
        &self,
        n: &NumFile,
        a: &Affine,
        path: &[PathSeg<'static>],
        check: impl Fn(u64) -> Result<T, ScenarioError>,
    ) -> Result<T, ScenarioError> {
        let NumFile::Expr(text) = n else {
            return check(a.constant as u64);
        };
        let explain = |mut e: ScenarioError, v: i128, at: &str| {
            // Addresses read best in hex, small values in decimal.
            let v = match u64::try_from(v) {
                Ok(u) if u >= 4096 => hex(u),
                _ => v.to_string(),
            };
            e.message = format!("{} (\"{text}\" is {v} at {at})", e.message);
            e
        };
        if !a.terms.is_empty() && !a.never_runs(&self.scope) {
            let ((lo, at_lo), (hi, at_hi)) = a.range(&self.scope);
            for (v, at) in [(lo, &at_lo), (hi, &at_hi)] {
                let Ok(u) = u64::try_from(v) else {
                    return Err(self.err(
                        path,
                        format!(
                            "expression \"{text}\" is {v} at {at}: expected values within \
                             0..=0xffff_ffff_ffff_ffff"
                        ),
                    ));
                };
                check(u).map_err(|e| explain(e, v, at))?;
            }
        }
        let Ok(first) = u64::try_from(a.constant) else {
            return Err(self.err(
                path,
                format!(
                    "expression \"{text}\" is {} in the first iteration: expected values within \
                     0..=0xffff_ffff_ffff_ffff",
                    a.constant
                ),
            ));
        };
        check(first)
    }

    /// The terms of `a` (times `unit`) as the core takes them: one per index whose repeat
    /// runs more than once, in wrapping arithmetic.
    pub(super) fn terms(&self, a: &Affine, unit: u64) -> Vec<IndexTerm> {
        a.terms
            .iter()
            .filter(|(slot, _)| self.scope[*slot].times > 1)
            .map(|&(slot, c)| {
                let c = (c.rem_euclid(1 << 64) as u64).wrapping_mul(unit);
                IndexTerm {
                    repeat: OpTag(self.scope[slot].tag),
                    step: c as i64,
                }
            })
            .collect()
    }

    pub(super) fn addr(
        &self,
        a: &AddrFile,
        path: &[PathSeg<'static>],
    ) -> Result<AddrValue, ScenarioError> {
        let virt = |n: &NumFile| -> Result<(u64, Vec<IndexTerm>), ScenarioError> {
            let path = index(path, 0);
            let a = self.affine(n, &path)?;
            let v = self.checked(n, &a, &path, Ok)?;
            Ok((v, self.terms(&a, 1)))
        };
        Ok(match a {
            AddrFile::Virt(n) => {
                let (v, steps) = virt(n)?;
                AddrValue {
                    addr: Addr::Virt(VirtAddr::new(v)),
                    steps,
                    dram_max: None,
                }
            }
            AddrFile::DirectMapOf(n) => {
                let (v, steps) = virt(n)?;
                AddrValue {
                    addr: Addr::DirectMapOf(VirtAddr::new(v)),
                    steps,
                    dram_max: None,
                }
            }
            AddrFile::Phys { keyid, addr } => {
                let kpath = field(path, "keyid");
                let k = self.affine(keyid, &kpath)?;
                let first_keyid = self.checked(keyid, &k, &kpath, |v| match u16::try_from(v) {
                    Ok(v) => self.keyid(v, &kpath),
                    Err(_) => Err(self.err(
                        &kpath,
                        format!(
                            "KeyID {v} does not fit the machine's {} KeyID bits: expected \
                             0..={}",
                            self.layout.keyid_bits(),
                            self.layout.max_keyid()
                        ),
                    )),
                })?;
                let apath = field(path, "addr");
                let d = self.affine(addr, &apath)?;
                let dram = self.checked(addr, &d, &apath, |v| self.dram_addr(v, &apath))?;
                let pa = self
                    .layout
                    .compose(first_keyid, dram)
                    .map_err(|e| self.err(path, format!("phys address: {e}")))?;
                // A KeyID step moves the address by whole KeyIDs: the KeyID field's unit.
                let keyid_unit = match self.layout.compose(KeyId::new(1), DramAddr::new(0)) {
                    Ok(unit) if self.layout.max_keyid() >= 1 => unit.raw(),
                    _ => 0,
                };
                let mut steps = self.terms(&d, 1);
                for t in self.terms(&k, keyid_unit) {
                    match steps.iter_mut().find(|s| s.repeat == t.repeat) {
                        Some(s) => s.step = s.step.wrapping_add(t.step),
                        None => steps.push(t),
                    }
                }
                let dram_max = match addr {
                    NumFile::Expr(text) if !d.terms.is_empty() && !d.never_runs(&self.scope) => {
                        let (_, (hi, at)) = d.range(&self.scope);
                        (hi as u64, format!(" (\"{text}\" at {at})"))
                    }
                    _ => (dram.raw(), String::new()),
                };
                AddrValue {
                    addr: Addr::Phys(pa),
                    steps,
                    dram_max: Some(dram_max),
                }
            }
        })
    }

    /// A physical access of `len` bytes must end inside DRAM, in every iteration.
    pub(super) fn access_in_dram(
        &self,
        a: &AddrValue,
        len: u64,
        path: &[PathSeg<'static>],
    ) -> Result<(), ScenarioError> {
        if let Some((addr, at)) = &a.dram_max
            && addr
                .checked_add(len)
                .is_none_or(|end| end > self.dram_bytes)
        {
            return Err(self.err(
                &field(path, "addr"),
                format!(
                    "{len} bytes at DRAM address {}{at} run past the end of the machine's {} \
                     bytes of DRAM: expected the access inside DRAM",
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

    /// Data that may step with the indices in scope (a store's): the bytes in every repeat's
    /// first iteration, and the terms the value steps by.
    pub(super) fn data_stepped(
        &self,
        d: &DataFile,
        path: &[PathSeg<'static>],
    ) -> Result<SteppedData, ScenarioError> {
        let (n, width) = match d {
            DataFile::U8(n) => (n, 1),
            DataFile::U16(n) => (n, 2),
            DataFile::U32(n) => (n, 4),
            DataFile::U64(n) => (n, 8),
            _ => return Ok((self.data(d, path)?, Vec::new())),
        };
        let vpath = index(path, 0);
        let a = self.affine(n, &vpath)?;
        let max = if width == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * width)) - 1
        };
        let v = self.checked(n, &a, &vpath, |v| {
            if v > max {
                Err(self.err(
                    &vpath,
                    format!(
                        "{v} is out of bounds for u{}: expected 0..={max}",
                        8 * width
                    ),
                ))
            } else {
                Ok(v)
            }
        })?;
        Ok((v.to_le_bytes()[..width].to_vec(), self.terms(&a, 1)))
    }

    /// Data that does not step: an expectation's, or a store's outside an index's scope.
    pub(super) fn data(
        &self,
        d: &DataFile,
        path: &[PathSeg<'static>],
    ) -> Result<Vec<u8>, ScenarioError> {
        if let DataFile::U8(n) | DataFile::U16(n) | DataFile::U32(n) | DataFile::U64(n) = d {
            let (bytes, steps) = self.data_stepped(d, path)?;
            if !steps.is_empty()
                && let NumFile::Expr(text) = n
            {
                return Err(self.err(
                    &index(path, 0),
                    format!(
                        "expression \"{text}\" steps with a repeat's index, and expected values \
                         cannot: expected a constant here (a store's data may step)"
                    ),
                ));
            }
            return Ok(bytes);
        }
        // Nothing takes more than 64 bytes; bound what is allocated well above that so the
        // length error comes from the field that knows its limit.
        const DATA_BYTES_MAX: u64 = 4096;
        Ok(match d {
            DataFile::Hex(s) => parse_hex(s, DATA_BYTES_MAX as usize)
                .map_err(|m| self.err(&index(path, 0), format!("hex data: {m}")))?,
            DataFile::U8(_) | DataFile::U16(_) | DataFile::U32(_) | DataFile::U64(_) => {
                unreachable!("integers are read above")
            }
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
