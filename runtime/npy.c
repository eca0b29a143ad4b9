/* npy.c: NumPy .npy files <-> host tensors, so that tirc and host programs exchange data with
 * numpy and PyTorch without a Python dependency.
 *
 * Reads format versions 1.0, 2.0 and 3.0; writes 1.0 (2.0 only if the header outgrew 64 KiB).
 * dtypes: <f8 <f4 <f2 <i8 <i4 |i1 |u1 |b1 (little-endian or one byte, C order only).
 * bf16 and the f8 types have no numpy dtype: they are SAVED as <f4 with their values converted
 * (exact, every bf16/f8 value is an f32), and a <u2 file is rejected rather than guessed to be
 * bf16 bits; tirc converts an <f4 file back when the parameter is bf16/f8.
 *
 * The header is untrusted input (it is fuzzed): the parser works on (pointer, length), checks
 * every bound, accepts exactly the dict numpy writes (keys descr, fortran_order, shape in any
 * order) and allocates nothing until the shape is known to fit the bytes that follow it.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "npy.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host (tensor storage is written as '<' data)"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20) /* numpy itself refuses more than 10000 bytes by default */

/* ---------------------------------------------------------------- dtype names */

typedef struct npy_type {
    const char *code; /* without the byte-order character */
    tir_dtype dtype;
    size_t size;
} npy_type;

static const npy_type npy_types[] = {
    {"f8", TIR_F64, 8}, {"f4", TIR_F32, 4}, {"f2", TIR_F16, 2}, {"i8", TIR_I64, 8},
    {"i4", TIR_I32, 4}, {"i1", TIR_I8, 1},  {"u1", TIR_U8, 1},  {"b1", TIR_BOOL, 1},
};
#define NPY_NTYPES ((int)(sizeof npy_types / sizeof npy_types[0]))

static const npy_type *npy_type_of(tir_dtype t) {
    for (int i = 0; i < NPY_NTYPES; i++)
        if (npy_types[i].dtype == t) return &npy_types[i];
    return NULL;
}

/* ---------------------------------------------------------------- header parser */

typedef struct hp {
    const char *p, *e;
    const char *name;
    tir_diag *d;
} hp;

static tir_status io_err(tir_diag *d, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tir_status io_err(tir_diag *d, const char *name, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tir_diag_set_src(d, TIR_ERR_IO, NULL, NULL, (tir_loc){0, 0}, "%s: %s",
                            name ? name : "<npy>", msg);
}

/* a printable copy of untrusted bytes for a message */
static void printable(char *dst, size_t dn, const char *s, size_t n) {
    size_t i = 0, j = 0;
    for (; i < n && j + 4 < dn; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[j++] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    if (i < n) {
        dst[j++] = '.';
        dst[j++] = '.';
        dst[j++] = '.';
    }
    dst[j] = 0;
}

static tir_status malformed(hp *h, const char *what) {
    char near[40];
    printable(near, sizeof near, h->p, (size_t)(h->e - h->p) < 16 ? (size_t)(h->e - h->p) : 16);
    return io_err(h->d, h->name, "malformed .npy header: %s (at \"%s\")", what, near);
}

static void skip_ws(hp *h) {
    while (h->p < h->e && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static bool eat(hp *h, char c) {
    skip_ws(h);
    if (h->p < h->e && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* a Python string literal in ' or " quotes; *s, *n get its raw contents */
static bool parse_str(hp *h, const char **s, size_t *n) {
    skip_ws(h);
    if (h->p >= h->e || (*h->p != '\'' && *h->p != '"')) return false;
    char q = *h->p++;
    const char *start = h->p;
    while (h->p < h->e && *h->p != q) {
        if (*h->p == '\\') {
            if (h->e - h->p < 2) return false;
            h->p++;
        }
        h->p++;
    }
    if (h->p >= h->e) return false;
    *s = start;
    *n = (size_t)(h->p - start);
    h->p++;
    return true;
}

static bool word(hp *h, const char *w) {
    size_t n = strlen(w);
    skip_ws(h);
    if ((size_t)(h->e - h->p) < n || memcmp(h->p, w, n) != 0) return false;
    /* "Truex" is not True */
    if ((size_t)(h->e - h->p) > n) {
        char c = h->p[n];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            return false;
    }
    h->p += n;
    return true;
}

static tir_status parse_descr(hp *h, tir_npy_header *out) {
    const char *s;
    size_t n;
    skip_ws(h);
    if (h->p < h->e && *h->p == '[')
        return io_err(h->d, h->name, "structured dtypes are not supported");
    if (!parse_str(h, &s, &n)) return malformed(h, "'descr' must be a string");
    char shown[48];
    printable(shown, sizeof shown, s, n);
    if (n < 2) return io_err(h->d, h->name, "unsupported dtype '%s'", shown);
    char order = s[0];
    const char *code = s + 1;
    size_t cn = n - 1;
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        order = '=';
        code = s;
        cn = n;
    }
    const npy_type *t = NULL;
    for (int i = 0; i < NPY_NTYPES; i++)
        if (strlen(npy_types[i].code) == cn && memcmp(npy_types[i].code, code, cn) == 0)
            t = &npy_types[i];
    if (!t) {
        if (cn == 2 && memcmp(code, "u2", 2) == 0)
            return io_err(h->d, h->name,
                          "unsupported dtype '%s' (bf16 has no numpy dtype; tir saves bf16 as "
                          "<f4, so save float32 data)", shown);
        return io_err(h->d, h->name,
                      "unsupported dtype '%s' (supported: <f8 <f4 <f2 <i8 <i4 |i1 |u1 |b1)", shown);
    }
    if (order == '>' && t->size > 1)
        return io_err(h->d, h->name, "big-endian data ('%s') is not supported", shown);
    if (order == '|' && t->size > 1)
        return io_err(h->d, h->name, "unsupported dtype '%s' (multi-byte data needs '<')", shown);
    out->dtype = t->dtype;
    return TIR_OK;
}

static tir_status parse_shape(hp *h, tir_npy_header *out) {
    if (!eat(h, '(')) return malformed(h, "'shape' must be a tuple");
    int rank = 0;
    for (;;) {
        skip_ws(h);
        if (h->p < h->e && *h->p == ')') {
            h->p++;
            break;
        }
        if (h->p < h->e && *h->p == '-')
            return io_err(h->d, h->name, "shape has a negative dim");
        if (h->p >= h->e || *h->p < '0' || *h->p > '9')
            return malformed(h, "'shape' must hold non-negative integers");
        int64_t v = 0;
        while (h->p < h->e && *h->p >= '0' && *h->p <= '9') {
            int digit = *h->p - '0';
            if (v > (INT64_MAX - digit) / 10)
                return io_err(h->d, h->name, "shape dim is too large");
            v = v * 10 + digit;
            h->p++;
        }
        if (h->p < h->e && *h->p == 'L') h->p++; /* Python 2 longs, in old files */
        if (rank >= TIR_MAX_RANK)
            return io_err(h->d, h->name, "rank exceeds tir's maximum of %d", TIR_MAX_RANK);
        out->dims[rank++] = v;
        if (eat(h, ',')) continue;
        if (eat(h, ')')) break;
        return malformed(h, "expected ',' or ')' in 'shape'");
    }
    /* "(3)" is accepted as rank 1 although Python reads it as an int: numpy writes "(3,)" */
    out->rank = rank;
    return TIR_OK;
}

static tir_status parse_dict(hp *h, tir_npy_header *out) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    tir_status s;
    if (!eat(h, '{')) return malformed(h, "expected '{'");
    for (;;) {
        if (eat(h, '}')) break;
        const char *k;
        size_t kn;
        if (!parse_str(h, &k, &kn)) return malformed(h, "expected a quoted key");
        if (!eat(h, ':')) return malformed(h, "expected ':' after a key");
        bool *seen;
        if (kn == 5 && memcmp(k, "descr", 5) == 0) seen = &have_descr;
        else if (kn == 13 && memcmp(k, "fortran_order", 13) == 0) seen = &have_fortran;
        else if (kn == 5 && memcmp(k, "shape", 5) == 0) seen = &have_shape;
        else {
            char kk[40];
            printable(kk, sizeof kk, k, kn);
            return io_err(h->d, h->name, "malformed .npy header: unexpected key '%s'", kk);
        }
        if (*seen) return io_err(h->d, h->name, "malformed .npy header: a key appears twice");
        if (seen == &have_descr) {
            if ((s = parse_descr(h, out)) != TIR_OK) return s;
        } else if (seen == &have_shape) {
            if ((s = parse_shape(h, out)) != TIR_OK) return s;
        } else {
            if (word(h, "True"))
                return io_err(h->d, h->name,
                              "fortran_order=True is not supported (save a C-contiguous array)");
            if (!word(h, "False")) return malformed(h, "'fortran_order' must be True or False");
        }
        *seen = true;
        if (eat(h, ',')) continue;
        if (eat(h, '}')) break;
        return malformed(h, "expected ',' or '}'");
    }
    skip_ws(h);
    if (h->p != h->e) {
        /* numpy pads with spaces and one '\n'; tolerate NUL padding some writers use */
        for (const char *q = h->p; q < h->e; q++)
            if (*q != 0) return malformed(h, "unexpected text after the header dict");
    }
    if (!have_descr) return io_err(h->d, h->name, "malformed .npy header: no 'descr' key");
    if (!have_fortran) return io_err(h->d, h->name, "malformed .npy header: no 'fortran_order' key");
    if (!have_shape) return io_err(h->d, h->name, "malformed .npy header: no 'shape' key");
    return TIR_OK;
}

/* magic, version and header length: *pre gets the preamble size, *hlen the dict's length */
static tir_status parse_preamble(const unsigned char *b, size_t n, const char *name, size_t *pre,
                                 size_t *hlen, tir_diag *d) {
    if (n < 8 || memcmp(b, NPY_MAGIC, 6) != 0)
        return io_err(d, name, "not a .npy file (bad magic)");
    int major = b[6], minor = b[7];
    if (major == 1 && minor == 0) {
        if (n < 10) return io_err(d, name, "truncated .npy header");
        *pre = 10;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (n < 12) return io_err(d, name, "truncated .npy header");
        *pre = 12;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else {
        return io_err(d, name, "unsupported .npy format version %d.%d (supported: 1.0, 2.0, 3.0)",
                      major, minor);
    }
    if (*hlen > NPY_MAX_HEADER)
        return io_err(d, name, "the .npy header is too long (%zu bytes)", *hlen);
    return TIR_OK;
}

static tir_status finish_header(tir_npy_header *h, const char *name, tir_diag *d) {
    const npy_type *t = npy_type_of(h->dtype);
    int64_t numel = 1;
    for (int i = 0; i < h->rank; i++)
        if (__builtin_mul_overflow(numel, h->dims[i], &numel))
            return io_err(d, name, "shape is too large (element count overflows)");
    size_t nbytes;
    if (numel > (int64_t)(SIZE_MAX / 2) || __builtin_mul_overflow((size_t)numel, t->size, &nbytes) ||
        nbytes > (size_t)INT64_MAX)
        return io_err(d, name, "shape is too large (byte count overflows)");
    h->numel = numel;
    h->nbytes = nbytes;
    return TIR_OK;
}

tir_status tir_npy_parse(const void *buf, size_t n, const char *name, tir_npy_header *out,
                         tir_diag *d) {
    memset(out, 0, sizeof *out);
    if (!buf && n) return io_err(d, name, "no data");
    size_t pre = 0, hlen = 0;
    tir_status s = parse_preamble(buf, n, name, &pre, &hlen, d);
    if (s != TIR_OK) return s;
    if (n - pre < hlen) return io_err(d, name, "truncated .npy header");
    hp h = {(const char *)buf + pre, (const char *)buf + pre + hlen, name, d};
    if ((s = parse_dict(&h, out)) != TIR_OK) return s;
    out->data_offset = pre + hlen;
    return finish_header(out, name, d);
}

static void normalize_bool(tir_tensor *t, const tir_npy_header *h) {
    if (h->dtype != TIR_BOOL) return;
    unsigned char *p = tir_tensor_data(t);
    for (int64_t i = 0; i < h->numel; i++) p[i] = p[i] != 0;
}

static tir_status new_tensor(const tir_npy_header *h, const char *name, tir_tensor **out,
                             tir_diag *d) {
    *out = tir_tensor_new(h->dtype, h->rank, h->dims);
    if (!*out)
        return tir_diag_set_src(d, TIR_ERR_OOM, NULL, NULL, (tir_loc){0, 0},
                                "%s: out of memory for %zu bytes of data", name, h->nbytes);
    return TIR_OK;
}

tir_status tir_npy_load_mem(const void *buf, size_t n, const char *name, tir_tensor **out,
                            tir_diag *d) {
    if (!out) return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "out is NULL");
    *out = NULL;
    tir_npy_header h;
    tir_status s = tir_npy_parse(buf, n, name, &h, d);
    if (s != TIR_OK) return s;
    if (n - h.data_offset < h.nbytes)
        return io_err(d, name, "truncated data: the shape needs %zu bytes, the file has %zu",
                      h.nbytes, n - h.data_offset);
    if ((s = new_tensor(&h, name, out, d)) != TIR_OK) return s;
    if (h.nbytes) memcpy(tir_tensor_data(*out), (const char *)buf + h.data_offset, h.nbytes);
    normalize_bool(*out, &h);
    return TIR_OK;
}

/* ---------------------------------------------------------------- files */

tir_status tir_tensor_load_npy(const char *path, tir_tensor **out, tir_diag *d) {
    if (!out || !path)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "path or out is NULL");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return io_err(d, path, "cannot open: %s", strerror(errno));
    tir_status s;
    unsigned char pre[12];
    size_t got = fread(pre, 1, sizeof pre, f);
    size_t prelen = 0, hlen = 0;
    char *hdr = NULL;
    if ((s = parse_preamble(pre, got, path, &prelen, &hlen, d)) != TIR_OK) goto done;
    /* at least `got`: the 12 bytes read may already hold part of a short v1 header's data */
    hdr = malloc((got > prelen + hlen ? got : prelen + hlen) + 1);
    if (!hdr) {
        s = tir_diag_set_src(d, TIR_ERR_OOM, NULL, NULL, (tir_loc){0, 0}, "%s: out of memory", path);
        goto done;
    }
    memcpy(hdr, pre, got);
    size_t have = got;
    if (have < prelen + hlen) have += fread(hdr + have, 1, prelen + hlen - have, f);
    if (have < prelen + hlen) {
        s = io_err(d, path, "truncated .npy header");
        goto done;
    }
    tir_npy_header h;
    if ((s = tir_npy_parse(hdr, prelen + hlen, path, &h, d)) != TIR_OK) goto done;
    size_t extra = got > prelen + hlen ? got - (prelen + hlen) : 0; /* data bytes already read */
    /* refuse before allocating when the file cannot hold the data (a hostile shape) */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        size_t avail = (size_t)st.st_size > h.data_offset ? (size_t)st.st_size - h.data_offset : 0;
        if (avail < h.nbytes) {
            s = io_err(d, path, "truncated data: the shape needs %zu bytes, the file has %zu",
                       h.nbytes, avail);
            goto done;
        }
    }
    if ((s = new_tensor(&h, path, out, d)) != TIR_OK) goto done;
    unsigned char *data = tir_tensor_data(*out);
    size_t take = extra < h.nbytes ? extra : h.nbytes;
    if (take) memcpy(data, hdr + prelen + hlen, take);
    size_t rd = take + (h.nbytes > take ? fread(data + take, 1, h.nbytes - take, f) : 0);
    if (rd < h.nbytes) {
        s = io_err(d, path, "truncated data: the shape needs %zu bytes, the file has %zu",
                   h.nbytes, rd);
        tir_tensor_free(*out);
        *out = NULL;
        goto done;
    }
    normalize_bool(*out, &h);
done:
    free(hdr);
    fclose(f);
    return s;
}

/* The header dict numpy writes, padded with spaces and a '\n' so that the data starts on a
 * 64-byte boundary. Returns the preamble + header length written to buf. */
static size_t make_header(const npy_type *t, const tir_tensor *x, char *buf, size_t cap) {
    char shape[TIR_MAX_RANK * 24 + 8];
    int rank = tir_tensor_rank(x);
    size_t sn = (size_t)snprintf(shape, sizeof shape, "(");
    for (int i = 0; i < rank; i++)
        sn += (size_t)snprintf(shape + sn, sizeof shape - sn, "%s%lld", i ? ", " : "",
                               (long long)tir_tensor_dim(x, i));
    snprintf(shape + sn, sizeof shape - sn, rank == 1 ? ",)" : ")");
    char dict[sizeof shape + 96];
    int dn = snprintf(dict, sizeof dict, "{'descr': '%s%s', 'fortran_order': False, 'shape': %s, }",
                      t->size == 1 ? "|" : "<", t->code, shape);
    size_t pre = (size_t)dn + 1 + 10 > 65535 ? 12 : 10;
    size_t total = pre + (size_t)dn + 1;
    size_t padded = (total + 63) / 64 * 64;
    if (padded > cap) return 0;
    size_t hlen = padded - pre;
    memcpy(buf, NPY_MAGIC, 6);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (char)((hlen >> (8 * i)) & 0xff);
    memcpy(buf + pre, dict, (size_t)dn);
    memset(buf + pre + dn, ' ', hlen - (size_t)dn - 1);
    buf[padded - 1] = '\n';
    return padded;
}

tir_status tir_tensor_save_npy(const tir_tensor *t, const char *path, tir_diag *d) {
    if (!t || !path)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0}, "tensor or path is NULL");
    tir_dtype dt = tir_tensor_dtype(t);
    bool widen = dt == TIR_BF16 || dt == TIR_F8E4M3 || dt == TIR_F8E5M2;
    const npy_type *nt = npy_type_of(widen ? TIR_F32 : dt);
    if (!nt)
        return tir_diag_set(d, TIR_ERR_INVALID, NULL, (tir_loc){0, 0},
                            "%s: cannot save dtype %s as .npy", path, tir_dtype_name(dt));
    char hdr[1024];
    size_t hn = make_header(nt, t, hdr, sizeof hdr);
    if (!hn) return tir_diag_set(d, TIR_ERR_INTERNAL, NULL, (tir_loc){0, 0}, "%s: header", path);
    FILE *f = fopen(path, "wb");
    if (!f) return io_err(d, path, "cannot write: %s", strerror(errno));
    bool ok = fwrite(hdr, 1, hn, f) == hn;
    int64_t numel = tir_tensor_numel(t);
    if (ok && widen) {
        float chunk[1024];
        for (int64_t i = 0; ok && i < numel; i += 1024) {
            int64_t k = numel - i < 1024 ? numel - i : 1024;
            for (int64_t j = 0; j < k; j++) chunk[j] = (float)tir_tensor_get(t, i + j);
            ok = fwrite(chunk, sizeof(float), (size_t)k, f) == (size_t)k;
        }
    } else if (ok && numel > 0) {
        size_t nb = tir_tensor_nbytes(t);
        ok = fwrite(tir_tensor_data((tir_tensor *)t), 1, nb, f) == nb;
    }
    int err = ok ? 0 : errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        remove(path);
        return io_err(d, path, "cannot write: %s", strerror(err ? err : EIO));
    }
    return TIR_OK;
}
