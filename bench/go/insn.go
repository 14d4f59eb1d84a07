package main

// `gobench -insn`: what single instructions cost, timed the way the kernel's
// `bench=insn` times them (kernel/src/bin/benchkernel/insn.rs): a loop that
// repeats one instruction 8 times per iteration (insn_amd64.s), less the
// same loop with nothing in it, best of three. Under qemu-user this is the
// cost of an instruction to Go; beside the kernel's table it shows which
// instructions qemu-system makes dearer. A load is the clearest case:
// qemu-user maps a guest address straight onto the host's, while
// qemu-system looks every access up in its software TLB.
//
// Only the instructions a user program may run: no cli/sti, port or APIC
// accesses, and no gs-relative load (Linux leaves the gs base at 0).

import (
	"math"
	"time"
)

// insnIters is the loop's iterations per measurement: ten times the kernel's, since a run
// of 50 000 under qemu-user takes about 0.1 ms and the host's noise swamped a load.
const insnIters = 500_000

// insnScratch is the memory operand (never read for its value).
var insnScratch [8]uint64

func emptyLoop(n int, p *uint64)
func addLoop(n int, p *uint64)
func movLoadLoop(n int, p *uint64)
func movStoreLoop(n int, p *uint64)
func lockXaddLoop(n int, p *uint64)
func xchgLoop(n int, p *uint64)
func lockCmpxchgLoop(n int, p *uint64)
func mfenceLoop(n int, p *uint64)
func pauseLoop(n int, p *uint64)
func rdtscLoop(n int, p *uint64)
func jmpNextLoop(n int, p *uint64)
func callRetLoop(n int, p *uint64)
func pushfPopLoop(n int, p *uint64)

// timeLoop returns the wall time of one run of f.
func timeLoop(f func(int, *uint64)) time.Duration {
	t0 := time.Now()
	f(insnIters, &insnScratch[0])
	return time.Since(t0)
}

// perInsn is ns per instruction of f: best of three of (f, less the empty loop).
func perInsn(f func(int, *uint64)) float64 {
	best := math.MaxFloat64
	for r := 0; r < 3; r++ {
		d := timeLoop(f) - timeLoop(emptyLoop)
		if v := float64(d.Nanoseconds()) / float64(insnIters*8); v < best {
			best = v
		}
	}
	return best
}

func insnTable() {
	// Picoseconds, and the ratio to a plain load, as the kernel reports them.
	report("insn_add", perInsn(addLoop)*1000, "ps")
	load := perInsn(movLoadLoop)
	report("insn_mov_load", load*1000, "ps")
	all := []struct {
		name string
		f    func(int, *uint64)
	}{
		{"mov_store", movStoreLoop},
		{"lock_xadd", lockXaddLoop},
		{"xchg", xchgLoop},
		{"lock_cmpxchg", lockCmpxchgLoop},
		{"mfence", mfenceLoop},
		{"pause", pauseLoop},
		{"rdtsc", rdtscLoop},
		{"jmp_next", jmpNextLoop},
		{"call_ret", callRetLoop},
		{"pushf_pop", pushfPopLoop},
	}
	for _, x := range all {
		v := perInsn(x.f)
		report("insn_"+x.name, v*1000, "ps")
		if load > 0 {
			report("insn_"+x.name+"_ratio", v/load, "x")
		}
	}
}
