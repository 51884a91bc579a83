/* acula_frontend.h: streaming log-mel front end of AcuLa Edge in portable C99.
 *
 * Float32, fixed buffers inside acula_fe_t, no allocation at all.  The tables
 * (Hann window, FFT twiddles, sparse HTK mel filterbank, normalisation and the
 * int8 input quantisation of the model) come from acula_fe_tables.h, which
 * `acula export-mcu` generates from the bundle's FrontendConfig: never edit it.
 *
 *   acula_fe_t fe;                                  one per audio session (about 14 KB; 21 KB with ACULA_FE_DOUBLE)
 *   acula_fe_init(&fe);
 *   for each chunk of 16 kHz mono float samples in [-1, 1]:
 *       size_t used = 0;
 *       while (used < n) {
 *           used += acula_fe_push(&fe, x + used, n - used);
 *           if (acula_fe_window_ready(&fe))
 *               acula_fe_get_window(&fe, input_tensor_data);    int8, ACULA_WINDOW_FRAMES x ACULA_N_MELS
 *       }
 *
 * A frame covers samples [i * ACULA_HOP, i * ACULA_HOP + ACULA_N_FFT) (not
 * centred); window k covers frames [k * ACULA_HOP_FRAMES, k * ACULA_HOP_FRAMES
 * + ACULA_WINDOW_FRAMES), the SDK's sdk.Stream windows.
 */
#ifndef ACULA_FRONTEND_H
#define ACULA_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

/* The arithmetic type of the FFT, power spectrum and mel sums.  float (default) suits a single-precision
 * FPU (Cortex-M4F, ESP32-S3) and follows the SDK's float32 engine to ~1e-5 on heart, lung and cough
 * recordings (see benchmarks/results/mcu.md).  Define ACULA_FE_DOUBLE on a core with a double-precision FPU
 * (Cortex-M7 FPv5-D16) to follow the SDK's float64 engine to ~1e-7. */
#ifdef ACULA_FE_DOUBLE
typedef double acula_fe_real_t;
#else
typedef float acula_fe_real_t;
#endif

#include "acula_fe_tables.h" /* its tables are of acula_fe_real_t */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float samples[ACULA_N_FFT];                          /* the frame being filled */
    uint32_t n_samples;                                  /* valid samples in samples[] */
    acula_fe_real_t fft_re[ACULA_N_FFT / 2];             /* scratch of the half-size complex FFT */
    acula_fe_real_t fft_im[ACULA_N_FFT / 2];
    acula_fe_real_t power[ACULA_N_FREQS];                /* scratch: power spectrum of one frame */
    float frame[ACULA_N_MELS];                           /* last frame, normalised log-mel */
#ifdef ACULA_LEVEL_HISTORY
    /* a level bundle (sdk.level): frames stay float until the window's running level is known */
    float ring[ACULA_WINDOW_FRAMES][ACULA_N_MELS];       /* last ACULA_WINDOW_FRAMES frames, float */
    float peaks[ACULA_LEVEL_HISTORY];                    /* loudest value of the last ACULA_LEVEL_HISTORY frames */
#else
    int8_t ring[ACULA_WINDOW_FRAMES][ACULA_N_MELS];      /* last ACULA_WINDOW_FRAMES frames, int8 */
#endif
    uint32_t ring_head;                                  /* ring slot of the next frame */
    uint32_t n_frames;                                   /* frames emitted since init/reset */
    int frame_ready;                                     /* the last push completed a frame */
    int window_ready;                                    /* ... and that frame completed a window */
} acula_fe_t;

/* Start a session (also clears it). */
void acula_fe_init(acula_fe_t *fe);
void acula_fe_reset(acula_fe_t *fe);

/* Feed up to n samples (16 kHz mono float).  Returns how many were consumed: all of
 * them, or fewer when a sample completed a frame, so that the caller can take that
 * frame (acula_fe_last_frame) or the window it completed before the next one
 * overwrites it.  Call it in a loop until the chunk is used up. */
size_t acula_fe_push(acula_fe_t *fe, const float *x, size_t n);

/* 1 when the last push completed a frame / a window (both cleared by the next push). */
int acula_fe_frame_ready(const acula_fe_t *fe);
int acula_fe_window_ready(const acula_fe_t *fe);

/* The completed window in time order as the model's int8 input,
 * shape (ACULA_WINDOW_FRAMES, ACULA_N_MELS), row-major.  With ACULA_LEVEL_HISTORY (a bundle exported with
 * --level-shift, sdk.level), each value is first moved by float(L - ACULA_LEVEL_REF), L the loudest value of
 * the last ACULA_LEVEL_HISTORY frames (the SDK's running level). */
void acula_fe_get_window(acula_fe_t *fe, int8_t out[ACULA_WINDOW_FRAMES * ACULA_N_MELS]);

/* End of a recording shorter than one window: writes the frames so far, repeated to fill a window
 * (as sdk.Stream.flush tiles them) and returns 1; returns 0 (and writes nothing) when the session
 * already gave a window or has no frame. */
int acula_fe_flush_window(acula_fe_t *fe, int8_t out[ACULA_WINDOW_FRAMES * ACULA_N_MELS]);

/* The newest frame (normalised log-mel, float32, ACULA_N_MELS values) and the frame count. */
const float *acula_fe_last_frame(const acula_fe_t *fe);
uint32_t acula_fe_frame_count(const acula_fe_t *fe);

/* One frame of ACULA_N_FFT samples -> ACULA_N_MELS normalised log-mel values (stateless
 * apart from the scratch buffers in fe). */
void acula_fe_compute_frame(acula_fe_t *fe, const float *frame_samples, float *out_mels);

/* Model input quantisation of one normalised log-mel value (round half to even, saturating). */
int8_t acula_fe_quantise(float feature);

#ifdef __cplusplus
}
#endif

#endif /* ACULA_FRONTEND_H */
