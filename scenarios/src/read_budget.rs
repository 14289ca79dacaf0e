//! Bounds on what `ron` builds while it reads a file, counted as it reads.
//!
//! A scenario file is refused above [`crate::validate::SCENARIO_FILE_BYTES_MAX`] before it is
//! parsed, but a few bytes of text can still become many bytes of memory: `mfence,` is 7
//! bytes of text and a whole op in memory, `(),` 3 bytes and a whole program. So the lists
//! that a file may make long are read through [`ops`] and [`items`] (serde's
//! `deserialize_with`), which count their elements as `ron` reads them and stop the read with an
//! error once the file has more ops than [`OPS_MAX`] or more other list entries than
//! [`LIST_ITEMS_MAX`]: memory stays bounded by the limits, not by the text.
//!
//! The counts belong to one read: [`scope`] starts them at zero and puts back whatever was
//! counted outside it. Outside any scope nothing is counted (deserializing a file struct
//! directly, in a test, is not bounded).

use crate::limits::OPS_MAX;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// List entries other than ops (cores, processes, expectations, dumps and their lines,
/// attacks, ...) a file may hold: twice the lines all DRAM dumps may name, so that the
/// validator's own limits are what a file meets first.
pub const LIST_ITEMS_MAX: usize = 1 << 21;

/// The counts of the read in progress: `None` outside [`scope`].
#[derive(Copy, Clone, Default)]
struct Counts {
    ops: usize,
    items: usize,
}

thread_local! {
    static COUNTS: Cell<Option<Counts>> = const { Cell::new(None) };
}

/// Runs `read` with fresh counts (a read of one file).
pub fn scope<R>(read: impl FnOnce() -> R) -> R {
    struct Restore(Option<Counts>);
    impl Drop for Restore {
        fn drop(&mut self) {
            COUNTS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(COUNTS.with(|c| c.replace(Some(Counts::default()))));
    read()
}

/// What a list's elements count as.
#[derive(Copy, Clone)]
enum Kind {
    Ops,
    Items,
}

/// Counts one element of a `kind` list; the error once the read holds too many.
fn charge<E: de::Error>(kind: Kind) -> Result<(), E> {
    COUNTS.with(|c| {
        let Some(mut counts) = c.get() else {
            return Ok(());
        };
        let over = match kind {
            Kind::Ops => {
                counts.ops += 1;
                counts.ops > OPS_MAX
            }
            Kind::Items => {
                counts.items += 1;
                counts.items > LIST_ITEMS_MAX
            }
        };
        c.set(Some(counts));
        if !over {
            return Ok(());
        }
        Err(E::custom(match kind {
            Kind::Ops => format!(
                "more than {OPS_MAX} ops in the scenario: expected at most {OPS_MAX} (use \
                 repeat(times: ..) for long programs)"
            ),
            Kind::Items => format!(
                "more than {LIST_ITEMS_MAX} list entries (cores, processes, expectations, \
                 dumps and their lines, attacks, ...) in the file: expected at most \
                 {LIST_ITEMS_MAX}"
            ),
        }))
    })
}

/// Reads a list element by element, charging each to the read's counts.
struct CountedVisitor<T> {
    kind: Kind,
    marker: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for CountedVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list `[...]`")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            charge(self.kind)?;
            items.push(item);
        }
        Ok(items)
    }
}

fn counted<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    kind: Kind,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_seq(CountedVisitor {
        kind,
        marker: PhantomData,
    })
}

/// A list of ops (`deserialize_with`): counted against [`OPS_MAX`], nested lists included.
pub fn ops<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    counted(d, Kind::Ops)
}

/// Any other list (`deserialize_with`): counted against [`LIST_ITEMS_MAX`].
pub fn items<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    counted(d, Kind::Items)
}

/// An optional list (`deserialize_with`, with `#[serde(default)]`): as [`items`].
pub fn opt_items<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    struct Items<T>(Vec<T>);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Items<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Items<T>, D::Error> {
            items(d).map(Items)
        }
    }
    Ok(Option::<Items<T>>::deserialize(d)?.map(|i| i.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario_file::ScenarioFile;

    fn read(text: &str) -> Result<ScenarioFile, ron::error::SpannedError> {
        scope(|| crate::machine_file::ron_options().from_str(text))
    }

    #[test]
    fn ops_are_counted_while_reading_nested_ones_included() {
        // The repeat and the OPS_MAX ops in its body: one too many.
        let over = format!(
            "(cores: [(ops: [repeat(times: 2, ops: [{}])])])",
            "mfence,".repeat(OPS_MAX)
        );
        let e = read(&over).unwrap_err();
        assert!(e.code.to_string().contains("more than 1000000 ops"), "{e}");
        // Each read counts afresh, and nothing is counted outside a read.
        assert!(read("(cores: [(ops: [mfence])])").is_ok());
        assert!(COUNTS.with(Cell::get).is_none());
    }

    #[test]
    fn other_lists_are_counted() {
        let over = format!("(cores: [{}])", "(),".repeat(LIST_ITEMS_MAX + 1));
        let e = read(&over).unwrap_err();
        assert!(e.code.to_string().contains("list entries"), "{e}");
    }
}
