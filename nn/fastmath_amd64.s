#include "textflag.h"

// Vectorised float32 tanh and sigmoid (AVX2 + FMA), 8 lanes at a time: the rational
// approximation of fastmath.go, the same coefficients in the same order of operations (the
// multiply-adds are fused here, so results may differ from the Go code in the last bit).

DATA tanhc<>+0(SB)/4, $7.90531110763549805
DATA tanhc<>+4(SB)/4, $-7.90531110763549805
DATA tanhc<>+8(SB)/4, $-2.76076847742355e-16
DATA tanhc<>+12(SB)/4, $2.00018790482477e-13
DATA tanhc<>+16(SB)/4, $-8.60467152213735e-11
DATA tanhc<>+20(SB)/4, $5.12229709037114e-08
DATA tanhc<>+24(SB)/4, $1.48572235717979e-05
DATA tanhc<>+28(SB)/4, $6.37261928875436e-04
DATA tanhc<>+32(SB)/4, $4.89352455891786e-03
DATA tanhc<>+36(SB)/4, $1.19825839466702e-06
DATA tanhc<>+40(SB)/4, $1.18534705686654e-04
DATA tanhc<>+44(SB)/4, $2.26843463243900e-03
DATA tanhc<>+48(SB)/4, $4.89352518554385e-03
DATA tanhc<>+52(SB)/4, $0.5
GLOBL tanhc<>(SB), RODATA|NOPTR, $56

// LOADC broadcasts the constants into Y3..Y15.
#define LOADC \
	VBROADCASTSS tanhc<>+0(SB), Y15 \
	VBROADCASTSS tanhc<>+4(SB), Y14 \
	VBROADCASTSS tanhc<>+8(SB), Y13 \
	VBROADCASTSS tanhc<>+12(SB), Y12 \
	VBROADCASTSS tanhc<>+16(SB), Y11 \
	VBROADCASTSS tanhc<>+20(SB), Y10 \
	VBROADCASTSS tanhc<>+24(SB), Y9 \
	VBROADCASTSS tanhc<>+28(SB), Y8 \
	VBROADCASTSS tanhc<>+32(SB), Y7 \
	VBROADCASTSS tanhc<>+36(SB), Y6 \
	VBROADCASTSS tanhc<>+40(SB), Y5 \
	VBROADCASTSS tanhc<>+44(SB), Y4 \
	VBROADCASTSS tanhc<>+48(SB), Y3

// TANH computes Y0 = tanh(Y0), using Y1, Y2 and the constants.
#define TANH \
	VMINPS Y15, Y0, Y0 \
	VMAXPS Y14, Y0, Y0 \
	VMULPS Y0, Y0, Y1 \
	VMOVAPS Y13, Y2 \
	VFMADD213PS Y12, Y1, Y2 \
	VFMADD213PS Y11, Y1, Y2 \
	VFMADD213PS Y10, Y1, Y2 \
	VFMADD213PS Y9, Y1, Y2 \
	VFMADD213PS Y8, Y1, Y2 \
	VFMADD213PS Y7, Y1, Y2 \
	VMULPS Y0, Y2, Y2 \
	VMOVAPS Y6, Y0 \
	VFMADD213PS Y5, Y1, Y0 \
	VFMADD213PS Y4, Y1, Y0 \
	VFMADD213PS Y3, Y1, Y0 \
	VDIVPS Y0, Y2, Y0

// func tanhAVX2(dst, src []float32)
// Processes len(src) &^ 7 elements; len(dst) >= len(src).
TEXT ·tanhAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $3, CX
	JZ   tdone
	LOADC
tloop:
	VMOVUPS (SI), Y0
	TANH
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  tloop
tdone:
	VZEROUPPER
	RET

// func sigmoidAVX2(dst, src []float32)
// sigmoid(x) = 0.5 + 0.5*tanh(x/2). Processes len(src) &^ 7 elements.
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $3, CX
	JZ   sdone
	LOADC
sloop:
	VBROADCASTSS tanhc<>+52(SB), Y1
	VMULPS (SI), Y1, Y0
	TANH
	VBROADCASTSS tanhc<>+52(SB), Y1
	VFMADD213PS Y1, Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  sloop
sdone:
	VZEROUPPER
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET
