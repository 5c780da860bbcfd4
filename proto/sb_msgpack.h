/*  proto/sb_msgpack.h — a bounds pre-check for msgpack bytes from the network.

    msgpack-c's unpacker allocates room for a container's declared element
    count before reading the elements, so a 5-byte "array of 4 billion"
    costs gigabytes. sb_msgpack_check walks the bytes first, without
    allocating, and accepts them only if they hold exactly one object whose
    every length and count fits in the bytes that remain. Every decoder in
    proto/ calls it before msgpack_unpack_next. The decoders and encoders
    also share here the one check of an identifier on the wire. */
#ifndef SB_MSGPACK_H_INCLUDED
#define SB_MSGPACK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Returns 0 when `data` is exactly one complete msgpack object with sane
    lengths, -1 otherwise (truncated, trailing bytes, reserved type byte,
    or a count larger than the bytes left). */
int sb_msgpack_check (const uint8_t *data, size_t size) __attribute__ ((warn_unused_result));


/*  True when `text` (`len` bytes, no terminator needed) is an identifier
    of the wire: 1..`max` bytes, each printable ASCII but space (correlation
    IDs, services, tenants, topics, task IDs: they go into logs, metric
    labels and JSON as they are). */
bool sb_msgpack_ident_valid (const char *text, size_t len, size_t max);
#endif
