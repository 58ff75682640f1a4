#pragma once
// Run-time choice of instruction set for the hot CPU loops (augmentation kernels).
//
// Debian's compiler and LibTorch target baseline x86-64 (SSE2), so a loop the compiler
// vectorises runs 4 floats wide and without FMA even on CPUs with AVX2. MLSEG_CPU_CLONES on a
// function's definition makes GCC compile it twice, for baseline x86-64 and for x86-64-v3 (AVX2,
// FMA, BMI2), and the dynamic loader picks the clone the running CPU supports (GCC's
// target_clones, an ifunc). Functions inlined into a cloned function are compiled with it; mark
// helpers that must be inlined MLSEG_ALWAYS_INLINE. Elsewhere (other compilers, other
// architectures) the macro is empty and the function is compiled once, for the build's target.
//
// The clones round differently (FMA contracts a * b + c), so results may differ in the last bit
// between CPUs; on one machine they are deterministic.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 12
#define MLSEG_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MLSEG_CPU_CLONES
#endif

#if defined(__GNUC__)
#define MLSEG_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MLSEG_ALWAYS_INLINE inline
#endif
