//! The key service and the KeyID pool: `add_key`, `KEYCTL_INVALIDATE`, page references and
//! the release of a KeyID (mktme-facts.md 5.2, 5.3).

use super::payload::{KeyPayload, parse_payload};
use super::{Kernel, KernelStep, KeyRecord, KeyState, PendingAdd, Slot, Work};
use crate::program::{Credentials, Errno, ProcessId};
use mem_ctrl::pconfig::{KeyCommand, KeyProgramStruct, PconfigCall};
use mem_ctrl::xts::XtsAlgorithm;
use sim_core::KeyId;

/// The MKTME_KEY_PROGRAM call that programs `keyid` for `payload`.
fn program_call(keyid: KeyId, payload: &KeyPayload) -> PconfigCall {
    let program = KeyProgramStruct::new(
        keyid.get(),
        payload.key_type.command(),
        XtsAlgorithm::Aes128,
    )
    .with_keys(
        &payload.key.unwrap_or_default(),
        &payload.tweak.unwrap_or_default(),
    );
    PconfigCall::key_program(program)
}

/// KEYID_CLEAR_KEY of `keyid`.
fn clear_call(keyid: KeyId) -> PconfigCall {
    PconfigCall::key_program(KeyProgramStruct::new(
        keyid.get(),
        KeyCommand::ClearKey,
        XtsAlgorithm::Aes128,
    ))
}

impl Kernel {
    /// `add_key("mktme", name, payload)`: EACCES, EINVAL, then a KeyID (ENOKEY) and its
    /// programming.
    pub(super) fn begin_add_key(
        &mut self,
        credentials: Credentials,
        name: &str,
        payload: &str,
    ) -> Result<(Vec<KernelStep>, Work), Errno> {
        if !credentials.cap_sys_resource {
            return Err(Errno::Eacces);
        }
        let payload = parse_payload(payload).map_err(|_| Errno::Einval)?;
        if name.is_empty() || self.name_in_use(name) {
            return Err(Errno::Einval);
        }
        // mktme_reserve_keyid(): the first AVAILABLE KeyID.
        let Some(i) = self.slots.iter().position(|s| *s == Slot::Available) else {
            return Err(Errno::Enokey);
        };
        let keyid = KeyId::new(i as u16 + 1);
        self.slots[i] = Slot::Programming(name.to_owned());
        let steps = vec![KernelStep::Pconfig {
            call: Box::new(program_call(keyid, &payload)),
            retries: self.config.program_retries,
        }];
        let work = Work {
            add: Some(PendingAdd {
                keyid,
                name: name.to_owned(),
                key_type: payload.key_type,
                owner: credentials.process,
            }),
            ..Work::default()
        };
        Ok((steps, work))
    }

    /// `keyctl(KEYCTL_INVALIDATE)`: ENOKEY unless the name is an assigned key, EACCES unless
    /// the caller's process may view it; releases the KeyID now if no page references it.
    pub(super) fn begin_invalidate(
        &mut self,
        process: ProcessId,
        name: &str,
    ) -> Result<(Vec<KernelStep>, Work), Errno> {
        let index = self.live_key(name).ok_or(Errno::Enokey)?;
        if !self.may_view(index, process) {
            return Err(Errno::Eacces);
        }
        let key = &mut self.keys[index];
        let Some(keyid) = key.keyid else {
            return Err(Errno::Enokey);
        };
        key.state = KeyState::Invalidated;
        let mut work = Work::default();
        if key.pages == 0 {
            self.start_release(index, keyid, &mut work);
        }
        let mut steps = Vec::new();
        self.clear_steps(&work, &mut steps);
        Ok((steps, work))
    }

    /// `keyctl(KEYCTL_SETPERM)` granting `with` the view permission on the key `name`:
    /// ENOKEY unless the name is an assigned key, EACCES unless the caller's process owns it.
    /// It takes effect at once (nothing for the machine to do).
    pub(super) fn begin_share(
        &mut self,
        process: ProcessId,
        name: &str,
        with: ProcessId,
    ) -> Result<(Vec<KernelStep>, Work), Errno> {
        let index = self.live_key(name).ok_or(Errno::Enokey)?;
        let key = &mut self.keys[index];
        if key.owner != process {
            return Err(Errno::Eacces);
        }
        if with != key.owner && !key.viewers.contains(&with) {
            key.viewers.push(with);
        }
        Ok((Vec::new(), Work::default()))
    }

    /// Whether `process` may view (and so use) key `index`: it added it, or was granted the
    /// view permission (the RFC's KEY_NEED_VIEW).
    pub(super) fn may_view(&self, index: usize, process: ProcessId) -> bool {
        let key = &self.keys[index];
        key.owner == process || key.viewers.contains(&process)
    }

    /// Whether `name` belongs to an assigned key or one being programmed.
    fn name_in_use(&self, name: &str) -> bool {
        self.live_key(name).is_some()
            || self
                .slots
                .iter()
                .any(|s| matches!(s, Slot::Programming(n) if n == name))
    }

    /// The assigned (not invalidated) key called `name`.
    pub(super) fn live_key(&self, name: &str) -> Option<usize> {
        self.key_by_name
            .get(name)
            .copied()
            .filter(|i| self.keys[*i].state == KeyState::Assigned)
    }

    /// `n` more pages reference key `index`'s KeyID.
    pub(super) fn take_refs(&mut self, index: usize, n: u64) {
        self.keys[index].pages += n;
    }

    /// One page less references `keyid` (KeyID 0 has no references); the last reference of
    /// an invalidated key releases its KeyID.
    pub(super) fn drop_ref(&mut self, keyid: KeyId, work: &mut Work) {
        if keyid.is_tme() {
            return;
        }
        let Some(Slot::Assigned(index)) = self.slots.get(keyid.index() - 1).cloned() else {
            return;
        };
        let key = &mut self.keys[index];
        key.pages = key.pages.saturating_sub(1);
        if key.pages == 0 && key.state == KeyState::Invalidated {
            self.start_release(index, keyid, work);
        }
    }

    /// The KeyID leaves the key at this call's finish, after a CLEAR_KEY step.
    fn start_release(&mut self, index: usize, keyid: KeyId, work: &mut Work) {
        self.slots[keyid.index() - 1] = Slot::Releasing(index);
        work.releases.push(keyid);
    }

    /// The CLEAR_KEY steps of the KeyIDs this call releases.
    pub(super) fn clear_steps(&self, work: &Work, steps: &mut Vec<KernelStep>) {
        steps.extend(work.releases.iter().map(|keyid| KernelStep::Pconfig {
            call: Box::new(clear_call(*keyid)),
            retries: self.config.program_retries,
        }));
    }

    /// The programming of an added key completed: the key is assigned, or its KeyID is free
    /// again and the call fails with ENOKEY.
    pub(super) fn commit_add(&mut self, add: PendingAdd, ok: bool) -> Result<u64, Errno> {
        let slot = add.keyid.index() - 1;
        if !ok {
            self.slots[slot] = Slot::Available;
            self.counters.program_failures += 1;
            return Err(Errno::Enokey);
        }
        let index = self.keys.len();
        let serial = self.next_serial;
        self.next_serial += 1;
        self.keys.push(KeyRecord {
            name: add.name.clone(),
            serial,
            key_type: add.key_type,
            keyid: Some(add.keyid),
            state: KeyState::Assigned,
            pages: 0,
            owner: add.owner,
            viewers: Vec::new(),
        });
        self.key_by_name.insert(add.name, index);
        self.slots[slot] = Slot::Assigned(index);
        Ok(serial)
    }

    /// A released KeyID becomes AVAILABLE; its key is released.
    pub(super) fn release_keyid(&mut self, keyid: KeyId) {
        let slot = keyid.index() - 1;
        if let Some(Slot::Releasing(index)) = self.slots.get(slot).cloned() {
            let key = &mut self.keys[index];
            key.state = KeyState::Released;
            key.keyid = None;
            self.slots[slot] = Slot::Available;
        }
    }
}
