/*
 * fd_assert.h — assertions for bugs, never for the world.
 *
 * FD_ASSERT is always on, in release builds too: a broken invariant stops the
 * process with the expression, file and line, before it can damage data.
 * FD_DEBUG_ASSERT is for checks too expensive for release builds.
 * A failing disk or a hostile peer is never asserted: it is an error code,
 * a log line and a counter.
 */
#ifndef FD_ASSERT_H
#define FD_ASSERT_H

#include <stdnoreturn.h>

noreturn void fd_assert_fail(const char *expr, const char *file, int line, const char *func);

#define FD_ASSERT(expr) \
  ((expr) ? (void)0 : fd_assert_fail(#expr, __FILE__, __LINE__, __func__))

#if defined(FD_DEBUG) && FD_DEBUG
#define FD_DEBUG_ASSERT(expr) FD_ASSERT(expr)
#else
#define FD_DEBUG_ASSERT(expr) ((void)0)
#endif

#define FD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define FD_ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define FD_IS_POW2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)

#endif /* FD_ASSERT_H */
