/*
 * test.h — the tiny test harness every test program uses.
 *
 * A test program calls check(...) / check_close(...) for each assertion and
 * ends main with `return test_summary();`. Each check prints one line,
 * "PASS name" or "FAIL name: why", and test/run_tests.sh adds the lines of all
 * programs into the closing "N passed, M failed" line. A program that crashes
 * or exits non-zero without printing a FAIL line is counted as one failure.
 */
#ifndef PACKLM_TEST_H
#define PACKLM_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static int test_passed_count, test_failed_count;

/* Record one assertion; `fmt` describes the failure (printf-style). */
static inline int check(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        test_passed_count++;
        printf("PASS %s\n", name);
    } else {
        va_list ap;
        test_failed_count++;
        printf("FAIL %s: ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    fflush(stdout);
    return ok;
}

/* Relative L2 error ||a - b|| / max(||b||, tiny); NaN anywhere gives INFINITY. */
static inline double rel_l2_error(const float *a, const float *b, size_t n)
{
    double diff = 0.0, ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = (double)a[i] - (double)b[i];
        diff += d * d;
        ref += (double)b[i] * (double)b[i];
    }
    return sqrt(diff) / (ref > 1e-30 ? sqrt(ref) : 1e-15);
}

/* PASS when rel_l2_error(got, want) <= tol. */
static inline int check_close(const char *name, const float *got, const float *want, size_t n, double tol)
{
    double err = rel_l2_error(got, want, n);
    return check(err <= tol, name, "relative L2 error %.3e > tolerance %.1e", err, tol);
}

static inline int test_summary(void)
{
    printf("%d passed, %d failed\n", test_passed_count, test_failed_count);
    return test_failed_count == 0 ? 0 : 1;
}

#endif /* PACKLM_TEST_H */
