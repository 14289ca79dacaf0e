//! When each command may issue: the JEDEC constraints as a command-to-command table, and the
//! per-bank "earliest cycle" bookkeeping it drives.
//!
//! Issuing a command at cycle `c` raises, for every bank in a scope, the earliest cycle of each
//! following command kind to `c + delay`. The scopes and delays are DRAMsim3's
//! (`src/timing.cc`), with RL = CL, WL = CWL (AL = 0) and BL = tBurst:
//!
//! ```text
//!   issued   scope               following          delay
//!   ACT      same bank           ACT                tRC
//!                                READ(A)/WRITE(A)   tRCD
//!                                PRE                tRAS
//!            same bank group     ACT                tRRD_L
//!            other bank groups   ACT                tRRD_S        (+ tFAW window per rank)
//!   READ     same bank           PRE                tRTP
//!            same bank group     READ(A)            max(BL, tCCD_L)
//!            other bank groups   READ(A)            max(BL, tCCD_S)
//!            same rank           WRITE(A)           RL + BL - WL + tRTRS
//!            other ranks         READ(A)            BL + tRTRS
//!                                WRITE(A)           RL + BL - WL + tRTRS
//!   WRITE    same bank           PRE                WL + BL + tWR
//!            same bank group     READ(A)            WL + BL + tWTR_L
//!                                WRITE(A)           max(BL, tCCD_L)
//!            other bank groups   READ(A)            WL + BL + tWTR_S
//!                                WRITE(A)           max(BL, tCCD_S)
//!            other ranks         READ(A)            WL + BL + tRTRS - RL
//!                                WRITE(A)           BL
//!   READA    same bank           ACT                BL + tRTP + tRP   (DRAMsim3's formula)
//!                                REF                tRTP + tRP
//!            other banks         as READ
//!   WRITEA   same bank           ACT, REF           WL + BL + tWR + tRP
//!            other banks         as WRITE
//!   PRE      same bank           ACT, REF           tRP
//!   REF      same rank           ACT, REF           tRFC
//! ```
//!
//! With one bank group per rank the `_L` values are replaced by the `_S` ones, as DRAMsim3 does.
//!
//! The earliest cycles are kept at three levels, which together hold exactly what a per-bank
//! table would: per bank, what commands to the bank itself and to the other banks of its bank
//! group impose; per bank group, what commands to other bank groups of its rank impose; per
//! rank, what commands to other ranks impose. The last two fall on every bank of the group (or
//! rank) alike. A bank's earliest cycle for a kind is the latest of the three. And since every
//! rule constrains READ and READA alike, and WRITE and WRITEA alike, an entry keeps one value
//! per class of following command: ACT, READ(A), WRITE(A), PRE, REF. Recording a READ or WRITE
//! then raises 4 bank, 3 group and 1 rank entries on DDR4 (2 ranks of 4 groups of 4 banks)
//! instead of all 32 banks' entries for 7 kinds.

use super::bank::CommandKind;
use super::config::{Geometry, Timing};
use sim_core::Cycle;
use std::cmp;

/// Which banks an issued command constrains.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Scope {
    SameBank,
    SameBankGroup,
    OtherBankGroups,
    OtherRanks,
    /// Every bank of the rank, the issuing bank included (rank-level commands).
    SameRank,
}

/// Where a bank lies relative to the bank a command was issued to. Unlike [`Scope`] the four
/// relations partition the channel, so applying a command visits every bank once.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Relation {
    SameBank,
    SameBankGroup,
    OtherBankGroups,
    OtherRanks,
}

impl Relation {
    const COUNT: usize = 4;
    const ALL: [Relation; Relation::COUNT] = [
        Relation::SameBank,
        Relation::SameBankGroup,
        Relation::OtherBankGroups,
        Relation::OtherRanks,
    ];

    /// The rule scopes that cover a bank in this relation.
    fn covered_by(self, scope: Scope) -> bool {
        match scope {
            Scope::SameBank => self == Relation::SameBank,
            Scope::SameBankGroup => self == Relation::SameBankGroup,
            Scope::OtherBankGroups => self == Relation::OtherBankGroups,
            Scope::OtherRanks => self == Relation::OtherRanks,
            Scope::SameRank => self != Relation::OtherRanks,
        }
    }
}

/// `rules[issued]` is a list of `(scope, following kind, cycles)`: DRAMsim3's table as written.
/// Delays may be negative (DRAMsim3's write-to-read across ranks); a constraint that falls at
/// or before cycle 0 is dropped, as DRAMsim3 does.
///
/// `effects[issued][relation]` is the same table compiled for [`ChannelTiming::record`]: per
/// class of following command (one lane each, [`LANES`] lanes, see [`class`]), the largest
/// delay of every rule that covers the relation (raising an earliest cycle to the maximum of
/// several values is raising it to each in turn), or [`NO_DELAY`] when none does. Recording a
/// command then raises each entry it touches with one branch-free maximum per lane, and only
/// in the lanes the rules of its kind can reach ([`touched`]); the constructor checks that
/// every other lane is [`NO_DELAY`].
#[derive(Clone, Debug)]
pub(crate) struct TimingTable {
    /// Kept only by tests, as the definition the compiled `effects` are checked against.
    #[cfg(test)]
    rules: Vec<Vec<(Scope, CommandKind, i64)>>,
    effects: Vec<[Lanes<i64>; Relation::COUNT]>,
}

/// The lanes a command's rules can reach, per relation of the bank, as fixed lists so that
/// [`ChannelTiming::record`] raises exactly those (see the table in the module documentation):
/// READ and WRITE constrain their own bank's READ, WRITE and PRE, every other bank's READ and
/// WRITE; READA and WRITEA their own bank's ACT and REF, the others' READ and WRITE; ACT its
/// bank's ACT, READ, WRITE and PRE and the ACT of its rank's other banks; PRE its bank's ACT
/// and REF; REF the ACT and REF of every bank of its rank.
mod touched {
    pub(super) const NONE: [usize; 0] = [];
    pub(super) const ACT: [usize; 1] = [0];
    pub(super) const ACT_REF: [usize; 2] = [0, 4];
    pub(super) const READ_WRITE: [usize; 2] = [1, 2];
    pub(super) const READ_WRITE_PRE: [usize; 3] = [1, 2, 3];
    pub(super) const ACT_READ_WRITE_PRE: [usize; 4] = [0, 1, 2, 3];
}

/// The lanes of [`touched`] that `record` raises for `kind` in each relation, as masks (lane
/// `k` is bit `k`), in [`Relation::ALL`] order: what the constructor checks the table against.
fn touched_masks(kind: CommandKind) -> [u8; Relation::COUNT] {
    use touched::*;
    let mask = |lanes: &[usize]| lanes.iter().fold(0u8, |m, &k| m | 1 << k);
    match kind {
        CommandKind::Read | CommandKind::Write => [
            mask(&READ_WRITE_PRE),
            mask(&READ_WRITE),
            mask(&READ_WRITE),
            mask(&READ_WRITE),
        ],
        CommandKind::ReadPrecharge | CommandKind::WritePrecharge => [
            mask(&ACT_REF),
            mask(&READ_WRITE),
            mask(&READ_WRITE),
            mask(&READ_WRITE),
        ],
        CommandKind::Activate => [
            mask(&ACT_READ_WRITE_PRE),
            mask(&ACT),
            mask(&ACT),
            mask(&NONE),
        ],
        CommandKind::Precharge => [mask(&ACT_REF), mask(&NONE), mask(&NONE), mask(&NONE)],
        CommandKind::Refresh => [mask(&ACT_REF), mask(&ACT_REF), mask(&ACT_REF), mask(&NONE)],
    }
}

/// Lanes of a timing entry: one per class of following command ([`class`]).
pub(crate) const LANES: usize = 5;

/// One value per class of following command.
pub(crate) type Lanes<T> = [T; LANES];

/// The lane of a following command kind: ACT 0, READ and READA 1, WRITE and WRITEA 2, PRE 3,
/// REF 4. Every rule of the table names READ and READA together, and WRITE and WRITEA (the
/// table's constructor checks it).
#[inline]
const fn class(kind: CommandKind) -> usize {
    match kind {
        CommandKind::Activate => 0,
        CommandKind::Read | CommandKind::ReadPrecharge => 1,
        CommandKind::Write | CommandKind::WritePrecharge => 2,
        CommandKind::Precharge => 3,
        CommandKind::Refresh => 4,
    }
}

/// A delay that constrains nothing: `base + NO_DELAY` is negative for any reachable cycle, and
/// constraints at or before cycle 0 are dropped.
const NO_DELAY: i64 = i64::MIN / 4;

impl TimingTable {
    pub(crate) fn new(t: &Timing, g: &Geometry) -> TimingTable {
        let i = i64::from;
        let bl = i(t.t_burst_cycles);
        let rl = i(t.t_cl_cycles);
        let wl = i(t.t_cwl_cycles);
        let one_group = g.bankgroups == 1;
        let ccd_l = if one_group {
            t.t_ccd_s_cycles
        } else {
            t.t_ccd_l_cycles
        };
        let wtr_l = if one_group {
            t.t_wtr_s_cycles
        } else {
            t.t_wtr_l_cycles
        };
        let rrd_l = if one_group {
            t.t_rrd_s_cycles
        } else {
            t.t_rrd_l_cycles
        };

        let read_to_read_l = bl.max(i(ccd_l));
        let read_to_read_s = bl.max(i(t.t_ccd_s_cycles));
        let read_to_read_o = bl + i(t.t_rtrs_cycles);
        let read_to_write = rl + bl - wl + i(t.t_rtrs_cycles);
        let read_to_precharge = i(t.t_rtp_cycles);
        let readp_to_act = bl + i(t.t_rtp_cycles) + i(t.t_rp_cycles);
        let read_to_activate = read_to_precharge + i(t.t_rp_cycles);
        let write_to_read_l = wl + bl + i(wtr_l);
        let write_to_read_s = wl + bl + i(t.t_wtr_s_cycles);
        let write_to_read_o = wl + bl + i(t.t_rtrs_cycles) - rl;
        let write_to_write_l = bl.max(i(ccd_l));
        let write_to_write_s = bl.max(i(t.t_ccd_s_cycles));
        let write_to_write_o = bl;
        let write_to_precharge = wl + bl + i(t.t_wr_cycles);
        let write_to_activate = write_to_precharge + i(t.t_rp_cycles);

        use CommandKind::{
            Activate as Act, Precharge as Pre, Read as Rd, ReadPrecharge as Rda, Refresh as Ref,
            Write as Wr, WritePrecharge as Wra,
        };
        use Scope::{
            OtherBankGroups as Obg, OtherRanks as Ork, SameBank as Sb, SameBankGroup as Sbg,
            SameRank as Srk,
        };

        let read_others = |v: &mut Vec<(Scope, CommandKind, i64)>| {
            for (scope, rr) in [
                (Sbg, read_to_read_l),
                (Obg, read_to_read_s),
                (Ork, read_to_read_o),
            ] {
                v.push((scope, Rd, rr));
                v.push((scope, Rda, rr));
                v.push((scope, Wr, read_to_write));
                v.push((scope, Wra, read_to_write));
            }
        };
        let write_others = |v: &mut Vec<(Scope, CommandKind, i64)>| {
            for (scope, wr, ww) in [
                (Sbg, write_to_read_l, write_to_write_l),
                (Obg, write_to_read_s, write_to_write_s),
                (Ork, write_to_read_o, write_to_write_o),
            ] {
                v.push((scope, Rd, wr));
                v.push((scope, Rda, wr));
                v.push((scope, Wr, ww));
                v.push((scope, Wra, ww));
            }
        };

        let mut rules = vec![Vec::new(); CommandKind::COUNT];
        // READ
        {
            let v = &mut rules[Rd.index()];
            v.extend([
                (Sb, Rd, read_to_read_l),
                (Sb, Rda, read_to_read_l),
                (Sb, Wr, read_to_write),
                (Sb, Wra, read_to_write),
                (Sb, Pre, read_to_precharge),
            ]);
            read_others(v);
        }
        // WRITE
        {
            let v = &mut rules[Wr.index()];
            v.extend([
                (Sb, Rd, write_to_read_l),
                (Sb, Rda, write_to_read_l),
                (Sb, Wr, write_to_write_l),
                (Sb, Wra, write_to_write_l),
                (Sb, Pre, write_to_precharge),
            ]);
            write_others(v);
        }
        // READA
        {
            let v = &mut rules[Rda.index()];
            v.extend([(Sb, Act, readp_to_act), (Sb, Ref, read_to_activate)]);
            read_others(v);
        }
        // WRITEA
        {
            let v = &mut rules[Wra.index()];
            v.extend([(Sb, Act, write_to_activate), (Sb, Ref, write_to_activate)]);
            write_others(v);
        }
        // ACT
        rules[Act.index()].extend([
            (Sb, Act, i(t.t_rc_cycles)),
            (Sb, Rd, i(t.t_rcd_cycles)),
            (Sb, Rda, i(t.t_rcd_cycles)),
            (Sb, Wr, i(t.t_rcd_cycles)),
            (Sb, Wra, i(t.t_rcd_cycles)),
            (Sb, Pre, i(t.t_ras_cycles)),
            (Sbg, Act, i(rrd_l)),
            (Obg, Act, i(t.t_rrd_s_cycles)),
        ]);
        // PRE
        rules[Pre.index()].extend([(Sb, Act, i(t.t_rp_cycles)), (Sb, Ref, i(t.t_rp_cycles))]);
        // REF
        rules[Ref.index()].extend([(Srk, Act, i(t.t_rfc_cycles)), (Srk, Ref, i(t.t_rfc_cycles))]);
        let effects = rules
            .iter()
            .map(|issued| {
                Relation::ALL.map(|relation| {
                    let mut by_kind = [NO_DELAY; CommandKind::COUNT];
                    for &(scope, following, cycles) in issued {
                        if relation.covered_by(scope) {
                            let d = &mut by_kind[following.index()];
                            *d = (*d).max(cycles);
                        }
                    }
                    let mut delay: Lanes<i64> = [NO_DELAY; LANES];
                    for kind in CommandKind::ALL {
                        let lane = &mut delay[class(kind)];
                        let d = by_kind[kind.index()];
                        assert!(
                            *lane == NO_DELAY || *lane == d,
                            "the kinds of a class are constrained alike"
                        );
                        *lane = d;
                    }
                    delay
                })
            })
            .collect::<Vec<_>>();
        for kind in CommandKind::ALL {
            let masks = touched_masks(kind);
            for (relation, delay) in effects[kind.index()].iter().enumerate() {
                for (lane, &d) in delay.iter().enumerate() {
                    assert!(
                        d == NO_DELAY || masks[relation] & (1 << lane) != 0,
                        "{kind:?} constrains lane {lane} of relation {relation}, which record \
                         does not raise"
                    );
                }
            }
        }
        TimingTable {
            #[cfg(test)]
            rules,
            effects,
        }
    }
}

/// Bank coordinates inside one channel, flattened.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) struct BankId {
    pub rank: u32,
    pub bankgroup: u32,
    pub bank: u32,
}

/// The earliest cycle at which each command kind may issue to each bank of one channel, and the
/// four-activate window of each rank.
#[derive(Clone, Debug)]
pub(crate) struct ChannelTiming {
    table: TimingTable,
    bankgroups: u32,
    banks_per_group: u32,
    /// `bank_earliest[bank_index][class]` (a cycle): the constraints of commands to the bank and
    /// to the other banks of its group.
    bank_earliest: Vec<Lanes<u64>>,
    /// `group_earliest[bank_index / banks_per_group][class]`: the constraints of commands to
    /// other bank groups of the rank, the same for every bank of the group.
    group_earliest: Vec<Lanes<u64>>,
    /// `rank_earliest[rank][class]`: the constraints of commands to other ranks, the same for
    /// every bank of the rank.
    rank_earliest: Vec<Lanes<u64>>,

    t_faw_cycles: u64,
    /// Per rank: the cycles of the last (up to) four ACTs, oldest first.
    recent_acts: Vec<[Cycle; 4]>,
    recent_len: Vec<u8>,
}

impl ChannelTiming {
    pub(crate) fn new(t: &Timing, g: &Geometry) -> ChannelTiming {
        let banks = (g.ranks * g.banks_per_rank()) as usize;
        ChannelTiming {
            table: TimingTable::new(t, g),
            bankgroups: g.bankgroups,
            banks_per_group: g.banks_per_group,
            bank_earliest: vec![[0; LANES]; banks],
            group_earliest: vec![[0; LANES]; (g.ranks * g.bankgroups) as usize],
            rank_earliest: vec![[0; LANES]; g.ranks as usize],

            t_faw_cycles: u64::from(t.t_faw_cycles),
            recent_acts: vec![[Cycle::ZERO; 4]; g.ranks as usize],
            recent_len: vec![0; g.ranks as usize],
        }
    }

    pub(crate) fn bank_index(&self, b: BankId) -> usize {
        ((b.rank * self.bankgroups + b.bankgroup) * self.banks_per_group + b.bank) as usize
    }

    /// The earliest cycle `kind` may issue to bank `b`, from the command-to-command table alone.
    pub(crate) fn earliest(&self, b: BankId, kind: CommandKind) -> Cycle {
        self.earliest_at(b, self.bank_index(b), kind)
    }

    /// [`ChannelTiming::earliest`] of bank `b`, whose flattened index is `bank_index`.
    #[inline]
    fn earliest_at(&self, b: BankId, bank_index: usize, kind: CommandKind) -> Cycle {
        let group = (b.rank * self.bankgroups + b.bankgroup) as usize;
        let lane = class(kind);
        Cycle::new(cmp::max(
            cmp::max(
                self.bank_earliest[bank_index][lane],
                self.group_earliest[group][lane],
            ),
            self.rank_earliest[b.rank as usize][lane],
        ))
    }

    /// True when a fifth ACT to `rank` at `now` respects tFAW: fewer than four ACTs in the
    /// window, or the fourth most recent one at least tFAW ago. (DRAMsim3 keeps a lazily pruned
    /// list of expiry times; it admits exactly the same ACTs.)
    pub(crate) fn faw_allows(&self, rank: u32, now: Cycle) -> bool {
        let r = rank as usize;
        self.recent_len[r] < 4 || now >= self.recent_acts[r][0].plus(self.t_faw_cycles)
    }

    /// True when `kind` may issue to `b` at `now` (ACT also checks tFAW).
    pub(crate) fn ready(&self, b: BankId, kind: CommandKind, now: Cycle) -> bool {
        self.earliest(b, kind) <= now
            && (kind != CommandKind::Activate || self.faw_allows(b.rank, now))
    }

    /// The first cycle at which [`ChannelTiming::ready`] holds for `kind` on bank `b` (whose
    /// flattened index is `bank_index`), if nothing else issues before: `ready(b, kind, now)`
    /// is exactly `ready_at(..) <= now`. Issuing commands only ever moves it later (every
    /// update is a maximum, and a new ACT replaces the oldest of the four in the tFAW window
    /// by a younger one), which is what lets the controller cache it as a lower bound.
    #[inline(always)]
    pub(crate) fn ready_at(&self, b: BankId, bank_index: usize, kind: CommandKind) -> Cycle {
        let earliest = self.earliest_at(b, bank_index, kind);
        let r = b.rank as usize;
        if kind == CommandKind::Activate && self.recent_len[r] >= 4 {
            cmp::max(earliest, self.recent_acts[r][0].plus(self.t_faw_cycles))
        } else {
            earliest
        }
    }

    /// [`ChannelTiming::ready_at`] of READ (and READA), WRITE (and WRITEA) and PRE on bank `b`
    /// (whose flattened index is `bank_index`), in that order, looked up together.
    #[inline]
    pub(crate) fn ready_at_column_and_precharge(&self, b: BankId, bank_index: usize) -> [Cycle; 3] {
        let group = (b.rank * self.bankgroups + b.bankgroup) as usize;
        let (bank, group, rank) = (
            &self.bank_earliest[bank_index],
            &self.group_earliest[group],
            &self.rank_earliest[b.rank as usize],
        );
        [
            class(CommandKind::Read),
            class(CommandKind::Write),
            class(CommandKind::Precharge),
        ]
        .map(|lane| Cycle::new(cmp::max(cmp::max(bank[lane], group[lane]), rank[lane])))
    }

    /// Records that `kind` issued to `b` (for REF: to `b.rank`) at `now`.
    pub(crate) fn record(&mut self, b: BankId, kind: CommandKind, now: Cycle) {
        if kind == CommandKind::Activate {
            let r = b.rank as usize;
            let len = self.recent_len[r] as usize;
            if len < 4 {
                self.recent_acts[r][len] = now;
                self.recent_len[r] += 1;
            } else {
                self.recent_acts[r].rotate_left(1);
                self.recent_acts[r][3] = now;
            }
        }
        use touched::*;
        match kind {
            CommandKind::Read | CommandKind::Write => {
                self.raise(
                    b,
                    kind,
                    now,
                    READ_WRITE_PRE,
                    READ_WRITE,
                    READ_WRITE,
                    READ_WRITE,
                );
            }
            CommandKind::ReadPrecharge | CommandKind::WritePrecharge => {
                self.raise(b, kind, now, ACT_REF, READ_WRITE, READ_WRITE, READ_WRITE);
            }
            CommandKind::Activate => self.raise(b, kind, now, ACT_READ_WRITE_PRE, ACT, ACT, NONE),
            CommandKind::Precharge => self.raise(b, kind, now, ACT_REF, NONE, NONE, NONE),
            CommandKind::Refresh => self.raise(b, kind, now, ACT_REF, ACT_REF, ACT_REF, NONE),
        }
    }

    /// Raises the entries `kind` issued to `b` at `now` constrains, in the given lanes only per
    /// relation (the others hold [`NO_DELAY`], checked by [`TimingTable::new`]): with fixed
    /// lanes the compiler emits a straight line of maxima.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn raise<const A: usize, const B: usize, const C: usize, const D: usize>(
        &mut self,
        b: BankId,
        kind: CommandKind,
        now: Cycle,
        same_bank_lanes: [usize; A],
        same_group_lanes: [usize; B],
        other_groups_lanes: [usize; C],
        other_ranks_lanes: [usize; D],
    ) {
        let base = now.get() as i64;
        // A constraint at or before cycle 0 constrains nothing (DRAMsim3 drops it): clamped to
        // 0, it leaves every entry as it is. Lanes not listed stay 0 and are never read.
        fn at<const N: usize>(base: i64, delay: &Lanes<i64>, lanes: [usize; N]) -> Lanes<u64> {
            let mut at = [0; LANES];
            for k in lanes {
                at[k] = (base + delay[k]).max(0) as u64;
            }
            at
        }
        fn raise<const N: usize>(entry: &mut Lanes<u64>, at: &Lanes<u64>, lanes: [usize; N]) {
            for k in lanes {
                entry[k] = cmp::max(entry[k], at[k]);
            }
        }
        // Banks are flattened rank-major, then bank group, then bank, and bank groups the same
        // way.
        let per_group = self.banks_per_group as usize;
        let groups_per_rank = self.bankgroups as usize;
        let rank = b.rank as usize;
        let group = rank * groups_per_rank + b.bankgroup as usize;
        let own = group * per_group + b.bank as usize;
        let [same_bank, same_group, other_groups, other_ranks] = &self.table.effects[kind.index()];
        if A > 0 {
            let at = at(base, same_bank, same_bank_lanes);
            raise(&mut self.bank_earliest[own], &at, same_bank_lanes);
        }
        if B > 0 {
            let at = at(base, same_group, same_group_lanes);
            for i in group * per_group..(group + 1) * per_group {
                if i != own {
                    raise(&mut self.bank_earliest[i], &at, same_group_lanes);
                }
            }
        }
        if C > 0 {
            let at = at(base, other_groups, other_groups_lanes);
            for g in rank * groups_per_rank..(rank + 1) * groups_per_rank {
                if g != group {
                    raise(&mut self.group_earliest[g], &at, other_groups_lanes);
                }
            }
        }
        if D > 0 {
            let at = at(base, other_ranks, other_ranks_lanes);
            for (r, entry) in self.rank_earliest.iter_mut().enumerate() {
                if r != rank {
                    raise(entry, &at, other_ranks_lanes);
                }
            }
        }
    }

    /// [`ChannelTiming::record`] straight from the rule list, scope by scope and bank by bank,
    /// into a plain per-bank table `earliest` (`[bank_index][kind]`): the definition the
    /// compiled, two-level bookkeeping is tested against.
    #[cfg(test)]
    fn record_by_rules(
        &self,
        earliest: &mut [[Cycle; CommandKind::COUNT]],
        b: BankId,
        kind: CommandKind,
        now: Cycle,
    ) {
        let base = now.get() as i64;
        let ranks = (earliest.len() as u32) / (self.bankgroups * self.banks_per_group);
        let rules = &self.table.rules[kind.index()];
        for &(scope, following, delay) in rules {
            let at = base + delay;
            if at <= 0 {
                continue;
            }
            let at = Cycle::new(at as u64);
            for rank in 0..ranks {
                for bg in 0..self.bankgroups {
                    for bank in 0..self.banks_per_group {
                        let same_rank = rank == b.rank;
                        let same_bg = same_rank && bg == b.bankgroup;
                        let same_bank = same_bg && bank == b.bank;
                        let applies = match scope {
                            Scope::SameBank => same_bank,
                            Scope::SameBankGroup => same_bg && !same_bank,
                            Scope::OtherBankGroups => same_rank && !same_bg,
                            Scope::OtherRanks => !same_rank,
                            Scope::SameRank => same_rank,
                        };
                        if applies {
                            let idx = ((rank * self.bankgroups + bg) * self.banks_per_group + bank)
                                as usize;
                            let slot = &mut earliest[idx][following.index()];
                            *slot = (*slot).max(at);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dram::config::DramParams;

    /// The compiled table, kept at two levels, gives exactly the earliest cycles the rule list
    /// gives bank by bank, on random command sequences over every preset and a
    /// one-bank-group, four-rank variant (where the `_L` delays become `_S` and every relation
    /// is populated).
    #[test]
    fn compiled_effects_match_the_rule_list() {
        let mut params: Vec<DramParams> = crate::dram::PRESET_NAMES
            .iter()
            .map(|name| DramParams::preset(name).expect("preset"))
            .collect();
        let mut one_group = params[0].clone();
        one_group.geometry.ranks = 4;
        one_group.geometry.bankgroups = 1;
        params.push(one_group);
        for p in params {
            let g = &p.geometry;
            let mut fast = ChannelTiming::new(&p.timing, g);
            let banks = (g.ranks * g.banks_per_rank()) as usize;
            let mut slow = vec![[Cycle::ZERO; CommandKind::COUNT]; banks];
            // xorshift64: a fixed, dependency-free stream.
            let mut x = 0x9e37_79b9_7f4a_7c15_u64;
            let mut now = 0u64;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                now += x % 40;
                let b = BankId {
                    rank: (x >> 8) as u32 % g.ranks,
                    bankgroup: (x >> 16) as u32 % g.bankgroups,
                    bank: (x >> 24) as u32 % g.banks_per_group,
                };
                let kind = CommandKind::ALL[(x >> 32) as usize % CommandKind::COUNT];
                fast.record(b, kind, Cycle::new(now));
                fast.record_by_rules(&mut slow, b, kind, Cycle::new(now));
                let bank_of = |i: usize| BankId {
                    rank: i as u32 / g.banks_per_rank(),
                    bankgroup: i as u32 / g.banks_per_group % g.bankgroups,
                    bank: i as u32 % g.banks_per_group,
                };
                let two_level: Vec<[Cycle; CommandKind::COUNT]> = (0..banks)
                    .map(|i| {
                        let bank = bank_of(i);
                        assert_eq!(fast.bank_index(bank), i);
                        CommandKind::ALL.map(|k| fast.earliest_at(bank, i, k))
                    })
                    .collect();
                assert_eq!(two_level, slow, "{} after {kind:?} at {now}", p.name);
                for k in CommandKind::ALL {
                    let idx = fast.bank_index(b);
                    let at = fast.ready_at(b, idx, k);
                    assert!(fast.ready(b, k, at), "{k:?} not ready at its ready_at {at}");
                    if at > Cycle::ZERO {
                        let before = Cycle::new(at.get() - 1);
                        assert!(!fast.ready(b, k, before), "{k:?} ready before {at}");
                    }
                }
            }
        }
    }
}
