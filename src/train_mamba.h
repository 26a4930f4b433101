/* train_mamba.h — the Mamba-1 mixer's training forward and backward, shared by the mamba kind
 * and the fading stream of the bmojo kind (train_bmojo.c), which places the mixer's tensors,
 * saved activations and temporaries at the start of its own tables. */
#ifndef BM_TRAIN_MAMBA_H
#define BM_TRAIN_MAMBA_H

#include "train.h"

/* l->p[] indices of the mixer's tensors. */
enum {
    BM_TM_IN_PROJ, BM_TM_IN_PROJ_B, BM_TM_CONV_W, BM_TM_CONV_B, BM_TM_X_PROJ, BM_TM_DT_PROJ, BM_TM_DT_BIAS,
    BM_TM_A_LOG, BM_TM_D, BM_TM_OUT_PROJ, BM_TM_OUT_PROJ_B, BM_TM_DT_NORM, BM_TM_B_NORM, BM_TM_C_NORM,
    BM_TM_PARAMS
};
/* l->saved[] indices of the mixer's saved activations. */
enum { BM_TM_S_XZ, BM_TM_S_U, BM_TM_S_XDBL_RAW, BM_TM_S_XDBL, BM_TM_S_DT, BM_TM_S_YS, BM_TM_SAVED };
/* tr->temp[] slots the mixer uses (a kind that calls the mixer keeps out of them). */
enum { BM_TM_T_CONV_STATE, BM_TM_T_SSM_STATE, BM_TM_T_DYS, BM_TM_T_DXZ, BM_TM_T_DU, BM_TM_T_DDT, BM_TM_T_DXDBL,
       BM_TM_T_DA, BM_TM_TEMPS };

int bm_train_mamba_mixer_params(bm_trainer *tr, int i, bm_train_layer *l);
int bm_train_mamba_mixer_reserve(bm_trainer *tr, int i, bm_train_layer *l);
int bm_train_mamba_mixer_derive(bm_trainer *tr, int i, bm_train_layer *l);
/* out = beta * out + mixer(h) */
int bm_train_mamba_mixer_forward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem out, float beta);
/* dh = beta_dh * dh + the mixer's input gradient for dout; accumulates the tensors' gradients. */
int bm_train_mamba_mixer_backward(bm_trainer *tr, int i, bm_train_layer *l, cl_mem h, cl_mem dout, cl_mem dh,
                                  float beta_dh);

#endif
