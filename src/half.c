/* half.c — IEEE binary16 conversions on the host (half.h). */
#include "half.h"

#include <math.h>
#include <string.h>

float bm_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            /* Subnormal: value = mant * 2^-24. Shift the mantissa up until its leading 1 reaches
             * the implicit-bit position, lowering the exponent once per shift. */
            int e = -1;
            do {
                mant <<= 1;
                e++;
            } while (!(mant & 0x400));
            mant &= 0x3FF;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t bm_half_from_float(float f, int *overflow)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) /* infinity, or NaN (kept quiet, its high payload bits kept) */
        return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 | ((ax >> 13) & 0x3FF) : 0));
    if (ax >= 0x477FF000u) { /* 65520 and up: rounds to infinity */
        if (overflow) *overflow = 1;
        return (uint16_t)(sign | 0x7C00);
    }
    if (ax < 0x38800000u) { /* below 2^-14: a subnormal f16 (units of 2^-24) or zero */
        float a;
        memcpy(&a, &ax, 4);
        /* scaling by 2^24 is exact; lrintf rounds ties to even (the default rounding mode); 1024
         * (a value that rounds up to 2^-14) is the smallest normal's encoding */
        return (uint16_t)(sign | (uint16_t)lrintf(a * 16777216.0f));
    }
    uint32_t h = ((((ax >> 23) - 127 + 15) << 10) | ((ax & 0x7FFFFFu) >> 13));
    const uint32_t rest = ax & 0x1FFFu; /* the 13 mantissa bits dropped */
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++; /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}
