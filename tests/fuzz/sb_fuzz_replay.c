/*  tests/fuzz/sb_fuzz_replay.c — a plain main for every fuzz target, so the
    seed corpora replay under ctest with gcc (no libFuzzer needed):

        fuzz_proto_msg <corpus-dir-or-file>…

    Each file is fed once to LLVMFuzzerTestOneInput. With clang, build the
    target with -fsanitize=fuzzer instead and leave this file out. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sb_fuzz.h"

#define SB_MAX_FUZZ_INPUT (8u << 20)    /* largest corpus file replayed, bytes */

static int
s_replay_file (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "cannot open %s\n", path);
        return -1;
    }
    uint8_t *data = malloc (SB_MAX_FUZZ_INPUT);
    size_t size = data ? fread (data, 1, SB_MAX_FUZZ_INPUT, file) : 0;
    fclose (file);
    if (!data)
        return -1;
    LLVMFuzzerTestOneInput (data, size);
    free (data);
    return 0;
}

int
main (int argc, char **argv)
{
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat (argv [i], &st)) {
            fprintf (stderr, "no such corpus: %s\n", argv [i]);
            return 1;
        }
        if (!S_ISDIR (st.st_mode)) {
            failed += s_replay_file (argv [i]) != 0;
            files++;
            continue;
        }
        DIR *dir = opendir (argv [i]);
        struct dirent *entry;
        while (dir && (entry = readdir (dir))) {
            if (entry->d_name [0] == '.')
                continue;
            char path [4096];
            snprintf (path, sizeof path, "%s/%s", argv [i], entry->d_name);
            failed += s_replay_file (path) != 0;
            files++;
        }
        if (dir)
            closedir (dir);
    }
    printf ("replayed %d corpus files, %d unreadable\n", files, failed);
    //  An empty corpus is a broken test, not a pass.
    return (files == 0 || failed) ? 1 : 0;
}
