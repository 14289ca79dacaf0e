//! The inputs: scenario files from the repository (the seeds), mutated deterministically.
//!
//! Input `i` of a phase depends only on the fuzzer's `--seed`, the phase and `i` (each draws
//! from its own ChaCha stream), so any input can be made again alone (`--save`). Loader
//! inputs take one to eight mutations of any kind: byte-level (bit flips, bytes and tokens
//! inserted, ranges deleted or repeated, two seeds spliced, truncation) and structure-aware
//! (numbers replaced with boundary values, strings with sizes, expressions and long or
//! control-laden text, names swapped, list elements repeated, moved between seeds or dropped,
//! values nested deeply, fields inserted). Run inputs take zero to three structure-aware
//! mutations with gentler values, so that most still validate and run.

use crate::shape::{Shape, shape};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::ops::Range;

/// A seed: a scenario file's name and bytes.
pub struct Seed {
    /// Its path, as found.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The seeds and what the mutations borrow from them.
pub struct Corpus {
    seeds: Vec<Seed>,
    /// Every bare name, list element and string of every seed.
    names: Vec<Vec<u8>>,
    elements: Vec<Vec<u8>>,
    strings: Vec<Vec<u8>>,
}

/// Which kind of input.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// For the loader: anything goes.
    Loader,
    /// To run: mostly valid.
    Run,
}

/// One input and how it was made.
pub struct Input {
    /// The seed's path: the file name the loader is told (a DRAM file the input names is
    /// looked for beside it).
    pub file: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Fields set as `mktme-sim check` or `run --set PATH=VALUE` would.
    pub sets: Vec<String>,
    /// The seed and the mutations, in order (for the finding's file).
    pub recipe: String,
}

/// Inputs above this size are not made (a mutation that would grow past it is skipped): the
/// loader's own limit (64 MiB) plus room to see it refuse.
const INPUT_BYTES_MAX: usize = 72 << 20;

/// Structure-aware mutations apply to inputs up to this size; larger ones get a byte-level
/// mutation instead.
const SHAPE_BYTES_MAX: usize = 1 << 20;

/// Mutations that make inputs of megabytes happen once in this many (they are slow to read,
/// and a few go a long way).
const HUGE_ONCE_IN: usize = 200;

impl Corpus {
    /// The corpus of these seeds (at least one).
    pub fn new(seeds: Vec<Seed>) -> Corpus {
        let mut names = Vec::new();
        let mut elements = Vec::new();
        let mut strings = Vec::new();
        for seed in &seeds {
            let s = shape(&seed.bytes);
            let take = |r: &Range<usize>| seed.bytes[r.clone()].to_vec();
            names.extend(s.names.iter().map(take));
            strings.extend(s.strings.iter().map(take));
            elements.extend(s.lists.iter().flatten().map(take));
        }
        for list in [&mut names, &mut elements, &mut strings] {
            list.sort();
            list.dedup();
        }
        Corpus {
            seeds,
            names,
            elements,
            strings,
        }
    }

    /// The seeds.
    pub fn seeds(&self) -> &[Seed] {
        &self.seeds
    }

    /// Input `index` of kind `kind` under the fuzzer's seed `seed`. The first inputs of each
    /// kind are the seeds themselves, unchanged.
    pub fn input(&self, kind: Kind, seed: u64, index: u64) -> Input {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&(kind as u64).to_le_bytes());
        key[16..24].copy_from_slice(&index.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        let n = self.seeds.len();
        let (chosen, mutations) = if index < n as u64 {
            (index as usize, 0)
        } else {
            let chosen = below(&mut rng, n);
            let mutations = match kind {
                Kind::Loader => 1 + below(&mut rng, 8),
                Kind::Run => below(&mut rng, 4),
            };
            (chosen, mutations)
        };
        let mut m = Mutator {
            corpus: self,
            rng,
            kind,
            bytes: self.seeds[chosen].bytes.clone(),
        };
        let mut recipe = self.seeds[chosen].name.clone();
        for _ in 0..mutations {
            let name = m.mutate();
            recipe.push_str(", ");
            recipe.push_str(name);
        }
        // A third of the mutated run inputs also get a machine or run knob or two set, as
        // a user's `--set` would: the runner meets every size the validator lets through.
        // One loader input in eight gets one or two arbitrary `--set` arguments: the
        // overrides edit the file's text, and are fuzzed with it.
        let mut sets = Vec::new();
        if mutations > 0 {
            let (chance, knob) = match kind {
                Kind::Run => (3, true),
                Kind::Loader => (8, false),
            };
            if m.chance(chance) {
                for _ in 0..1 + m.below(2) {
                    let set = if knob { m.knob() } else { m.any_set() };
                    sets.push(set);
                }
                recipe.push_str(&format!(", set {}", sets.join(" ")));
            }
        }
        Input {
            file: self.seeds[chosen].name.clone(),
            bytes: m.bytes,
            sets,
            recipe,
        }
    }
}

/// A number below `n` (n > 0).
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[below(rng, items.len())])
}

/// Bytes and tokens a byte-level insertion uses.
const TOKENS: &[&[u8]] = &[
    b"(",
    b")",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"//",
    b"/*",
    b"*/",
    b"\n",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xe2\x80\xae",
    b"'",
    b"r#\"",
    b"#",
    b"\\",
    b"-",
    b".",
    b"0x",
    b"_",
    b"e",
    b"\xef\xbb\xbf",
    b"\x1b[2J",
    b"Some(",
    b"None",
    b"true",
    b"()",
    b"[]",
];

/// Numbers at the edges of what fields take.
const BOUNDARIES: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "7",
    "8",
    "15",
    "16",
    "17",
    "63",
    "64",
    "65",
    "255",
    "256",
    "1023",
    "1024",
    "4095",
    "4096",
    "4097",
    "65535",
    "65536",
    "999_999",
    "1_000_000",
    "1_000_001",
    "10_000_000",
    "1_000_000_000_000",
    "1_000_000_000_001",
    "0xffffffff",
    "4294967296",
    "0x7fffffffffffffff",
    "9223372036854775808",
    "18446744073709551615",
    "0xffffffffffffffff",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "-1",
    "-9223372036854775808",
    "1e19",
    "0.5",
    "1e-300",
    "0x",
    "0b",
];

/// Strings: sizes, names, expressions, hostile text.
const STRINGS: &[&str] = &[
    "",
    "0",
    "1",
    "64",
    "3k",
    "4k",
    "48k",
    "2m",
    "16m",
    "1g",
    "4g",
    "16g",
    "64g",
    "1t",
    "16e",
    "1024g",
    "0x40",
    "18446744073709551615",
    "ddr4-2400",
    "ddr5-4800",
    "server",
    "default",
    "i/0",
    "i%0",
    "0xffffffffffffffff + 1",
    "0 - 1",
    "1 << 64",
    "i*i*i*i*i*i*i*i*i*i*i*i*i*i*i*i",
    "-(-9223372036854775808)",
    "\\n",
    "a\\nfile.ron:1:1: forged",
    "\\u{1b}[31mred",
    "\\u{0}",
    "\\",
];

/// Moderate numbers, for run inputs: most still validate.
const MODERATE: &[&str] = &[
    "0", "1", "2", "3", "4", "8", "16", "32", "64", "100", "128", "512", "1000", "4096", "65536",
];

/// Sizes as the files write them.
const SIZES: &[&str] = &[
    "\"64\"", "\"4k\"", "\"32k\"", "\"1m\"", "\"8m\"", "\"64m\"", "\"1g\"", "\"4g\"", "\"64g\"",
    "\"1t\"", "64", "4096", "0", "3",
];

/// Fields inserted after a `(`: `N` a number, `S` a size, `B` a boolean.
const FIELDS: &[&str] = &[
    "size: S",
    "ways: N",
    "latency: N",
    "mshrs: N",
    "cores: N",
    "l1d: (size: S, ways: N)",
    "l2: (size: S, ways: N)",
    "llc: (size: S, ways: N, inclusive: B)",
    "writeback_buffer: N",
    "snoop_latency: N",
    "prefetch: (degree: N, stride_table: N)",
    "memory: (controllers: N, interleave: S)",
    "memory: (phys_addr_bits: N, keyid_bits: N)",
    "memory: (pconfig_latency: N)",
    "core: (store_buffer: N, outstanding_loads: N, tlb_entries: N, issue_width: N)",
    "core: (page_walk_cycles: N, syscall_cycles: N, branch_resolve_cycles: N)",
    "keyids: N",
    "frames: (base: N, size: S)",
    "cycles_max: N",
    "drain_at_end: B",
    "times: N",
    "len: S",
    "bus_log: N",
];

/// Fields a run input may have set (`--set PATH=VALUE`), with values from the smallest to
/// beyond what the validator takes.
const KNOBS: &[(&str, &[&str])] = &[
    ("machine.caches.cores", &["1", "2", "8", "64"]),
    (
        "machine.caches.l1d.size",
        &["\"4k\"", "\"64k\"", "\"1m\"", "\"64m\"", "\"1g\"", "\"4g\""],
    ),
    (
        "machine.caches.l2.size",
        &["\"64k\"", "\"4m\"", "\"256m\"", "\"4g\"", "\"64g\""],
    ),
    (
        "machine.caches.llc.size",
        &["\"1m\"", "\"64m\"", "\"1g\"", "\"4g\"", "\"64g\""],
    ),
    ("machine.caches.l1d.ways", &["1", "2", "64", "1024"]),
    ("machine.caches.llc.ways", &["1", "16", "1024"]),
    ("machine.caches.writeback_buffer", &["1", "4096"]),
    ("machine.caches.prefetch.degree", &["0", "1", "64"]),
    ("machine.memory.controllers", &["1", "2", "64"]),
    ("machine.memory.pconfig_latency", &["0", "1", "1000000"]),
    ("machine.core.store_buffer", &["1", "1024"]),
    ("machine.core.outstanding_loads", &["1", "256"]),
    ("machine.core.tlb_entries", &["1", "65536"]),
    ("machine.core.issue_width", &["1", "16"]),
    ("kernel.keyids", &["0", "1", "63"]),
    ("run.drain_at_end", &["true", "false"]),
    ("seed", &["0", "18446744073709551615"]),
];

/// Ops inserted into a list.
const OPS: &[&str] = &[
    "compute(N)",
    "mmap(addr: 0x7000_0000, len: S, prot: rw)",
    "munmap(addr: 0x7000_0000, len: S)",
    "load(at: phys(keyid: N, addr: N), len: N)",
    "store(at: phys(keyid: N, addr: N), data: fill(byte: 1, len: N))",
    "repeat(times: N, ops: [compute(N)])",
    "repeat(times: N, ops: [repeat(times: N, ops: [load(at: phys(keyid: 0, addr: 0x40000), len: 8)])])",
    "clflush(at: phys(keyid: 0, addr: N))",
    "wbinvd",
    "mfence",
    "pconfig(keyid: N, command: set_key_random)",
];

struct Mutator<'a> {
    corpus: &'a Corpus,
    rng: ChaCha8Rng,
    kind: Kind,
    bytes: Vec<u8>,
}

impl Mutator<'_> {
    /// Applies one mutation; its name.
    fn mutate(&mut self) -> &'static str {
        let byte_level = match self.kind {
            Kind::Loader => self.chance(2),
            Kind::Run => self.chance(20),
        };
        if byte_level {
            self.byte_mutation()
        } else {
            self.structure_mutation()
        }
    }

    /// True once in `n`.
    fn chance(&mut self, n: usize) -> bool {
        below(&mut self.rng, n) == 0
    }

    fn below(&mut self, n: usize) -> usize {
        below(&mut self.rng, n.max(1))
    }

    fn other_seed(&mut self) -> &[u8] {
        let n = self.corpus.seeds.len();
        &self.corpus.seeds[below(&mut self.rng, n)].bytes
    }

    /// A random range of the input, of at most `max` bytes.
    fn range(&mut self, max: usize) -> Range<usize> {
        let start = self.below(self.bytes.len() + 1);
        let len = self.below(max.min(self.bytes.len() - start) + 1);
        start..start + len
    }

    /// Replaces `r` with `with`, unless the input would grow past [`INPUT_BYTES_MAX`].
    fn replace(&mut self, r: Range<usize>, with: &[u8]) {
        if self.bytes.len() - r.len() + with.len() <= INPUT_BYTES_MAX {
            self.bytes.splice(r, with.iter().copied());
        }
    }

    fn byte_mutation(&mut self) -> &'static str {
        let len = self.bytes.len();
        match self.below(8) {
            0 if len > 0 => {
                let i = self.below(len);
                self.bytes[i] ^= 1 << self.below(8);
                "flip a bit"
            }
            1 if len > 0 => {
                let i = self.below(len);
                self.bytes[i] = self.rng.next_u64() as u8;
                "set a byte"
            }
            2 => {
                let at = self.below(len + 1);
                let token = *pick(&mut self.rng, TOKENS).expect("tokens");
                self.replace(at..at, token);
                "insert a token"
            }
            3 => {
                let r = self.range(64);
                self.replace(r, &[]);
                "delete bytes"
            }
            4 => {
                let r = self.range(256);
                let copy = self.bytes[r].to_vec();
                let at = self.below(len + 1);
                self.replace(at..at, &copy);
                "repeat bytes"
            }
            5 => {
                let at = self.below(len + 1);
                let other = self.other_seed().to_vec();
                let from = self.below(other.len() + 1);
                self.replace(at..len, &other[from..]);
                "splice two seeds"
            }
            6 => {
                let other = self.other_seed().to_vec();
                let from = self.below(other.len() + 1);
                let to = from + self.below((other.len() - from).min(512) + 1);
                let at = self.below(len + 1);
                self.replace(at..at, &other[from..to]);
                "insert a piece of another seed"
            }
            _ => {
                let at = self.below(len + 1);
                self.bytes.truncate(at);
                "truncate"
            }
        }
    }

    fn structure_mutation(&mut self) -> &'static str {
        // Reading the shape of megabytes of nested brackets takes many times their size: a
        // large input gets a byte-level mutation instead, so that making inputs stays cheap
        // (the memory budget counts the fuzzer's own allocations too).
        if self.bytes.len() > SHAPE_BYTES_MAX {
            return self.byte_mutation();
        }
        let s = shape(&self.bytes);
        let name = match self.below(9) {
            0 | 1 => self.number(&s),
            2 => self.string(&s),
            3 => self.swap_name(&s),
            4 => self.repeat_element(&s),
            5 => self.insert_element(&s),
            6 => self.drop_element(&s),
            7 => self.nest(&s),
            _ => self.insert_field(&s),
        };
        name.unwrap_or("nothing (no place for it)")
    }

    /// A knob and one of its values, `PATH=VALUE`.
    fn knob(&mut self) -> String {
        let (path, values) = *pick(&mut self.rng, KNOBS).expect("knobs");
        let value = pick(&mut self.rng, values).expect("values");
        format!("{path}={value}")
    }

    /// Any `PATH=VALUE`: a knob's path or one of names and list positions, and a value from
    /// anywhere (a number, a string, quoted or bare, a seed's list element).
    fn any_set(&mut self) -> String {
        let path = if self.chance(2) {
            pick(&mut self.rng, KNOBS).expect("knobs").0.to_owned()
        } else {
            let mut segments = Vec::new();
            for _ in 0..1 + self.below(5) {
                segments.push(if self.chance(3) {
                    ["0", "1", "3", "4294967296", "99999999999999999999"][self.below(5)].to_owned()
                } else {
                    let name = pick(&mut self.rng, &self.corpus.names).expect("names");
                    String::from_utf8_lossy(name).into_owned()
                });
            }
            segments.join(".")
        };
        let value = match self.below(5) {
            0 => self.value(None),
            1 => format!("\"{}\"", pick(&mut self.rng, STRINGS).expect("strings")),
            2 => (*pick(&mut self.rng, STRINGS).expect("strings")).to_owned(),
            3 => {
                let e = pick(&mut self.rng, &self.corpus.elements).expect("elements");
                String::from_utf8_lossy(e).into_owned()
            }
            _ => {
                let (_, values) = *pick(&mut self.rng, KNOBS).expect("knobs");
                (*pick(&mut self.rng, values).expect("values")).to_owned()
            }
        };
        format!("{path}={value}")
    }

    /// A number for a field: a boundary, a power of two near it, or (for run inputs, mostly)
    /// a moderate one or a neighbour of `old`.
    fn value(&mut self, old: Option<&[u8]>) -> String {
        let gentle = self.kind == Kind::Run && !self.chance(4);
        match self.below(4) {
            _ if gentle && self.chance(2) => {
                (*pick(&mut self.rng, MODERATE).expect("moderate")).to_owned()
            }
            0 if old.is_some() => {
                let old = old.and_then(parse_number).unwrap_or(0);
                let new = match self.below(6) {
                    0 => old.wrapping_sub(1),
                    1 => old.wrapping_add(1),
                    2 => old.wrapping_mul(2),
                    3 => old / 2,
                    4 => old.wrapping_mul(1024),
                    _ => old.wrapping_shl(20),
                };
                new.to_string()
            }
            1 => {
                let k = self.below(65) as u32;
                let base = 1u128 << k;
                let n = match self.below(3) {
                    0 => base - 1,
                    1 => base,
                    _ => base + 1,
                };
                if self.chance(2) {
                    format!("{n:#x}")
                } else {
                    n.to_string()
                }
            }
            _ if gentle => (*pick(&mut self.rng, MODERATE).expect("moderate")).to_owned(),
            _ => (*pick(&mut self.rng, BOUNDARIES).expect("boundaries")).to_owned(),
        }
    }

    fn number(&mut self, s: &Shape) -> Option<&'static str> {
        let r = pick(&mut self.rng, &s.numbers)?.clone();
        let old = self.bytes[r.clone()].to_vec();
        let new = self.value(Some(&old));
        self.replace(r, new.as_bytes());
        Some("replace a number")
    }

    fn string(&mut self, s: &Shape) -> Option<&'static str> {
        let r = pick(&mut self.rng, &s.strings)?.clone();
        let new: Vec<u8> = match self.below(4) {
            0 => pick(&mut self.rng, &self.corpus.strings)?.clone(),
            1 if self.kind == Kind::Loader => {
                let n = if self.chance(HUGE_ONCE_IN) {
                    5 << 20
                } else {
                    [1, 255, 401, 4096, 70_000][self.below(5)]
                };
                vec![b'x'; n]
            }
            _ => pick(&mut self.rng, STRINGS)?.as_bytes().to_vec(),
        };
        self.replace(r, &new);
        Some("replace a string")
    }

    fn swap_name(&mut self, s: &Shape) -> Option<&'static str> {
        let r = pick(&mut self.rng, &s.names)?.clone();
        let new = pick(&mut self.rng, &self.corpus.names)?.clone();
        self.replace(r, &new);
        Some("swap a name")
    }

    /// How many copies: mostly a few; for loader inputs, sometimes many and rarely (one
    /// in [`HUGE_ONCE_IN`]) enough to reach the loader's limits.
    fn copies(&mut self) -> usize {
        if self.kind == Kind::Run {
            1 + self.below(8)
        } else if self.chance(HUGE_ONCE_IN) {
            [10_000, 100_000][self.below(2)]
        } else {
            [1, 2, 3, 10, 100, 1000][self.below(6)]
        }
    }

    fn repeat_element(&mut self, s: &Shape) -> Option<&'static str> {
        let list = pick(&mut self.rng, &s.lists)?;
        let r = pick(&mut self.rng, list)?.clone();
        // At most as many copies as fit.
        let room = INPUT_BYTES_MAX.saturating_sub(self.bytes.len());
        let copies = self.copies().min(room / (r.len() + 2));
        let mut piece = Vec::with_capacity(copies * (r.len() + 2));
        for _ in 0..copies {
            piece.extend_from_slice(b", ");
            piece.extend_from_slice(&self.bytes[r.clone()]);
        }
        self.replace(r.end..r.end, &piece);
        Some("repeat a list element")
    }

    fn insert_element(&mut self, s: &Shape) -> Option<&'static str> {
        let list = pick(&mut self.rng, &s.lists)?;
        let r = pick(&mut self.rng, list)?.clone();
        let new = if self.chance(3) {
            let op = *pick(&mut self.rng, OPS)?;
            self.fill(op)
        } else {
            String::from_utf8_lossy(pick(&mut self.rng, &self.corpus.elements)?).into_owned()
        };
        self.replace(r.end..r.end, format!(", {new}").as_bytes());
        Some("insert a list element")
    }

    fn drop_element(&mut self, s: &Shape) -> Option<&'static str> {
        let list = pick(&mut self.rng, &s.lists)?;
        let r = pick(&mut self.rng, list)?.clone();
        self.replace(r, &[]);
        Some("drop a list element")
    }

    /// Wraps a list element in `d` repeats, or a number in `d` brackets or parentheses.
    fn nest(&mut self, s: &Shape) -> Option<&'static str> {
        let depth = if self.kind == Kind::Run {
            1 + self.below(4)
        } else if self.chance(HUGE_ONCE_IN) {
            [10_000, 1_000_000][self.below(2)]
        } else {
            [2, 15, 16, 17, 100][self.below(5)]
        };
        if self.chance(2) {
            let list = pick(&mut self.rng, &s.lists)?;
            let r = pick(&mut self.rng, list)?.clone();
            let times = self.value(None);
            let level = format!("repeat(times: {times}, ops: [");
            if self.bytes.len() + depth * (level.len() + 2) > INPUT_BYTES_MAX {
                return None;
            }
            let inner = self.bytes[r.clone()].to_vec();
            let mut new = level.repeat(depth).into_bytes();
            new.extend_from_slice(&inner);
            new.extend_from_slice("])".repeat(depth).as_bytes());
            self.replace(r, &new);
            Some("nest a list element in repeats")
        } else {
            let r = pick(&mut self.rng, &s.numbers)?.clone();
            let (open, close) = if self.chance(2) {
                ("[", "]")
            } else {
                ("(", ")")
            };
            if self.bytes.len() + 2 * depth > INPUT_BYTES_MAX {
                return None;
            }
            let mut new = open.repeat(depth).into_bytes();
            new.extend_from_slice(&self.bytes[r.clone()]);
            new.extend_from_slice(close.repeat(depth).as_bytes());
            self.replace(r, &new);
            Some("nest a number in brackets")
        }
    }

    fn insert_field(&mut self, s: &Shape) -> Option<&'static str> {
        let at = *pick(&mut self.rng, &s.opens)?;
        let field = *pick(&mut self.rng, FIELDS)?;
        let field = self.fill(field);
        self.replace(at..at, format!("{field}, ").as_bytes());
        Some("insert a field")
    }

    /// `template` with each `N`, `S` and `B` standing alone replaced by a value.
    fn fill(&mut self, template: &str) -> String {
        let mut out = String::new();
        let bytes = template.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let alone =
                (i == 0 || !is_word(bytes[i - 1])) && bytes.get(i + 1).is_none_or(|&n| !is_word(n));
            match b {
                b'N' if alone => out.push_str(&self.value(None)),
                b'S' if alone => out.push_str(pick(&mut self.rng, SIZES).expect("sizes")),
                b'B' if alone => out.push_str(if self.chance(2) { "true" } else { "false" }),
                _ => out.push(b as char),
            }
        }
        out
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A number literal's value, if it is a plain decimal or hexadecimal one.
fn parse_number(text: &[u8]) -> Option<u64> {
    let text: String = std::str::from_utf8(text)
        .ok()?
        .chars()
        .filter(|&c| c != '_')
        .collect();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Corpus {
        Corpus::new(vec![
            Seed {
                name: "a.ron".into(),
                bytes: b"(cores: [(ops: [compute(5), load(at: phys(keyid: 1, addr: 0x40), len: 8)])], machine: (caches: (l1d: (size: \"48k\"))))".to_vec(),
            },
            Seed {
                name: "b.ron".into(),
                bytes: b"(run: (cycles_max: 100), cores: [(ops: [mfence])])".to_vec(),
            },
        ])
    }

    #[test]
    fn inputs_depend_only_on_seed_kind_and_index() {
        let c = corpus();
        for kind in [Kind::Loader, Kind::Run] {
            for i in 0..200 {
                let a = c.input(kind, 7, i);
                let b = c.input(kind, 7, i);
                assert_eq!((a.bytes, a.recipe), (b.bytes, b.recipe));
            }
        }
        assert_ne!(
            c.input(Kind::Loader, 7, 10).bytes,
            c.input(Kind::Loader, 8, 10).bytes
        );
    }

    #[test]
    fn the_first_inputs_are_the_seeds() {
        let c = corpus();
        assert_eq!(c.input(Kind::Loader, 1, 0).bytes, c.seeds()[0].bytes);
        assert_eq!(c.input(Kind::Run, 1, 1).bytes, c.seeds()[1].bytes);
    }

    #[test]
    fn fill_replaces_placeholders_standing_alone() {
        let c = corpus();
        let mut m = Mutator {
            corpus: &c,
            rng: ChaCha8Rng::seed_from_u64(1),
            kind: Kind::Run,
            bytes: Vec::new(),
        };
        let filled = m.fill("llc: (size: S, ways: N, inclusive: B)");
        assert!(filled.starts_with("llc: (size: "), "{filled}");
        assert!(
            !filled.contains(" N") && !filled.contains(" S,"),
            "{filled}"
        );
    }
}
