/*
 * utils.h — checked I/O, allocation and error reporting shared by every
 * program in packlm (C11, host only; also included from .cu files).
 *
 * Every failure ends the process with a message that names what failed
 * (file, what was expected, what was found) and a non-zero exit code.
 * Nothing here returns an error code the caller could forget to check.
 */
#ifndef PACKLM_UTILS_H
#define PACKLM_UTILS_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Print "error: <message>" to stderr and exit(1). printf-style. */
static inline void die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

static inline FILE *fopen_or_die(const char *path, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (!f) die("cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    return f;
}

/* Read exactly `count` items or die naming the file. */
static inline void fread_or_die(void *dst, size_t size, size_t count, FILE *f, const char *path)
{
    size_t got = fread(dst, size, count, f);
    if (got != count)
        die("'%s': short read (wanted %zu items of %zu bytes, got %zu)%s", path, count, size, got,
            feof(f) ? ": file is truncated" : "");
}

static inline void fwrite_or_die(const void *src, size_t size, size_t count, FILE *f, const char *path)
{
    if (fwrite(src, size, count, f) != count)
        die("'%s': write failed (%zu items of %zu bytes): %s", path, count, size, strerror(errno));
}

static inline void fclose_or_die(FILE *f, const char *path)
{
    if (fclose(f) != 0) die("'%s': close failed: %s", path, strerror(errno));
}

static inline void *malloc_or_die(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die("out of host memory allocating %zu bytes", bytes);
    return p;
}

/* The whole file in a malloc'd buffer (plus a terminating 0 not counted in *size). */
static inline unsigned char *read_file_or_die(const char *path, size_t *size)
{
    FILE *f = fopen_or_die(path, "rb");
    struct stat st;
    if (fstat(fileno(f), &st) != 0) die("'%s': cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) die("'%s': not a regular file", path);
    off_t n = st.st_size;
    unsigned char *data = (unsigned char *)malloc_or_die((size_t)n + 1);
    fread_or_die(data, 1, (size_t)n, f, path);
    fclose_or_die(f, path);
    data[n] = 0;
    *size = (size_t)n;
    return data;
}

static inline void *calloc_or_die(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) die("out of host memory allocating %zu x %zu bytes", count, size);
    return p;
}

/* Parse a whole decimal integer; die naming `what` if it is not one. */
static inline long parse_long_or_die(const char *text, const char *what)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0') die("%s: '%s' is not an integer", what, text);
    return v;
}

static inline double parse_double_or_die(const char *text, const char *what)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0') die("%s: '%s' is not a number", what, text);
    return v;
}

#endif /* PACKLM_UTILS_H */
