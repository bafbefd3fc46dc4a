//! Working memory for one decision that stays on the stack when it is small.
//!
//! A decision is evaluated in hot loops (an engine re-deciding every
//! candidate of a policy), and its working sets are tiny: a handful of
//! checks, approvers and roles. Heap allocations would cost more than the
//! rules themselves, so small buffers live in fixed arrays and only large
//! inputs spill to a `Vec`.

use std::ops::{Deref, DerefMut};

/// `len` values of `T`, in a `[T; N]` on the stack when `len <= N`.
#[derive(Debug)]
pub(super) enum Scratch<T, const N: usize> {
    Stack([T; N], usize),
    Heap(Vec<T>),
}

impl<T: Copy, const N: usize> Scratch<T, N> {
    /// `len` copies of `value`.
    pub(super) fn filled(len: usize, value: T) -> Self {
        if len <= N { Self::Stack([value; N], len) } else { Self::Heap(vec![value; len]) }
    }

    /// An empty buffer that [`Scratch::push`] grows.
    pub(super) fn empty(value: T) -> Self {
        Self::Stack([value; N], 0)
    }

    /// Append `value`, spilling to the heap when the stack array is full.
    pub(super) fn push(&mut self, value: T) {
        match self {
            Self::Stack(array, len) if *len < N => {
                array[*len] = value;
                *len += 1;
            }
            Self::Stack(array, len) => {
                let mut heap = Vec::with_capacity(N.saturating_mul(2).max(4));
                heap.extend_from_slice(&array[..*len]);
                heap.push(value);
                *self = Self::Heap(heap);
            }
            Self::Heap(heap) => heap.push(value),
        }
    }

    /// Keep the first `len` values.
    pub(super) fn truncate(&mut self, new_len: usize) {
        match self {
            Self::Stack(_, len) => *len = new_len.min(*len),
            Self::Heap(heap) => heap.truncate(new_len),
        }
    }
}

impl<T, const N: usize> Deref for Scratch<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Self::Stack(array, len) => array.get(..*len).unwrap_or_default(),
            Self::Heap(heap) => heap,
        }
    }
}

impl<T, const N: usize> DerefMut for Scratch<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Self::Stack(array, len) => array.get_mut(..*len).unwrap_or_default(),
            Self::Heap(heap) => heap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_the_heap_past_its_array() {
        let mut s: Scratch<u32, 2> = Scratch::empty(0);
        for i in 0..5 {
            s.push(i);
        }
        assert!(matches!(s, Scratch::Heap(_)));
        assert_eq!(&*s, &[0, 1, 2, 3, 4]);
        s.truncate(1);
        assert_eq!(&*s, &[0]);
        let big: Scratch<u8, 2> = Scratch::filled(3, 7);
        assert_eq!(&*big, &[7, 7, 7]);
        let small: Scratch<u8, 4> = Scratch::filled(3, 7);
        assert_eq!(&*small, &[7, 7, 7]);
    }
}
