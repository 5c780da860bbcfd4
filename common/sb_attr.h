/*  common/sb_attr.h — what the build's discipline needs from the code
    (the warning flags in the top-level CMakeLists.txt): the attribute that
    makes ignoring a result an error, and the one sanctioned way to drop a
    const. Header only. proto/ links nothing of common/, so its headers
    spell SB_MUST_USE out as __attribute__ ((warn_unused_result)). */
#ifndef SB_ATTR_H_INCLUDED
#define SB_ATTR_H_INCLUDED

#include <stdint.h>

/*  On a function whose result must not be ignored: an error code the
    caller has to act on, or a new object that leaks when dropped. A call
    that really means to ignore it says so:
        (void) !f ();    //  why ignoring it is right here
    (gcc does not accept a plain (void) cast for this attribute). */
#define SB_MUST_USE     __attribute__ ((warn_unused_result))

/*  `pointer` without its const, for C APIs that take a non-const pointer
    to something they only read, keep for the caller, or reference-count:
    jansson's iteration and reference counting (json_object_iter,
    json_incref, json_pack "O"), czmq's containers and actors (void *item,
    void *args, handed back as given), execv's argv, and sb_job_t used as
    a borrowed view for sb_job_encode (its strings are owned only when
    sb_job_decode fills it). Nothing may write through the result. Going
    through uintptr_t is the only cast -Wcast-qual lets pass: grep
    sb_unconst to find every such place. */
static inline void *
sb_unconst (const void *pointer)
{
    return (void *) (uintptr_t) pointer;
}

#endif
