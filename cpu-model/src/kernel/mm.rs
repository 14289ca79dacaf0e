//! Memory management: `mmap`, `munmap`, `mprotect` and `encrypt_mprotect` (mktme-facts.md
//! 4.2, 5.4), each in the calling process's own address space.

use super::{
    Kernel, KernelStep, MAPPED_PAGES_MAX, MMAP_BYTES_MAX, PAGE, PageState, USER_SPACE_END, Work,
    direct_map_addr,
};
use crate::program::{Backing, Errno, ProcessId, Prot};
use sim_core::{KeyId, VirtAddr};

/// `[addr, addr + len)` as a range of user pages: EINVAL if misaligned, empty (unless allowed),
/// overflowing or not below [`USER_SPACE_END`].
fn user_range(addr: VirtAddr, len: u64, allow_empty: bool) -> Result<(VirtAddr, VirtAddr), Errno> {
    if !addr.is_page_aligned() || !len.is_multiple_of(PAGE) || (len == 0 && !allow_empty) {
        return Err(Errno::Einval);
    }
    let end = addr.checked_add(len).ok_or(Errno::Einval)?;
    if end > USER_SPACE_END {
        return Err(Errno::Einval);
    }
    Ok((addr, end))
}

impl Kernel {
    /// The pages of `[start, end)` that are mapped (as of every begun call), in order.
    fn mapped_pages(
        &self,
        process: ProcessId,
        start: VirtAddr,
        end: VirtAddr,
    ) -> Vec<(VirtAddr, PageState)> {
        self.pages
            .range((process, start)..(process, end))
            .filter_map(|((_, va), p)| p.logical.map(|s| (*va, s)))
            .collect()
    }

    /// ENOMEM unless every page of `[start, end)` is mapped.
    fn check_mapped(
        &self,
        process: ProcessId,
        start: VirtAddr,
        end: VirtAddr,
    ) -> Result<(), Errno> {
        let mapped = self
            .pages
            .range((process, start)..(process, end))
            .filter(|(_, p)| p.logical.is_some())
            .count() as u64;
        // `user_range` made the range: `end` is not below `start`.
        if Some(mapped) == end.checked_offset_from(start).map(|bytes| bytes / PAGE) {
            Ok(())
        } else {
            Err(Errno::Enomem)
        }
    }

    /// Page `va` becomes `state` (`None`: unmapped) now for later calls, and at this call's
    /// finish for the page walk.
    fn set_page(
        &mut self,
        work: &mut Work,
        process: ProcessId,
        va: VirtAddr,
        state: Option<PageState>,
    ) {
        let page = self.pages.entry((process, va)).or_default();
        page.logical = state;
        page.pending += 1;
        work.pages.push(((process, va), state));
    }

    /// The direct-map pages this call changes, appended to its shootdown.
    fn shoot_direct_map(work: &mut Work) {
        // Frames are inside the direct map (checked at boot).
        let direct = work.direct.iter().map(|&(frame, _)| direct_map_addr(frame));
        work.shootdown.extend(direct);
    }

    /// `mmap(addr, len, prot, MAP_FIXED | MAP_POPULATE)`.
    pub(super) fn begin_mmap(
        &mut self,
        process: ProcessId,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
        backing: &Backing,
    ) -> Result<(Vec<KernelStep>, Work), Errno> {
        let (start, end) = user_range(addr, len, false)?;
        if self
            .pages
            .range((process, start)..(process, end))
            .any(|(_, p)| p.logical.is_some())
        {
            return Err(Errno::Einval);
        }
        let n = len / PAGE;
        if len > MMAP_BYTES_MAX || self.pages.len() as u64 + n > MAPPED_PAGES_MAX {
            return Err(Errno::Enomem);
        }
        let mut steps = Vec::new();
        let mut work = Work {
            ret: addr.raw(),
            ..Work::default()
        };
        match backing {
            Backing::Anonymous => {
                let frames = self.alloc_frames(n)?;
                for (i, frame) in (0u64..).zip(frames) {
                    self.line_steps(&mut steps, KeyId::TME, frame, true);
                    let state = PageState {
                        frame,
                        keyid: KeyId::TME,
                        prot,
                        file: None,
                    };
                    self.set_page(&mut work, process, start.nth_page(i), Some(state));
                }
            }
            Backing::File { name, offset } => {
                if !offset.is_multiple_of(PAGE) || offset.checked_add(len).is_none() {
                    return Err(Errno::Einval);
                }
                let first = offset / PAGE;
                let cached = self.file_ids.get(name).map_or(0, |f| {
                    self.page_cache.range((*f, first)..(*f, first + n)).count() as u64
                });
                let mut frames = self.alloc_frames(n - cached)?.into_iter();
                let file = self.file_id(name);
                for i in 0..n {
                    let index = first + i;
                    let frame = match self.page_cache.get(&(file, index)) {
                        Some(frame) => *frame,
                        None => {
                            let Some(frame) = frames.next() else {
                                // Cannot happen: one frame was allocated per uncached page.
                                return Err(Errno::Enomem);
                            };
                            self.line_steps(&mut steps, KeyId::TME, frame, true);
                            self.page_cache.insert((file, index), frame);
                            frame
                        }
                    };
                    let state = PageState {
                        frame,
                        keyid: KeyId::TME,
                        prot,
                        file: Some((file, index)),
                    };
                    self.set_page(&mut work, process, start.nth_page(i), Some(state));
                }
            }
        }
        Ok((steps, work))
    }

    /// `n` frames, or ENOMEM and none.
    fn alloc_frames(&mut self, n: u64) -> Result<Vec<u64>, Errno> {
        if n > self.frames.available() {
            return Err(Errno::Enomem);
        }
        let frames: Vec<u64> = (0..n).map_while(|_| self.frames.alloc()).collect();
        if frames.len() as u64 != n {
            self.frames.free_in_order(&frames);
            return Err(Errno::Enomem);
        }
        Ok(frames)
    }

    /// The id of file `name`, created on first use.
    fn file_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.file_ids.get(name) {
            return *id;
        }
        let id = self.files.len() as u32;
        self.files.push(name.to_owned());
        self.file_ids.insert(name.to_owned(), id);
        id
    }

    /// `munmap(addr, len)`: unmapped pages in the range are ignored.
    pub(super) fn begin_munmap(
        &mut self,
        process: ProcessId,
        addr: VirtAddr,
        len: u64,
    ) -> Result<(Vec<KernelStep>, Work), Errno> {
        let (start, end) = user_range(addr, len, false)?;
        let mut steps = Vec::new();
        let mut work = Work::default();
        for (va, state) in self.mapped_pages(process, start, end) {
            self.set_page(&mut work, process, va, None);
            work.shootdown.push(va);
            if state.file.is_some() {
                continue; // The page cache keeps the frame.
            }
            if !state.keyid.is_tme() {
                // free_encrypted_page(): flush the encrypted alias, KeyID back to 0, drop the
                // reference.
                if self.config.flush_on_keyid_change {
                    self.line_steps(&mut steps, state.keyid, state.frame, false);
                }
                self.drop_ref(state.keyid, &mut work);
                if self.config.unmap_encrypted_from_direct_map {
                    work.direct.push((state.frame, false));
                }
            }
            work.free_frames.push(state.frame);
        }
        Self::shoot_direct_map(&mut work);
        self.clear_steps(&work, &mut steps);
        Ok((steps, work))
    }

    /// `mprotect(addr, len, prot)`.
    pub(super) fn begin_mprotect(
        &mut self,
        process: ProcessId,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
    ) -> Result<(Vec<KernelStep>, Work), Errno> {
        let (start, end) = user_range(addr, len, true)?;
        self.check_mapped(process, start, end)?;
        let mut work = Work::default();
        for (va, state) in self.mapped_pages(process, start, end) {
            if state.prot != prot {
                self.set_page(&mut work, process, va, Some(PageState { prot, ..state }));
                work.shootdown.push(va);
            }
        }
        Ok((Vec::new(), work))
    }

    /// `encrypt_mprotect(addr, len, prot, serial)`.
    pub(super) fn begin_encrypt_mprotect(
        &mut self,
        process: ProcessId,
        addr: VirtAddr,
        len: u64,
        prot: Prot,
        key: &str,
    ) -> Result<(Vec<KernelStep>, Work), Errno> {
        let (start, end) = user_range(addr, len, false)?;
        self.check_mapped(process, start, end)?;
        let pages = self.mapped_pages(process, start, end);
        // mem_supports_encryption(): all or nothing.
        if pages.iter().any(|(_, s)| s.file.is_some()) {
            return Err(Errno::Einval);
        }
        let index = self.live_key(key).ok_or(Errno::Enokey)?;
        let Some(keyid) = self.keys[index].keyid else {
            return Err(Errno::Enokey);
        };
        // KEY_NEED_VIEW: a process uses only the keys it may view.
        if !self.may_view(index, process) {
            return Err(Errno::Eacces);
        }
        let mut steps = Vec::new();
        let mut work = Work::default();
        let mut gained = 0;
        for (va, old) in pages {
            let new = PageState { keyid, prot, ..old };
            if old.keyid != keyid {
                // __prep_encrypted_page(): flush the old alias, then zero through the new one
                // (the page's old contents are gone: MADV_DONTNEED plus a new KeyID).
                if self.config.flush_on_keyid_change {
                    self.line_steps(&mut steps, old.keyid, old.frame, false);
                }
                self.line_steps(&mut steps, keyid, old.frame, true);
                self.drop_ref(old.keyid, &mut work);
                gained += 1;
                if self.config.unmap_encrypted_from_direct_map && old.keyid.is_tme() {
                    work.direct.push((old.frame, true));
                }
            }
            if new != old {
                self.set_page(&mut work, process, va, Some(new));
                work.shootdown.push(va);
            }
        }
        self.take_refs(index, gained);
        Self::shoot_direct_map(&mut work);
        self.clear_steps(&work, &mut steps);
        Ok((steps, work))
    }
}
