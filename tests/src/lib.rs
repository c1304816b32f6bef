//! Hardware-in-the-loop runner (in progress).
