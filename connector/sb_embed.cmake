# connector/sb_embed.cmake — run at build time (cmake -P): turns
# connectors/connector.schema.json into a C source holding its bytes, so the
# loader checks definitions against exactly the file in the tree.
#   -DINPUT=<the schema file> -DOUTPUT=<the .c to write>
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
"/*  Generated at build time from connectors/connector.schema.json by
    connector/sb_embed.cmake: do not edit. */
#include <stddef.h>

const char sb_connector_schema_text [] = {
    ${bytes}0x00
};
const size_t sb_connector_schema_size = ${size};
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
