//! Paging a list for ◀ ▶ buttons (`/history`, `/leaderboard`): which page is
//! shown, which items it holds, whether there is a page before and after it.
//!
//! A list may be read only in part (the newest sessions, the top of a
//! ranking): then `more` says items exist past those read, and the last page
//! read still has a "next" (showing it reads further).

use std::ops::Range;

/// Items per page of `/history` and `/leaderboard`.
pub const PER_PAGE: usize = 10;

/// A press of ◀ or ▶.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Prev,
    Next,
}

/// One page of a list of `len` items read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// 0-based.
    pub index: usize,
    /// Pages the items read fill (at least 1, even for no items).
    pub known: usize,
    /// Items exist past those read, so the last known page is not the last.
    pub more: bool,
    /// Items to a page.
    size: usize,
    len: usize,
}

impl Page {
    /// Page `index` of `len` items read, `per_page` to a page (at least 1),
    /// `more` past them; an index past the last known page shows the last.
    #[must_use]
    pub fn of(index: usize, len: usize, per_page: usize, more: bool) -> Page {
        let per_page = per_page.max(1);
        let known = len.div_ceil(per_page).max(1);
        Page {
            index: index.min(known - 1),
            known,
            more,
            size: per_page,
            len,
        }
    }

    /// The positions of the items this page shows.
    #[must_use]
    pub fn items(&self) -> Range<usize> {
        let start = (self.index * self.size).min(self.len);
        start..(start + self.size).min(self.len)
    }

    /// The items that come after this page among those read.
    #[must_use]
    pub fn after(&self) -> usize {
        self.len - self.items().end
    }

    #[must_use]
    pub fn has_prev(&self) -> bool {
        self.index > 0
    }

    #[must_use]
    pub fn has_next(&self) -> bool {
        self.index + 1 < self.known || self.more
    }

    /// Whether there is anything to page through (else no buttons).
    #[must_use]
    pub fn is_paged(&self) -> bool {
        self.has_prev() || self.has_next()
    }

    /// The page index a step leads to (it stays put at either end).
    #[must_use]
    pub fn step(&self, step: Step) -> usize {
        match step {
            Step::Prev => self.index.saturating_sub(1),
            Step::Next if self.has_next() => self.index + 1,
            Step::Next => self.index,
        }
    }

    /// How many items a reader must read to show page `index` and know
    /// whether one follows it.
    #[must_use]
    pub fn wanted(index: usize, per_page: usize) -> usize {
        (index + 1)
            .saturating_mul(per_page.max(1))
            .saturating_add(1)
    }

    /// "page 2 of 5", or "page 11 of 11+" when more items exist than read.
    #[must_use]
    pub fn label(&self) -> String {
        let plus = if self.more { "+" } else { "" };
        format!("page {} of {}{plus}", self.index + 1, self.known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_items_in_order_and_clamp_at_the_ends() {
        let first = Page::of(0, 23, 10, false);
        assert_eq!((first.known, first.items(), first.after()), (3, 0..10, 13));
        assert!(!first.has_prev() && first.has_next() && first.is_paged());
        assert_eq!(first.step(Step::Prev), 0);
        assert_eq!(first.step(Step::Next), 1);
        let last = Page::of(2, 23, 10, false);
        assert_eq!((last.items(), last.after()), (20..23, 0));
        assert!(last.has_prev() && !last.has_next());
        assert_eq!(last.step(Step::Next), 2);
        assert_eq!(last.label(), "page 3 of 3");
        // Past the end: the last page.
        assert_eq!(Page::of(9, 23, 10, false).index, 2);
        assert_eq!(Page::of(1, 20, 10, false).items(), 10..20);
    }

    #[test]
    fn one_page_or_none_has_no_buttons_and_more_keeps_next() {
        let empty = Page::of(0, 0, 10, false);
        assert_eq!((empty.known, empty.items()), (1, 0..0));
        assert!(!empty.is_paged());
        assert!(!Page::of(0, 10, 10, false).is_paged());
        let partial = Page::of(1, 20, 10, true);
        assert!(partial.has_next());
        assert_eq!(partial.step(Step::Next), 2);
        assert_eq!(partial.label(), "page 2 of 2+");
        assert_eq!(Page::wanted(0, 10), 11);
        assert_eq!(Page::wanted(2, 10), 31);
    }
}
