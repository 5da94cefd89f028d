/* fuzz_block.c - libFuzzer target for the queue's block decoder
 * (storage/block.c): a block comes from a file that may be damaged, so any
 * bytes must decode to readings or a clean error, never a read past the blob.
 * What decodes must survive a round trip: encoding the decoded readings again
 * gives a block that decodes to the same readings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so that a read past the end is caught by ASan on the heap. */
    uint8_t *blob = malloc(size ? size : 1);
    if (!blob)
        return 0;
    if (size)
        memcpy(blob, data, size);
    static struct block_enc enc;
    block_enc_reset(&enc);
    struct block_dec d;
    struct block_item it, back;
    block_dec_init(&d, blob, size);
    int r;
    uint64_t n = 0;
    while ((r = block_dec_next(&d, &it)) == 1) {
        n++;
        if (block_enc_full(&enc))
            continue; /* the encoder's bound, not the decoder's */
        block_enc_put(&enc, (int64_t)n, &it);
    }
    if (n <= BLOCK_MAX_READINGS) {
        /* block_decode agrees with the decoder: whole blocks only, of
         * exactly the count asked for, and the same items. */
        static struct block_item all[BLOCK_MAX_READINGS + 1];
        if ((block_decode(blob, size, all, n) == 0) != (r == 0))
            abort();
        if (n > 0 && block_decode(blob, size, all, n - 1) == 0)
            abort();
        if (r == 0 && n < BLOCK_MAX_READINGS && block_decode(blob, size, all, n + 1) == 0)
            abort();
        if (r == 0 && block_decode(blob, size, all, n) == 0) {
            struct block_dec d3;
            block_dec_init(&d3, blob, size);
            for (uint64_t i = 0; i < n; i++) {
                if (block_dec_next(&d3, &it) != 1 || it.ts_ms != all[i].ts_ms ||
                    memcmp(&it.value, &all[i].value, sizeof it.value) != 0)
                    abort();
            }
        }
    }
    struct block_dec d2, d1;
    block_dec_init(&d2, enc.buf, enc.len);
    block_dec_init(&d1, blob, size);
    for (uint32_t i = 0; i < enc.n; i++) {
        if (block_dec_next(&d2, &back) != 1 || block_dec_next(&d1, &it) != 1)
            abort();
        if (back.ts_ms != it.ts_ms || back.flags != it.flags ||
            memcmp(&back.value, &it.value, sizeof it.value) != 0)
            abort();
        for (int f = 0; f < BLOCK_NSTR; f++) {
            if (back.str[f].id != it.str[f].id || back.str[f].len != it.str[f].len ||
                (it.str[f].len && memcmp(back.str[f].text, it.str[f].text, it.str[f].len)))
                abort();
        }
    }
    free(blob);
    return 0;
}
