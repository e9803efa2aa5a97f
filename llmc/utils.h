/*
 * utils.h — checked I/O, allocation and error reporting shared by every
 * program in packlm (C11, host only; also included from .cu files).
 *
 * Every failure ends the process with a message that names what failed
 * (file, what was expected, what was found) and a non-zero exit code.
 * Nothing here returns an error code the caller could forget to check.
 *
 * Output files are never half-written: OutFile writes NAME.tmp, and
 * out_file_commit flushes it to the disk (fsync) and renames it to NAME;
 * on a failed write the temporary file is removed before the process ends.
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
#include <unistd.h>

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

/* The whole file in a malloc'd buffer (plus a terminating 0 not counted in
   *size), or NULL with *why saying what went wrong ("cannot open: ...", "not
   a regular file", ...). Never exits: readers that report errors use it. */
static inline unsigned char *read_file(const char *path, size_t *size, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        static char reason[160];
        snprintf(reason, sizeof(reason), "cannot open: %s", strerror(errno));
        *why = reason;
        return NULL;
    }
    struct stat st;
    unsigned char *data = NULL;
    *why = NULL;
    if (fstat(fileno(f), &st) != 0) *why = "cannot stat the file";
    else if (!S_ISREG(st.st_mode)) *why = "not a regular file";
    else if (!(data = (unsigned char *)malloc((size_t)st.st_size + 1))) *why = "out of host memory";
    else if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) *why = "read error";
    fclose(f);
    if (*why) {
        free(data);
        return NULL;
    }
    data[st.st_size] = 0;
    *size = (size_t)st.st_size;
    return data;
}

static inline unsigned char *read_file_or_die(const char *path, size_t *size)
{
    const char *why;
    unsigned char *data = read_file(path, size, &why);
    if (!data) die("'%s': %s", path, why);
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

/* ---------------------------------------------------------------- files of the repository */

/*
 * A file the repository ships (e.g. "data/gpt2_tokenizer.bin") as a tool run
 * from anywhere finds it: `relative` itself when it exists (relative to the
 * current directory), else the same path under the nearest directory above
 * the executable that has it (build/tools/NAME -> the repository root).
 * Writes the path found into buf and returns 1, or returns 0 (buf = relative).
 */
static inline int find_repo_file(const char *relative, char *buf, size_t len)
{
    snprintf(buf, len, "%s", relative);
    if (access(relative, R_OK) == 0) return 1;
    char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n <= 0) return 0;
    dir[n] = '\0';
    for (char *slash = strrchr(dir, '/'); slash && slash != dir; slash = strrchr(dir, '/')) {
        *slash = '\0'; /* one directory up */
        if (snprintf(buf, len, "%s/%s", dir, relative) < (int)len && access(buf, R_OK) == 0) return 1;
    }
    snprintf(buf, len, "%s", relative);
    return 0;
}

/* ---------------------------------------------------------------- memory */

/* Bytes of physical memory of this machine (0 if unknown). */
static inline double host_memory_bytes(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), page_bytes = sysconf(_SC_PAGESIZE);
    return pages > 0 && page_bytes > 0 ? (double)pages * (double)page_bytes : 0.0;
}

/* Refuse a model whose parameters alone (bytes_per_param each, for `use`) exceed this machine's memory. */
static inline void require_host_memory(const char *model, size_t num_params, double bytes_per_param, const char *use)
{
    const double need = (double)num_params * bytes_per_param, have = host_memory_bytes();
    if (have > 0.0 && need > have)
        die("model '%s' has %zu parameters (%.4g billion): %s takes %.4g GB (%g bytes per parameter), more than "
            "this machine's %.4g GB of memory; choose a smaller model",
            model, num_params, (double)num_params / 1e9, use, need / 1e9, bytes_per_param, have / 1e9);
}

/* ---------------------------------------------------------------- output files, all or nothing */

typedef struct {
    FILE *f;
    char path[4096], tmp[4200]; /* the final name, and NAME.tmp being written */
} OutFile;

/* Remove the temporary file and die with the message. */
static inline void out_file_fail(OutFile *o, const char *what)
{
    const int saved = errno;
    if (o->f) fclose(o->f);
    o->f = NULL;
    remove(o->tmp);
    die("'%s': %s: %s (nothing was written to '%s')", o->tmp, what, strerror(saved), o->path);
}

static inline void out_file_open(OutFile *o, const char *path)
{
    if (snprintf(o->path, sizeof(o->path), "%s", path) >= (int)sizeof(o->path)) die("output path too long: '%s'", path);
    snprintf(o->tmp, sizeof(o->tmp), "%s.tmp", o->path);
    o->f = fopen(o->tmp, "wb");
    if (!o->f) die("cannot open '%s' for writing: %s", o->tmp, strerror(errno));
}

static inline void out_file_write(OutFile *o, const void *data, size_t bytes)
{
    if (bytes > 0 && fwrite(data, 1, bytes, o->f) != bytes) out_file_fail(o, "write failed");
}

/* Flush to the disk, close, then give the file its final name. */
static inline void out_file_commit(OutFile *o)
{
    if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0) out_file_fail(o, "flush to disk failed");
    const int closed = fclose(o->f);
    o->f = NULL;
    if (closed != 0) out_file_fail(o, "close failed");
    if (rename(o->tmp, o->path) != 0) out_file_fail(o, "rename to the final name failed");
}

#endif /* PACKLM_UTILS_H */
