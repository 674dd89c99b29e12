//! Run-image mirror selection (see `pack-builder-behavior.md` §5.3 and issue 5).
