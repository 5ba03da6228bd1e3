//! Locks that outlive a panicking holder: the data behind a poisoned mutex is used as it
//! is (the panic itself is reported where the thread is joined), so one failed worker
//! never turns the report or the accounting of the others into a second panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
