//! Is this file a kernel the `bootloader` crate can boot? Checked before any image is made.
//!
//! The disk image builder copies any file into the image, and the bootloader only looks at it
//! once the machine has booted: a text file, an empty file or `/bin/true` made the BIOS boot hang
//! silently and the UEFI boot panic and then hang, each until the timeout. So the runner checks
//! up front what the bootloader's loader would refuse, with the `object` crate:
//! - an ELF file at all, 64-bit (ELFCLASS64), little-endian, for x86_64 (EM_X86_64);
//! - an executable or position-independent executable (ET_EXEC / ET_DYN) with an entry point;
//! - at least one loadable segment, the entry point inside one, and no interpreter (a
//!   dynamically linked user program such as `/bin/true` has one);
//! - the `.bootloader-config` section that `bootloader_api::entry_point!` emits, of the size and
//!   with the UUID of bootloader_api 0.11 (the loader panics without it).

use std::path::Path;

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSection};

use crate::Error;

/// `bootloader_api::BootloaderConfig::SERIALIZED_LEN` of the bootloader_api 0.11 the kernel uses.
const CONFIG_LEN: usize = 133;
/// The UUID a serialized `BootloaderConfig` starts with (bootloader_api 0.11).
const CONFIG_UUID: [u8; 16] = [0x74, 0x3C, 0xA9, 0x61, 0x09, 0x36, 0x46, 0xA0, 0xBB, 0x55, 0x5C, 0x15, 0x89, 0x15, 0x25, 0x3D];

/// Check that `path` is a bootable kernel ELF; the error says what is wrong, naming the file.
pub fn check_kernel_elf(path: &Path) -> Result<(), Error> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error(format!("kernel ELF {shown} not found"))),
        Err(e) => return Err(Error(format!("kernel ELF {shown}: {e}"))),
    };
    if meta.is_dir() {
        return Err(Error(format!("kernel ELF {shown} is a directory, not a file")));
    }
    if !meta.is_file() {
        return Err(Error(format!("kernel ELF {shown} is not a regular file")));
    }
    let data = std::fs::read(path).map_err(|e| Error(format!("cannot read kernel ELF {shown}: {e}")))?;
    check_kernel_bytes(&data).map_err(|why| Error(format!("{shown} is not a kernel the bootloader can boot: {why}")))
}

/// The checks of [`check_kernel_elf`] on the file's contents; the error is the reason alone.
pub fn check_kernel_bytes(data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Err("the file is empty".into());
    }
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        return Err("not an ELF file (no \\x7fELF magic at the start)".into());
    }
    if data.len() < 64 {
        return Err(format!("truncated ELF header ({} bytes)", data.len()));
    }
    // e_ident[EI_CLASS] (byte 4): 1 = ELFCLASS32, 2 = ELFCLASS64; e_ident[EI_DATA] (byte 5):
    // 1 = ELFDATA2LSB.
    match data[4] {
        2 => {}
        1 => return Err("a 32-bit ELF (ELFCLASS32); the kernel must be 64-bit".into()),
        c => return Err(format!("unknown ELF class {c}")),
    }
    if data[5] != 1 {
        return Err("not little-endian (ELFDATA2LSB)".into());
    }
    let file = ElfFile64::<Endianness>::parse(data).map_err(|e| format!("malformed ELF: {e}"))?;
    let header = file.elf_header();
    let endian = file.endian();
    let machine = header.e_machine(endian);
    if machine != elf::EM_X86_64 {
        return Err(format!("built for machine {machine} (e_machine), not x86_64 ({})", elf::EM_X86_64));
    }
    let kind = header.e_type(endian);
    if kind != elf::ET_EXEC && kind != elf::ET_DYN {
        return Err(format!(
            "not an executable (e_type {kind}; an object file or core dump cannot be booted)"
        ));
    }
    let entry = header.e_entry(endian);
    if entry == 0 {
        return Err("no entry point (e_entry is 0)".into());
    }
    let segments = header.program_headers(endian, data).map_err(|e| format!("malformed program headers: {e}"))?;
    if segments.iter().any(|s| s.p_type(endian) == elf::PT_INTERP) {
        return Err("it asks for a program interpreter (PT_INTERP): a dynamically linked user program, \
                    not a kernel"
            .into());
    }
    let loads: Vec<_> = segments.iter().filter(|s| s.p_type(endian) == elf::PT_LOAD).collect();
    if loads.is_empty() {
        return Err("no loadable segment (PT_LOAD)".into());
    }
    let in_load = loads.iter().any(|s| {
        let start = s.p_vaddr(endian);
        entry >= start && entry - start < s.p_memsz(endian) && s.p_flags(endian).contains(elf::PF_X)
    });
    if !in_load {
        return Err(format!("the entry point {entry:#x} is not inside an executable loadable segment"));
    }
    let Some(config) = file.section_by_name(".bootloader-config") else {
        return Err("no .bootloader-config section: the kernel must be built against bootloader_api \
                    (bootloader_api::entry_point!)"
            .into());
    };
    let raw = config.data().map_err(|e| format!("unreadable .bootloader-config section: {e}"))?;
    if raw.len() != CONFIG_LEN || raw[..16] != CONFIG_UUID {
        return Err(format!(
            "the .bootloader-config section ({} bytes) is not a bootloader_api 0.11 configuration \
             ({CONFIG_LEN} bytes starting with its UUID): built against another bootloader_api?",
            raw.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_elf_files_are_named() {
        assert_eq!(check_kernel_bytes(b"").unwrap_err(), "the file is empty");
        assert!(check_kernel_bytes(b"hello, world\n").unwrap_err().contains("not an ELF file"));
        assert!(check_kernel_bytes(b"\x7fELF\x02\x01").unwrap_err().contains("truncated"));
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 1; // ELFCLASS32
        assert!(check_kernel_bytes(&h).unwrap_err().contains("32-bit"));
        h[4] = 2; // ELFCLASS64
        h[5] = 2; // ELFDATA2MSB
        assert!(check_kernel_bytes(&h).unwrap_err().contains("little-endian"));
    }

    #[test]
    fn a_user_program_is_not_a_kernel() {
        // The host's own executables: x86_64 ELFs with an interpreter.
        for p in ["/bin/true", "/bin/sh"] {
            let Ok(data) = std::fs::read(p) else { continue };
            let why = check_kernel_bytes(&data).unwrap_err();
            assert!(why.contains("interpreter") || why.contains("x86_64"), "{p}: {why}");
        }
    }

    #[test]
    fn directories_and_missing_files() {
        let e = check_kernel_elf(Path::new("/")).unwrap_err();
        assert!(e.0.contains("is a directory, not a file"), "{e}");
        let e = check_kernel_elf(Path::new("/nonexistent/kernel")).unwrap_err();
        assert!(e.0.ends_with("not found"), "{e}");
    }
}
