/* CAVMem stand-in for 401.bzip2: holds its input and its compressed output in its own
 * (anonymous) memory, as SPEC's bzip2 does, and compresses and decompresses the
 * input chunk by chunk, over and over, with 900 kB blocks. One "tick" line per chunk.
 * Usage: bzip2-standin <input MiB>. Input: generated text-like data (seeded). */
#include <bzlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (4u << 20)

int main(int argc, char **argv) {
    unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    if (mib < 4 || mib > 65536) { fprintf(stderr, "bzip2-standin: input MiB must be 4..65536\n"); return 2; }
    size_t n = (size_t)mib << 20, chunks = n / CHUNK;
    size_t out_cap = CHUNK + CHUNK / 100 + 600;
    char *in = malloc(n), *out = malloc(chunks * out_cap), *back = malloc(CHUNK);
    unsigned *out_len = calloc(chunks, sizeof *out_len);
    if (!in || !out || !back || !out_len) { fprintf(stderr, "bzip2-standin: out of memory\n"); return 1; }
    static const char *words[] = {"the ", "memory ", "of ", "a ", "virtual ", "machine ", "page ", "fault ",
                                  "agent ", "bid ", "node ", "and ", "in ", "to ", "rate ", "miss "};
    unsigned long long x = 88172645463325252ull;
    for (size_t i = 0; i < n;) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        const char *w = (x & 0x300) ? words[x & 15] : NULL;
        if (w) { size_t l = strlen(w); if (l > n - i) l = n - i; memcpy(in + i, w, l); i += l; }
        else in[i++] = (char)(x >> 24);
    }
    printf("ready %zu\n", chunks); fflush(stdout);
    for (unsigned long pass = 0;; pass++) {
        for (size_t c = 0; c < chunks; c++) {
            unsigned len = (unsigned)out_cap, back_len = CHUNK;
            char *o = out + c * out_cap;
            if (BZ2_bzBuffToBuffCompress(o, &len, in + c * CHUNK, CHUNK, 9, 0, 0) != BZ_OK) return 1;
            if (BZ2_bzBuffToBuffDecompress(back, &back_len, o, len, 0, 0) != BZ_OK) return 1;
            if (back_len != CHUNK || memcmp(back, in + c * CHUNK, CHUNK) != 0) { fprintf(stderr, "bzip2-standin: round trip differs\n"); return 1; }
            out_len[c] = len;
            printf("tick\n"); fflush(stdout);
        }
    }
}
