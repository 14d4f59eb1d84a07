//! Machine-dependent code. Only x86_64 exists; everything the scheduler needs
//! from the machine goes through the small surface re-exported here.
pub mod x86_64;
