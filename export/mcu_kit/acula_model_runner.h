/* acula_model_runner.h: the student on TensorFlow Lite for Microcontrollers, behind a C API.
 *
 *   if (acula_model_init() != 0) ...                      once: resolver, interpreter, arena
 *   acula_model_invoke(window, embedding, &cough_p);      per window from acula_fe_get_window()
 */
#ifndef ACULA_MODEL_RUNNER_H
#define ACULA_MODEL_RUNNER_H

#include <stdint.h>

#include "acula_frontend.h"
#include "acula_model_config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 0 on success; -1 schema version mismatch, -2 the arena is too small (raise ACULA_ARENA_BYTES). */
int acula_model_init(void);

/* window: int8 (ACULA_WINDOW_FRAMES x ACULA_N_MELS) from acula_fe_get_window().
 * embedding: ACULA_EMBED_DIM floats (dequantised; NULL to skip).
 * cough_probability: sigmoid of the dequantised cough head (NULL to skip; -1 if the model has none).
 * Returns 0, or -3 when Invoke fails. */
int acula_model_invoke(const int8_t *window, float *embedding, float *cough_probability);

/* Bytes of the arena the interpreter used (after acula_model_init). */
uint32_t acula_model_arena_used(void);

#ifdef __cplusplus
}
#endif

#endif /* ACULA_MODEL_RUNNER_H */
