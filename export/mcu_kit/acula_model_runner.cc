// acula_model_runner.cc: see acula_model_runner.h.  Build it inside a TFLite Micro project
// (with CMSIS-NN kernels on Arm: `make ... OPTIMIZED_KERNEL_DIR=cmsis_nn`); it is not compiled
// by the SDK's tests, which run the same graph in the tflite-micro Python wrapper.
#include "acula_model_runner.h"

#include <math.h>
#include <string.h>

#include "acula_model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {
alignas(16) uint8_t g_arena[ACULA_ARENA_BYTES];
tflite::MicroInterpreter* g_interpreter = nullptr;
}  // namespace

extern "C" int acula_model_init(void) {
  static tflite::MicroMutableOpResolver<ACULA_N_OPS> resolver;
  ACULA_ADD_OPS(resolver);
  const tflite::Model* model = tflite::GetModel(acula_model_tflite);
  if (model->version() != TFLITE_SCHEMA_VERSION) return -1;
  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, ACULA_ARENA_BYTES);
  if (interpreter.AllocateTensors() != kTfLiteOk) return -2;
  g_interpreter = &interpreter;
  return 0;
}

extern "C" int acula_model_invoke(const int8_t* window, float* embedding, float* cough_probability) {
  TfLiteTensor* input = g_interpreter->input(0);
  memcpy(input->data.int8, window, ACULA_WINDOW_FRAMES * ACULA_N_MELS);
  if (g_interpreter->Invoke() != kTfLiteOk) return -3;
  if (embedding != nullptr) {
    const int8_t* e = g_interpreter->output(ACULA_OUTPUT_EMBEDDING)->data.int8;
    for (unsigned i = 0; i < ACULA_EMBED_DIM; ++i) {
      embedding[i] = (e[i] - ACULA_EMBEDDING_ZERO_POINT) * ACULA_EMBEDDING_SCALE;
    }
  }
  if (cough_probability != nullptr) {
    *cough_probability = -1.0f;
    if (ACULA_COUGH_HEAD >= 0) {
      const int8_t* h = g_interpreter->output(ACULA_OUTPUT_HEADS)->data.int8;
      float logit = (h[ACULA_COUGH_HEAD] - ACULA_HEADS_ZERO_POINT) * ACULA_HEADS_SCALE;
      *cough_probability = 1.0f / (1.0f + expf(-logit));
    }
  }
  return 0;
}

extern "C" uint32_t acula_model_arena_used(void) {
  return g_interpreter == nullptr ? 0u : (uint32_t)g_interpreter->arena_used_bytes();
}
