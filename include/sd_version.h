/* sd_version.h: the version sessiond, sessionctl and loadgen print with
 * --version: `git describe --always --dirty` of the source tree they were
 * built from, "unknown" outside git (a tarball), or what `make VERSION=...`
 * says. Defined in the generated build/gen/version.c (scripts/version.sh),
 * linked into the three programs only. */
#ifndef SD_VERSION_H
#define SD_VERSION_H

extern const char sd_version[];

#endif
