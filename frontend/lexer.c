/* lexer.c: .tir bytes -> tokens. This is where untrusted bytes are turned away: NUL bytes, control
 * characters, non-ASCII outside comments and strings, invalid UTF-8 outside comments, numbers
 * that overflow, unterminated strings. Everything after it sees only well-formed tokens. */
#include <errno.h>
#include <stdio.h>

#include "frontend.h"

typedef struct lexer {
    const char *s;
    size_t len, i;
    int line, col;
    const char *file;
    tir_diag *d;
    tir_tokens *out;
    int cap;
} lexer;

static tir_status lex_err(lexer *L, tir_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tir_status lex_err(lexer *L, tir_loc loc, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tir_diag_set_src(L->d, TIR_ERR_PARSE, L->file, L->s, loc, "%s", msg);
}

/* Columns count code points, so the caret lines up under multi-byte characters in a terminal. */
static void advance(lexer *L) {
    unsigned char c = (unsigned char)L->s[L->i++];
    if (c == '\n') {
        L->line++;
        L->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        L->col++;
    }
}

static tir_loc here(const lexer *L) { return (tir_loc){L->line, L->col}; }

static int peekc(const lexer *L, size_t k) {
    return L->i + k < L->len ? (unsigned char)L->s[L->i + k] : -1;
}

static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }
static bool is_name_char(int c) { return is_ident_char(c) || c == '.'; }
static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Length of the valid UTF-8 sequence at p (0 if invalid), its code point in *cp. */
static int utf8_seq(const unsigned char *p, size_t avail, uint32_t *cp) {
    unsigned char c = p[0];
    int n;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xE0) == 0xC0) { n = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)n > avail) return 0;
    for (int k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

static tir_status push(lexer *L, tir_tok_kind k, size_t start, size_t len, tir_loc loc,
                       tir_token **out) {
    tir_tokens *t = L->out;
    if (t->n == L->cap) {
        int ncap = L->cap ? L->cap * 2 : 256;
        tir_token *nv = realloc(t->v, (size_t)ncap * sizeof *nv);
        if (!nv) return tir_diag_set_src(L->d, TIR_ERR_OOM, L->file, NULL, (tir_loc){0, 0},
                                         "out of memory while lexing");
        t->v = nv;
        L->cap = ncap;
    }
    tir_token *tk = &t->v[t->n++];
    memset(tk, 0, sizeof *tk);
    tk->kind = k;
    tk->text = L->s + start;
    tk->len = len;
    tk->loc = loc;
    if (out) *out = tk;
    return TIR_OK;
}

/* A byte that cannot start any token: say exactly what it is. */
static tir_status bad_byte(lexer *L) {
    tir_loc loc = here(L);
    unsigned char c = (unsigned char)L->s[L->i];
    if (c == 0) return lex_err(L, loc, "NUL byte in source");
    if (c < 32 || c == 127) return lex_err(L, loc, "control character 0x%02x in source", c);
    if (c >= 0x80) {
        uint32_t cp;
        if (!utf8_seq((const unsigned char *)L->s + L->i, L->len - L->i, &cp))
            return lex_err(L, loc, "invalid UTF-8 byte 0x%02x in source", c);
        return lex_err(L, loc, "unexpected character U+%04X", (unsigned)cp);
    }
    return lex_err(L, loc, "unexpected character '%c'", c);
}

static tir_status lex_number(lexer *L) {
    tir_loc loc = here(L);
    size_t start = L->i;
    uint64_t u = 0;
    bool too_big = false;
    while (is_digit(peekc(L, 0))) {
        unsigned dgt = (unsigned)(L->s[L->i] - '0');
        if (u > ((UINT64_C(1) << 63) - dgt) / 10) too_big = true;
        else u = u * 10 + dgt;
        advance(L);
    }
    bool is_float = false;
    if (peekc(L, 0) == '.') {
        is_float = true;
        advance(L);
        while (is_digit(peekc(L, 0))) advance(L);
    }
    if (peekc(L, 0) == 'e' || peekc(L, 0) == 'E') {
        is_float = true;
        advance(L);
        if (peekc(L, 0) == '+' || peekc(L, 0) == '-') advance(L);
        if (!is_digit(peekc(L, 0))) return lex_err(L, loc, "malformed number: exponent has no digits");
        while (is_digit(peekc(L, 0))) advance(L);
    }
    if (is_name_char(peekc(L, 0)))
        return lex_err(L, loc, "malformed number: unexpected '%c' after '%.*s'", peekc(L, 0),
                       (int)(L->i - start), L->s + start);
    size_t n = L->i - start;
    tir_token *tk;
    if (!is_float) {
        if (too_big) return lex_err(L, loc, "integer literal %.*s overflows int64", (int)n, L->s + start);
        tir_status st = push(L, TIR_TOK_INT, start, n, loc, &tk);
        if (st) return st;
        tk->u = u;
        return TIR_OK;
    }
    char small[128];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return tir_diag_set_src(L->d, TIR_ERR_OOM, L->file, NULL, (tir_loc){0, 0}, "out of memory");
    memcpy(buf, L->s + start, n);
    buf[n] = 0;
    errno = 0;
    char *end;
    double f = strtod(buf, &end);
    bool range = errno == ERANGE && isinf(f);
    bool whole = end == buf + n;
    if (buf != small) free(buf);
    if (!whole) return lex_err(L, loc, "malformed number");
    if (range) return lex_err(L, loc, "float literal %.*s is out of range", (int)(n > 40 ? 40 : n), L->s + start);
    tir_status st = push(L, TIR_TOK_FLOAT, start, n, loc, &tk);
    if (st) return st;
    tk->f = f;
    return TIR_OK;
}

static tir_status lex_string(lexer *L) {
    tir_loc loc = here(L);
    advance(L); /* opening quote */
    size_t start = L->i;
    for (;;) {
        int c = peekc(L, 0);
        if (c < 0 || c == '\n') return lex_err(L, loc, "unterminated string");
        if (c == '"') break;
        if (c == 0) return lex_err(L, here(L), "NUL byte in string");
        if (c == '\\') {
            tir_loc eloc = here(L);
            advance(L);
            int e = peekc(L, 0);
            if (e == '"' || e == '\\' || e == 'n' || e == 't') {
                advance(L);
            } else if (e == 'x') {
                int h1 = hexval(peekc(L, 1)), h2 = hexval(peekc(L, 2));
                if (h1 < 0 || h2 < 0) return lex_err(L, eloc, "bad escape: \\x needs two hex digits");
                if (h1 == 0 && h2 == 0) return lex_err(L, eloc, "bad escape: \\x00 (NUL) in string");
                advance(L);
                advance(L);
                advance(L);
            } else if (e < 0 || e == '\n') {
                return lex_err(L, loc, "unterminated string");
            } else {
                return lex_err(L, eloc, "unknown escape sequence in string (use \\\" \\\\ \\n \\t \\xHH)");
            }
            continue;
        }
        if (c < 32 || c == 127)
            return lex_err(L, here(L), "control character 0x%02x in string (use an escape)", c);
        if (c >= 0x80) {
            uint32_t cp;
            int n = utf8_seq((const unsigned char *)L->s + L->i, L->len - L->i, &cp);
            if (!n) return lex_err(L, here(L), "invalid UTF-8 byte 0x%02x in string (use \\xHH)", c);
            for (int k = 0; k < n; k++) advance(L);
            continue;
        }
        advance(L);
    }
    tir_status st = push(L, TIR_TOK_STRING, start, L->i - start, loc, NULL);
    advance(L); /* closing quote */
    return st;
}

tir_status tir_lex(const char *src, size_t len, const char *filename, tir_tokens *out, tir_diag *d) {
    lexer L = {.s = src, .len = len, .line = 1, .col = 1, .file = filename, .d = d, .out = out};
    out->v = NULL;
    out->n = 0;
    tir_status st = TIR_OK;
    while (L.i < L.len && st == TIR_OK) {
        int c = peekc(&L, 0);
        tir_loc loc = here(&L);
        size_t start = L.i;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            advance(&L);
        } else if (c == '#') {
            /* comments may hold anything but NUL, so prose in any encoding survives */
            while (L.i < L.len && L.s[L.i] != '\n') {
                if (L.s[L.i] == 0) {
                    st = lex_err(&L, here(&L), "NUL byte in comment");
                    break;
                }
                advance(&L);
            }
        } else if (is_ident_start(c)) {
            while (is_ident_char(peekc(&L, 0))) advance(&L);
            st = push(&L, TIR_TOK_IDENT, start, L.i - start, loc, NULL);
        } else if (c == '%' || c == '@') {
            advance(&L);
            if (!is_name_char(peekc(&L, 0))) {
                st = lex_err(&L, loc, "expected a name after '%c'", c);
                break;
            }
            while (is_name_char(peekc(&L, 0))) advance(&L);
            st = push(&L, c == '%' ? TIR_TOK_VALUE : TIR_TOK_FUNC, start + 1, L.i - start - 1, loc, NULL);
        } else if (is_digit(c)) {
            st = lex_number(&L);
        } else if (c == '"') {
            st = lex_string(&L);
        } else {
            tir_tok_kind k;
            size_t n = 1;
            switch (c) {
            case '(': k = TIR_TOK_LPAREN; break;
            case ')': k = TIR_TOK_RPAREN; break;
            case '[': k = TIR_TOK_LBRACK; break;
            case ']': k = TIR_TOK_RBRACK; break;
            case '{': k = TIR_TOK_LBRACE; break;
            case '}': k = TIR_TOK_RBRACE; break;
            case ',': k = TIR_TOK_COMMA; break;
            case '=': k = TIR_TOK_EQ; break;
            case ':': k = TIR_TOK_COLON; break;
            case '+': k = TIR_TOK_PLUS; break;
            case '*': k = TIR_TOK_STAR; break;
            case '/': k = TIR_TOK_SLASH; break;
            case '-':
                if (peekc(&L, 1) == '>') { k = TIR_TOK_ARROW; n = 2; }
                else k = TIR_TOK_MINUS;
                break;
            default:
                st = bad_byte(&L);
                continue;
            }
            for (size_t j = 0; j < n; j++) advance(&L);
            st = push(&L, k, start, n, loc, NULL);
        }
    }
    if (st == TIR_OK) st = push(&L, TIR_TOK_EOF, L.len, 0, here(&L), NULL);
    if (st != TIR_OK) tir_tokens_free(out);
    return st;
}

void tir_tokens_free(tir_tokens *t) {
    if (!t) return;
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

char *tir_lex_string(const tir_token *t, tir_arena *a) {
    char *o = tir_arena_alloc(a, t->len + 1);
    if (!o) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->text[i];
        if (c != '\\') {
            o[j++] = c;
            continue;
        }
        c = t->text[++i];
        switch (c) {
        case 'n': o[j++] = '\n'; break;
        case 't': o[j++] = '\t'; break;
        case 'x':
            o[j++] = (char)(hexval((unsigned char)t->text[i + 1]) * 16 + hexval((unsigned char)t->text[i + 2]));
            i += 2;
            break;
        default: o[j++] = c; break; /* \" and \\ */
        }
    }
    o[j] = 0;
    return o;
}

void tir_tok_describe(const tir_token *t, char *buf, size_t n) {
    int len = t->len > 40 ? 40 : (int)t->len;
    const char *ell = t->len > 40 ? "..." : "";
    switch (t->kind) {
    case TIR_TOK_EOF: snprintf(buf, n, "end of file"); break;
    case TIR_TOK_STRING: snprintf(buf, n, "a string"); break;
    case TIR_TOK_VALUE: snprintf(buf, n, "'%%%.*s%s'", len, t->text, ell); break;
    case TIR_TOK_FUNC: snprintf(buf, n, "'@%.*s%s'", len, t->text, ell); break;
    default: snprintf(buf, n, "'%.*s%s'", len, t->text, ell); break;
    }
}
