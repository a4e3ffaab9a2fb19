//! What the dm-remap host tools of this package share: the admin CLI (`remapctl`) and
//! the development tools (`remap-lab`: trace generators, evaluation).

pub mod trace;
