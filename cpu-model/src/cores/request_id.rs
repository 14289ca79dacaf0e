//! Core request ids: who sent a request and what it is for, packed into the `u64` the
//! hierarchy carries back in `CoreResponse::id`. Unique machine-wide, and the tag routes a
//! response to the part of the core that waits for it without a lookup table. One type
//! encodes and decodes, so the layout is written down once.

use sim_core::CoreId;

/// What a core request is for: which part of the core its response goes to.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum ReqTag {
    /// A load piece (the load queue).
    Load,
    /// The store buffer's head: a store or a CLFLUSH.
    StoreBuffer,
    /// A CLFLUSHOPT or CLWB beside the store buffer.
    Flush,
    /// A prefetch or a speculative load (fire and forget).
    Speculative,
    /// WBINVD, or a system call's flush or zeroing store.
    Serial,
}

impl ReqTag {
    /// Its bits in an id (0 is never used, so a zero id is no request).
    const fn code(self) -> u64 {
        match self {
            ReqTag::Load => 1,
            ReqTag::StoreBuffer => 2,
            ReqTag::Flush => 3,
            ReqTag::Speculative => 4,
            ReqTag::Serial => 5,
        }
    }

    fn from_code(code: u64) -> Option<ReqTag> {
        match code {
            1 => Some(ReqTag::Load),
            2 => Some(ReqTag::StoreBuffer),
            3 => Some(ReqTag::Flush),
            4 => Some(ReqTag::Speculative),
            5 => Some(ReqTag::Serial),
            _ => None,
        }
    }
}

/// The core in bits 56.., the tag in bits 52..56, the core's request counter below.
const CORE_SHIFT: u32 = 56;
const TAG_SHIFT: u32 = 52;
const TAG_MASK: u64 = 0xf;
const SEQ_MASK: u64 = (1 << TAG_SHIFT) - 1;

/// A request id, unpacked.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) struct ReqId {
    pub core: CoreId,
    pub tag: ReqTag,
    /// The core's request counter (its low 52 bits).
    pub seq: u64,
}

impl ReqId {
    /// The id as requests carry it.
    pub(super) fn encode(self) -> u64 {
        (u64::from(self.core.get()) << CORE_SHIFT)
            | (self.tag.code() << TAG_SHIFT)
            | (self.seq & SEQ_MASK)
    }

    /// Unpacks an id; `None` if its tag bits name no [`ReqTag`].
    pub(super) fn decode(raw: u64) -> Option<ReqId> {
        let tag = ReqTag::from_code((raw >> TAG_SHIFT) & TAG_MASK)?;
        Some(ReqId {
            core: CoreId::new((raw >> CORE_SHIFT) as u32),
            tag,
            seq: raw & SEQ_MASK,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAGS: [ReqTag; 5] = [
        ReqTag::Load,
        ReqTag::StoreBuffer,
        ReqTag::Flush,
        ReqTag::Speculative,
        ReqTag::Serial,
    ];

    #[test]
    fn ids_round_trip() {
        for tag in TAGS {
            for (core, seq) in [(0, 0), (3, 12345), (255, SEQ_MASK)] {
                let id = ReqId {
                    core: CoreId::new(core),
                    tag,
                    seq,
                };
                assert_eq!(ReqId::decode(id.encode()), Some(id));
            }
        }
    }

    #[test]
    fn layout_is_core_tag_counter() {
        let id = ReqId {
            core: CoreId::new(2),
            tag: ReqTag::Flush,
            seq: 7,
        };
        assert_eq!(id.encode(), (2 << 56) | (3 << 52) | 7);
        // The counter wraps within its bits and never touches the tag.
        let wrapped = ReqId {
            seq: SEQ_MASK + 1 + 7,
            ..id
        };
        assert_eq!(wrapped.encode(), id.encode());
    }

    #[test]
    fn unknown_tags_do_not_decode() {
        assert_eq!(ReqId::decode(0), None);
        assert_eq!(ReqId::decode((1 << 56) | (6 << 52)), None);
        assert_eq!(ReqId::decode(0xf << 52), None);
    }
}
