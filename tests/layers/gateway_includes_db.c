/*  tests/layers/gateway_includes_db.c — must not compile: the gateway holds
    no database connection and cannot see db/ (DESIGN §6). */
#include "sb_gateway.h"
#include "sb_db.h"

int main (void) { return 0; }
