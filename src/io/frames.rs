//! Frame ranges given on the command line (`A..B`, `A..`, `..B`, `A..=B`, or a single `N`).

use crate::error::{Error, Result};
use std::str::FromStr;

/// A half-open range of frame numbers `[start, end)`; `end = None` means to the last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameRange {
    /// First frame taken.
    pub start: usize,
    /// One past the last frame taken; `None` for all remaining frames.
    pub end: Option<usize>,
}

impl FrameRange {
    /// Every frame.
    pub fn all() -> Self {
        Self::default()
    }

    /// True when frame `i` lies in the range.
    pub fn contains(&self, i: usize) -> bool {
        i >= self.start && self.end.is_none_or(|e| i < e)
    }

    /// The sub-range of `0..n` this range selects.
    pub fn clamp_to(&self, n: usize) -> std::ops::Range<usize> {
        let end = self.end.unwrap_or(n).min(n);
        self.start.min(end)..end
    }
}

impl FromStr for FrameRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Usage(format!(
                "invalid frame range '{s}': expected A..B, A.., ..B, A..=B or N"
            ))
        };
        let num = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        let range = if let Some((a, b)) = s.split_once("..=") {
            let start = if a.is_empty() { 0 } else { num(a)? };
            FrameRange {
                start,
                end: Some(num(b)? + 1),
            }
        } else if let Some((a, b)) = s.split_once("..") {
            let start = if a.is_empty() { 0 } else { num(a)? };
            let end = if b.is_empty() { None } else { Some(num(b)?) };
            FrameRange { start, end }
        } else {
            let n = num(s)?;
            FrameRange {
                start: n,
                end: Some(n + 1),
            }
        };
        if range.end.is_some_and(|e| e <= range.start) {
            return Err(Error::Usage(format!("frame range '{s}' is empty")));
        }
        Ok(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let r = |s: &str| s.parse::<FrameRange>().unwrap();
        assert_eq!(r("3..7"), FrameRange { start: 3, end: Some(7) });
        assert_eq!(r("3..=7"), FrameRange { start: 3, end: Some(8) });
        assert_eq!(r("5.."), FrameRange { start: 5, end: None });
        assert_eq!(r("..4"), FrameRange { start: 0, end: Some(4) });
        assert_eq!(
            r("9"),
            FrameRange {
                start: 9,
                end: Some(10)
            }
        );
        assert!("7..3".parse::<FrameRange>().is_err());
        assert!("x..3".parse::<FrameRange>().is_err());
        assert_eq!(r("2..100").clamp_to(10), 2..10);
    }
}
