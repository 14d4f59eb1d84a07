// The instruction loops of insn.go, the same as the kernel's bench=insn
// (kernel/src/bin/benchkernel/insn.rs): each repeats one instruction (or
// pair) 8 times per iteration.
//
//	func xLoop(n int, p *uint64)    n iterations; p is the memory operand

#include "textflag.h"

#define REP8(b) b; b; b; b; b; b; b; b

// One loop function: CX counts the iterations, SI points at the operand,
// AX is the register operand.
#define INSN_LOOP(sym, body) \
	TEXT sym(SB), NOSPLIT, $0-16; \
	MOVQ n+0(FP), CX; \
	MOVQ p+8(FP), SI; \
	MOVQ $1, AX; \
loop: \
	REP8(body); \
	DECQ CX; \
	JNZ loop; \
	RET

#define NOTHING
#define ADD ADDQ $1, AX
#define LOAD MOVQ (SI), AX
#define STORE MOVQ AX, (SI)
#define XADD LOCK; XADDQ AX, (SI)
#define XCHG XCHGQ AX, (SI)
#define CMPXCHG LOCK; CMPXCHGQ CX, (SI)
#define CALL_RET CALL retOnly<>(SB)
#define PUSHF_POP PUSHFQ; POPQ AX

// The target of callRetLoop: returns at once.
TEXT retOnly<>(SB), NOSPLIT|NOFRAME, $0-0
	RET

INSN_LOOP(·emptyLoop, NOTHING)
INSN_LOOP(·addLoop, ADD)
INSN_LOOP(·movLoadLoop, LOAD)
INSN_LOOP(·movStoreLoop, STORE)
INSN_LOOP(·lockXaddLoop, XADD)
INSN_LOOP(·xchgLoop, XCHG)
INSN_LOOP(·lockCmpxchgLoop, CMPXCHG)
INSN_LOOP(·mfenceLoop, MFENCE)
INSN_LOOP(·pauseLoop, PAUSE)
INSN_LOOP(·rdtscLoop, RDTSC)
INSN_LOOP(·callRetLoop, CALL_RET)
INSN_LOOP(·pushfPopLoop, PUSHF_POP)

// A taken jump to the next instruction: eight labels, so written out.
TEXT ·jmpNextLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
loop:
	JMP next1
next1:
	JMP next2
next2:
	JMP next3
next3:
	JMP next4
next4:
	JMP next5
next5:
	JMP next6
next6:
	JMP next7
next7:
	JMP next8
next8:
	DECQ CX
	JNZ loop
	RET
