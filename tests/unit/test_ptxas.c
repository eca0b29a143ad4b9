/* test_ptxas.c: every kernel of tests/unit/codegen_cases.h, emitted for sm_90a and sm_80, must
 * assemble with NVIDIA's ptxas for that arch (DESIGN §6.5: PTX is validated with no GPU).
 * ptxas is looked up on PATH, then as /usr/local/cuda/bin/ptxas; without it the test fails,
 * unless TIR_ALLOW_NO_PTXAS=1.
 *
 * Speed: kernels are pasted into a few PTX files (one header each; codegen names its shared
 * arrays after the kernel, so entries do not clash) and the files of one arch are assembled by
 * two ptxas processes at a time. When a file fails, its kernels are assembled one by one so that
 * the report names the kernel. */
#include <check.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen.h"
#include "codegen_cases.h"
#include "testutil.h"

#define CHUNK 60 /* kernels per file */

static char ptxas[4096];
static char tmpdir[256];


typedef struct kptx {
    char name[64];
    char what[160]; /* case and op, for the report */
    char *ptx;
} kptx;

/* the lines of a module after its header (.version, .target, .address_size) */
static const char *body_of(const char *ptx) {
    const char *p = strstr(ptx, ".address_size");
    if (!p) return ptx;
    p = strchr(p, '\n');
    return p ? p + 1 : ptx;
}

static bool write_file(const char *path, kptx *ks, int n) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    const char *first = ks[0].ptx;
    fwrite(first, 1, (size_t)(body_of(first) - first), f); /* the header, once */
    for (int i = 0; i < n; i++) fputs(body_of(ks[i].ptx), f);
    return fclose(f) == 0;
}

/* starts ptxas on path; its output goes to path.log */
static pid_t start(const char *arch, const char *path) {
    char log[512];
    snprintf(log, sizeof log, "%s.log", path);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *l = freopen(log, "w", stdout);
        if (!l || dup2(fileno(stdout), 2) < 0) _exit(127);
        char a[64];
        snprintf(a, sizeof a, "-arch=%s", arch);
        execl(ptxas, ptxas, a, "-o", "/dev/null", path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int finish(pid_t pid) {
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void show_log(const char *path) {
    char log[512];
    snprintf(log, sizeof log, "%s.log", path);
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[512];
    for (int i = 0; i < 20 && fgets(line, sizeof line, f); i++) fprintf(stderr, "    %s", line);
    fclose(f);
}

/* assembles ks[0..n) in chunks; returns the number of failing kernels */
static int assemble(const char *arch, kptx *ks, int n) {
    int nchunks = (n + CHUNK - 1) / CHUNK, bad = 0;
    char (*paths)[300] = calloc((size_t)nchunks, sizeof *paths);
    int *rc = calloc((size_t)nchunks, sizeof *rc);
    ck_assert(paths && rc);
    for (int c = 0; c < nchunks; c++) {
        snprintf(paths[c], sizeof paths[c], "%s/%s_%03d.ptx", tmpdir, arch, c);
        int m = n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK;
        ck_assert_msg(write_file(paths[c], ks + c * CHUNK, m), "cannot write %s", paths[c]);
    }
    for (int c = 0; c < nchunks; c += 2) { /* two at a time: CI has two cores */
        pid_t p0 = start(arch, paths[c]);
        pid_t p1 = c + 1 < nchunks ? start(arch, paths[c + 1]) : -1;
        rc[c] = finish(p0);
        if (c + 1 < nchunks) rc[c + 1] = finish(p1);
    }
    for (int c = 0; c < nchunks; c++) {
        if (rc[c] == 0) continue;
        int m = n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK;
        fprintf(stderr, "ptxas -arch=%s failed (%d) on %s; kernel by kernel:\n", arch, rc[c], paths[c]);
        for (int i = 0; i < m; i++) {
            kptx *k = &ks[c * CHUNK + i];
            char one[400];
            snprintf(one, sizeof one, "%s/%s_%s.ptx", tmpdir, arch, k->name);
            ck_assert(write_file(one, k, 1));
            if (finish(start(arch, one)) != 0) {
                bad++;
                fprintf(stderr, "  %s (%s): %s\n", k->name, k->what, one);
                show_log(one);
            }
        }
        if (bad == 0) show_log(paths[c]); /* only the pasted file fails: a clash */
        if (bad == 0) bad = 1;
    }
    free(paths);
    free(rc);
    return bad;
}

static void run_arch(const char *arch) {
    cgc c;
    cgc_build(&c);
    ck_assert_msg(c.failed == 0, "building cases: %s", c.err);
    int cap = 0, n = 0, id = 0;
    kptx *ks = NULL;
    tir_codegen_options o = {arch, 2};
    for (int fi = 0; fi < c.m->nfuncs; fi++) {
        tir_func *f = c.m->funcs[fi];
        for (int oi = 0; oi < f->nops; oi++) {
            tir_kernel k;
            tir_diag d;
            tir_status s = tir_codegen_op(c.ctx, f->ops[oi], id++, &o, &k, &d);
            ck_assert_msg(s == TIR_OK, "%s op %d: %s", f->name, oi, d.msg);
            if (!k.ptx) continue; /* an alias */
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                ks = realloc(ks, sizeof *ks * (size_t)cap);
                ck_assert_ptr_nonnull(ks);
            }
            snprintf(ks[n].name, sizeof ks[n].name, "%s", k.name);
            snprintf(ks[n].what, sizeof ks[n].what, "%s, op %d %s", f->name, oi, tir_ops[f->ops[oi]->code].name);
            ks[n].ptx = k.ptx; /* taken over */
            k.ptx = NULL;
            tir_kernel_release(&k);
            n++;
        }
    }
    cgc_free(&c);
    int bad = assemble(arch, ks, n);
    for (int i = 0; i < n; i++) free(ks[i].ptx);
    free(ks);
    ck_assert_msg(bad == 0, "%d of %d kernels do not assemble for %s (see stderr)", bad, n, arch);
    fprintf(stderr, "ptxas -arch=%s: %d kernels assemble\n", arch, n);
}

static bool have_ptxas;

START_TEST(ptxas_sm90a) {
    if (!have_ptxas) return;
    run_arch("sm_90a");
}
END_TEST

START_TEST(ptxas_sm80) {
    if (!have_ptxas) return;
    run_arch("sm_80");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("ptxas");
    TCase *t = tcase_create("assemble");
    tcase_set_timeout(t, 800);
    tcase_add_test(t, ptxas_sm90a);
    tcase_add_test(t, ptxas_sm80);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    have_ptxas = tu_find_ptxas(ptxas, sizeof ptxas);
    if (!have_ptxas) {
        const char *allow = getenv("TIR_ALLOW_NO_PTXAS");
        if (allow && strcmp(allow, "1") == 0) {
            fprintf(stderr, "test_ptxas: no ptxas on PATH or in /usr/local/cuda/bin; skipped "
                            "(TIR_ALLOW_NO_PTXAS=1)\n");
            return 0;
        }
        fprintf(stderr, "test_ptxas: FAIL: no ptxas on PATH or in /usr/local/cuda/bin (install the "
                        "CUDA toolkit, or set TIR_ALLOW_NO_PTXAS=1 to skip)\n");
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tir_ptxas_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    if (failed == 0) { /* keep the files of a failure for inspection */
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    } else {
        fprintf(stderr, "PTX files kept in %s\n", tmpdir);
    }
    return failed ? 1 : 0;
}
