/*  tests/fuzz/sb_fuzz.h — the entry point every fuzz target defines: called
    by libFuzzer (-DSB_FUZZ=ON) or by tests/fuzz/sb_fuzz_replay.c once per
    corpus file. Returns 0 (libFuzzer's "keep going"); a broken invariant
    aborts instead. */
#ifndef SB_FUZZ_H_INCLUDED
#define SB_FUZZ_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#endif
