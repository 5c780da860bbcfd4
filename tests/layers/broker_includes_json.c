/*  tests/layers/broker_includes_json.c — must not compile: the broker does
    not link sb_json, so its headers are not on the broker's include path
    (DESIGN §6; the test 12_layers_include expects this to fail). */
#include "sb_broker.h"
#include "sb_json.h"

int main (void) { return 0; }
