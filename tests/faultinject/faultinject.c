/* faultinject.c: an LD_PRELOAD shim that makes file-system calls of the
 * process it is loaded into fail, for the fault-injection test
 * (tests/integration/faults.sh). Only calls on paths under FI_DIR are
 * touched (for write and fsync, the descriptor's path, read from
 * /proc/self/fd), so sockets, logs and everything else work normally.
 *
 * FI_CONTROL names a control file, read again at every call that could
 * fail, so a test switches faults on and off while the process runs. It
 * holds one line "STEP ERRNO N MODE":
 *   STEP   write | fsync (fsync and fdatasync) | rename | link (link,
 *          linkat) | unlink | open (open, openat, mkostemps) | mkdir |
 *          tmpfile (only an open of a folder with O_TMPFILE; open counts
 *          those too)
 *   ERRNO  EIO | ENOSPC | EDQUOT | EOPNOTSUPP (what a file system without
 *          O_TMPFILE answers)
 *   N      the Nth call of STEP under FI_DIR since the line was written fails
 *   MODE   once (only the Nth) or from (the Nth and every later one)
 * A missing or empty file means no faults. Each injected failure appends a
 * line to FI_CONTROL.log. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char current[128];  /* the control line the count belongs to */
static long count;

/* Read the control file with raw system calls (never through this shim). */
static void control(char *buf, size_t n)
{
	buf[0] = '\0';
	const char *path = getenv("FI_CONTROL");
	if (!path)
		return;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t r = syscall(SYS_read, fd, buf, n - 1);
	syscall(SYS_close, fd);
	buf[r > 0 ? r : 0] = '\0';
}

static int under_dir(const char *path)
{
	const char *dir = getenv("FI_DIR");
	size_t n = dir ? strlen(dir) : 0;
	return n && path && strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int fd_under_dir(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t r = syscall(SYS_readlinkat, AT_FDCWD, link, path, sizeof path - 1);
	if (r <= 0)
		return 0;
	path[r] = '\0';
	return under_dir(path);
}

static void note(const char *step, const char *what)
{
	const char *path = getenv("FI_CONTROL");
	char log[4200], line[4400];
	if (!path)
		return;
	snprintf(log, sizeof log, "%s.log", path);
	int fd = (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int n = snprintf(line, sizeof line, "%s %s\n", step, what ? what : "");
	syscall(SYS_write, fd, line, (size_t)n);
	syscall(SYS_close, fd);
}

/* The errno this call of step fails with, 0 when it goes through. */
static int fault(const char *step, const char *what)
{
	char buf[128], st[32], en[32], mode[16];
	long nth;
	int e = 0;
	pthread_mutex_lock(&mu);
	control(buf, sizeof buf);
	if (strcmp(buf, current) != 0) {
		snprintf(current, sizeof current, "%s", buf);
		count = 0;
	}
	if (sscanf(buf, "%31s %31s %ld %15s", st, en, &nth, mode) == 4 && strcmp(st, step) == 0) {
		count++;
		if (count == nth || (count > nth && strcmp(mode, "from") == 0))
			e = strcmp(en, "ENOSPC") == 0 ? ENOSPC : strcmp(en, "EDQUOT") == 0 ? EDQUOT :
			    strcmp(en, "EOPNOTSUPP") == 0 ? EOPNOTSUPP : EIO;
	}
	pthread_mutex_unlock(&mu);
	if (e)
		note(step, what);
	return e;
}

#define REAL(ret, name, ...)                                                                                \
	static ret (*real_##name)(__VA_ARGS__);                                                             \
	if (!real_##name)                                                                                   \
		real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

#define FAIL_IF(cond, step, what)                                                                           \
	do {                                                                                                \
		int fi_e = (cond) ? fault(step, what) : 0;                                                  \
		if (fi_e) {                                                                                 \
			errno = fi_e;                                                                       \
			return -1;                                                                          \
		}                                                                                           \
	} while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, write, int, const void *, size_t);
	FAIL_IF(fd_under_dir(fd), "write", NULL);
	return real_write(fd, buf, n);
}

int fsync(int fd)
{
	REAL(int, fsync, int);
	FAIL_IF(fd_under_dir(fd), "fsync", NULL);
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(int, fdatasync, int);
	FAIL_IF(fd_under_dir(fd), "fsync", NULL);
	return real_fdatasync(fd);
}

int rename(const char *a, const char *b)
{
	REAL(int, rename, const char *, const char *);
	FAIL_IF(under_dir(b), "rename", b);
	return real_rename(a, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
	REAL(int, renameat2, int, const char *, int, const char *, unsigned);
	FAIL_IF(under_dir(b), "rename", b);
	return real_renameat2(da, a, db, b, flags);
}

int link(const char *a, const char *b)
{
	REAL(int, link, const char *, const char *);
	FAIL_IF(under_dir(b), "link", b);
	return real_link(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int flags)
{
	REAL(int, linkat, int, const char *, int, const char *, int);
	FAIL_IF(under_dir(b), "link", b);
	return real_linkat(da, a, db, b, flags);
}

int unlink(const char *p)
{
	REAL(int, unlink, const char *);
	FAIL_IF(under_dir(p), "unlink", p);
	return real_unlink(p);
}

int mkdir(const char *p, mode_t m)
{
	REAL(int, mkdir, const char *, mode_t);
	FAIL_IF(under_dir(p), "mkdir", p);
	return real_mkdir(p, m);
}

int mkostemps(char *tmpl, int suffixlen, int flags)
{
	REAL(int, mkostemps, char *, int, int);
	FAIL_IF(under_dir(tmpl), "open", tmpl);
	return real_mkostemps(tmpl, suffixlen, flags);
}

static int is_tmpfile(int flags) { return (flags & O_TMPFILE) == O_TMPFILE; }

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || is_tmpfile(flags) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *p, int flags, ...)
{
	REAL(int, open, const char *, int, ...);
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	FAIL_IF(under_dir(p) && is_tmpfile(flags), "tmpfile", p);
	FAIL_IF(under_dir(p), "open", p);
	return real_open(p, flags, m);
}

int open64(const char *p, int flags, ...)
{
	REAL(int, open64, const char *, int, ...);
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	FAIL_IF(under_dir(p) && is_tmpfile(flags), "tmpfile", p);
	FAIL_IF(under_dir(p), "open", p);
	return real_open64(p, flags, m);
}

int openat(int dfd, const char *p, int flags, ...)
{
	REAL(int, openat, int, const char *, int, ...);
	va_list ap;
	va_start(ap, flags);
	mode_t m = mode_arg(flags, ap);
	va_end(ap);
	FAIL_IF(under_dir(p) && is_tmpfile(flags), "tmpfile", p);
	FAIL_IF(under_dir(p), "open", p);
	return real_openat(dfd, p, flags, m);
}
