//! Per-CPU GDT and TSS.
//!
//! Each core gets its own TSS because the TSS holds the interrupt stack table
//! (IST), and each core needs its own stacks for:
//!
//! | IST index | used by | why a separate stack |
//! |---|---|---|
//! | `DOUBLE_FAULT_IST` | #DF | the faulting stack may be unusable |
//! | `NMI_IST` | NMI | can arrive anywhere, even mid-switch |
//! | `PAGE_FAULT_IST` | #PF | a goroutine touching its guard page (stack overflow) or an unmapped-yet stack page has no stack left to push onto |
//! | `IRQ_IST` | timer, IPIs | interrupts never push onto a goroutine stack, so the asynchronous-preemption path can copy the frame out and switch goroutines freely |
//!
//! Interrupt gates clear IF, and nothing on those paths re-enables it, so one
//! stack per vector class per core is enough (no nesting on the same IST).
use alloc::boxed::Box;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

pub const DOUBLE_FAULT_IST: u16 = 0;
pub const NMI_IST: u16 = 1;
pub const PAGE_FAULT_IST: u16 = 2;
pub const IRQ_IST: u16 = 3;

const IST_STACK_SIZE: usize = 32 * 1024;

/// An IST stack with an unmapped guard page below it (mem::kstack): an
/// overflow is a reported page fault, not silent heap corruption.
fn new_stack() -> VirtAddr {
    VirtAddr::new(crate::mem::kstack::alloc(IST_STACK_SIZE))
}

/// A core's GDT and TSS (with its IST stacks): built on any core,
/// loaded on its own.
pub struct CpuTables {
    gdt: &'static GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// Build a core's GDT and TSS. Needs the heap (and takes its lock and the
/// stack allocator's). The boot core builds every AP's before it starts
/// them, so an AP's bring-up takes no lock (see smp.rs).
pub fn build() -> CpuTables {
    let tss: &'static mut TaskStateSegment = Box::leak(Box::new(TaskStateSegment::new()));
    tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] = new_stack();
    tss.interrupt_stack_table[NMI_IST as usize] = new_stack();
    tss.interrupt_stack_table[PAGE_FAULT_IST as usize] = new_stack();
    tss.interrupt_stack_table[IRQ_IST as usize] = new_stack();
    let tss: &'static TaskStateSegment = tss;

    let gdt: &'static mut GlobalDescriptorTable = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    CpuTables { gdt, code, data, tss: tss_sel }
}

impl CpuTables {
    /// Load them on this core. Each core must load tables of its own (its
    /// TSS is marked busy by `ltr`).
    pub fn load(&self) {
        self.gdt.load();
        // SAFETY: the selectors were created in the GDT loaded above, and
        // describe flat 64-bit kernel code/data segments and a TSS that no
        // other core has loaded.
        unsafe {
            CS::set_reg(self.code);
            DS::set_reg(self.data);
            ES::set_reg(self.data);
            SS::set_reg(self.data);
            load_tss(self.tss);
        }
    }
}

/// Build and load this core's GDT and TSS (the boot core).
pub fn init_this_cpu() {
    build().load();
}
