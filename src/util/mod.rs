//! Small, general pieces the rest of wagate stands on. Nothing here imports
//! anything of the crate: this is the bottom layer.

pub mod backoff;
pub mod check;
pub mod cidr;
pub mod clock;
pub mod disk;
pub mod fdlimit;
pub mod fs;
pub mod histogram;
pub mod memory;
pub mod priority;
pub mod prom;
pub mod task;
pub mod time;
