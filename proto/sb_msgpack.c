/*  proto/sb_msgpack.c — allocation-free msgpack bounds walker. See the header. */
#include "sb_msgpack.h"

//  Reads a big-endian unsigned of `width` bytes at data[*pos].
static int
s_read_be (const uint8_t *data, size_t size, size_t *pos, int width, uint64_t *out)
{
    if ((size_t) width > size - *pos)
        return -1;
    uint64_t value = 0;
    for (int i = 0; i < width; i++)
        value = (value << 8) | data [*pos + (size_t) i];
    *pos += (size_t) width;
    *out = value;
    return 0;
}

//  Skips `len` bytes of body; fails if they are not all there.
static int
s_skip (size_t size, size_t *pos, uint64_t len)
{
    if (len > size - *pos)
        return -1;
    *pos += (size_t) len;
    return 0;
}

int
sb_msgpack_check (const uint8_t *data, size_t size)
{
    if (!data || size == 0)
        return -1;
    size_t pos = 0;
    uint64_t pending = 1;           //  objects still to read
    while (pending) {
        if (pos >= size)
            return -1;
        pending--;
        uint8_t type = data [pos++];
        uint64_t len = 0;           //  body bytes to skip
        uint64_t elements = 0;      //  child objects to read
        int rc = 0;
        if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3)
            ;                                               //  fixint, nil, bool
        else if (type >= 0x80 && type <= 0x8f)
            elements = 2u * (type & 0x0f);                  //  fixmap
        else if (type >= 0x90 && type <= 0x9f)
            elements = type & 0x0f;                         //  fixarray
        else if (type >= 0xa0 && type <= 0xbf)
            len = type & 0x1f;                              //  fixstr
        else switch (type) {
            case 0xc4: case 0xd9: rc = s_read_be (data, size, &pos, 1, &len); break;  //  bin8 str8
            case 0xc5: case 0xda: rc = s_read_be (data, size, &pos, 2, &len); break;  //  bin16 str16
            case 0xc6: case 0xdb: rc = s_read_be (data, size, &pos, 4, &len); break;  //  bin32 str32
            case 0xc7: rc = s_read_be (data, size, &pos, 1, &len); len += 1; break;   //  ext8 (+type)
            case 0xc8: rc = s_read_be (data, size, &pos, 2, &len); len += 1; break;   //  ext16
            case 0xc9: rc = s_read_be (data, size, &pos, 4, &len); len += 1; break;   //  ext32
            case 0xca: len = 4; break;                      //  float32
            case 0xcb: len = 8; break;                      //  float64
            case 0xcc: case 0xd0: len = 1; break;           //  (u)int8
            case 0xcd: case 0xd1: len = 2; break;           //  (u)int16
            case 0xce: case 0xd2: len = 4; break;           //  (u)int32
            case 0xcf: case 0xd3: len = 8; break;           //  (u)int64
            case 0xd4: len = 2; break;                      //  fixext1
            case 0xd5: len = 3; break;                      //  fixext2
            case 0xd6: len = 5; break;                      //  fixext4
            case 0xd7: len = 9; break;                      //  fixext8
            case 0xd8: len = 17; break;                     //  fixext16
            case 0xdc: rc = s_read_be (data, size, &pos, 2, &elements); break;       //  array16
            case 0xdd: rc = s_read_be (data, size, &pos, 4, &elements); break;       //  array32
            case 0xde: rc = s_read_be (data, size, &pos, 2, &elements); elements *= 2; break;
            case 0xdf: rc = s_read_be (data, size, &pos, 4, &elements); elements *= 2; break;
            default:   return -1;                           //  0xc1: never used
        }
        if (rc || s_skip (size, &pos, len))
            return -1;
        //  Every object takes at least one byte: more pending objects than
        //  bytes left can never be satisfied.
        if (elements > size - pos || pending + elements > size - pos)
            return -1;
        pending += elements;
    }
    return pos == size ? 0 : -1;
}

bool
sb_msgpack_ident_valid (const char *text, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text [i] < 0x21 || (unsigned char) text [i] > 0x7e)
            return false;
    return true;
}
