// The instruction loops of insn.go: each repeats one instruction (or pair) 8 times per
// iteration, as the kernel's bench=insn does (kernel/src/bin/benchkernel/insn.rs).
// func xLoop(n int, p *uint64): n iterations; p is the memory operand.

#include "textflag.h"

// The target of callRetLoop: returns at once.
TEXT retOnly<>(SB), NOSPLIT|NOFRAME, $0-0
	RET

TEXT ·emptyLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	DECQ CX
	JNZ loop
	RET

TEXT ·addLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	ADDQ $1, AX
	DECQ CX
	JNZ loop
	RET

TEXT ·movLoadLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	MOVQ (SI), AX
	MOVQ (SI), AX
	MOVQ (SI), AX
	MOVQ (SI), AX
	MOVQ (SI), AX
	MOVQ (SI), AX
	MOVQ (SI), AX
	MOVQ (SI), AX
	DECQ CX
	JNZ loop
	RET

TEXT ·movStoreLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	MOVQ AX, (SI)
	MOVQ AX, (SI)
	MOVQ AX, (SI)
	MOVQ AX, (SI)
	MOVQ AX, (SI)
	MOVQ AX, (SI)
	MOVQ AX, (SI)
	MOVQ AX, (SI)
	DECQ CX
	JNZ loop
	RET

TEXT ·lockXaddLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	LOCK; XADDQ AX, (SI)
	LOCK; XADDQ AX, (SI)
	LOCK; XADDQ AX, (SI)
	LOCK; XADDQ AX, (SI)
	LOCK; XADDQ AX, (SI)
	LOCK; XADDQ AX, (SI)
	LOCK; XADDQ AX, (SI)
	LOCK; XADDQ AX, (SI)
	DECQ CX
	JNZ loop
	RET

TEXT ·xchgLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	XCHGQ AX, (SI)
	XCHGQ AX, (SI)
	XCHGQ AX, (SI)
	XCHGQ AX, (SI)
	XCHGQ AX, (SI)
	XCHGQ AX, (SI)
	XCHGQ AX, (SI)
	XCHGQ AX, (SI)
	DECQ CX
	JNZ loop
	RET

TEXT ·lockCmpxchgLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	LOCK; CMPXCHGQ CX, (SI)
	LOCK; CMPXCHGQ CX, (SI)
	LOCK; CMPXCHGQ CX, (SI)
	LOCK; CMPXCHGQ CX, (SI)
	LOCK; CMPXCHGQ CX, (SI)
	LOCK; CMPXCHGQ CX, (SI)
	LOCK; CMPXCHGQ CX, (SI)
	LOCK; CMPXCHGQ CX, (SI)
	DECQ CX
	JNZ loop
	RET

TEXT ·mfenceLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	MFENCE
	MFENCE
	MFENCE
	MFENCE
	MFENCE
	MFENCE
	MFENCE
	MFENCE
	DECQ CX
	JNZ loop
	RET

TEXT ·pauseLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	PAUSE
	PAUSE
	PAUSE
	PAUSE
	PAUSE
	PAUSE
	PAUSE
	PAUSE
	DECQ CX
	JNZ loop
	RET

TEXT ·rdtscLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	RDTSC
	RDTSC
	RDTSC
	RDTSC
	RDTSC
	RDTSC
	RDTSC
	RDTSC
	DECQ CX
	JNZ loop
	RET

TEXT ·jmpNextLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	JMP next0
next0:
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
	DECQ CX
	JNZ loop
	RET

TEXT ·callRetLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	CALL retOnly<>(SB)
	CALL retOnly<>(SB)
	CALL retOnly<>(SB)
	CALL retOnly<>(SB)
	CALL retOnly<>(SB)
	CALL retOnly<>(SB)
	CALL retOnly<>(SB)
	CALL retOnly<>(SB)
	DECQ CX
	JNZ loop
	RET

TEXT ·pushfPopLoop(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ $1, AX
loop:
	PUSHFQ
	POPQ AX
	PUSHFQ
	POPQ AX
	PUSHFQ
	POPQ AX
	PUSHFQ
	POPQ AX
	PUSHFQ
	POPQ AX
	PUSHFQ
	POPQ AX
	PUSHFQ
	POPQ AX
	PUSHFQ
	POPQ AX
	DECQ CX
	JNZ loop
	RET
