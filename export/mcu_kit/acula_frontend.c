/* acula_frontend.c: see acula_frontend.h.  Portable C99, float32 (or double, see
 * ACULA_FE_DOUBLE), no allocation.
 *
 * Per frame: periodic Hann window, a real FFT of ACULA_N_FFT points computed as
 * an ACULA_N_FFT/2-point complex radix-2 FFT plus the split step, power,
 * sparse HTK mel filterbank, 10*log10(max(mel, amin)) and the fixed affine
 * normalisation; the same computation as sdk.frontend.LogMelFrontend.  The
 * power spectrum takes two FFTs, of the windowed frame and of its second
 * difference, so that float32 rounding stays far below the content of
 * near-empty bands (acula_fe_compute_frame).
 */
#include "acula_frontend.h"

#include <math.h>
#include <string.h>

#define HALF (ACULA_N_FFT / 2)

typedef acula_fe_real_t real;

void acula_fe_reset(acula_fe_t *fe) {
    memset(fe, 0, sizeof(*fe));
}

void acula_fe_init(acula_fe_t *fe) {
    acula_fe_reset(fe);
}

int8_t acula_fe_quantise(float feature) {
    /* rintf rounds half to even in the default rounding mode, as numpy.round does */
    float q = rintf(feature / ACULA_INPUT_SCALE) + (float)ACULA_INPUT_ZERO_POINT;
    if (q < -128.0f) return (int8_t)-128;
    if (q > 127.0f) return (int8_t)127;
    return (int8_t)q;
}

/* In-place iterative radix-2 FFT of HALF complex points, twiddles exp(-2 pi i k / N_FFT) at even k. */
static void fft_half(real *re, real *im) {
    uint32_t i, len, k;
    for (i = 0; i < HALF; ++i) {
        uint32_t j = ACULA_FFT_BITREV[i];
        if (j > i) {
            real t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (len = 2; len <= HALF; len <<= 1) {
        uint32_t half_len = len >> 1;
        uint32_t step = (uint32_t)ACULA_N_FFT / len; /* twiddle index stride in the N_FFT table */
        for (i = 0; i < HALF; i += len) {
            for (k = 0; k < half_len; ++k) {
                real wr = ACULA_FFT_COS[k * step];
                real wi = -ACULA_FFT_SIN[k * step];
                uint32_t a = i + k, b = a + half_len;
                real tr = re[b] * wr - im[b] * wi;
                real ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
}

/* Power |X[k]|^2 of bin k (0 <= k <= HALF) of the real frame whose half-size FFT Z is in re/im:
 * X[k] = E[k] + W^k O[k], E = (Z[k] + conj Z[H-k]) / 2, O = (Z[k] - conj Z[H-k]) / 2i. */
static real bin_power(const real *re, const real *im, uint32_t k) {
    real zr, zi, cr, ci, er, ei, o_r, o_i, wr, wi, xr, xi;
    if (k == 0u) return (re[0] + im[0]) * (re[0] + im[0]);
    if (k == HALF) return (re[0] - im[0]) * (re[0] - im[0]);
    zr = re[k], zi = im[k], cr = re[HALF - k], ci = -im[HALF - k];
    er = (real)0.5 * (zr + cr), ei = (real)0.5 * (zi + ci);
    o_r = (real)0.5 * (zi - ci), o_i = (real)-0.5 * (zr - cr);
    wr = ACULA_FFT_COS[k], wi = -ACULA_FFT_SIN[k];
    xr = er + (o_r * wr - o_i * wi);
    xi = ei + (o_r * wi + o_i * wr);
    return xr * xr + xi * xi;
}

void acula_fe_compute_frame(acula_fe_t *fe, const float *frame_samples, float *out_mels) {
    real *re = fe->fft_re, *im = fe->fft_im, *power = fe->power;
    const float *s = frame_samples;
    real energy_x = 0, energy_y = 0;
    uint32_t n, k, m, idx = 0;
    /* pass 1, the windowed frame x: even samples as real, odd samples as imaginary parts */
    for (n = 0; n < HALF; ++n) {
        re[n] = (real)s[2 * n] * ACULA_FE_WINDOW[2 * n];
        im[n] = (real)s[2 * n + 1] * ACULA_FE_WINDOW[2 * n + 1];
        energy_x += re[n] * re[n] + im[n] * im[n];
    }
    fft_half(re, im);
    for (k = 0; k <= HALF; ++k) power[k] = bin_power(re, im, k);
    /* pass 2, its circular second difference y[n] = x[n] - 2 x[n-1] + x[n-2]: Y[k] = (1 - W^k)^2 X[k]
     * exactly, so |X[k]|^2 = |Y[k]|^2 * ACULA_FE_DIFF2_GAIN[k].  A float32 FFT's rounding error lands in
     * every bin in proportion to the energy of its input; when low frequencies dominate (heart and lung
     * sounds, audio upsampled from 2-8 kHz) y holds orders of magnitude less energy than x, so its
     * near-empty upper bins come out far cleaner.  y costs almost no rounding: neighbouring samples of such
     * a signal are close, and the difference of two floats within a factor of 2 is exact.  x is recomputed
     * with the same float products as pass 1; each bin keeps the pass with the smaller error bound. */
    {
        real x1 = (real)s[ACULA_N_FFT - 1] * ACULA_FE_WINDOW[ACULA_N_FFT - 1]; /* x[n-1], circular */
        real d1 = x1 - (real)s[ACULA_N_FFT - 2] * ACULA_FE_WINDOW[ACULA_N_FFT - 2]; /* x[n-1] - x[n-2] */
        for (n = 0; n < HALF; ++n) {
            real a = (real)s[2 * n] * ACULA_FE_WINDOW[2 * n], b = (real)s[2 * n + 1] * ACULA_FE_WINDOW[2 * n + 1];
            real da = a - x1, db = b - a;
            re[n] = da - d1;
            im[n] = db - da;
            x1 = b;
            d1 = db;
            energy_y += re[n] * re[n] + im[n] * im[n];
        }
    }
    fft_half(re, im);
    for (k = 1; k <= HALF; ++k) { /* error bounds: pass 1 ~ sqrt(energy_x), pass 2 ~ sqrt(energy_y * gain) */
        if (energy_y * ACULA_FE_DIFF2_GAIN[k] < energy_x) power[k] = bin_power(re, im, k) * ACULA_FE_DIFF2_GAIN[k];
    }
    for (m = 0; m < ACULA_N_MELS; ++m) {
        uint32_t start = ACULA_FE_MEL_START[m], width = ACULA_FE_MEL_WIDTH[m];
        real acc = 0;
        for (k = 0; k < width; ++k) acc += power[start + k] * ACULA_FE_MEL_WEIGHTS[idx + k];
        idx += width;
        if (acc < ACULA_FE_AMIN_POWER) acc = ACULA_FE_AMIN_POWER;
        /* log10f of the sum rounded to float: the SDK's engine also takes log10 in float32 */
        out_mels[m] = log10f((float)acc) * ACULA_FE_SCALE - ACULA_FE_SHIFT;
    }
}

#ifdef ACULA_LEVEL_HISTORY
/* sdk.level.LevelShift.shift: float32(L - ref), L the loudest of the last min(n_frames, ACULA_LEVEL_HISTORY)
 * frames (the window ends at the newest frame) */
static float level_shift(const acula_fe_t *fe) {
    uint32_t i, n = fe->n_frames < ACULA_LEVEL_HISTORY ? fe->n_frames : ACULA_LEVEL_HISTORY;
    float top = fe->peaks[0];
    for (i = 1; i < n; ++i) if (fe->peaks[i] > top) top = fe->peaks[i];
    return (float)((double)top - ACULA_LEVEL_REF);
}
#endif

static void emit_frame(acula_fe_t *fe) {
    uint32_t m;
#ifdef ACULA_LEVEL_HISTORY
    float top;
    acula_fe_compute_frame(fe, fe->samples, fe->frame);
    memcpy(fe->ring[fe->ring_head], fe->frame, sizeof(fe->frame));
    top = fe->frame[0];
    for (m = 1; m < ACULA_N_MELS; ++m) if (fe->frame[m] > top) top = fe->frame[m];
    fe->peaks[fe->n_frames % ACULA_LEVEL_HISTORY] = top;
#else
    int8_t *slot = fe->ring[fe->ring_head];
    acula_fe_compute_frame(fe, fe->samples, fe->frame);
    for (m = 0; m < ACULA_N_MELS; ++m) slot[m] = acula_fe_quantise(fe->frame[m]);
#endif
    fe->ring_head = (fe->ring_head + 1u) % ACULA_WINDOW_FRAMES;
    fe->n_frames += 1u;
    fe->frame_ready = 1;
    fe->window_ready = fe->n_frames >= ACULA_WINDOW_FRAMES
                       && (fe->n_frames - ACULA_WINDOW_FRAMES) % ACULA_HOP_FRAMES == 0u;
    /* keep the overlap: the next frame starts ACULA_HOP samples later */
    memmove(fe->samples, fe->samples + ACULA_HOP, (ACULA_N_FFT - ACULA_HOP) * sizeof(float));
    fe->n_samples = ACULA_N_FFT - ACULA_HOP;
}

size_t acula_fe_push(acula_fe_t *fe, const float *x, size_t n) {
    size_t used = 0;
    fe->frame_ready = 0;
    fe->window_ready = 0;
    while (used < n) {
        size_t take = ACULA_N_FFT - fe->n_samples;
        if (take > n - used) take = n - used;
        memcpy(fe->samples + fe->n_samples, x + used, take * sizeof(float));
        fe->n_samples += (uint32_t)take;
        used += take;
        if (fe->n_samples == ACULA_N_FFT) {
            emit_frame(fe);
            break;
        }
    }
    return used;
}

int acula_fe_frame_ready(const acula_fe_t *fe) { return fe->frame_ready; }

int acula_fe_window_ready(const acula_fe_t *fe) { return fe->window_ready; }

/* One ring slot into the model's int8 input row, moved by ``shift`` (a level kit's running level; else 0). */
static void put_frame(const acula_fe_t *fe, uint32_t slot, float shift, int8_t *row) {
#ifdef ACULA_LEVEL_HISTORY
    uint32_t m;
    for (m = 0; m < ACULA_N_MELS; ++m) {
        float v = fe->ring[slot][m];
#ifdef ACULA_LEVEL_FLOOR
        /* keep_floor: digital silence stays at the floor cell (sdk.level.LevelShift.FLOOR_TOLERANCE) */
        if (v <= ACULA_LEVEL_FLOOR + 1e-5f) { row[m] = acula_fe_quantise(ACULA_LEVEL_FLOOR); continue; }
#endif
#ifdef ACULA_LEVEL_LOW
        /* range_db: the relative floor (sdk.level.LevelShift.low), float32 as numpy's maximum */
        v = v - shift;
        row[m] = acula_fe_quantise(v < ACULA_LEVEL_LOW ? ACULA_LEVEL_LOW : v);
#else
        row[m] = acula_fe_quantise(v - shift);
#endif
    }
#else
    (void)shift;
    memcpy(row, fe->ring[slot], ACULA_N_MELS);
#endif
}

#ifdef ACULA_LEVEL_HISTORY
#define WINDOW_SHIFT(fe) level_shift(fe)
#else
#define WINDOW_SHIFT(fe) 0.0f
#endif

void acula_fe_get_window(acula_fe_t *fe, int8_t out[ACULA_WINDOW_FRAMES * ACULA_N_MELS]) {
    /* the oldest frame sits at ring_head once the ring is full */
    uint32_t f;
    float shift = WINDOW_SHIFT(fe);
    for (f = 0; f < ACULA_WINDOW_FRAMES; ++f) {
        put_frame(fe, (fe->ring_head + f) % ACULA_WINDOW_FRAMES, shift, out + f * ACULA_N_MELS);
    }
    fe->window_ready = 0;
}

int acula_fe_flush_window(acula_fe_t *fe, int8_t out[ACULA_WINDOW_FRAMES * ACULA_N_MELS]) {
    uint32_t f;
    float shift;
    if (fe->n_frames == 0u || fe->n_frames >= ACULA_WINDOW_FRAMES) return 0;
    shift = WINDOW_SHIFT(fe);
    /* the ring has not wrapped: frames sit in slots 0 .. n_frames - 1 */
    for (f = 0; f < ACULA_WINDOW_FRAMES; ++f) put_frame(fe, f % fe->n_frames, shift, out + f * ACULA_N_MELS);
    return 1;
}

const float *acula_fe_last_frame(const acula_fe_t *fe) { return fe->frame; }

uint32_t acula_fe_frame_count(const acula_fe_t *fe) { return fe->n_frames; }
