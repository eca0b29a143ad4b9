/* diag.c: diagnostics: fill a tir_diag with a message and, where there is source text,
 * file:line:col and the offending line; print them as `file:line:col: error: msg` + caret. */
#include <stdio.h>

#include "ir.h"

const char *tir_status_name(tir_status s) {
    static const char *names[] = {
        "ok", "parse error", "type error", "invalid argument", "i/o error", "no CUDA driver",
        "CUDA error", "LLVM error", "out of memory", "unsupported", "internal error",
    };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown status";
}

void tir_free(void *p) { free(p); }

static void copy_line(char *dst, size_t n, const char *src, int line) {
    dst[0] = 0;
    if (!src || line <= 0) return;
    const char *p = src;
    for (int l = 1; l < line && *p; p++)
        if (*p == '\n') l++;
    size_t i = 0;
    while (p[i] && p[i] != '\n' && i + 1 < n) {
        /* keep the caret aligned: a tab prints as one space, other control bytes as '?' */
        unsigned char ch = (unsigned char)p[i];
        dst[i] = ch == '\t' ? ' ' : (ch < 32 || ch == 127) ? '?' : (char)ch;
        i++;
    }
    dst[i] = 0;
}

static tir_status vset(tir_diag *d, tir_status s, const char *file, const char *src, tir_loc loc,
                       const char *fmt, va_list ap) {
    if (!d) return s;
    memset(d, 0, sizeof *d);
    d->status = s;
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    if (file) snprintf(d->file, sizeof d->file, "%s", file);
    if (loc.line > 0) {
        d->line = loc.line;
        d->col = loc.col;
        copy_line(d->source_line, sizeof d->source_line, src, loc.line);
    }
    return s;
}

tir_status tir_diag_vset(tir_diag *d, tir_status s, const tir_module *m, tir_loc loc,
                         const char *fmt, va_list ap) {
    return vset(d, s, m ? m->filename : NULL, m ? m->source : NULL, loc, fmt, ap);
}

tir_status tir_diag_set(tir_diag *d, tir_status s, const tir_module *m, tir_loc loc,
                        const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tir_diag_vset(d, s, m, loc, fmt, ap);
    va_end(ap);
    return s;
}

tir_status tir_diag_set_src(tir_diag *d, tir_status s, const char *file, const char *src,
                            tir_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vset(d, s, file, src, loc, fmt, ap);
    va_end(ap);
    return s;
}

void tir_diag_print(const tir_diag *d, FILE *out) {
    if (!d || !out) return;
    if (d->file[0] && d->line > 0)
        fprintf(out, "%s:%d:%d: error: %s\n", d->file, d->line, d->col, d->msg);
    else if (d->file[0])
        fprintf(out, "%s: error: %s\n", d->file, d->msg);
    else
        fprintf(out, "error: %s\n", d->msg);
    if (d->source_line[0] && d->line > 0) {
        fprintf(out, "  %s\n  ", d->source_line);
        for (int i = 1; i < d->col && i < (int)sizeof d->source_line; i++) fputc(' ', out);
        fputs("^\n", out);
    }
}
