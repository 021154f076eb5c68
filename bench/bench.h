/*
 * bench.h - what the benchmark programs (bench/fs/fsbench.c,
 * bench/repl/replbench.c) share. Header only: each program is built alone
 * with `cc` by its script. Include after _GNU_SOURCE and the C headers.
 */
#ifndef MFS_BENCH_H
#define MFS_BENCH_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Prints "PROGRAM: message" and exits 1. */
__attribute__((format(printf, 1, 2), noreturn)) static void
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Monotonic seconds. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
