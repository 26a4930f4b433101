/* gemm_tiles.h — the tile configurations and automatic choices shared by our two register-tiled
 * GEMMs (cl/gemm_nt.cl for NT, cl/gemm_tt.cl for NN / TN / TT: same tiles and inner loop, only
 * their loads differ). Defined in op_gemm_nt.c; the rules were measured there on the H200. */
#ifndef BM_GEMM_TILES_H
#define BM_GEMM_TILES_H

#include "runtime.h"

typedef struct {
    int bm, bn, bk, tm, tn;
    size_t items_x, items_y;      /* work-group: (BN/TN, BM/TM) */
    size_t local_bytes;           /* the double-buffered tiles */
    const char *name_v4, *name_s; /* gemm_nt.cl's float4-load and scalar-load kernels */
} bm_gemm_tiles;

/* The big (thin = 0) or thin configuration the program was compiled with (rt->config). */
bm_gemm_tiles bm_gemm_tiles_of(const bm_rt *rt, int thin);
/* 1 when the configuration can run on this device (work-group size, local memory). */
int bm_gemm_tiles_fit(const bm_rt *rt, const bm_gemm_tiles *t);
/* Whether an M x N output takes the thin tiles. */
int bm_gemm_auto_thin(const bm_rt *rt, const bm_gemm_tiles *big, size_t M, size_t N);
/* The number of K splits for `groups` output tiles and a reduction of length K. */
int bm_gemm_auto_split(const bm_rt *rt, size_t groups, size_t K);

#endif
