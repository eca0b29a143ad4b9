/* fuzz_npy.c: libFuzzer target for the .npy reader (tir_tensor_load_npy). Any bytes are written
 * to a file (the reader takes a path) and loaded: the answer must be TIR_ERR_IO with a message
 * or a tensor whose byte count matches its shape, never a crash or a leak. A tensor that loads is
 * saved and loaded again and must come back byte for byte. Built by the TIR_FUZZERS block of
 * CMakeLists.txt; run by scripts/fuzz.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64], path2[64];

static void remove_files(void) {
    remove(path);
    remove(path2);
}

static void make_paths(void) {
    if (path[0]) return;
    snprintf(path, sizeof path, "/tmp/tir_fuzz_npy.%d.npy", (int)getpid());
    snprintf(path2, sizeof path2, "/tmp/tir_fuzz_npy.%d.out.npy", (int)getpid());
    atexit(remove_files);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    make_paths();
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    tir_tensor *t = NULL;
    tir_diag d;
    tir_status s = tir_tensor_load_npy(path, &t, &d);
    if (s != TIR_OK) {
        if (t || !d.msg[0]) abort();
        return 0;
    }
    if (!t) abort();
    /* the tensor is what the header says: its bytes fit in the file */
    size_t nbytes = tir_tensor_nbytes(t);
    int64_t n = tir_tensor_numel(t);
    if (nbytes > size || (size_t)n * tir_dtype_size(tir_tensor_dtype(t)) != nbytes) abort();
    for (int64_t i = 0; i < n && i < 64; i++) (void)tir_tensor_get(t, i);
    if (tir_tensor_save_npy(t, path2, &d) == TIR_OK) {
        tir_tensor *u = NULL;
        if (tir_tensor_load_npy(path2, &u, &d) != TIR_OK) {
            fprintf(stderr, "a saved tensor does not load: %s\n", d.msg);
            abort();
        }
        if (tir_tensor_dtype(u) != tir_tensor_dtype(t) || tir_tensor_rank(u) != tir_tensor_rank(t) ||
            tir_tensor_nbytes(u) != nbytes ||
            (nbytes && memcmp(tir_tensor_data(u), tir_tensor_data(t), nbytes) != 0))
            abort();
        for (int i = 0; i < tir_tensor_rank(t); i++)
            if (tir_tensor_dim(u, i) != tir_tensor_dim(t, i)) abort();
        tir_tensor_free(u);
    }
    tir_tensor_free(t);
    return 0;
}
