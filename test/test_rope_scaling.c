/*
 * test_rope_scaling.c — Llama 3's RoPE frequency rule (rope_freq.h) on the
 * CPU: the three bands against the rule written out here, monotone
 * frequencies, the rotation rope_forward_cpu applies, and the model-file
 * fields (written, read back, absent in older files = no scaling).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "cpu_ref.h"
#include "test.h"

/* Llama 3.1 8B: theta 500000, HD 128, factor 8, low 1, high 4, original 8192 */
static RopeParams llama31(void)
{
    RopeParams r = rope_params_plain(500000.0f);
    r.scaling = (RopeScaling){8.0f, 1.0f, 4.0f, 8192};
    return r;
}

static void check_bands(void)
{
    const RopeParams r = llama31();
    const int HD = 128;
    int kept = 0, stretched = 0, blended = 0, bad = 0;
    double previous = INFINITY;
    for (int d = 0; d < HD / 2; d++) {
        const double base = 1.0 / pow(500000.0, 2.0 * d / HD), wavelen = 2.0 * M_PI / base;
        double want;
        if (wavelen < 8192.0 / 4.0) want = base, kept++;
        else if (wavelen > 8192.0 / 1.0) want = base / 8.0, stretched++;
        else {
            const double s = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
            want = base * ((1.0 - s) / 8.0 + s);
            blended++;
        }
        const double got = rope_inv_freq(r, d, HD);
        bad += fabs(got - want) > 1e-12 * want || !(got <= previous);
        previous = got;
    }
    check(bad == 0, "llama3 rope frequencies: kept / blended / stretched bands, monotone", "%d of %d wrong", bad,
          HD / 2);
    check(kept > 0 && stretched > 0 && blended > 0, "llama3 rope frequencies: all three bands occur at HD 128",
          "kept %d blended %d stretched %d", kept, blended, stretched);
    check(rope_inv_freq(rope_params_plain(500000.0f), 5, HD) == pow(500000.0, -10.0 / HD),
          "rope frequencies without scaling are theta^(-2d/HD)", "differs");
}

/* pos * f(d) is the angle rope_forward_cpu turns pair d of a q head by. */
static void check_rotation(void)
{
    const RopeParams r = llama31();
    const int HD = 128, NH = 1, NKV = 1, pos = 3000;
    float x[3 * 128], y[3 * 128];
    int worst_d = -1;
    double worst = 0.0;
    for (int d = 0; d < HD / 2; d++) {
        memset(x, 0, sizeof(x));
        x[d] = 1.0f; /* (x1, x2) = (1, 0) turns into (cos a, sin a) */
        rope_forward_cpu(y, x, &pos, 1, NH, NKV, HD, r);
        const double a = pos * rope_inv_freq(r, d, HD);
        const double err = fabs(y[d] - cos(a)) + fabs(y[d + HD / 2] - sin(a));
        if (err > worst) worst = err, worst_d = d;
    }
    check(worst < 1e-6, "rope_forward_cpu with llama3 scaling turns pair d by pos * f(d)", "pair %d off by %.3e",
          worst_d, worst);
}

static void check_model_file(void)
{
    ModelConfig c, back;
    model_config_parse(&c, "llama:1B,L=1,C=128,NH=2,NKV=1,F=64,V=300,T=64,llama3=8/1/4/8192");
    ParamLayout layout;
    param_layout_init(&layout, &c);
    uint16_t *params = (uint16_t *)calloc_or_die(layout.total, sizeof(uint16_t));
    const char *path = "build/test_rope_scaling_model.bin";
    checkpoint_write_model(path, &c, params, layout.total);
    int version;
    checkpoint_read_model_config(path, &back, &version);
    check(back.rope_scaling.factor == 8.0f && back.rope_scaling.low_freq_factor == 1.0f &&
              back.rope_scaling.high_freq_factor == 4.0f && back.rope_scaling.original_max_pos == 8192,
          "model file keeps the llama3 RoPE scaling fields", "read %g/%g/%g/%d", (double)back.rope_scaling.factor,
          (double)back.rope_scaling.low_freq_factor, (double)back.rope_scaling.high_freq_factor,
          back.rope_scaling.original_max_pos);
    /* an older file: header ints 13..16 zero */
    c.rope_scaling = (RopeScaling){0};
    checkpoint_write_model(path, &c, params, layout.total);
    checkpoint_read_model_config(path, &back, &version);
    check(back.rope_scaling.factor == 0.0f && back.rope_scaling.original_max_pos == 0,
          "model file without scaling fields reads as no scaling", "factor %g", (double)back.rope_scaling.factor);
    remove(path);
    free(params);
}

int main(void)
{
    check_bands();
    check_rotation();
    check_model_file();
    return test_summary();
}
