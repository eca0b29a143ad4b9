/* fuzz_parse.c: libFuzzer target for the .tir frontend (DESIGN §6.6). Any bytes go to the parser
 * (through the length-taking entry, so NUL bytes are diagnosed rather than truncating the text);
 * the answer must be a diagnostic or a module, never a crash, a hang or a leak. A module that
 * parses must print, the printout must parse again, and printing that must give the same text
 * (the printer's canonical form is a fixed point). Built by the TIR_FUZZERS block of
 * CMakeLists.txt; run by scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "tir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0; /* big inputs only slow the search down */
    tir_context *ctx = tir_context_create();
    if (!ctx) return 0;
    tir_module *m = NULL;
    tir_diag d;
    tir_status s = tir_frontend_parse(ctx, (const char *)data, size, "fuzz.tir", &m, &d);
    if (s != TIR_OK) {
        /* a diagnostic must be a proper one: a status and a message */
        if (m || d.status == TIR_OK || !d.msg[0]) abort();
        tir_context_destroy(ctx);
        return 0;
    }
    char *t1 = tir_module_print(m);
    if (!t1) abort();
    tir_module *m2 = NULL;
    if (tir_module_parse(ctx, t1, "printed.tir", &m2, &d) != TIR_OK) {
        fprintf(stderr, "the printed module does not parse: %d:%d: %s\n%s", d.line, d.col, d.msg, t1);
        abort();
    }
    char *t2 = tir_module_print(m2);
    if (!t2 || strcmp(t1, t2) != 0) {
        fprintf(stderr, "print(parse(print(m))) != print(m):\n%s\n----\n%s", t1, t2 ? t2 : "(null)");
        abort();
    }
    tir_free(t2);
    tir_free(t1);
    tir_module_free(m2);
    tir_module_free(m);
    tir_context_destroy(ctx);
    return 0;
}
