/* exec_matmul.h: who executes a matmul step of a compiled program, tir's own kernel or cuBLASLt
 * (compiler/exec_matmul.c), and the cuBLASLt side of such a step. compile.c asks
 * tir_mm_step_new for every step it lowers; a step that is a matmul (a plain `matmul`, or a fused
 * region with schedule kind="matmul": a matmul of two region parameters and an elementwise
 * epilogue) gets a tir_mm_step, keeps its tir kernel as well (the fallback), and at every run asks
 * tir_mm_step_pick which executor runs it under that run's bindings.
 *
 * The choice itself (tir_mm_decide) is a pure function of the step's shape class, the options and
 * whether cuBLASLt loaded, so it is unit-tested without a GPU. The option parsing tirc's verbs
 * share (--matmul=tir|cublas|auto, --tf32) is here too. */
#ifndef TIR_EXEC_MATMUL_H
#define TIR_EXEC_MATMUL_H

#include "codegen.h"
#include "cublas.h"

typedef enum tir_mm_exec { TIR_MM_TIR = 0, TIR_MM_CUBLAS } tir_mm_exec;

/* What cuBLASLt would compute for one step, read from the IR (sizes symbolic). */
typedef struct tir_mm_site {
    bool region;              /* a kind="matmul" fused region (else a plain matmul) */
    bool lt_ok;               /* cuBLASLt can run the whole step; `why` says why not */
    char why[120];
    tir_dtype dtype;          /* of A, B, the output and the bias */
    bool ta, tb;
    int a, b, bias;           /* operand indexes of the step; bias -1 when none */
    double scale;             /* alpha: a constant the product is multiplied by (1: none) */
    tir_cublas_epilogue epi;  /* activation after the bias */
    char epi_text[40];        /* "+bias+gelu" for the choice string; "" for none */
    const tir_dim *M, *N, *K; /* of the matmul */
    int nbatch;               /* batch dims of the output */
    const tir_dim *batch[TIR_MAX_RANK];
    bool a_batched, b_batched; /* false: one matrix serves every batch (stride 0) */
} tir_mm_site;

/* Fills site when op is a matmul step (true), else returns false. `site->lt_ok` false (with the
 * reason) where cuBLASLt cannot express it: dtype, a batch broadcast no stride expresses, an
 * epilogue with no cuBLASLt form. */
bool tir_mm_analyze(const tir_op *op, tir_mm_site *site);

/* The sizes of one binding. */
typedef struct tir_mm_sizes {
    int64_t m, n, k, batch;
} tir_mm_sizes;

/* The model of speed behind `auto` (see exec_matmul.c's header). One table, so measurements
 * update it in one place. */
typedef struct tir_mm_model {
    const char *device;            /* what the numbers were measured on */
    double cublas_16;              /* TFLOP/s: cuBLASLt, bf16/f16, every leading dim 16-byte aligned */
    double cublas_16_ragged_tb;    /*   ... a leading dim not aligned, B transposed */
    double cublas_16_ragged;       /*   ... a leading dim not aligned, B not transposed */
    double tir_16;                 /* tir's tensor-core kernel, operands' rows 16-byte aligned */
    double tir_16_guarded;         /*   ... an operand's row not (guarded element copies) */
    double cublas_f32, cublas_tf32, tir_f32; /* f32: cuBLASLt in full f32, in TF32, tir's SIMT */
    double cublas_us, tir_us;      /* fixed cost per call (launch, host work), microseconds */
    double margin;                 /* cuBLAS must be this much faster (0.05: 5%) to be chosen */
} tir_mm_model;

extern const tir_mm_model tir_mm_model_default;

/* Modelled time of one call, in microseconds, for the site at these sizes. */
double tir_mm_model_us(const tir_mm_model *mdl, const tir_mm_site *s, const tir_mm_sizes *z,
                       tir_mm_exec who, bool allow_tf32);

/* The choice for a site: sizes NULL when they are not known yet (symbolic at compile time), and
 * then `auto` answers TIR_MM_CUBLAS with *per_binding set when the model needs the sizes.
 * lt_loaded false with lt_why when cuBLASLt could not be loaded (auto falls back to tir; cublas
 * too, but the caller reports it, see tir_mm_step_pick). why gets the reason in parentheses'
 * words: "auto: large aligned bf16". */
tir_mm_exec tir_mm_decide(const tir_mm_model *mdl, const tir_mm_site *s, const tir_mm_sizes *z,
                          tir_matmul_exec mode, bool allow_tf32, bool lt_loaded,
                          const char *lt_why, bool *per_binding, char *why, size_t n);

/* ---- a program's matmul step */

typedef struct tir_mm_step {
    tir_mm_site site;
    tir_matmul_exec mode;
    bool allow_tf32;
    char tir_desc[64];     /* what tir's kernel is: "tir wgmma 128x256x64 s4" */
    bool have_last;        /* the last binding's decision (cached while sizes repeat) */
    tir_mm_sizes last_sizes;
    tir_mm_exec last;
    bool compile_cublas;   /* decided at compile time (sizes constant, or matmul=cublas) for cuBLASLt */
    char choice[200];      /* the choice, as shown: compile-time until a run decides */
} tir_mm_step;

/* true when the step runs on cuBLASLt: the last run's choice, else the compile-time one (false
 * when that waits for a binding) */
bool tir_mm_step_on_cublas(const tir_mm_step *ms);

/* A step record for op (NULL when op is no matmul step; *err set only on OOM). kernel is the tir
 * kernel compile.c lowered for it (named in the choice string). */
tir_mm_step *tir_mm_step_new(const tir_op *op, const tir_kernel *kernel, const char *arch,
                             const tir_options *o, bool *err);
void tir_mm_step_free(tir_mm_step *ms);

/* The executor for this run's bindings (cached per sizes). lt is the program's cuBLASLt handle,
 * NULL when it could not be made (lt_why says why). With matmul=cublas and no cuBLASLt: 
 * TIR_ERR_UNSUPPORTED. Updates ms->choice. */
tir_status tir_mm_step_pick(tir_mm_step *ms, const tir_bindings *b, const tir_cublas *lt,
                            const char *lt_why, tir_mm_exec *out, tir_diag *d);

/* cuBLASLt found no algorithm for the step at these sizes (tir_mm_step_run said
 * TIR_ERR_UNSUPPORTED): tir's kernel runs it instead, for as long as the sizes repeat, and the
 * choice says why. */
void tir_mm_step_no_algo(tir_mm_step *ms, const char *why);

/* Enqueues the step on cuBLASLt: bufs[0..nin) the operands' buffers, bufs[nin] the output;
 * the workspace is taken from (and given back to) rt's caching allocator, stream-ordered. */
tir_status tir_mm_step_run(const tir_mm_step *ms, tir_cublas *lt, tir_rt *rt, void *stream,
                           const tir_bindings *b, int nin, const tir_dptr *bufs, tir_diag *d);

/* ---- tirc's options (shared by run, ptx, bench) */

/* Parses argv[*i] when it is --matmul=X, --matmul X or --tf32 into o (advancing *i past a
 * value). 1 consumed, 0 not one of these, -1 a bad value (message in err). */
int tir_mm_parse_option(int argc, char **argv, int *i, tir_options *o, char *err, size_t n);
/* the help lines for those options */
#define TIR_MM_OPTIONS_HELP                                                                       \
    "  --matmul=tir|cublas|auto  who runs each matmul: tir's own kernel, cuBLASLt wherever it\n" \
    "                   can, or by a model of speed per call site and binding (default auto)\n"  \
    "  --tf32           f32 matmuls on cuBLASLt may use TF32 tensor cores (default: full f32)\n"
const char *tir_matmul_exec_name(tir_matmul_exec e);

#endif
