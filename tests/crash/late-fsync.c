/* late-fsync.c: a deliberately broken sessiond for the power-loss checker,
 * without a switch in src/: preloaded (LD_PRELOAD, through strace -E) into
 * the real build, it moves the fsync (or fdatasync) of a session's spare (.KEY.spare) from
 * before the renameat2(RENAME_EXCHANGE) that gives the spare the session's
 * name to just after it. The save is still acknowledged only after both
 * and the folder's fsync, so the only way to see the fault is a crash
 * between the exchange and the late fsync: the exchange may reach the disk
 * before the spare's bytes (POSIX). Built by run.sh into build/crash/. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The spare this thread has written and not yet synced, or -1. */
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

/* The store makes a file durable with fdatasync (a folder with fsync);
 * both are caught, so that the variant stays broken whichever it uses. */
static int defer(int fd, long nr)
{
	if (is_spare(fd)) {
		deferred = fd;
		return 0;
	}
	return (int)syscall(nr, fd);
}

int fsync(int fd) { return defer(fd, SYS_fsync); }
int fdatasync(int fd) { return defer(fd, SYS_fdatasync); }

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
	int r = (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
	if (deferred >= 0) {
		/* its result is not passed on: the store would take a failure
		 * for a failed exchange and empty the spare, now the session */
		int fd = deferred;
		deferred = -1;
		(void)syscall(SYS_fsync, fd);
	}
	return r;
}
