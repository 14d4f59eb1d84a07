//! QEMU's fw_cfg device (ports 0x510/0x511): how boot parameters reach us.
//!
//! `qemu ... -fw_cfg name=opt/gmp/KEY,string=VALUE` adds a file to the
//! fw_cfg directory. We list the directory, keep the files under
//! [`PREFIX`], and hand each (KEY, VALUE) to the caller, which validates
//! them (gmp_core::bootparam). Files outside the prefix belong to QEMU or
//! the firmware and are not ours to judge.
use x86_64::instructions::port::Port;

pub const PREFIX: &str = "opt/gmp/";
const SEL_SIGNATURE: u16 = 0x0000;
const SEL_DIR: u16 = 0x0019;
/// The runner refuses more, with a message (QEMU would abort on them).
const MAX_PARAMS: usize = gmp_core::bootparam::MAX_PARAMS;
pub const MAX_VALUE: usize = 128;

fn select(sel: u16) {
    // SAFETY: 0x510 is the fw_cfg selector port on QEMU's PC machine.
    unsafe { Port::<u16>::new(0x510).write(sel) }
}

fn read_bytes(buf: &mut [u8]) {
    let mut data = Port::<u8>::new(0x511);
    for b in buf {
        // SAFETY: 0x511 is the fw_cfg data port; reads advance within the
        // selected item and return 0 past its end.
        *b = unsafe { data.read() };
    }
}

fn read_be32() -> u32 {
    let mut b = [0u8; 4];
    read_bytes(&mut b);
    u32::from_be_bytes(b)
}

#[derive(Clone, Copy)]
struct Entry {
    name: [u8; 56],
    name_len: usize,
    select: u16,
    size: u32,
}

/// Errors of the fw_cfg transport itself (not of a parameter's value).
pub enum FwCfgError {
    /// A parameter value longer than [`MAX_VALUE`] bytes.
    TooLong { key: [u8; 56], key_len: usize, size: u32 },
    /// More than [`MAX_PARAMS`] parameters.
    TooMany,
}

/// Call `f(key, value)` for every `opt/gmp/KEY` file. Returns Ok(false) if
/// there is no fw_cfg device at all (not QEMU): then there are no parameters.
pub fn for_each_param(mut f: impl FnMut(&str, &str)) -> Result<bool, FwCfgError> {
    select(SEL_SIGNATURE);
    let mut sig = [0u8; 4];
    read_bytes(&mut sig);
    if &sig != b"QEMU" {
        return Ok(false);
    }
    select(SEL_DIR);
    let count = read_be32();
    let mut entries = [Entry { name: [0; 56], name_len: 0, select: 0, size: 0 }; MAX_PARAMS];
    let mut n = 0;
    for _ in 0..count {
        let size = read_be32();
        let mut sel = [0u8; 4];
        read_bytes(&mut sel);
        let mut name = [0u8; 56];
        read_bytes(&mut name);
        let name_len = name.iter().position(|&b| b == 0).unwrap_or(56);
        let Ok(full) = core::str::from_utf8(&name[..name_len]) else { continue };
        let Some(key) = full.strip_prefix(PREFIX) else { continue };
        if n == MAX_PARAMS {
            return Err(FwCfgError::TooMany);
        }
        let mut e = Entry { name: [0; 56], name_len: key.len(), select: u16::from_be_bytes([sel[0], sel[1]]), size };
        e.name[..key.len()].copy_from_slice(key.as_bytes());
        entries[n] = e;
        n += 1;
    }
    for e in &entries[..n] {
        if e.size as usize > MAX_VALUE {
            return Err(FwCfgError::TooLong { key: e.name, key_len: e.name_len, size: e.size });
        }
        let mut val = [0u8; MAX_VALUE];
        select(e.select);
        read_bytes(&mut val[..e.size as usize]);
        let key = core::str::from_utf8(&e.name[..e.name_len]).unwrap_or("?");
        let v = &val[..e.size as usize];
        // QEMU's string= files carry no NUL; a file= one might end in a newline.
        let v = core::str::from_utf8(v).unwrap_or("\u{fffd}").trim_end_matches(['\0', '\n', '\r']);
        f(key, v);
    }
    Ok(true)
}
