/* frontend.h: the .tir frontend's internal interface: the token stream the lexer (lexer.c) hands
 * the parser (parser.c), and a length-taking parse entry for callers that hold bytes rather than a
 * C string (files, the parser fuzzer), so NUL bytes in the input are diagnosed, not truncated. */
#ifndef TIR_FRONTEND_H
#define TIR_FRONTEND_H

#include "ir.h"

typedef enum tir_tok_kind {
    TIR_TOK_EOF,
    TIR_TOK_IDENT,  /* [A-Za-z_][A-Za-z0-9_]*: op names, dtypes, dim symbols, keywords */
    TIR_TOK_VALUE,  /* %name (text excludes the '%') */
    TIR_TOK_FUNC,   /* @name (text excludes the '@') */
    TIR_TOK_INT,    /* decimal integer, magnitude in u */
    TIR_TOK_FLOAT,  /* has '.' or an exponent; value in f */
    TIR_TOK_STRING, /* "..." (text is the raw body between the quotes; decode with tir_lex_string) */
    TIR_TOK_LPAREN, TIR_TOK_RPAREN, TIR_TOK_LBRACK, TIR_TOK_RBRACK, TIR_TOK_LBRACE, TIR_TOK_RBRACE,
    TIR_TOK_COMMA, TIR_TOK_EQ, TIR_TOK_COLON, TIR_TOK_ARROW,
    TIR_TOK_PLUS, TIR_TOK_MINUS, TIR_TOK_STAR, TIR_TOK_SLASH
} tir_tok_kind;

typedef struct tir_token {
    tir_tok_kind kind;
    const char *text; /* points into the source */
    size_t len;
    tir_loc loc;      /* line and column (1-based; columns count code points) */
    uint64_t u;       /* TIR_TOK_INT: magnitude, at most 2^63 (so a leading '-' can reach INT64_MIN) */
    double f;         /* TIR_TOK_FLOAT */
} tir_token;

typedef struct tir_tokens {
    tir_token *v;     /* ends with one TIR_TOK_EOF */
    int n;
} tir_tokens;

/* Lex src[0..len). On error fills d (file:line:col, TIR_ERR_PARSE) and leaves out empty. */
tir_status tir_lex(const char *src, size_t len, const char *filename, tir_tokens *out, tir_diag *d);
void tir_tokens_free(tir_tokens *t);
/* Decode a TIR_TOK_STRING's escapes into the arena (the lexer has validated them). NULL on OOM. */
char *tir_lex_string(const tir_token *t, tir_arena *a);
/* "end of file", "')'", "'neg'" ... for "expected X, found Y" messages */
void tir_tok_describe(const tir_token *t, char *buf, size_t n);

/* Parse and verify src[0..len) into a new module (what tir_module_parse and
 * tir_module_parse_file call). */
tir_status tir_frontend_parse(tir_context *ctx, const char *src, size_t len, const char *filename,
                              tir_module **out, tir_diag *d);

#endif /* TIR_FRONTEND_H */
