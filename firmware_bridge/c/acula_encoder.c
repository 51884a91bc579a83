/* Reference encoder for stethoscope firmware: frame packing, CRC-16/CCITT-FALSE, IMA-ADPCM.
 * Build: cc -O2 -I<dir of acula_bridge.h> acula_encoder.c -o acula_encoder
 * As a program it reads little-endian int16 mono samples on stdin and writes ADPCM frames
 * (256 samples each, 16 kHz) on stdout, exactly as firmware_bridge.simulate does. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "acula_bridge.h"

static const int16_t STEPS[89] = {
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66, 73, 80, 88, 97,
    107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449, 494, 544, 598, 658, 724, 796,
    876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871,
    5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623,
    27086, 29794, 32767};
static const int8_t INDEX_ADJ[8] = {-1, -1, -1, -1, 2, 4, 6, 8};

typedef struct { int32_t predictor; int32_t index; int started; } acula_adpcm_state;

uint16_t acula_crc16(const uint8_t *data, size_t n) {
    uint16_t crc = ACULA_CRC16_INIT;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)data[i] << 8;
        for (int b = 0; b < 8; b++) crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ ACULA_CRC16_POLY) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* Encodes n samples into out (4-byte block header + n/2 bytes); returns the byte count. */
size_t acula_adpcm_encode(acula_adpcm_state *st, const int16_t *pcm, size_t n, uint8_t *out) {
    if (!st->started) { st->predictor = n ? pcm[0] : 0; st->index = 0; st->started = 1; }
    int32_t pred = st->predictor, index = st->index;
    out[0] = (uint8_t)(pred & 0xFF); out[1] = (uint8_t)((pred >> 8) & 0xFF); out[2] = (uint8_t)index; out[3] = 0;
    size_t nbytes = 4;
    for (size_t i = 0; i < n; i++) {
        int32_t step = STEPS[index], diff = (int32_t)pcm[i] - pred, delta = step >> 3;
        uint8_t code = 0;
        if (diff < 0) { code = 8; diff = -diff; }
        if (diff >= step) { code |= 4; diff -= step; delta += step; }
        if (diff >= (step >> 1)) { code |= 2; diff -= step >> 1; delta += step >> 1; }
        if (diff >= (step >> 2)) { code |= 1; delta += step >> 2; }
        pred = (code & 8) ? pred - delta : pred + delta;
        if (pred > 32767) pred = 32767;
        if (pred < -32768) pred = -32768;
        index += INDEX_ADJ[code & 7];
        if (index < 0) index = 0;
        if (index > 88) index = 88;
        if (i % 2 == 0) out[nbytes] = code & 0x0F; else out[nbytes++] |= (uint8_t)(code << 4);
    }
    if (n % 2) nbytes++;
    st->predictor = pred; st->index = index;
    return nbytes;
}

static void put16(uint8_t *p, uint32_t v) { p[0] = v & 0xFF; p[1] = (v >> 8) & 0xFF; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }

/* Packs one frame into out; returns its size (header + payload + CRC). */
size_t acula_pack_frame(uint16_t seq, uint32_t timestamp_us, uint8_t codec, uint8_t rate_code, uint8_t flags,
                        const uint8_t *payload, uint16_t len, uint8_t *out) {
    out[0] = ACULA_MAGIC0; out[1] = ACULA_MAGIC1; out[2] = ACULA_VERSION; out[3] = flags;
    put16(out + 4, seq); put32(out + 6, timestamp_us);
    out[10] = codec; out[11] = rate_code; out[12] = 0; out[13] = 0; put16(out + 14, len);
    memcpy(out + ACULA_HEADER_SIZE, payload, len);
    put16(out + ACULA_HEADER_SIZE + len, acula_crc16(out + 2, ACULA_HEADER_SIZE - 2 + len));
    return ACULA_HEADER_SIZE + len + 2u;
}

#ifndef ACULA_NO_MAIN
int main(void) {
    static int16_t all[1 << 22];
    size_t total = fread(all, sizeof(int16_t), sizeof(all) / sizeof(all[0]), stdin);
    acula_adpcm_state st = {0, 0, 0};
    uint8_t payload[ACULA_MAX_PAYLOAD], frame[ACULA_MAX_PAYLOAD + 32];
    uint16_t seq = 0;
    for (size_t start = 0; start < total; start += 256, seq++) {
        size_t n = total - start < 256 ? total - start : 256;
        size_t len = acula_adpcm_encode(&st, all + start, n, payload);
        uint8_t flags = (start + 256 >= total) ? ACULA_FLAG_END : 0;
        uint32_t ts = (uint32_t)((uint64_t)start * 1000000u / 16000u);
        size_t size = acula_pack_frame(seq, ts, ACULA_CODEC_IMA_ADPCM, 3 /* 16 kHz */, flags, payload, (uint16_t)len,
                                       frame);
        fwrite(frame, 1, size, stdout);
    }
    return 0;
}
#endif
