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
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
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

/// Build and load this core's GDT and TSS. Needs the heap.
pub fn init_this_cpu() {
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
    let gdt: &'static GlobalDescriptorTable = gdt;
    gdt.load();
    // SAFETY: the selectors were just created in the GDT loaded above, and
    // describe flat 64-bit kernel code/data segments and this core's TSS.
    unsafe {
        CS::set_reg(code);
        DS::set_reg(data);
        ES::set_reg(data);
        SS::set_reg(data);
        load_tss(tss_sel);
    }
}
