/* late-fsync.c: deliberately broken sessionds for the power-loss checker,
 * without a switch in src/: preloaded (LD_PRELOAD, through strace -E) into
 * the real build, it moves the fsync (or fdatasync) of a file from before
 * the call that gives it a session's name to just after that call.
 * SD_CRASH_PRELOAD_MODE says which file:
 *   spare    a session's spare (.KEY.spare), named by the save's
 *            renameat2(RENAME_EXCHANGE) (exchange-before-fsync);
 *   unnamed  a new session's file without a name (O_TMPFILE: a regular
 *            file with no link), named by the create's linkat
 *            (link-before-fsync).
 * The request is still answered only after both and the folder's fsync,
 * so the only way to see the fault is a crash between the naming call and
 * the late fsync: the name may reach the disk before the bytes (POSIX).
 * Built by run.sh into build/crash/. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The file this thread has written and not yet synced, or -1. */
static __thread int deferred = -1;

static int is_spare(int fd)
{
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	size_t suffix = strlen(".spare");
	return (size_t)n > suffix && strcmp(path + n - suffix, ".spare") == 0;
}

static int is_unnamed(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0;
}

static int mode_is(const char *m)
{
	const char *mode = getenv("SD_CRASH_PRELOAD_MODE");
	return mode && strcmp(mode, m) == 0;
}

/* The store makes a file durable with fdatasync (a folder with fsync);
 * both are caught, so that the variant stays broken whichever it uses. */
static int defer(int fd, long nr)
{
	if ((mode_is("spare") && is_spare(fd)) || (mode_is("unnamed") && is_unnamed(fd))) {
		deferred = fd;
		return 0;
	}
	return (int)syscall(nr, fd);
}

int fsync(int fd) { return defer(fd, SYS_fsync); }
int fdatasync(int fd) { return defer(fd, SYS_fdatasync); }

/* After the naming call, the deferred fsync. Its result is not passed on:
 * the store would take a failure for a failed naming call (and, for a
 * spare, empty it, now the session). */
static void late(void)
{
	if (deferred >= 0) {
		int fd = deferred;
		deferred = -1;
		(void)syscall(SYS_fsync, fd);
	}
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
	int r = (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
	late();
	return r;
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
	int r = (int)syscall(SYS_linkat, olddirfd, oldpath, newdirfd, newpath, flags);
	late();
	return r;
}
