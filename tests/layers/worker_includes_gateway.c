/*  tests/layers/worker_includes_gateway.c — must not compile: no process
    includes another process's headers (DESIGN §6). */
#include "sb_worker.h"
#include "sb_session.h"

int main (void) { return 0; }
