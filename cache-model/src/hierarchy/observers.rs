//! Observers attached to the hierarchy, and the way back to a concrete one.
//!
//! [`CacheObserver`] has no `Any` supertrait, so observers are stored behind a private trait
//! that adds one; attaching a concrete type keeps it reachable as that type (as
//! `mem_ctrl::BusPort::probe` does for bus probes).

use crate::events::{CacheEvent, CacheObserver};
use std::any::Any;

/// Handle of an attached observer.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ObserverId(usize);

trait AnyObserver: CacheObserver + Any + Send {}
impl<T: CacheObserver + Any + Send> AnyObserver for T {}

/// A boxed observer attached as such: it can be detached, not downcast.
struct Boxed(Box<dyn CacheObserver + Send>);

impl CacheObserver for Boxed {
    fn on_event(&mut self, event: &CacheEvent) {
        self.0.on_event(event);
    }
}

#[derive(Default)]
pub(crate) struct Observers {
    list: Vec<Option<Box<dyn AnyObserver>>>,
    attached: usize,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Observers({} attached)", self.attached)
    }
}

impl Observers {
    /// True when at least one observer is attached (events are built only then).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.attached != 0
    }

    pub(crate) fn notify(&mut self, event: &CacheEvent) {
        for o in self.list.iter_mut().flatten() {
            o.on_event(event);
        }
    }

    pub(crate) fn attach<O: CacheObserver + Send + 'static>(&mut self, observer: O) -> ObserverId {
        self.list.push(Some(Box::new(observer)));
        self.attached += 1;
        ObserverId(self.list.len() - 1)
    }

    pub(crate) fn attach_boxed(&mut self, observer: Box<dyn CacheObserver + Send>) -> ObserverId {
        self.attach(Boxed(observer))
    }

    pub(crate) fn get<O: CacheObserver + 'static>(&self, id: ObserverId) -> Option<&O> {
        let o: &dyn Any = self.list.get(id.0)?.as_deref()?;
        o.downcast_ref::<O>()
    }

    pub(crate) fn get_mut<O: CacheObserver + 'static>(&mut self, id: ObserverId) -> Option<&mut O> {
        let o: &mut dyn Any = self.list.get_mut(id.0)?.as_deref_mut()?;
        o.downcast_mut::<O>()
    }

    pub(crate) fn detach(&mut self, id: ObserverId) -> Option<Box<dyn CacheObserver + Send>> {
        let o = self.list.get_mut(id.0)?.take()?;
        self.attached -= 1;
        if (&*o as &dyn Any).is::<Boxed>() {
            let any: Box<dyn Any + Send> = o;
            let boxed = any.downcast::<Boxed>().expect("checked to be Boxed");
            return Some(boxed.0);
        }
        Some(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventLog, FlushKind};
    use sim_core::{CoreId, Cycle};

    fn event() -> CacheEvent {
        CacheEvent::FlushStart {
            cycle: Cycle::new(1),
            core: CoreId::new(0),
            kind: FlushKind::Wbinvd,
            line: None,
        }
    }

    #[test]
    fn concrete_observers_come_back() {
        let mut obs = Observers::default();
        assert!(!obs.any());
        let a = obs.attach(EventLog::default());
        let b = obs.attach_boxed(Box::new(EventLog::default()));
        obs.notify(&event());
        assert_eq!(obs.get::<EventLog>(a).unwrap().events.len(), 1);
        // A boxed observer is not reachable as its concrete type...
        assert!(obs.get::<EventLog>(b).is_none());
        obs.get_mut::<EventLog>(a).unwrap().events.clear();
        // ...but detaches as the box it was given.
        let mut back = obs.detach(b).unwrap();
        back.on_event(&event());
        assert!(obs.detach(b).is_none());
        let a_back = obs.detach(a).unwrap();
        drop(a_back);
        assert!(!obs.any());
    }
}
