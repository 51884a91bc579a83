/* main.c: host harness for the front end (not for the device).
 *
 *   acula_fe_demo frames  IN.f32 OUT.f32    normalised log-mel frames, float32, (n_frames, ACULA_N_MELS)
 *   acula_fe_demo windows IN.f32 OUT.i8     model input windows, int8, (n_windows, ACULA_WINDOW_FRAMES, ACULA_N_MELS)
 *
 * IN.f32: raw little-endian float32 mono samples at ACULA_SAMPLE_RATE_HZ (resample first).
 * Samples are read and pushed in chunks of 1000 to exercise the streaming path; a recording shorter
 * than one window gives one window of its frames tiled (acula_fe_flush_window), as in the SDK.
 */
#include <stdio.h>
#include <string.h>

#include "acula_frontend.h"

static acula_fe_t fe; /* static: the state (about 14 KB) is too big for some stacks */

int main(int argc, char **argv) {
    float chunk[1000];
    int8_t window[ACULA_WINDOW_FRAMES * ACULA_N_MELS];
    size_t n_read, n_out = 0;
    int want_frames;
    FILE *in, *out;
    if (argc != 4 || (strcmp(argv[1], "frames") != 0 && strcmp(argv[1], "windows") != 0)) {
        fprintf(stderr, "usage: %s frames|windows IN.f32 OUT\n", argv[0]);
        return 2;
    }
    want_frames = strcmp(argv[1], "frames") == 0;
    in = fopen(argv[2], "rb");
    out = fopen(argv[3], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "cannot open %s or %s\n", argv[2], argv[3]);
        return 1;
    }
    acula_fe_init(&fe);
    while ((n_read = fread(chunk, sizeof(float), sizeof(chunk) / sizeof(chunk[0]), in)) > 0) {
        size_t used = 0;
        while (used < n_read) {
            used += acula_fe_push(&fe, chunk + used, n_read - used);
            if (want_frames && acula_fe_frame_ready(&fe)) {
                fwrite(acula_fe_last_frame(&fe), sizeof(float), ACULA_N_MELS, out);
                ++n_out;
            } else if (!want_frames && acula_fe_window_ready(&fe)) {
                acula_fe_get_window(&fe, window);
                fwrite(window, 1, sizeof(window), out);
                ++n_out;
            }
        }
    }
    if (!want_frames && acula_fe_flush_window(&fe, window)) { /* a recording shorter than one window */
        fwrite(window, 1, sizeof(window), out);
        ++n_out;
    }
    fclose(in);
    fclose(out);
    fprintf(stderr, "%lu %s; sizeof(acula_fe_t) %lu bytes\n", (unsigned long)n_out,
            want_frames ? "frames" : "windows", (unsigned long)sizeof(acula_fe_t));
    return 0;
}
