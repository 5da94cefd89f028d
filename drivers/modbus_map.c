/* modbus_map.c - see modbus_map.h. */
#include "modbus_map.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kv.h"

static const char *const type_names[] = {"int16", "uint16", "int32", "uint32", "float32", NULL};

int tern_modbus_parse_reg(const char *spec, struct tern_modbus_reg *r, char *err, size_t errcap)
{
    char buf[256];
    if (!spec || strlen(spec) >= sizeof buf) {
        snprintf(err, errcap, "register spec missing or too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    r->fn = TERN_MB_HOLDING;
    r->type = TERN_MB_UINT16;
    snprintf(r->order, sizeof r->order, "abcd");
    r->scale = 1;
    r->offset = 0;
    r->unit[0] = '\0';
    int have_fn = 0;
    char *save = NULL;
    char *tok = strtok_r(buf, " \t", &save);
    long addr;
    if (!tok || tern_text_long(tok, &addr) < 0 || addr < 0 || addr > 65535) {
        snprintf(err, errcap, "expected a register address (0-65535 or 3xxxx/4xxxx) first");
        return -1;
    }
    int ref_fn = -1;
    if (strlen(tok) == 5 && addr >= 30001 && addr <= 39999) {
        ref_fn = TERN_MB_INPUT;
        addr -= 30001;
    } else if (strlen(tok) == 5 && addr >= 40001 && addr <= 49999) {
        ref_fn = TERN_MB_HOLDING;
        addr -= 40001;
    }
    r->address = (uint16_t)addr;
    if (ref_fn >= 0)
        r->fn = (enum tern_modbus_fn)ref_fn;
    for (tok = strtok_r(NULL, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        int matched = 0;
        if (strcmp(tok, "holding") == 0 || strcmp(tok, "input") == 0) {
            enum tern_modbus_fn fn = tok[0] == 'h' ? TERN_MB_HOLDING : TERN_MB_INPUT;
            if (have_fn || (ref_fn >= 0 && (int)fn != ref_fn)) {
                snprintf(err, errcap, "'%s' contradicts the address or an earlier function",
                         tok);
                return -1;
            }
            r->fn = fn;
            have_fn = matched = 1;
        }
        for (int i = 0; !matched && type_names[i]; i++) {
            if (strcmp(tok, type_names[i]) == 0) {
                r->type = (enum tern_modbus_type)i;
                matched = 1;
            }
        }
        if (!matched && strlen(tok) == 4) {
            /* A word order is a permutation of abcd. */
            int seen = 0;
            for (int i = 0; i < 4; i++)
                if (tok[i] >= 'a' && tok[i] <= 'd')
                    seen |= 1 << (tok[i] - 'a');
            if (seen == 0xf) {
                snprintf(r->order, sizeof r->order, "%s", tok);
                matched = 1;
            }
        }
        if (!matched && strncmp(tok, "scale=", 6) == 0) {
            if (tern_text_double(tok + 6, &r->scale) < 0 || r->scale == 0) {
                snprintf(err, errcap, "bad scale '%s'", tok + 6);
                return -1;
            }
            matched = 1;
        }
        if (!matched && strncmp(tok, "offset=", 7) == 0) {
            if (tern_text_double(tok + 7, &r->offset) < 0) {
                snprintf(err, errcap, "bad offset '%s'", tok + 7);
                return -1;
            }
            matched = 1;
        }
        if (!matched && strncmp(tok, "unit=", 5) == 0) {
            if (strlen(tok + 5) >= sizeof r->unit) {
                snprintf(err, errcap, "unit '%s' too long", tok + 5);
                return -1;
            }
            snprintf(r->unit, sizeof r->unit, "%s", tok + 5);
            matched = 1;
        }
        if (!matched) {
            snprintf(err, errcap,
                     "unknown word '%.40s' (want holding|input, a type, a word order, "
                     "scale=, offset=, unit=)", tok);
            return -1;
        }
    }
    if (tern_modbus_reg_count(r) == 2 && r->address == 65535) {
        snprintf(err, errcap, "a 32-bit value cannot start at the last register");
        return -1;
    }
    return 0;
}

int tern_modbus_reg_count(const struct tern_modbus_reg *r)
{
    return r->type == TERN_MB_INT16 || r->type == TERN_MB_UINT16 ? 1 : 2;
}

/* Bytes of the value, most significant first, from the wire order. */
static uint32_t gather(const struct tern_modbus_reg *r, const uint16_t *regs)
{
    uint8_t wire[4] = {(uint8_t)(regs[0] >> 8), (uint8_t)regs[0], (uint8_t)(regs[1] >> 8),
                       (uint8_t)regs[1]};
    uint8_t v[4];
    /* order[i] names which value byte sits at wire position i. */
    for (int i = 0; i < 4; i++)
        v[r->order[i] - 'a'] = wire[i];
    return (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
}

int tern_modbus_decode(const struct tern_modbus_reg *r, const uint16_t *regs, double *out)
{
    double raw;
    switch (r->type) {
    case TERN_MB_INT16: raw = (int16_t)regs[0]; break;
    case TERN_MB_UINT16: raw = regs[0]; break;
    case TERN_MB_INT32: raw = (int32_t)gather(r, regs); break;
    case TERN_MB_UINT32: raw = gather(r, regs); break;
    case TERN_MB_FLOAT32:
    default: {
        uint32_t bits = gather(r, regs);
        float f;
        memcpy(&f, &bits, sizeof f);
        raw = f;
        break;
    }
    }
    double v = raw * r->scale + r->offset;
    if (!isfinite(v))
        return -1;
    *out = v;
    return 0;
}

void tern_modbus_encode(const struct tern_modbus_reg *r, double raw, uint16_t *regs)
{
    uint32_t bits;
    switch (r->type) {
    case TERN_MB_INT16: regs[0] = (uint16_t)(int16_t)lround(raw); return;
    case TERN_MB_UINT16: regs[0] = (uint16_t)lround(raw); return;
    case TERN_MB_INT32: bits = (uint32_t)(int32_t)llround(raw); break;
    case TERN_MB_UINT32: bits = (uint32_t)llround(raw); break;
    case TERN_MB_FLOAT32:
    default: {
        float f = (float)raw;
        memcpy(&bits, &f, sizeof bits);
        break;
    }
    }
    uint8_t v[4] = {(uint8_t)(bits >> 24), (uint8_t)(bits >> 16), (uint8_t)(bits >> 8),
                    (uint8_t)bits};
    uint8_t wire[4];
    for (int i = 0; i < 4; i++)
        wire[i] = v[r->order[i] - 'a'];
    regs[0] = (uint16_t)(wire[0] << 8 | wire[1]);
    regs[1] = (uint16_t)(wire[2] << 8 | wire[3]);
}
