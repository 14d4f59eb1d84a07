//! The interrupt descriptor table, shared by all cores.
//!
//! Every CPU exception has a handler that prints a readable report (name,
//! vector, error code, RIP, CR2, CPU, and the goroutine) and makes QEMU exit
//! with a failure status. The page-fault handler first asks the stack module
//! whether the fault is a goroutine stack growing (then it maps a page and
//! returns) or hitting its guard page (then it reports a stack overflow
//! naming the goroutine, as Go's `runtime: goroutine stack exceeds` does).
//!
//! The device vectors (timer, wake-up IPI, preemption IPI, TLB shootdown
//! IPI) run on the
//! per-core IRQ IST stack; see gdt.rs.
use super::apic;
use super::gdt;
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

static IDT: spin::Once<InterruptDescriptorTable> = spin::Once::new();

macro_rules! fault {
    ($name:ident, $desc:expr, $vec:expr) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame) {
            report($desc, $vec, None, &frame);
        }
    };
    ($name:ident, $desc:expr, $vec:expr, err) => {
        extern "x86-interrupt" fn $name(frame: InterruptStackFrame, code: u64) {
            report($desc, $vec, Some(code), &frame);
        }
    };
}

fault!(divide_error, "divide error", 0);
fault!(debug, "debug", 1);
fault!(breakpoint, "breakpoint", 3);
fault!(overflow, "overflow", 4);
fault!(bound_range, "bound range exceeded", 5);
fault!(invalid_opcode, "invalid opcode", 6);
fault!(device_not_available, "device not available", 7);
fault!(invalid_tss, "invalid TSS", 10, err);
fault!(segment_not_present, "segment not present", 11, err);
fault!(stack_segment, "stack-segment fault", 12, err);
fault!(general_protection, "general protection fault", 13, err);
fault!(x87_fp, "x87 floating-point exception", 16);
fault!(alignment_check, "alignment check", 17, err);
fault!(simd_fp, "SIMD floating-point exception", 19);
fault!(virtualization, "virtualization exception", 20);
fault!(cp_protection, "control-protection exception", 21, err);
fault!(hv_injection, "hypervisor injection exception", 28);
fault!(vmm_communication, "VMM communication exception", 29, err);
fault!(security, "security exception", 30, err);

extern "x86-interrupt" fn nmi(frame: InterruptStackFrame) {
    report("non-maskable interrupt", 2, None, &frame);
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    report("double fault", 8, Some(code), &frame);
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    report("machine check", 18, None, &frame);
}

#[allow(clippy::declare_interior_mutable_const)]
const NOT_IN_PF: AtomicBool = AtomicBool::new(false);
/// Per core: is the page-fault handler running? Set and cleared only by
/// that core, with interrupts off (no partner on another core).
static IN_PAGE_FAULT: [AtomicBool; super::percpu::MAX_CPUS] = [NOT_IN_PF; super::percpu::MAX_CPUS];

/// The page-fault handler runs on its own IST stack, and the CPU starts
/// every #PF at the top of that stack: a page fault *inside* the handler
/// would overwrite the frames of the one it interrupted. The handler itself
/// touches only mapped memory, so that is a kernel bug; it is caught here,
/// on entry, and reported before anything else runs on the clobbered stack.
/// (Every path that does not return below ends the run.)
extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, code: PageFaultErrorCode) {
    let addr = Cr2::read_raw();
    let busy = &IN_PAGE_FAULT[super::percpu::cpu_id()];
    if busy.swap(true, Ordering::Relaxed) {
        report("page fault inside the page-fault handler", 14, Some(code.bits()), &frame);
    }
    if !code.contains(PageFaultErrorCode::PROTECTION_VIOLATION) {
        match crate::mem::stack::handle_fault(addr) {
            crate::mem::stack::Fault::Grown => {
                busy.store(false, Ordering::Relaxed);
                return;
            }
            crate::mem::stack::Fault::Guard { lo } => crate::runtime::fatal::stack_overflow(addr, lo, frame.instruction_pointer.as_u64()),
            crate::mem::stack::Fault::Dead { lo } => crate::runtime::fatal::dead_stack(addr, lo, frame.instruction_pointer.as_u64()),
            crate::mem::stack::Fault::NotStack => {}
        }
        if let Some(guard) = crate::mem::kstack::guard_of(addr) {
            crate::runtime::fatal::fatal(format_args!(
                "kernel stack overflow: page fault at {addr:#x} in the guard page {guard:#x} of an interrupt, boot or g0 stack (rip={:#x})",
                frame.instruction_pointer.as_u64()
            ));
        }
    }
    report("page fault", 14, Some(code.bits()), &frame);
}

fn report(desc: &str, vector: u8, code: Option<u64>, frame: &InterruptStackFrame) -> ! {
    let cr2 = Cr2::read_raw();
    crate::runtime::fatal::exception(desc, vector, code, frame.instruction_pointer.as_u64(), frame.stack_pointer.as_u64(), cr2)
}

extern "x86-interrupt" fn wake(_frame: InterruptStackFrame) {
    crate::runtime::irq::on_wake();
    apic::eoi();
}

extern "x86-interrupt" fn tlb_shootdown(_frame: InterruptStackFrame) {
    crate::mem::tlb::on_ipi();
    apic::eoi();
}

/// An AP halted in `smp::ap_entry` until the boot core numbers it: the IPI
/// only ends the `hlt`. It comes before the core has per-CPU data, so the
/// handler touches nothing else.
extern "x86-interrupt" fn bringup(_frame: InterruptStackFrame) {
    apic::eoi();
}

extern "x86-interrupt" fn spurious(_frame: InterruptStackFrame) {
    // No EOI for the spurious vector.
}

extern "x86-interrupt" fn unexpected(frame: InterruptStackFrame) {
    report("unexpected interrupt", 0xfe, None, &frame);
}

fn build() -> InterruptDescriptorTable {
    let mut idt = InterruptDescriptorTable::new();
    idt.divide_error.set_handler_fn(divide_error);
    idt.debug.set_handler_fn(debug);
    idt.breakpoint.set_handler_fn(breakpoint);
    idt.overflow.set_handler_fn(overflow);
    idt.bound_range_exceeded.set_handler_fn(bound_range);
    idt.invalid_opcode.set_handler_fn(invalid_opcode);
    idt.device_not_available.set_handler_fn(device_not_available);
    idt.invalid_tss.set_handler_fn(invalid_tss);
    idt.segment_not_present.set_handler_fn(segment_not_present);
    idt.stack_segment_fault.set_handler_fn(stack_segment);
    idt.general_protection_fault.set_handler_fn(general_protection);
    idt.x87_floating_point.set_handler_fn(x87_fp);
    idt.alignment_check.set_handler_fn(alignment_check);
    idt.simd_floating_point.set_handler_fn(simd_fp);
    idt.virtualization.set_handler_fn(virtualization);
    idt.cp_protection_exception.set_handler_fn(cp_protection);
    idt.hv_injection_exception.set_handler_fn(hv_injection);
    idt.vmm_communication_exception.set_handler_fn(vmm_communication);
    idt.security_exception.set_handler_fn(security);
    // SAFETY (all set_stack_index calls): the indices name IST stacks that
    // gdt::init_this_cpu installs in every core's TSS before `load`.
    unsafe {
        idt.non_maskable_interrupt.set_handler_fn(nmi).set_stack_index(gdt::NMI_IST);
        idt.double_fault.set_handler_fn(double_fault).set_stack_index(gdt::DOUBLE_FAULT_IST);
        idt.machine_check.set_handler_fn(machine_check).set_stack_index(gdt::NMI_IST);
        idt.page_fault.set_handler_fn(page_fault).set_stack_index(gdt::PAGE_FAULT_IST);
        for v in 32..=255u8 {
            idt[v].set_handler_fn(unexpected).set_stack_index(gdt::IRQ_IST);
        }
        idt[apic::TIMER_VECTOR]
            .set_handler_addr(x86_64::VirtAddr::new(super::switch::irq_stub_timer as *const () as u64))
            .set_stack_index(gdt::IRQ_IST);
        idt[apic::WAKE_VECTOR].set_handler_fn(wake).set_stack_index(gdt::IRQ_IST);
        idt[apic::PREEMPT_VECTOR]
            .set_handler_addr(x86_64::VirtAddr::new(super::switch::irq_stub_preempt as *const () as u64))
            .set_stack_index(gdt::IRQ_IST);
        idt[apic::TLB_VECTOR].set_handler_fn(tlb_shootdown).set_stack_index(gdt::IRQ_IST);
        idt[apic::BRINGUP_VECTOR].set_handler_fn(bringup).set_stack_index(gdt::IRQ_IST);
        idt[apic::SPURIOUS_VECTOR].set_handler_fn(spurious).set_stack_index(gdt::IRQ_IST);
    }
    idt
}

/// Load the IDT on this core (built on first use).
pub fn init_this_cpu() {
    IDT.call_once(build).load();
}
